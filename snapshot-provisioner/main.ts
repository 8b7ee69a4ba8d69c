// `cstor snapshot-provisioner`: the external provisioner
// volumesnapshot.external-storage.k8s.io/snapshot-promoter on the shared core of lib/provisioner:
// claims annotated with a VolumeSnapshot → clone volumes through m-apiserver → iSCSI PVs.
// The only place that reads argv and env.
import express from 'express';
import http from 'node:http';
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
import { parseProvisionerConfig, provisionerOptions, type ProvisionerConfig } from '../lib/provisioner/config.ts';
import { kubeCloneSourceReads } from './kube-reads.ts';
import { promoterName, SnapshotPromoter } from './provisioner.ts';

const spec = {
  name: 'snapshot-provisioner',
  summary: `External provisioner ${promoterName}: claims annotated snapshot.alpha.kubernetes.io/snapshot → clone volumes through m-apiserver → iSCSI PVs; released PVs with reclaim Delete → clone volumes deleted.`,
  options: provisionerOptions('PV annotation snapshotProvisionerIdentity, leader identity and Event source host (default: hostname-pid-random).'),
  notes: 'See docs/snapshot-provisioner.md.',
};

export type SnapshotProvisionerConfig = ProvisionerConfig;

/** argv + env → one frozen config, listing every problem at once; null after --help. */
export function snapshotProvisionerConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Readonly<SnapshotProvisionerConfig> | null {
  return parseProvisionerConfig(spec, argv, env);
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
