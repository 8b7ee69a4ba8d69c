// The embedded system (`cstor up`): kube-lite, then the pools and the target, then m-apiserver,
// then the controllers and provisioners, each a separate `cstor <subcommand>` process under the
// Supervisor; deploy/ applied to kube-lite; the Service maya-apiserver-service and its
// Endpoints pointed at the local m-apiserver; DIR/state.json kept current. startEmbedded()
// resolves once everything is started; stop() stops it all (last stage first).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CstorError, describeError, hasErrorCode } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { loadKubeConfig } from '../kube/kubeconfig.ts';
import { HttpKubeTransport } from '../kube/transport.ts';
import { applyManifests, kubeApplyApi, type ApplyResult } from './applier.ts';
import { componentArgs, componentEnv, embeddedComponents, openebsNamespace, type ComponentContext, type ComponentDef } from './components.ts';
import { lockDataDir } from './dir-lock.ts';
import { defaultDeployDir, loadManifests, type Manifest, type ManifestObject } from './manifests.ts';
import { choosePort, portOf } from './ports.ts';
import { probeSubcommand, type SubcommandInfo } from './probe.ts';
import type { RestartPolicy } from './restart-policy.ts';
import { commandLineOf, isProcessAlive, isZombie, readState, writeState, type EmbeddedState } from './state.ts';
import { Supervisor } from './supervisor.ts';

export const defaultCstorBin = fileURLToPath(new URL('../../bin/cstor.js', import.meta.url));

export interface EmbeddedOptions {
  dataDir: string;
  listenHost: string;
  /** default: the design's fixed ports when free (else any); any: always port 0 (tests). */
  ports: 'default' | 'any';
  logger: Logger;
  cstorBin?: string;
  deployDir?: string;
  restartPolicy?: RestartPolicy;
  stopGraceMs?: number;
  /** How long to wait for a stage's listeners (default 90 s). */
  stageTimeoutMs?: number;
  /** Every child output line (after it is written to DIR/logs/<child>.log). */
  onChildLine?: (child: string, line: string, entry: Record<string, unknown> | null) => void;
  /** Aborts start-up (SIGINT while starting). */
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
}

export interface EmbeddedSystem {
  readonly dataDir: string;
  readonly kubeconfig: string;
  readonly supervisor: Supervisor;
  /** The current state (also in DIR/state.json). */
  state(): EmbeddedState;
  /** Stops every child; resolves when all have exited. */
  stop(): Promise<void>;
}

