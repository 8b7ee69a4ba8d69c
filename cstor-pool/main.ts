// `cstor pool`: one pool daemon. Opens the pool directory, serves the replica protocol (target ↔
// pool) and the mgmt HTTP API, and shuts down cleanly on SIGTERM/SIGINT (stop listening, close
// connections, sync and close the pool). The only place that reads argv and env for the pool.
import { shutdown, waitForSignal } from '../lib/shutdown.ts';
import http from 'node:http';
import path from 'node:path';
import { ensureWritableDir, parseCommand } from '../lib/cli/args.ts';
import { takePidLock } from '../lib/cli/pid-lock.ts';
import { clusterDaemonConfig, daemonOptions, hostPortFrom } from '../lib/cli/daemon-options.ts';
import { CstorError } from '../lib/errors.ts';
import { announceListening, closeServer, listen } from '../lib/listen.ts';
import { createLogger } from '../lib/logger.ts';
import { createRegistry } from '../lib/metrics.ts';
import { dns1123SubdomainProblems } from '../lib/names.ts';
import { createMgmtApp } from './mgmt/app.ts';
import { defaultAdvertiseHost } from '../lib/advertise.ts';
import type { PoolReconciler } from './reconciler/controller.ts';
import { createPoolMetrics } from './server/metrics.ts';
import { ReplicaServer } from './server/replica-server.ts';
import { configureInlineIo, defaultInlineIo } from './store/inline-io.ts';
import { configureWriteback, defaultWritebackBytes } from './store/writeback.ts';
import { openPool } from './store/pool.ts';

const spec = {
  name: 'pool',
  summary: 'cStor pool daemon: copy-on-write replicas (one per volume) served over the replica protocol, with a mgmt HTTP API.',
  options: daemonOptions(
    {
      name: { type: 'string', required: true, value: 'NAME', description: 'Pool name (DNS-1123), e.g. the CStorPool name.' },
      'data-dir': { type: 'string', required: true, value: 'DIR', description: 'Pool directory (created if absent).' },
      listen: { type: 'string', default: '0.0.0.0:3232', value: 'HOST:PORT', description: 'Replica protocol listener (port 0: any free port).' },
      'listen-unix': {
        type: 'string',
        value: 'PATH',
        description: 'Also serve the replica protocol on this UNIX domain socket: a target on this host connects to unix:PATH (same frames, less CPU than loopback TCP).',
      },
      mgmt: { type: 'string', default: '127.0.0.1:9501', value: 'HOST:PORT', description: 'Mgmt HTTP API listener.' },
      namespace: { type: 'string', value: 'NS', description: 'Namespace of the CStorVolumeReplicas (default: $OPENEBS_NAMESPACE or openebs).' },
      advertise: { type: 'string', value: 'HOST', description: 'Host published in CStorPool.status.address (default: the --listen host; for 0.0.0.0 the first non-loopback IPv4).' },
      'inline-io-max': {
        type: 'string',
        default: String(defaultInlineIo.maxBytes),
        value: 'BYTES',
        description: 'READ/WRITE of at most this many bytes run synchronously on the event loop instead of the thread pool, back to the thread pool for a while when such calls turn slow (0: never). See docs/pool-daemon.md, "Per-IO cost".',
      },
      'writeback-bytes': {
        type: 'string',
        value: 'BYTES',
        description: `Background fdatasync of a replica's head after every BYTES written, bounding what a snapshot or a sync has to flush (0: off; default $CSTOR_POOL_WRITEBACK_BYTES or ${defaultWritebackBytes}). See docs/pool-storage.md.`,
      },
    },
    'Kubernetes client config: register the CStorPool and act on its CStorVolumeReplicas (else $KUBECONFIG, else in-cluster; with none, no Kubernetes).',
  ),
  notes: [
    'Mgmt API: POST/GET /v1/replicas, GET/DELETE /v1/replicas/VOLUME, GET /v1/pool, GET /metrics, GET /healthz.',
    'See docs/pool-daemon.md.',
  ].join('\n'),
} as const;

export interface PoolConfig {
  name: string;
  dataDir: string;
  listen: { host: string; port: number };
  /** --listen-unix: an absolute path, or absent. */
  listenUnix?: string;
  mgmt: { host: string; port: number };
  logLevel: string;
  logFormat: 'json' | 'text';
  /** Set when the pool runs with Kubernetes (--kubeconfig, $KUBECONFIG or in-cluster). */
  kube?: { kubeconfigPath?: string };
  namespace: string;
  advertise: string;
  /** --inline-io-max: largest READ/WRITE done on the event loop (cstor-pool/store/inline-io.ts). */
  inlineIoMaxBytes: number;
  /** --writeback-bytes: head bytes between background fdatasyncs (cstor-pool/store/writeback.ts). */
  writebackBytes: number;
  /** Crash tests only: $CSTOR_POOL_FAILPOINT (see cstor-pool/reconciler/cvr-sync.ts). */
  failpoint?: string;
}

