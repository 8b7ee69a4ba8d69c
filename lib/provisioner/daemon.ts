// The process around an external provisioner: kube clients, the /metrics listener, the
// m-apiserver client (address looked up again after a failure), Events, leader election and the
// controller, until SIGTERM/SIGINT. Each provisioner's main parses argv/env into the config and
// says only how to build its Provisioner.
import express from 'express';
import http from 'node:http';
import { EventRecorder } from '../kube/event-recorder.ts';
import { createKubeClients, type KubeClients } from '../kube/kube-clients.ts';
import { loadKubeConfig } from '../kube/kubeconfig.ts';
import { resources } from '../kube/resources.ts';
import type { CoreEvent } from '../kube/types/core.ts';
import type { Lease } from '../kube/types/lease.ts';
import { announceListening, closeServer, listen } from '../listen.ts';
import { createLogger } from '../logger.ts';
import { MayaAddressResolver, type ServiceLike } from '../maya-client/address.ts';
import { MayaClient } from '../maya-client/client.ts';
import { createRegistry, metricsHandler, operationMetrics } from '../metrics.ts';
import type { ProvisionerConfig } from './config.ts';
import { provisionControllerFor } from './controller.ts';
import { runProvisioner } from './run.ts';
import type { Provisioner } from './types.ts';

export interface ProvisionerDaemonOptions {
  /** Logger component and metrics registry name, e.g. "volume-provisioner". */
  component: string;
  /** The provisioner name claims and classes carry, e.g. "openebs.io/provisioner-iscsi". */
  provisionerName: string;
  /** Prefix of `<prefix>_operation_total_seconds`. */
  metricsPrefix: string;
  makeProvisioner(deps: { maya: MayaClient; clients: KubeClients; identity: string }): Provisioner;
}

export async function runProvisionerDaemon(config: Readonly<ProvisionerConfig>, env: NodeJS.ProcessEnv, options: ProvisionerDaemonOptions): Promise<void> {
  const logger = createLogger({ component: options.component, level: config.logLevel });
  const { kubeConfig, source } = loadKubeConfig({ kubeconfigPath: config.kubeconfig, env });
  logger.info('starting', { provisioner: options.provisionerName, kubeconfig: source, mapiAddr: config.mapiAddr ?? `(Service maya-apiserver-service in ${config.namespace})`, identity: config.identity });
  const stopped = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });

  const clients = createKubeClients(kubeConfig);
  const registry = createRegistry(options.component);
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
  const metrics = operationMetrics(registry, options.metricsPrefix);
  const provisioner = options.makeProvisioner({ maya: new MayaClient({ address }), clients, identity: config.identity });
  const events = new EventRecorder({ client: clients.for<CoreEvent>(resources.events), component: options.provisionerName, host: config.identity, logger });
  await runProvisioner({
    provisionerName: options.provisionerName,
    makeController: () => provisionControllerFor(clients, { provisioner, events, logger, registry, metrics, workers: config.workers }),
    logger,
    ...(config.leaderElect ? { leaderElection: { client: clients.for<Lease>(resources.leases), namespace: config.namespace, identity: config.identity, leaseDurationMs: config.leaseDurationMs } } : {}),
    stopped: stopped.then((signal) => logger.info('shutting down', { signal })),
  });
  if (server) await closeServer(server);
}
