// `cstor snapshot-controller`: VolumeSnapshot → backend snapshot through m-apiserver → bound
// VolumeSnapshotData (DESIGN.md §3, §4, §8). The only place that reads argv and env.
import express from 'express';
import http from 'node:http';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { parseCommand, parseHostPort } from '../lib/cli/args.ts';
import { logLevelFrom } from '../lib/cli/daemon-options.ts';
import { CstorError, describeError, hasErrorCode } from '../lib/errors.ts';
import { announceListening, closeServer, listen } from '../lib/listen.ts';
import { shutdown, waitForSignal } from '../lib/shutdown.ts';
import { createLogger, type Logger } from '../lib/logger.ts';
import { createRegistry, metricsHandler } from '../lib/metrics.ts';
import { backoffDelay } from '../lib/kube/backoff.ts';
import { realClock, sleep } from '../lib/kube/clock.ts';
import { EventRecorder } from '../lib/kube/event-recorder.ts';
import { createKubeClients, type KubeClients } from '../lib/kube/kube-clients.ts';
import { loadKubeConfig } from '../lib/kube/kubeconfig.ts';
import { runWhenLeading } from '../lib/kube/leader-election.ts';
import { resources } from '../lib/kube/resources.ts';
import type { CoreEvent } from '../lib/kube/types/core.ts';
import type { CustomResourceDefinition } from '../lib/kube/types/crd.ts';
import type { Lease } from '../lib/kube/types/lease.ts';
import type { KubeObject, ObjectMeta } from '../lib/kube/types/meta.ts';
import { SnapshotController } from './controller.ts';
import { ensureSnapshotCrds } from './crds.ts';
import { MayaSnapshots } from './maya-client.ts';
import { MayaAddressResolver } from '../lib/maya-client/address.ts';
import { MayaClient as MayaRestClient } from '../lib/maya-client/client.ts';
import { snapshotMetrics } from './metrics.ts';

const spec = {
  name: 'snapshot-controller',
  summary:
    'Turns legacy external-storage VolumeSnapshots into cStor snapshots through m-apiserver and bound VolumeSnapshotData objects; creates the two CRDs when absent; leader-elected on a Lease.',
  options: {
    kubeconfig: { type: 'string', value: 'FILE', description: 'kubeconfig file (default: KUBECONFIG, in-cluster, ~/.kube/config)' },
    namespace: { type: 'string', value: 'NS', description: 'OpenEBS namespace: the Lease and the maya-apiserver-service live here (env OPENEBS_NAMESPACE; default openebs)' },
    'mapi-addr': { type: 'string', value: 'URL', description: 'm-apiserver address, e.g. http://127.0.0.1:5656 (env MAPI_ADDR; default: the Service maya-apiserver-service, port 5656)' },
    metrics: { type: 'string', value: 'HOST:PORT', description: 'serve /metrics and /healthz here (port 0: any free port); off when not given' },
    'leader-elect': { type: 'string', value: 'true|false', description: 'run leader election on a Lease so several replicas can run', default: 'true' },
    'lease-name': { type: 'string', value: 'NAME', description: 'the Lease used for leader election', default: 'snapshot-controller' },
    'lease-duration': { type: 'string', value: 'SECONDS', description: 'leader lease duration (renew deadline 2/3 of it, retry period 1/5)', default: '15' },
    identity: { type: 'string', value: 'ID', description: 'leader election identity (default: hostname + pid + random suffix)' },
    workers: { type: 'string', value: 'N', description: 'parallel reconciles per queue', default: '16' },
    'log-level': { type: 'string', value: 'LEVEL', description: 'error, warn, info or debug (env LOG_LEVEL)' },
  },
  notes: 'Listeners are announced as {"message":"listening","listener":"metrics","address":...}.',
} as const;

export interface SnapshotControllerConfig {
  kubeconfig?: string;
  namespace: string;
  mapiAddr?: string;
  metrics?: { host: string; port: number };
  leaderElect: boolean;
  leaseName: string;
  leaseDurationMs: number;
  identity: string;
  workers: number;
  logLevel: string;
}