export async function startEmbedded(options: EmbeddedOptions): Promise<EmbeddedSystem> {
  const dataDir = path.resolve(options.dataDir);
  try {
    fs.mkdirSync(dataDir, { recursive: true });
  } catch (err) {
    throw new CstorError('invalid', `--data-dir ${dataDir}: not a directory that can be created (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  const lock = lockDataDir(dataDir);
  let system: EmbeddedSystem;
  try {
    system = await startLocked(options, dataDir);
  } catch (err) {
    lock.release();
    throw err;
  }
  return {
    dataDir: system.dataDir,
    kubeconfig: system.kubeconfig,
    supervisor: system.supervisor,
    state: () => system.state(),
    async stop() {
      try {
        await system.stop();
      } finally {
        lock.release();
      }
    },
  };
}

async function startLocked(options: EmbeddedOptions, dataDir: string): Promise<EmbeddedSystem> {
  const { logger, listenHost: host } = options;
  const cstorBin = options.cstorBin ?? defaultCstorBin;
  const stageTimeoutMs = options.stageTimeoutMs ?? 90_000;
  const kubeconfig = path.join(dataDir, 'kubeconfig');

  const previous = readState(dataDir);
  await takeOver(previous, logger);

  // Which subcommands exist, and their flags.
  const infos = new Map<string, SubcommandInfo>();
  const subcommands = [...new Set(embeddedComponents.map((c) => c.subcommand))];
  for (const info of subcommands.map((s) => probeSubcommand(cstorBin, s))) infos.set(info.name, info);
  const skipped: Record<string, string> = {};
  const components: ComponentDef[] = [];
  for (const def of embeddedComponents) {
    const info = infos.get(def.subcommand);
    if (info?.exists) {
      components.push(def);
      continue;
    }
    const why = `cstor ${def.subcommand} is not available: ${info?.problem ?? 'unknown'}`;
    if (def.essential) throw new CstorError('unavailable', why);
    skipped[def.name] = why;
    logger.warn('component skipped', { child: def.name, reason: why });
  }

  // Ports: the one used last time, else the design's, when free; else any. Pinned once announced.
  const ports = new Map<string, number>();
  const portKey = (c: string, l: string): string => `${c}/${l}`;
  for (const def of components) {
    const listeners = new Set([...def.listeners, ...Object.keys(def.defaultPorts), ...Object.keys(previous?.components[def.name]?.addresses ?? {})]);
    for (const l of listeners) {
      const before = previous?.components[def.name]?.addresses[l];
      const candidates = [before ? portOf(before) : undefined, options.ports === 'default' ? def.defaultPorts[l] : undefined];
      ports.set(portKey(def.name, l), options.ports === 'any' && !before ? 0 : await choosePort(host, candidates));
    }
  }

  const supervisor = new Supervisor({
    logger,
    logDir: path.join(dataDir, 'logs'),
    ...(options.restartPolicy ? { policy: options.restartPolicy } : {}),
    ...(options.stopGraceMs !== undefined ? { stopGraceMs: options.stopGraceMs } : {}),
    ...(options.onChildLine ? { onLine: options.onChildLine } : {}),
  });
  const ctx: ComponentContext = {
    dataDir,
    host,
    kubeconfig,
    namespace: openebsNamespace,
    port: (c, l) => {
      const announced = supervisor.statusOf(c)?.addresses[l];
      return announced ? portOf(announced) : (ports.get(portKey(c, l)) ?? 0);
    },
    address: (c, l) => supervisor.statusOf(c)?.addresses[l],
  };

  const startedAt = new Date().toISOString();
  let stoppedAt: string | null = null;
  const state = (): EmbeddedState => {
    const status = supervisor.status();
    const addr = (c: string, l: string): string | undefined => status.find((s) => s.name === c)?.addresses[l];
    const pools: EmbeddedState['endpoints']['pools'] = {};
    for (const s of status.filter((x) => x.name.startsWith('pool-'))) {
      pools[s.name] = { ...(s.addresses.replica ? { replica: s.addresses.replica } : {}), ...(s.addresses.mgmt ? { mgmt: s.addresses.mgmt } : {}) };
    }
    const kubeApi = addr('kube-lite', 'api');
    const mapi = addr('mapi', 'api');
    const targetPortal = addr('target', 'iscsi');
    const targetMgmt = addr('target', 'mgmt');
    return {
      version: 1,
      upPid: stoppedAt ? null : process.pid,
      dataDir,
      listenHost: host,
      kubeconfig,
      startedAt,
      stoppedAt,
      endpoints: {
        ...(kubeApi ? { kubeApi: `https://${kubeApi}` } : {}),
        ...(mapi ? { mapi: `http://${mapi}` } : {}),
        ...(targetPortal ? { targetPortal } : {}),
        ...(targetMgmt ? { targetMgmt } : {}),
        pools,
      },
      components: Object.fromEntries(
        status.map((s) => [s.name, { ...s, subcommand: components.find((c) => c.name === s.name)?.subcommand ?? s.name }]),
      ),
      skipped,
    };
  };
  const save = (): void => {
    try {
      writeState(state());
    } catch (err) {
      logger.warn('cannot write state.json', { error: describeError(err) });
    }
  };
  supervisor.on('change', save);

  const start = (def: ComponentDef): void => {
    const known = infos.get(def.subcommand)?.flags ?? null;
    supervisor.start({
      name: def.name,
      stage: def.stage,
      command: () => ({
        file: process.execPath,
        args: [cstorBin, ...componentArgs(def, ctx, known)],
        env: componentEnv(ctx, options.env ?? process.env, os.hostname()),
        cwd: dataDir,
      }),
    });
  };
  const checkAbort = (): void => {
    if (options.signal?.aborted) throw new CstorError('aborted', 'start-up interrupted');
  };
  const waitStage = async (stage: number, essential: boolean): Promise<void> => {
    const defs = components.filter((c) => c.stage === stage);
    for (const def of defs) start(def);
    await Promise.all(
      defs
        .filter((d) => d.listeners.length > 0)
        .map(async (d) => {
          try {
            await supervisor.waitForListeners(d.name, d.listeners, stageTimeoutMs);
          } catch (err) {
            if (essential && d.stage === 0) throw err;
            logger.warn('component did not come up in time; going on without it', { child: d.name, error: describeError(err) });
          }
        }),
    );
    checkAbort();
  };

  try {
    await waitStage(0, true);
    const copyKubeconfig = async (): Promise<void> => installKubeconfig(path.join(dataDir, 'kube-lite', 'kubeconfig'), kubeconfig, ctx.address('kube-lite', 'api') ?? '');
    await copyKubeconfig();
    supervisor.on('listening', (child, listener) => {
      if (child === 'kube-lite' && listener === 'api') void copyKubeconfig().catch((err: unknown) => logger.warn('cannot copy the kubeconfig', { error: describeError(err) }));
    });
    const { kubeConfig } = loadKubeConfig({ kubeconfigPath: kubeconfig, env: {} });
    const transport = new HttpKubeTransport(kubeConfig);
    const api = kubeApplyApi(transport);
    const manifests = await loadManifests(options.deployDir ?? defaultDeployDir);
    await applyWithRetry(() => applyManifests(embeddedOverrides(manifests, host, ctx.port('mapi', 'api')), { api, logger, defaultNamespace: openebsNamespace }), logger, options.signal);
    checkAbort();
    await waitStage(1, true);
    await waitStage(2, true);
    const mapi = ctx.address('mapi', 'api');
    if (mapi) {
      const service = embeddedOverrides(manifests, host, portOf(mapi)).filter((m) => m.object.kind === 'Service' && m.object.metadata.name === mapiServiceName);
      const mapiPoint = [...(service.length > 0 ? service : mapiServiceManifests(host, portOf(mapi)).slice(0, 1)), mapiServiceManifests(host, portOf(mapi))[1]!];
      await applyWithRetry(() => applyManifests(mapiPoint, { api, logger, defaultNamespace: openebsNamespace }), logger, options.signal);
    }
    await waitStage(3, false);
    transport.close();
  } catch (err) {
    await supervisor.stop();
    stoppedAt = new Date().toISOString();
    save();
    throw err;
  }
  save();

  let stopping: Promise<void> | null = null;
  return {
    dataDir,
    kubeconfig,
    supervisor,
    state,
    stop() {
      stopping ??= (async () => {
        await supervisor.stop();
        stoppedAt = new Date().toISOString();
        save();
      })();
      return stopping;
    },
  };
}

