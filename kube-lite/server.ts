// Assembles kube-lite: store, resource registry, API operations, the built-in controllers, and
// the HTTP listener. A development server, not a production one.
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { closeServer, formatAddress, listen } from '../lib/listen.ts';
import type { Logger } from '../lib/logger.ts';
import { createHandler } from './api/handlers.ts';
import { createApiMetrics } from './api/metrics.ts';
import { Operations } from './api/operations.ts';
import { CrdController } from './controllers/crd.ts';
import { GarbageCollector } from './controllers/garbage-collector.ts';
import { NamespaceController } from './controllers/namespace.ts';
import { PvBinder } from './controllers/pv-binder.ts';
import { loadOrCreateToken, writeKubeconfig } from './kubeconfig.ts';
import { ResourceRegistry } from './resources/registry.ts';
import { Store } from './store/store.ts';
import { loadOrCreateTls } from './tls.ts';

export interface KubeLiteOptions {
  host: string;
  port: number;
  dataDir: string;
  logger: Logger;
  /** Watch events kept for watches from an old resourceVersion (default 10,000). */
  historySize?: number;
  bookmarkIntervalMs?: number;
}

export interface KubeLite {
  readonly address: AddressInfo;
  readonly url: string;
  readonly kubeconfigPath: string;
  readonly token: string;
  readonly store: Store;
  close(): Promise<void>;
}

export async function startKubeLite(opts: KubeLiteOptions): Promise<KubeLite> {
  const { logger } = opts;
  const store = await Store.open({ dataDir: opts.dataDir, logger, ...(opts.historySize ? { historySize: opts.historySize } : {}) });
  const registry = new ResourceRegistry();
  const ops = new Operations(store, registry, logger);
  const crds = new CrdController(ops, logger.child({ controller: 'crd' }));
  crds.syncRegistry();
  const namespaces = new NamespaceController(ops, logger.child({ controller: 'namespace' }));
  await namespaces.ensureInitial();
  const gc = new GarbageCollector(ops, logger.child({ controller: 'garbage-collector' }));
  const binder = new PvBinder(ops, logger.child({ controller: 'pv-binder' }));
  const token = await loadOrCreateToken(opts.dataDir);
  const tls = await loadOrCreateTls(opts.dataDir, [opts.host]);

  let url = '';
  const server = https.createServer(
    { cert: tls.cert, key: tls.key },
    createHandler({
      ops,
      registry,
      token,
      logger,
      serverAddress: () => url.replace(/^https?:\/\//, ''),
      bookmarkIntervalMs: opts.bookmarkIntervalMs ?? 30_000,
      metrics: createApiMetrics(store),
    }),
  );
  server.keepAliveTimeout = 65_000;
  server.requestTimeout = 0;
  const address = await listen(server, opts.host, opts.port);
  const host = address.address === '0.0.0.0' || address.address === '::' ? '127.0.0.1' : address.address;
  url = `https://${formatAddress({ ...address, address: host })}`;
  const kubeconfigPath = await writeKubeconfig(opts.dataDir, url, token, tls.cert);
  for (const c of [crds, namespaces, gc, binder]) c.start();

  return {
    address,
    url,
    kubeconfigPath,
    token,
    store,
    async close() {
      await closeServer(server);
      await Promise.all([crds, namespaces, gc, binder].map((c) => c.stop()));
      await store.close();
    },
  };
}