/** Builds the frozen config, listing every problem at once. */
export function buildConfig(args: NonNullable<ReturnType<typeof parseCommand<typeof spec.options>>>, env: NodeJS.ProcessEnv): Readonly<SnapshotControllerConfig> {
  const problems: string[] = [];
  const leaderElect = args['leader-elect'];
  if (leaderElect !== 'true' && leaderElect !== 'false') problems.push(`--leader-elect: "${leaderElect}" is not true or false`);
  const workers = Number(args.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) problems.push(`--workers: "${args.workers}" is not an integer from 1 to 64`);
  const leaseSeconds = Number(args['lease-duration']);
  if (!Number.isFinite(leaseSeconds) || leaseSeconds < 2 || leaseSeconds > 600) problems.push(`--lease-duration: "${args['lease-duration']}" is not a number of seconds from 2 to 600`);
  let metrics: { host: string; port: number } | undefined;
  if (args.metrics) {
    try {
      metrics = parseHostPort(args.metrics, '--metrics');
    } catch (err) {
      problems.push(describeError(err));
    }
  }
  const namespace = args.namespace ?? env.OPENEBS_NAMESPACE ?? 'openebs';
  if (!namespace) problems.push('--namespace is empty');
  const logLevel = logLevelFrom(args['log-level'], env, problems);
  if (problems.length) throw new CstorError('invalid', `cstor snapshot-controller: ${problems.join('; ')}`);
  const mapiAddr = args['mapi-addr'] ?? env.MAPI_ADDR;
  return Object.freeze({
    ...(args.kubeconfig ? { kubeconfig: args.kubeconfig } : {}),
    namespace,
    ...(mapiAddr ? { mapiAddr } : {}),
    ...(metrics ? { metrics } : {}),
    leaderElect: leaderElect === 'true',
    leaseName: args['lease-name'],
    leaseDurationMs: leaseSeconds * 1000,
    identity: args.identity ?? `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    workers,
    logLevel,
  });
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const args = parseCommand(spec, argv);
  if (!args) return;
  const config = buildConfig(args, env);
  const logger = createLogger({ component: 'snapshot-controller', level: config.logLevel });
  const { kubeConfig, source } = loadKubeConfig({ kubeconfigPath: config.kubeconfig, env });
  logger.info('starting', { kubeconfig: source, namespace: config.namespace, mapiAddr: config.mapiAddr ?? `(Service maya-apiserver-service in ${config.namespace})`, identity: config.identity });
  await run(config, createKubeClients(kubeConfig), logger);
}

/** Runs the controller until SIGTERM/SIGINT. */
export async function run(config: Readonly<SnapshotControllerConfig>, clients: KubeClients, logger: Logger): Promise<void> {
  const stopController = new AbortController();
  const stopped = waitForSignal(logger);
  void stopped.then(() => stopController.abort());

  const registry = createRegistry('snapshot-controller');
  const metrics = snapshotMetrics(registry);
  let healthy = true;
  let server: http.Server | undefined;
  if (config.metrics) {
    const app = express();
    app.get('/metrics', metricsHandler(registry));
    app.get('/healthz', (_req, res) => {
      res.status(healthy ? 200 : 503).type('text/plain').send(healthy ? 'ok' : 'stopping');
    });
    server = http.createServer(app);
    announceListening(logger, 'metrics', await listen(server, config.metrics.host, config.metrics.port));
  }

  await withRetries('install the snapshot CRDs', logger, stopController.signal, () =>
    ensureSnapshotCrds({ client: clients.for<CustomResourceDefinition>(resources.customResourceDefinitions), logger }),
  );
  if (stopController.signal.aborted) return shutdown(logger, 'snapshot-controller', closeListener);
  logger.info('snapshot CRDs established');

  const resolver = new MayaAddressResolver({
    mapiAddr: config.mapiAddr,
    namespace: config.namespace,
    getService: (ref) => clients.for<KubeObject & { metadata: ObjectMeta }>(resources.services).get(ref),
  });
  const maya = new MayaSnapshots(new MayaRestClient({ address: resolver, timeoutMs: 30_000 }));
  const events = new EventRecorder({ client: clients.for<CoreEvent>(resources.events), component: 'snapshot-controller', host: config.identity, logger });

  let current: { controller: SnapshotController; done: Promise<void> } | undefined;
  const startReconciling = (): void => {
    if (current) return;
    const controller = new SnapshotController({ clients, maya, events, logger, metrics, registry, workers: config.workers });
    const done = controller.run().catch((err: unknown) => {
      logger.error('controller stopped with an error', { error: describeError(err) });
    });
    current = { controller, done };
    metrics.setLeader(true);
    logger.info('reconciling', { identity: config.identity });
  };
  const stopReconciling = async (): Promise<void> => {
    const c = current;
    current = undefined;
    metrics.setLeader(false);
    if (!c) return;
    await c.controller.stop();
    await c.done;
    logger.info('stopped reconciling', { identity: config.identity });
  };

  const elector = runWhenLeading({
    election: config.leaderElect
      ? { lease: { name: config.leaseName, namespace: config.namespace }, identity: config.identity, client: clients.for<Lease>(resources.leases), leaseDurationMs: config.leaseDurationMs }
      : undefined,
    logger,
    start: startReconciling,
    stop: stopReconciling,
  });

  await stopped;
  healthy = false;
  await shutdown(logger, 'snapshot-controller', async () => {
    await stopReconciling();
    await elector?.stop(); // a leader releases the Lease so a standby takes over at once
    await closeListener();
  });

  async function closeListener(): Promise<void> {
    if (server) await closeServer(server);
  }
}

/** Retries `fn` with backoff until it succeeds or `signal` aborts (the API server may come up after us). */
async function withRetries(what: string, logger: Logger, signal: AbortSignal, fn: () => Promise<void>): Promise<void> {
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      await fn();
      return;
    } catch (err) {
      if (hasErrorCode(err, 'invalid', 'unauthorized')) throw err;
      const delay = backoffDelay({ baseMs: 250, maxMs: 10_000, jitter: 0.2 }, attempt);
      logger.warn(`cannot ${what}; retrying`, { error: describeError(err), retryInMs: Math.round(delay) });
      await sleep(realClock, delay, signal);
    }
  }
}
