// `cstor snapshot-provisioner`: the external provisioner
// volumesnapshot.external-storage.k8s.io/snapshot-promoter on the shared core of lib/provisioner:
// claims annotated with a VolumeSnapshot → clone volumes through m-apiserver → iSCSI PVs.
// The only place that reads argv and env.
import express from 'express';
import http from 'node:http';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { parseCommand, parseHostPort } from '../lib/cli/args.ts';
import { CstorError } from '../lib/errors.ts';
import { EventRecorder } from '../lib/kube/event-recorder.ts';
import { createKubeClients } from '../lib/kube/kube-clients.ts';
import { loadKubeConfig } from '../lib/kube/kubeconfig.ts';
import { resources } from '../lib/kube/resources.ts';
import type { CoreEvent } from '../lib/kube/types/core.ts';
import type { Lease } from '../lib/kube/types/lease.ts';
import { announceListening, closeServer, listen } from '../lib/listen.ts';
import { createLogger } from '../lib/logger.ts';
import { MayaAddressResolver, type ServiceLike } from '../lib/maya-client/address.ts';
import { MayaClient } from '../lib/maya-client/client.ts';
import { createRegistry, metricsHandler, operationMetrics } from '../lib/metrics.ts';
import { provisionControllerFor } from '../lib/provisioner/controller.ts';
import { runProvisioner } from '../lib/provisioner/run.ts';
import { kubeCloneSourceReads } from './kube-reads.ts';
import { promoterName, SnapshotPromoter } from './provisioner.ts';

const spec = {
  name: 'snapshot-provisioner',
  summary: `External provisioner ${promoterName}: claims annotated snapshot.alpha.kubernetes.io/snapshot → clone volumes through m-apiserver → iSCSI PVs; released PVs with reclaim Delete → clone volumes deleted.`,
  options: {
    kubeconfig: { type: 'string', value: 'FILE', description: 'kubeconfig file (default: KUBECONFIG, in-cluster, ~/.kube/config).' },
    'mapi-addr': { type: 'string', value: 'URL', description: 'm-apiserver address, e.g. http://127.0.0.1:5656 (env MAPI_ADDR; default: the Service maya-apiserver-service in the OpenEBS namespace, port 5656, looked up again after a failure).' },
    namespace: { type: 'string', value: 'NS', description: 'OpenEBS namespace: the Service and the Lease (env OPENEBS_NAMESPACE; default openebs).' },
    metrics: { type: 'string', value: 'HOST:PORT', description: 'Serve /metrics and /healthz here (port 0: any free port); announced as listener "metrics".' },
    'leader-elect': { type: 'string', default: 'true', value: 'true|false', description: 'Leader election on a Lease named after the provisioner, so several replicas can run.' },
    'lease-duration': { type: 'string', default: '15', value: 'SECONDS', description: 'Leader lease duration.' },
    identity: { type: 'string', value: 'ID', description: 'PV annotation snapshotProvisionerIdentity, leader identity and Event source host (default: hostname-pid-random).' },
    workers: { type: 'string', default: '4', value: 'N', description: 'Parallel claims and volumes in progress.' },
    'log-level': { type: 'string', value: 'LEVEL', description: 'error|warn|info|debug (default: $LOG_LEVEL or info).' },
  },
  notes: 'See docs/snapshot-provisioner.md.',
} as const;

export interface SnapshotProvisionerConfig {
  kubeconfig?: string;
  mapiAddr?: string;
  namespace: string;
  metrics?: { host: string; port: number };
  leaderElect: boolean;
  leaseDurationMs: number;
  identity: string;
  workers: number;
  logLevel: string;
}