/** Builds the frozen config, listing every problem at once. */
export function poolConfig(argv: readonly string[], env: NodeJS.ProcessEnv): PoolConfig | null {
  const opts = parseCommand(spec, argv);
  if (opts === null) return null;
  const problems: string[] = [];
  const nameProblems = dns1123SubdomainProblems(opts.name);
  if (nameProblems.length > 0) problems.push(`--name "${opts.name}" is invalid: ${nameProblems.join('; ')}`);
  const listenAddr = hostPortFrom(opts.listen, '--listen', problems);
  const mgmtAddr = hostPortFrom(opts.mgmt, '--mgmt', problems);
  const { logLevel, logFormat, namespace, kube } = clusterDaemonConfig(opts, env, problems);
  const inlineIoMaxBytes = Number(opts['inline-io-max']);
  if (!/^\d+$/.test(opts['inline-io-max']) || inlineIoMaxBytes > 16 * 1024 * 1024) problems.push(`--inline-io-max "${opts['inline-io-max']}" is not a byte count from 0 to 16777216`);
  const writeback = opts['writeback-bytes'] ?? env.CSTOR_POOL_WRITEBACK_BYTES ?? String(defaultWritebackBytes);
  const writebackBytes = Number(writeback);
  if (!/^\d+$/.test(writeback) || !Number.isSafeInteger(writebackBytes)) problems.push(`--writeback-bytes "${writeback}" is not a byte count (0 turns writeback off)`);
  if (problems.length > 0) throw new CstorError('invalid', `cstor pool: ${problems.join('; ')}`);
  return Object.freeze({
    name: opts.name,
    dataDir: path.resolve(opts['data-dir']),
    listen: listenAddr,
    ...(opts['listen-unix'] !== undefined ? { listenUnix: path.resolve(opts['listen-unix']) } : {}),
    mgmt: mgmtAddr,
    logLevel,
    logFormat,
    ...(kube ? { kube } : {}),
    namespace,
    advertise: opts.advertise ?? defaultAdvertiseHost(listenAddr.host),
    inlineIoMaxBytes,
    writebackBytes,
    ...(env.CSTOR_POOL_FAILPOINT ? { failpoint: env.CSTOR_POOL_FAILPOINT } : {}),
  });
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const config = poolConfig(argv, env);
  if (config === null) return;
  const logger = createLogger({ component: 'cstor-pool', level: config.logLevel, format: config.logFormat }).child({ pool: config.name });
  // Listened for from here on: a SIGTERM during start-up stops cleanly once started, instead of killing the process.
  const stopSignal = waitForSignal(logger);
  // The Kubernetes client code is loaded only when used (it costs seconds of start-up).
  const kube = config.kube ? (await import('../lib/kube/kubeconfig.ts')).loadKubeConfig({ ...config.kube, env }) : undefined;
  await ensureWritableDir(config.dataDir, '--data-dir');
  // One pool daemon per directory: two would write the same layer files.
  const lock = takePidLock(config.dataDir, 'pool');
  configureInlineIo({ maxBytes: config.inlineIoMaxBytes });
  configureWriteback(config.writebackBytes);
  let pool: Awaited<ReturnType<typeof openPool>>;
  try {
    pool = await openPool({ dir: config.dataDir, name: config.name, logger });
  } catch (err) {
    lock.release();
    throw err;
  }
  const registry = createRegistry('cstor-pool');
  const replicaServer = new ReplicaServer({ pool, logger, metrics: createPoolMetrics(registry) });
  const app = createMgmtApp({ pool, logger, registry, dropVolume: (v) => replicaServer.dropVolume(v) });
  const httpServer = http.createServer(app);
  let reconciler: PoolReconciler | undefined;
  try {
    const replicaAddr = await replicaServer.listen(config.listen.host, config.listen.port);
    announceListening(logger, 'replica', replicaAddr);
    if (config.listenUnix !== undefined) {
      logger.info('listening', { listener: 'replica-unix', address: await replicaServer.listenUnix(config.listenUnix) });
    }
    const mgmtAddr = await listen(httpServer, config.mgmt.host, config.mgmt.port);
    announceListening(logger, 'mgmt', mgmtAddr);
    if (kube) {
      logger.info('kubernetes client configured', { source: kube.source, namespace: config.namespace });
      const { startPoolReconciler } = await import('./reconciler/start.ts');
      reconciler = await startPoolReconciler({
        kubeConfig: kube.kubeConfig,
        namespace: config.namespace,
        pool,
        advertise: config.advertise,
        replicaAddr,
        mgmtAddr,
        dropVolume: (v) => replicaServer.dropVolume(v),
        logger,
        registry,
        ...(config.failpoint ? { failpoint: config.failpoint } : {}),
      });
    }
  } catch (err) {
    await replicaServer.close();
    await closeServer(httpServer);
    await pool.close();
    lock.release();
    throw err;
  }
  logger.info('pool ready', { dir: config.dataDir, replicas: (await pool.listReplicas()).length });
  await stopSignal;
  await shutdown(logger, 'pool', async () => {
    await reconciler?.stop();
    await replicaServer.close();
    await closeServer(httpServer);
    await pool.close();
    lock.release();
  });
}
