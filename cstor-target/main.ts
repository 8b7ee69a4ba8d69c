// `cstor target`: one target daemon. Serves replicated volumes over iSCSI (one target per volume,
// LUN 0) and a mgmt HTTP API; remembers served volumes in --data-dir; shuts down cleanly on
// SIGTERM/SIGINT (stop the portal and the API, sync and close every replica). The only place that
// reads argv and env for the target.
import { shutdown, waitForSignal } from '../lib/shutdown.ts';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { ensureWritableDir, parseCommand } from '../lib/cli/args.ts';
import { takePidLock } from '../lib/cli/pid-lock.ts';
import { clusterDaemonConfig, daemonOptions, hostPortFrom } from '../lib/cli/daemon-options.ts';
import { CstorError } from '../lib/errors.ts';
import { announceListening, closeServer, listen } from '../lib/listen.ts';
import { createLogger } from '../lib/logger.ts';
import { createRegistry } from '../lib/metrics.ts';
import { defaultAdvertiseHost, isWildcard } from '../lib/advertise.ts';
import { connectReplica } from '../lib/replica-protocol/client.ts';
import { IscsiPortal } from './iscsi/portal.ts';
import { createMgmtApp } from './mgmt/app.ts';
import { VolumeManager } from './mgmt/volume-manager.ts';

const spec = {
  name: 'target',
  summary: 'cStor target daemon: replicated volumes (quorum writes to cstor pools) served over iSCSI, with a mgmt HTTP API.',
  options: daemonOptions(
    {
      iscsi: { type: 'string', default: '0.0.0.0:3260', value: 'HOST:PORT', description: 'iSCSI portal listener (port 0: any free port).' },
      mgmt: { type: 'string', default: '127.0.0.1:9500', value: 'HOST:PORT', description: 'Mgmt HTTP API listener.' },
      'data-dir': { type: 'string', value: 'DIR', description: 'Where served volumes are remembered (volumes.json); none: a restart forgets them.' },
      'target-id': { type: 'string', value: 'ID', description: 'Names this target to the pools (default: hostname-pid).' },
      'replica-timeout': {
        type: 'string',
        default: '8000',
        value: 'MS',
        description: 'A replica is dead when a request has waited MS and it sent nothing (no reply, no keepalive) for MS; every request on that connection then fails.',
      },
      'quiesce-timeout': { type: 'string', default: '2000', value: 'MS', description: 'Longest wait for in-flight writes to drain before a snapshot.' },
      namespace: { type: 'string', value: 'NS', description: 'Namespace of the CStorVolumes and CStorVolumeReplicas (default: $OPENEBS_NAMESPACE or openebs).' },
      advertise: {
        type: 'string',
        value: 'HOST',
        description: 'This target\'s address, matched against CStorVolume spec.targetIP (default: the --iscsi host; for 0.0.0.0, $POD_IP or the first non-loopback IPv4).',
      },
    },
    'Kubernetes client config: serve the CStorVolumes assigned to this target and keep their status (else $KUBECONFIG, else in-cluster; with none, no Kubernetes).',
  ),
  notes: [
    'Mgmt API: PUT/GET/DELETE /v1/volumes/VOLUME, GET /v1/volumes, POST/GET /v1/volumes/VOLUME/snapshots,',
    'DELETE /v1/volumes/VOLUME/snapshots/NAME, GET /v1/volumes/VOLUME/stats, GET /metrics, GET /healthz.',
    'IQN of a volume: iqn.2016-09.com.openebs.cstor:VOLUME, LUN 0. See docs/target.md.',
  ].join('\n'),
} as const;

export interface TargetConfig {
  iscsi: { host: string; port: number };
  mgmt: { host: string; port: number };
  dataDir: string | null;
  targetId: string;
  replicaTimeoutMs: number;
  quiesceTimeoutMs: number;
  /** $CSTOR_TARGET_READ_STICKINESS (a whole number > 0), else 0: see ReplicatedVolumeOptions.readStickiness. */
  readStickiness: number;
  logLevel: string;
  logFormat: 'json' | 'text';
  /** Set when the target runs with Kubernetes (--kubeconfig, $KUBECONFIG or in-cluster). */
  kube?: { kubeconfigPath?: string };
  namespace: string;
  advertise: string;
}

