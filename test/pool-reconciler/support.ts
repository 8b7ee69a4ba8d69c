// A real kube-lite with the cStor CRDs from deploy/crds applied, and real `cstor pool
// --kubeconfig` processes on one pool directory, restarted at will (kill -9 or SIGTERM).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { hasErrorCode } from '../../lib/errors.ts';
import { resources } from '../../lib/kube/resources.ts';
import type { CoreEvent } from '../../lib/kube/types/core.ts';
import { cstorResources, cvrFinalizer, type CStorPool, type CStorVolumeReplica } from '../../cstor-pool/reconciler/types.ts';
import type { ReplicaInfo } from '../../cstor-pool/store/types.ts';
import { startDaemon, type Daemon } from '../support/daemon.ts';
import { KubeLiteHarness } from '../lib-kube/kube-lite-harness.ts';

export const ns = 'openebs';
export const poolName = 'pool-a';

export class PoolWorld {
  readonly kl = new KubeLiteHarness();
  readonly poolDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pool-reconciler-'));
  pool: Daemon | undefined;

  async start(): Promise<void> {
    await this.kl.start();
    await this.kl.applyCrds(['cstorpools.openebs.io.yaml', 'cstorvolumereplicas.openebs.io.yaml']);
    await this.kl.ensureNamespace(ns);
  }

  get cvrs() {
    return this.kl.client<CStorVolumeReplica>(cstorResources.cstorVolumeReplicas);
  }

  get pools() {
    return this.kl.client<CStorPool>(cstorResources.cstorPools);
  }

  get events() {
    return this.kl.client<CoreEvent>(resources.events);
  }

  /** Starts `cstor pool --kubeconfig` on the pool directory (ports picked by the OS). */
  async startPool(env: NodeJS.ProcessEnv = {}): Promise<Daemon> {
    this.pool = await startDaemon(
      ['pool', '--name', poolName, '--data-dir', this.poolDir, '--listen', '127.0.0.1:0', '--mgmt', '127.0.0.1:0', '--kubeconfig', this.kl.kubeconfigPath],
      { listeners: ['replica', 'mgmt'], env: { KUBECONFIG: '', ...env } },
    );
    return this.pool;
  }

  /** Waits for the pool process to exit by itself (a failpoint). */
  async poolExited(timeoutMs = 20_000): Promise<void> {
    const proc = this.pool?.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    await once(proc, 'exit');
    clearTimeout(timer);
  }

  get mgmt(): string {
    const a = this.pool?.addresses.mgmt;
    if (!a) throw new Error('no pool running');
    return `http://${a}`;
  }

  get replicaAddress(): string {
    const a = this.pool?.addresses.replica;
    if (!a) throw new Error('no pool running');
    return a;
  }

  async replicas(): Promise<ReplicaInfo[]> {
    const res = await fetch(`${this.mgmt}/v1/replicas`);
    if (res.status !== 200) throw new Error(`GET /v1/replicas: ${res.status}`);
    return ((await res.json()) as { items: ReplicaInfo[] }).items;
  }

  /** A CVR exactly as the CAS volume create (or clone) template writes it. */
  async createCvr(volume: string, capacity: string, clone?: { source: string; snapshot: string }): Promise<CStorVolumeReplica> {
    return this.cvrs.create({
      apiVersion: 'openebs.io/v1alpha1',
      kind: 'CStorVolumeReplica',
      metadata: {
        name: `${volume}-${poolName}`,
        namespace: ns,
        labels: {
          'cstorpool.openebs.io/name': poolName,
          'cstorpool.openebs.io/uid': '',
          'openebs.io/persistent-volume': volume,
          'openebs.io/cas-type': 'cstor',
          ...(clone ? { 'openebs.io/cloned': 'true' } : {}),
        },
        ...(clone ? { annotations: { 'openebs.io/snapshot': clone.snapshot, 'openebs.io/source-volume': clone.source } } : {}),
        finalizers: [cvrFinalizer],
      },
      spec: { capacity, targetIP: '127.0.0.1' },
    });
  }

  async cvr(volume: string): Promise<CStorVolumeReplica | undefined> {
    try {
      return await this.cvrs.get({ namespace: ns, name: `${volume}-${poolName}` });
    } catch (err) {
      if (hasErrorCode(err, 'not_found')) return undefined;
      throw err;
    }
  }

  ownedFile(): Record<string, unknown> {
    const file = path.join(this.poolDir, 'reconciler', 'owned.json');
    if (!fs.existsSync(file)) return {};
    return (JSON.parse(fs.readFileSync(file, 'utf8')) as { replicas: Record<string, unknown> }).replicas;
  }

  cleanup(): void {
    this.kl.cleanup();
    fs.rmSync(this.poolDir, { recursive: true, force: true });
  }
}