/** Refuses a DIR another live `cstor up` runs on; kills children a crashed `cstor up` left behind. */
async function takeOver(previous: EmbeddedState | null, logger: Logger): Promise<void> {
  if (!previous) return;
  const upCmd = previous.upPid === null ? '' : (commandLineOf(previous.upPid) ?? '');
  if (previous.upPid !== null && previous.upPid !== process.pid && isProcessAlive(previous.upPid) && upCmd.includes('cstor') && upCmd.split(' ').includes('up')) {
    throw new CstorError('conflict', `another cstor up (pid ${previous.upPid}) is running on ${previous.dataDir}; stop it first`);
  }
  const killed: number[] = [];
  for (const c of Object.values(previous.components)) {
    if (c.pid === null || !isProcessAlive(c.pid)) continue;
    const cmd = commandLineOf(c.pid) ?? '';
    if (!cmd.includes('cstor') || !cmd.includes(` ${c.subcommand} `)) continue;
    logger.warn('killing a component left running by an earlier cstor up', { child: c.name, pid: c.pid });
    process.kill(c.pid, 'SIGKILL');
    killed.push(c.pid);
  }
  // wait until they are gone (or zombies: their sockets are closed), so their ports are free again
  const deadline = Date.now() + 10_000;
  while (killed.some((pid) => isProcessAlive(pid) && !isZombie(pid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

/** Copies kube-lite's kubeconfig to DIR/kubeconfig once it names the announced address. */
async function installKubeconfig(from: string, to: string, address: string): Promise<void> {
  const port = portOf(address);
  const deadline = Date.now() + 30_000;
  for (;;) {
    let text = '';
    try {
      text = fs.readFileSync(from, 'utf8');
    } catch {
      text = '';
    }
    if (text && new RegExp(`server: https://[^\\s]*:${port}\\b`).test(text)) {
      const tmp = `${to}.tmp-${process.pid}`;
      fs.writeFileSync(tmp, text, { mode: 0o600 });
      fs.renameSync(tmp, to);
      return;
    }
    if (Date.now() > deadline) throw new CstorError('timeout', `${from} does not name ${address} after 30 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function applyWithRetry(apply: () => Promise<ApplyResult[]>, logger: Logger, signal?: AbortSignal): Promise<ApplyResult[]> {
  const deadline = Date.now() + 60_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await apply();
    } catch (err) {
      if (!hasErrorCode(err, 'unavailable', 'timeout', 'conflict') || Date.now() > deadline || signal?.aborted) throw err;
      logger.warn('applying manifests failed; retrying', { attempt, error: describeError(err) });
      await new Promise((r) => setTimeout(r, Math.min(2000, 200 * attempt)));
    }
  }
}

export const mapiServiceName = 'maya-apiserver-service';

/**
 * Embedded mode changes one thing in deploy/: the Service maya-apiserver-service gets the local
 * host as its cluster IP and m-apiserver's real port, so a lookup by Service (DESIGN.md §4) finds
 * the local m-apiserver as it would find the Deployment's pods in a cluster.
 */
export function embeddedOverrides(manifests: readonly Manifest[], host: string, mapiPort: number): Manifest[] {
  return manifests.map((m) => {
    if (m.object.kind !== 'Service' || m.object.metadata.name !== mapiServiceName || mapiPort === 0) return m;
    const svc = mapiServiceManifests(host, mapiPort)[0]!;
    return { ...m, object: { ...m.object, spec: svc.object.spec! } };
  });
}

/** The Service and Endpoints maya-apiserver-service pointing at host:port. */
export function mapiServiceManifests(host: string, port: number): Manifest[] {
  const service: ManifestObject = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: mapiServiceName, namespace: openebsNamespace, labels: { app: 'maya-apiserver' } },
    spec: { clusterIP: host, clusterIPs: [host], ports: [{ name: 'api', port, targetPort: port, protocol: 'TCP' }] },
  };
  const endpoints: ManifestObject = {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: mapiServiceName, namespace: openebsNamespace, labels: { app: 'maya-apiserver' } },
    subsets: [{ addresses: [{ ip: host }], ports: [{ name: 'api', port, protocol: 'TCP' }] }],
  };
  return [
    { file: '(embedded)', doc: 1, object: service },
    { file: '(embedded)', doc: 2, object: endpoints },
  ];
}
