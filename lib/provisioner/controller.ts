// Wiring of the external-provisioner core (the logic is sync.ts): three informers (claims,
// classes, PVs) whose handlers only enqueue keys; a claim queue (claim keys; a class event
// enqueues the claims of that class) and a volume queue (PV names), each with per-key backoff,
// drained by workers calling ProvisionerSync. Leader election is optional (run.ts).
import type { Registry } from 'prom-client';
import type { BackoffOptions } from '../kube/backoff.ts';
import type { Clock } from '../kube/clock.ts';
import { Controller, enqueueFrom } from '../kube/controller.ts';
import { Informer } from '../kube/informer.ts';
import { objectKey } from '../kube/keys.ts';
import type { ListWatchSource } from '../kube/list-watch.ts';
import type { KubeClients } from '../kube/kube-clients.ts';
import { resources } from '../kube/resources.ts';
import type { PersistentVolume, PersistentVolumeClaim } from '../kube/types/core.ts';
import type { StorageClass } from '../kube/types/storage.ts';
import type { Logger } from '../logger.ts';
import type { OperationMetrics } from '../metrics.ts';
import { ProvisionerSync, type EventSink, type ProvisionerSyncOptions } from './sync.ts';
import type { Provisioner } from './types.ts';

export interface ProvisionControllerOptions {
  provisioner: Provisioner;
  sources: {
    claims: ListWatchSource<PersistentVolumeClaim>;
    classes: ListWatchSource<StorageClass>;
    volumes: ListWatchSource<PersistentVolume>;
  };
  pvApi: ProvisionerSyncOptions['pvApi'];
  /** For the provisioning finalizer on claims (claim-finalizer.ts); provisionControllerFor always gives it. */
  claimApi?: ProvisionerSyncOptions['claimApi'];
  events: EventSink;
  logger: Logger;
  /** Work queue metrics go here. */
  registry?: Registry;
  /** Times provision and delete (e.g. operationMetrics(registry, 'volume_provisioner')); made once per process. */
  metrics?: OperationMetrics;
  workers?: number;
  /** Per-key retry backoff (default 1 s doubling to 5 min, like the external-storage library's). */
  backoff?: BackoffOptions;
  clock?: Clock;
  /** Informer relist period (default 10 min; 0 = off). */
  resyncPeriodMs?: number;
}

export const defaultProvisionBackoff: BackoffOptions = { baseMs: 1000, maxMs: 5 * 60_000 };

const byClass = 'storageClassName';

export class ProvisionController {
  readonly sync: ProvisionerSync;
  readonly claimInformer: Informer<PersistentVolumeClaim>;
  readonly classInformer: Informer<StorageClass>;
  readonly volumeInformer: Informer<PersistentVolume>;
  private readonly claimController: Controller;
  private readonly volumeController: Controller;

  constructor(options: ProvisionControllerOptions) {
    const name = options.provisioner.name;
    const logger = options.logger.child({ provisioner: name });
    const common = { logger, ...(options.clock ? { clock: options.clock } : {}), ...(options.resyncPeriodMs !== undefined ? { resyncPeriodMs: options.resyncPeriodMs } : {}) };
    this.claimInformer = new Informer<PersistentVolumeClaim>({
      ...common,
      source: options.sources.claims,
      name: 'persistentvolumeclaims',
      indexers: { [byClass]: (c) => [c.spec.storageClassName ?? ''] },
    });
    this.classInformer = new Informer<StorageClass>({ ...common, source: options.sources.classes, name: 'storageclasses' });
    this.volumeInformer = new Informer<PersistentVolume>({ ...common, source: options.sources.volumes, name: 'persistentvolumes' });
    const metrics = options.metrics;
    this.sync = new ProvisionerSync({
      provisioner: options.provisioner,
      claims: { get: (key) => this.claimInformer.cache.get(key) },
      classes: { get: (n) => this.classInformer.cache.get(n) },
      volumes: { get: (n) => this.volumeInformer.cache.get(n) },
      pvApi: options.pvApi,
      ...(options.claimApi ? { claimApi: options.claimApi } : {}),
      events: options.events,
      logger,
      ...(metrics ? { metrics } : {}),
    });
    const queueOptions = {
      logger,
      workers: options.workers ?? 4,
      backoff: options.backoff ?? defaultProvisionBackoff,
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.registry ? { registry: options.registry } : {}),
    };
    this.claimController = new Controller({
      ...queueOptions,
      name: `${name}-claims`,
      sources: [
        enqueueFrom(this.claimInformer),
        // A class that appears or changes: its claims may now be ours.
        enqueueFrom(this.classInformer, { keysFor: (sc) => this.claimInformer.cache.byIndex(byClass, sc.metadata.name ?? '').map((c) => objectKey(c)) }),
      ],
      reconcile: (key) => this.sync.syncClaim(key),
    });
    this.volumeController = new Controller({
      ...queueOptions,
      name: `${name}-volumes`,
      sources: [enqueueFrom(this.volumeInformer, { updateMatters: (_old, pv) => this.sync.shouldDelete(pv) })],
      reconcile: (key) => this.sync.syncVolume(key),
    });
  }

  /** Runs until stop(): starts the informers, waits for their caches, runs the workers. */
  async run(): Promise<void> {
    await Promise.all([this.claimController.run(), this.volumeController.run()]);
  }

  async stop(): Promise<void> {
    await Promise.all([this.claimController.stop(), this.volumeController.stop()]);
  }
}

/** The controller over a real API server's clients. */
export function provisionControllerFor(
  clients: KubeClients,
  options: Omit<ProvisionControllerOptions, 'sources' | 'pvApi' | 'claimApi'>,
): ProvisionController {
  const pvs = clients.for<PersistentVolume>(resources.persistentVolumes);
  const claims = clients.for<PersistentVolumeClaim>(resources.persistentVolumeClaims);
  return new ProvisionController({
    ...options,
    sources: {
      claims,
      classes: clients.for<StorageClass>(resources.storageClasses),
      volumes: pvs,
    },
    pvApi: pvs,
    claimApi: claims,
  });
}
