// `cstor mapi`: m-apiserver. Installs its CRDs and CAS templates (idempotent), then serves the
// REST contract of DESIGN.md §4 over the CAS engine. The only place that reads argv and env.
import http from 'node:http';
import { parseCommand, parseHostPort } from '../lib/cli/args.ts';
import { daemonOptions, logConfigFrom } from '../lib/cli/daemon-options.ts';
import { CstorError, describeError } from '../lib/errors.ts';
import { createKubeClients } from '../lib/kube/kube-clients.ts';
import { loadKubeConfig } from '../lib/kube/kubeconfig.ts';
import { resources } from '../lib/kube/resources.ts';
import type { CustomResourceDefinition } from '../lib/kube/types/crd.ts';
import { announceListening, closeServer, listen } from '../lib/listen.ts';
import { shutdown, waitForSignal } from '../lib/shutdown.ts';
import { createLogger } from '../lib/logger.ts';
import { createRegistry, operationMetrics } from '../lib/metrics.ts';
import { CasEngine } from './cas/engine.ts';
import { NodeHttpCaller } from './cas/node-http-caller.ts';
import { TransportKubeObjects } from './cas/transport-kube-objects.ts';
import { templateCacheKinds, WatchedObjects } from './cas/watched-objects.ts';
import { CasFlows } from './flows/cas-flows.ts';
import { createMapiApp } from './server/app.ts';
import { bootstrap } from './server/bootstrap.ts';

const spec = {
  name: 'mapi',
  summary: 'm-apiserver: the /latest/volumes and /latest/snapshots REST API over the CAS engine (runtasks); installs its CRDs and CAS templates at start.',
  options: daemonOptions(
    {
      listen: { type: 'string', default: '0.0.0.0:5656', value: 'HOST:PORT', description: 'REST listener (port 0: any free port); announced as listener "api".' },
      namespace: { type: 'string', value: 'NS', description: 'OpenEBS namespace: RunTasks and cStor volumes live here (env OPENEBS_NAMESPACE; default openebs).' },
      'target-portal': { type: 'string', value: 'HOST:PORT', description: "The cstor target's iSCSI portal written into new volumes (env TARGET_PORTAL)." },
      'target-mgmt': { type: 'string', value: 'HOST:PORT', description: "The cstor target's mgmt API, called for snapshots (env TARGET_MGMT_ADDR)." },
      'target-ip': { type: 'string', value: 'IP', description: 'The target IP written into new volumes (env TARGET_IP; default: the host of --target-portal).' },
      'skip-install': { type: 'boolean', description: 'Do not install CRDs and CAS templates at start (they must exist).' },
      'http-timeout': { type: 'string', default: '30000', value: 'MS', description: 'Deadline of each call to a target mgmt API.' },
      'template-cache': {
        type: 'string',
        default: 'off',
        value: 'MODE',
        description:
          'off: read CASTemplates, RunTasks, PVs and StorageClasses from the API server on every run (an edit changes the very next run); watch: from a watch-fed cache while its watch is live (half the CPU; an edit changes the runs that start once its watch event has arrived).',
      },
    },
    'kubeconfig file (default: KUBECONFIG, in-cluster, ~/.kube/config).',
  ),
  notes: [
    'REST: POST/GET /latest/volumes/, GET/DELETE /latest/volumes/NAME (headers namespace, storageclass);',
    'POST /latest/snapshots/ (any path under it), GET /latest/snapshots/[NAME]?volume=&namespace=&casType=,',
    'DELETE /latest/snapshots/NAME?volume=...; GET /metrics, GET /healthz. Errors: HTTP status + {"error": "..."}.',
    'See docs/maya-apiserver.md.',
  ].join('\n'),
} as const;

export interface MapiConfig {
  listen: { host: string; port: number };
  kubeconfig?: string;
  namespace: string;
  targetIP?: string;
  targetPortal?: string;
  targetMgmtAddress?: string;
  install: boolean;
  httpTimeoutMs: number;
  templateCache: 'watch' | 'off';
  logLevel: string;
  logFormat: 'json' | 'text';
}