/** argv + env → one frozen config, listing every problem at once; null after --help. */
export function snapshotProvisionerConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Readonly<SnapshotProvisionerConfig> | null {
  const opts = parseCommand(spec, argv);
  if (opts === null) return null;
  const problems: string[] = [];
  let metrics: { host: string; port: number } | undefined;
  if (opts.metrics) {
    try {
      metrics = parseHostPort(opts.metrics, '--metrics');
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (opts['leader-elect'] !== 'true' && opts['leader-elect'] !== 'false') problems.push(`--leader-elect "${opts['leader-elect']}" is not true or false`);
  const leaseSeconds = Number(opts['lease-duration']);
  if (!Number.isFinite(leaseSeconds) || leaseSeconds < 2 || leaseSeconds > 600) problems.push(`--lease-duration "${opts['lease-duration']}" is not a number of seconds from 2 to 600`);
  const workers = Number(opts.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) problems.push(`--workers "${opts.workers}" is not an integer from 1 to 64`);
  const namespace = opts.namespace ?? env.OPENEBS_NAMESPACE ?? 'openebs';
  if (!namespace) problems.push('--namespace is empty');
  if (opts.identity !== undefined && !opts.identity.trim()) problems.push('--identity is empty');
  const logLevel = opts['log-level'] ?? env.LOG_LEVEL ?? 'info';
  if (!['error', 'warn', 'info', 'debug', 'verbose', 'silly'].includes(logLevel)) problems.push(`log level "${logLevel}" is not one of error, warn, info, debug`);
  const mapiAddr = opts['mapi-addr'] ?? env.MAPI_ADDR;
  if (mapiAddr !== undefined && !mapiAddr.trim()) problems.push('the m-apiserver address (--mapi-addr / MAPI_ADDR) is empty');
  if (problems.length > 0) throw new CstorError('invalid', `cstor snapshot-provisioner: ${problems.join('; ')}`);
  return Object.freeze({
    ...(opts.kubeconfig ? { kubeconfig: opts.kubeconfig } : {}),
    ...(mapiAddr ? { mapiAddr } : {}),
    namespace,
    ...(metrics ? { metrics } : {}),
    leaderElect: opts['leader-elect'] === 'true',
    leaseDurationMs: leaseSeconds * 1000,
    identity: opts.identity?.trim() ?? `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    workers,
    logLevel,
  });
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const config = snapshotProvisionerConfig(argv, env);
  if (config === null) return;
  const logger = createLogger({ component: 'snapshot-provisioner', level: config.logLevel });
  const { kubeConfig, source } = loadKubeConfig({ kubeconfigPath: config.kubeconfig, env });
  logger.info('starting', { provisioner: promoterName, kubeconfig: source, mapiAddr: config.mapiAddr ?? `(Service maya-apiserver-service in ${config.namespace})`, identity: config.identity });
  const stopped = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });

  const clients = createKubeClients(kubeConfig);
  const registry = createRegistry('snapshot-provisioner');
  let server: http.Server | undefined;
  if (config.metrics) {
    const app = express();
    app.get('/metrics', metricsHandler(registry));
    app.get('/healthz', (_req, res) => {
      res.type('text/plain').send('ok');
    });
    server = http.createServer(app);
    announceListening(logger, 'metrics', await listen(server, config.metrics.host, config.metrics.port));
  }
  const address = new MayaAddressResolver({
    ...(config.mapiAddr ? { mapiAddr: config.mapiAddr } : {}),
    namespace: config.namespace,
    getService: (ref) => clients.for<ServiceLike>(resources.services).get(ref),
  });
  const metrics = operationMetrics(registry, 'snapshot_promoter');
  const provisioner = new SnapshotPromoter({ maya: new MayaClient({ address }), reads: kubeCloneSourceReads(clients), identity: config.identity });
  const events = new EventRecorder({ client: clients.for<CoreEvent>(resources.events), component: promoterName, host: config.identity, logger });
  await runProvisioner({
    provisionerName: promoterName,
    makeController: () => provisionControllerFor(clients, { provisioner, events, logger, registry, metrics, workers: config.workers }),
    logger,
    ...(config.leaderElect ? { leaderElection: { client: clients.for<Lease>(resources.leases), namespace: config.namespace, identity: config.identity, leaseDurationMs: config.leaseDurationMs } } : {}),
    stopped: stopped.then((signal) => logger.info('shutting down', { signal })),
  });
  if (server) await closeServer(server);
}
