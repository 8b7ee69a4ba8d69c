// Starts a real kube-lite for the lib/kube integration tests, restarts it on the same data
// directory and port (kill -9 or not), and builds clients from the kubeconfig it writes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yaml from 'js-yaml';
import { repoRoot, startDaemon, stopAll, type Daemon } from '../support/daemon.ts';
import { hasErrorCode } from '../../lib/errors.ts';
import { ensureCrd } from '../../lib/kube/ensure-crd.ts';
import { resources } from '../../lib/kube/resources.ts';
import type { CustomResourceDefinition } from '../../lib/kube/types/crd.ts';
import { silentLogger } from '../../lib/logger.ts';
import { loadKubeConfig } from '../../lib/kube/kubeconfig.ts';
import { ResourceClient } from '../../lib/kube/resource-client.ts';
import type { ResourceType } from '../../lib/kube/resource-type.ts';
import { HttpKubeTransport } from '../../lib/kube/transport.ts';
import type { KubeObject } from '../../lib/kube/types/meta.ts';

export class KubeLiteHarness {
  daemon: Daemon | undefined;
  readonly dataDir: string;
  port = 0;
  private transport: HttpKubeTransport | undefined;

  constructor() {
    this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lib-kube-'));
  }

  get kubeconfigPath(): string {
    return path.join(this.dataDir, 'kubeconfig');
  }

  /** Starts kube-lite on its port (port 0 the first time, then the same port again). */
  async start(extraArgs: string[] = []): Promise<Daemon> {
    const daemon = await startDaemon(['kube-lite', '--listen', `127.0.0.1:${this.port}`, '--data-dir', this.dataDir, ...extraArgs], { listeners: ['api'] });
    this.daemon = daemon;
    const addr = daemon.addresses.api;
    if (!addr) throw new Error('kube-lite announced no api listener');
    this.port = Number(addr.slice(addr.lastIndexOf(':') + 1));
    return daemon;
  }

  /** Starts kube-lite on the same data on ANOTHER port (clients of the usual port cannot reach it). */
  async startElsewhere(extraArgs: string[] = []): Promise<Daemon> {
    return startDaemon(['kube-lite', '--listen', '127.0.0.1:0', '--data-dir', this.dataDir, ...extraArgs], { listeners: ['api'] });
  }

  /** A client built from the kubeconfig as it is now (it names the last started server). */
  freshClient<T extends KubeObject>(resource: ResourceType): ResourceClient<T> {
    const { kubeConfig } = loadKubeConfig({ kubeconfigPath: this.kubeconfigPath, env: {} });
    return new ResourceClient<T>(new HttpKubeTransport(kubeConfig, { requestTimeoutMs: 10_000 }), resource);
  }

  async kill(): Promise<void> {
    await this.daemon?.kill();
    this.daemon = undefined;
  }

  async stop(): Promise<void> {
    await this.daemon?.stop();
    this.daemon = undefined;
  }

  client<T extends KubeObject>(resource: ResourceType): ResourceClient<T> {
    if (!this.transport) {
      const { kubeConfig } = loadKubeConfig({ kubeconfigPath: this.kubeconfigPath, env: {} });
      this.transport = new HttpKubeTransport(kubeConfig, { requestTimeoutMs: 10_000 });
    }
    return new ResourceClient<T>(this.transport, resource);
  }

  /** Installs CRDs from deploy/crds (file names) and waits until each is Established. */
  async applyCrds(files: readonly string[]): Promise<void> {
    const client = this.client<CustomResourceDefinition>(resources.customResourceDefinitions);
    for (const file of files) {
      const crd = yaml.load(fs.readFileSync(path.join(repoRoot, 'deploy', 'crds', file), 'utf8')) as CustomResourceDefinition;
      await ensureCrd(crd, { client, logger: silentLogger() });
    }
  }

  /** Creates a namespace unless it exists. */
  async ensureNamespace(name: string): Promise<void> {
    try {
      await this.client<KubeObject>(resources.namespaces).create({ metadata: { name } });
    } catch (err) {
      if (!hasErrorCode(err, 'already_exists')) throw err;
    }
  }

  cleanup(): void {
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Polls `check` until it returns true (bounded); throws with `describe()` on timeout. */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000, describe?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${describe ? `: ${describe()}` : ''}`);
}

/** A kube-lite started before the calling mocha suite and stopped (with every daemon) after it. */
export function kubeLiteForSuite(): KubeLiteHarness {
  const kl = new KubeLiteHarness();
  before(async () => {
    await kl.start();
  });
  after(async () => {
    await stopAll();
    kl.cleanup();
  });
  return kl;
}