/** Builds the frozen config, listing every problem at once; null after --help. */
export function mapiConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Readonly<MapiConfig> | null {
  const opts = parseCommand(spec, argv);
  if (opts === null) return null;
  const problems: string[] = [];
  const hostPort = (v: string | undefined, flag: string): { host: string; port: number } | undefined => {
    if (v === undefined || v === '') return undefined;
    try {
      return parseHostPort(v, flag);
    } catch (err) {
      problems.push((err as Error).message);
      return undefined;
    }
  };
  const listenAddr = hostPort(opts.listen, '--listen') ?? { host: '', port: 0 };
  const portalValue = opts['target-portal'] ?? env.TARGET_PORTAL;
  const mgmtValue = opts['target-mgmt'] ?? env.TARGET_MGMT_ADDR;
  const portal = hostPort(portalValue, '--target-portal');
  hostPort(mgmtValue, '--target-mgmt');
  const httpTimeoutMs = Number(opts['http-timeout']);
  if (!Number.isInteger(httpTimeoutMs) || httpTimeoutMs < 100 || httpTimeoutMs > 600_000) problems.push(`--http-timeout "${opts['http-timeout']}" must be an integer number of ms in 100..600000`);
  const namespace = opts.namespace ?? env.OPENEBS_NAMESPACE ?? 'openebs';
  if (!namespace) problems.push('--namespace is empty');
  const { logLevel, logFormat } = logConfigFrom(opts, env, problems);
  const templateCache = opts['template-cache'];
  if (templateCache !== 'watch' && templateCache !== 'off') problems.push(`--template-cache "${templateCache}" must be watch or off`);
  if (problems.length > 0) throw new CstorError('invalid', `cstor mapi: ${problems.join('; ')}`);
  const targetIP = opts['target-ip'] ?? env.TARGET_IP ?? portal?.host;
  return Object.freeze({
    listen: listenAddr,
    ...(opts.kubeconfig ? { kubeconfig: opts.kubeconfig } : {}),
    namespace,
    ...(targetIP ? { targetIP } : {}),
    ...(portalValue ? { targetPortal: portalValue } : {}),
    ...(mgmtValue ? { targetMgmtAddress: mgmtValue } : {}),
    install: !opts['skip-install'],
    httpTimeoutMs,
    templateCache: templateCache as 'watch' | 'off',
    logLevel,
    logFormat,
  });
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const config = mapiConfig(argv, env);
  if (config === null) return;
  const logger = createLogger({ component: 'maya-apiserver', level: config.logLevel, format: config.logFormat });
  const { kubeConfig, source } = loadKubeConfig({ kubeconfigPath: config.kubeconfig, env });
  logger.info('starting', { kubeconfig: source, namespace: config.namespace, targetPortal: config.targetPortal, targetMgmtAddress: config.targetMgmtAddress });
  if (!config.targetPortal || !config.targetMgmtAddress) {
    logger.warn('no target addresses (--target-portal, --target-mgmt): volume create will fail naming the missing value');
  }

  const stop = new AbortController();
  const stopped = waitForSignal(logger);
  void stopped.then(() => stop.abort());

  const clients = createKubeClients(kubeConfig);
  const kube = new TransportKubeObjects(clients.transport);
  if (config.install) {
    await bootstrap({ kube, crdClient: clients.for<CustomResourceDefinition>(resources.customResourceDefinitions), logger, namespace: config.namespace, signal: stop.signal });
  }

  const registry = createRegistry('maya-apiserver');
  const watched =
    config.templateCache === 'watch' ? new WatchedObjects({ kinds: templateCacheKinds(clients, config.namespace), fallback: kube, logger, registry }) : undefined;
  if (watched) {
    watched.start();
    // Serving before the first lists complete is fine (reads go to the API server meanwhile).
    const synced = await watched.waitForSync(5000);
    logger.info('template cache', { mode: 'watch', synced });
  } else {
    logger.info('template cache', { mode: 'off' });
  }
  const env2: Record<string, string> = {};
  if (config.targetIP) env2['targetIP'] = config.targetIP;
  if (config.targetPortal) env2['targetPortal'] = config.targetPortal;
  if (config.targetMgmtAddress) env2['targetMgmtAddress'] = config.targetMgmtAddress;
  const mgmtHttp = new NodeHttpCaller({ timeoutMs: config.httpTimeoutMs });
  const engine = new CasEngine({
    kube,
    http: mgmtHttp,
    logger,
    namespace: config.namespace,
    env: env2,
    metrics: operationMetrics(registry, 'mapi_cas'),
    ...(watched ? { templates: watched } : {}),
  });
  const flows = new CasFlows({ engine, kube, logger, ...(watched ? { reader: watched } : {}) });
  let healthy = true;
  const app = createMapiApp({ flows, logger, registry, metrics: operationMetrics(registry, 'mapi'), isHealthy: () => healthy });
  const server = http.createServer(app);
  server.keepAliveTimeout = 65_000;
  announceListening(logger, 'api', await listen(server, config.listen.host, config.listen.port));

  await stopped;
  healthy = false;
  await shutdown(logger, 'maya-apiserver', async () => {
    try {
      await closeServer(server);
    } catch (err) {
      logger.warn('closing the REST listener failed', { error: describeError(err) });
    }
    await watched?.stop();
    mgmtHttp.close();
  });
}