/** Builds the frozen config, listing every problem at once; null after --help. */
export function targetConfig(argv: readonly string[], env: NodeJS.ProcessEnv): TargetConfig | null {
  const opts = parseCommand(spec, argv);
  if (opts === null) return null;
  const problems: string[] = [];
  const ms = (v: string, flag: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 10 || n > 600_000) problems.push(`${flag} "${v}" must be an integer number of ms in 10..600000`);
    return n;
  };
  const iscsi = hostPortFrom(opts.iscsi, '--iscsi', problems);
  const mgmt = hostPortFrom(opts.mgmt, '--mgmt', problems);
  const replicaTimeoutMs = ms(opts['replica-timeout'], '--replica-timeout');
  const quiesceTimeoutMs = ms(opts['quiesce-timeout'], '--quiesce-timeout');
  const { logLevel, logFormat, namespace, kube } = clusterDaemonConfig(opts, env, problems);
  const advertise = opts.advertise ?? (isWildcard(iscsi.host) && env.POD_IP ? env.POD_IP : defaultAdvertiseHost(iscsi.host));
  const sticky = Number(env.CSTOR_TARGET_READ_STICKINESS ?? 0);
  const readStickiness = Number.isSafeInteger(sticky) && sticky > 0 ? sticky : 0;
  if (problems.length > 0) throw new CstorError('invalid', `${problems.join('; ')} (see --help)`);
  return Object.freeze({
    iscsi,
    mgmt,
    dataDir: opts['data-dir'] ? path.resolve(opts['data-dir']) : null,
    targetId: opts['target-id'] ?? `${os.hostname()}-${process.pid}`,
    replicaTimeoutMs,
    quiesceTimeoutMs,
    readStickiness,
    logLevel,
    logFormat,
    ...(kube ? { kube } : {}),
    namespace,
    advertise,
  });
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const config = targetConfig(argv, env);
  if (config === null) return;
  const logger = createLogger({ component: 'cstor-target', level: config.logLevel, format: config.logFormat });
  // Listened for from here on: a SIGTERM during start-up stops cleanly once started, instead of killing the process.
  const stopSignal = waitForSignal(logger);
  // The Kubernetes client code is loaded only when used (it costs seconds of start-up).
  const kube = config.kube ? (await import('../lib/kube/kubeconfig.ts')).loadKubeConfig({ ...config.kube, env }) : undefined;
  if (config.dataDir) await ensureWritableDir(config.dataDir, '--data-dir');
  // One target per --data-dir: two would overwrite each other's volumes.json.
  const lock = config.dataDir ? takePidLock(config.dataDir, 'target') : null;
  const registry = createRegistry('cstor-target');
  const portal = new IscsiPortal({ logger });
  const manager = new VolumeManager({
    connect: (address) => connectReplica(address, { timeoutMs: config.replicaTimeoutMs, logger }),
    portal,
    stateFile: config.dataDir ? path.join(config.dataDir, 'volumes.json') : null,
    logger,
    targetId: config.targetId,
    quiesceTimeoutMs: config.quiesceTimeoutMs,
    readStickiness: config.readStickiness,
  });
  const app = createMgmtApp({ manager, logger, registry, iscsiStats: (v) => portal.targetInfo(v) ?? null });
  const httpServer = http.createServer(app);
  let reconciler: { stop(): Promise<void>; markOffline(): Promise<void> } | undefined;
  try {
    // Volumes from the state file are served (and their replicas reconnected) before the API answers.
    await manager.load();
    announceListening(logger, 'iscsi', await portal.listen(config.iscsi.host, config.iscsi.port));
    announceListening(logger, 'mgmt', await listen(httpServer, config.mgmt.host, config.mgmt.port));
    if (kube) {
      logger.info('kubernetes client configured', { source: kube.source, namespace: config.namespace, advertise: config.advertise });
      const { startTargetReconciler } = await import('./reconciler/start.ts');
      reconciler = startTargetReconciler({ kubeConfig: kube.kubeConfig, namespace: config.namespace, advertise: config.advertise, manager, logger, registry });
    }
  } catch (err) {
    await portal.close();
    await closeServer(httpServer);
    await manager.close();
    lock?.release();
    throw err;
  }
  logger.info('target ready', { targetId: config.targetId, dataDir: config.dataDir, volumes: manager.list().length });
  await stopSignal;
  await shutdown(logger, 'target', async () => {
    await reconciler?.stop();
    await closeServer(httpServer);
    await portal.close();
    await manager.close();
    await reconciler?.markOffline();
    lock?.release();
  });
}
