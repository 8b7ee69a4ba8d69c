// Wiring of the target reconciler: three informers whose handlers only enqueue CStorVolume keys
// ("ns/name"), one work queue, its workers (volume-sync.ts does the work), and the triggers for
// status, which changes on the data path without any Kubernetes event:
// - CStorVolumes in the namespace → their own key (metadata/spec changes; our own status writes
//   do not enqueue);
// - CStorVolumeReplicas in the namespace → the key of the volume named by their
//   openebs.io/persistent-volume label (created, deleted, relabelled);
// - CStorPools → the keys of the volumes with a replica on that pool (its address changed:
//   a pool back on a new port);
// - the engine's change events for each served volume (replica connected/lost, phase), and a
//   refresh timer (default 2 s) enqueuing every assigned volume not in backoff.
import type { Registry } from 'prom-client';
import type { Logger } from '../../lib/logger.ts';
import { describeError } from '../../lib/errors.ts';
import { operationMetrics, type OperationMetrics } from '../../lib/metrics.ts';
import type { BackoffOptions } from '../../lib/kube/backoff.ts';
import { realClock, sleep, type Clock } from '../../lib/kube/clock.ts';
import { Controller, enqueueFrom } from '../../lib/kube/controller.ts';
import { EventRecorder, type EventClient } from '../../lib/kube/event-recorder.ts';
import { Informer } from '../../lib/kube/informer.ts';
import type { ListWatchSource } from '../../lib/kube/list-watch.ts';
import { isAssigned } from './desired.ts';
import { VolumeSyncer, type CvClient, type EventSink, type VolumeEngine } from './volume-sync.ts';
import { cvrLabels, type CStorPool, type CStorVolume, type CStorVolumeReplica } from './types.ts';

export interface TargetReconcilerOptions {
  namespace: string;
  advertise: string;
  cvs: CvClient & ListWatchSource<CStorVolume>;
  cvrs: ListWatchSource<CStorVolumeReplica>;
  pools: ListWatchSource<CStorPool>;
  events: EventClient;
  engine: VolumeEngine;
  logger: Logger;
  registry?: Registry;
  clock?: Clock;
  workers?: number;
  /** How often every assigned volume's status is looked at again (default 2 s). */
  statusIntervalMs?: number;
  /** Longest time the volatile status counters may be stale (default 30 s). */
  statusRefreshMs?: number;
  /** Block size of served volumes (default 4096, as the pools make replicas). */
  blockSize?: number;
  backoff?: BackoffOptions;
  /** Host name in Events' source. */
  host?: string;
}

export const defaultReconcileBackoff: BackoffOptions = { baseMs: 250, maxMs: 30_000 };

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** True when a CStorVolume update changes what the sync reads (not only the status we write). */
export function cvUpdateMatters(o: CStorVolume, n: CStorVolume): boolean {
  if (o.metadata.resourceVersion === n.metadata.resourceVersion) return true; // periodic resync
  if (o.metadata.uid !== n.metadata.uid || o.metadata.deletionTimestamp !== n.metadata.deletionTimestamp) return true;
  return !sameJson([o.metadata.finalizers, o.metadata.annotations, o.spec], [n.metadata.finalizers, n.metadata.annotations, n.spec]);
}

export function cvrUpdateMatters(o: CStorVolumeReplica, n: CStorVolumeReplica): boolean {
  if (o.metadata.resourceVersion === n.metadata.resourceVersion) return true;
  return o.metadata.deletionTimestamp !== n.metadata.deletionTimestamp || !sameJson(o.metadata.labels, n.metadata.labels);
}

export function poolUpdateMatters(o: CStorPool, n: CStorPool): boolean {
  return o.metadata.resourceVersion === n.metadata.resourceVersion || o.status?.address !== n.status?.address;
}

function labelValues(c: CStorVolumeReplica, label: string): string[] {
  const v = c.metadata.labels?.[label];
  return v ? [v] : [];
}

export class TargetReconciler {
  readonly volumes: Informer<CStorVolume>;
  readonly replicas: Informer<CStorVolumeReplica>;
  readonly poolInformer: Informer<CStorPool>;
  readonly syncer: VolumeSyncer;
  readonly controller: Controller;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly metrics: OperationMetrics | undefined;
  private readonly stopping = new AbortController();
  private tasks: Promise<void>[] = [];

  constructor(private readonly o: TargetReconcilerOptions) {
    this.clock = o.clock ?? realClock;
    this.logger = o.logger.child({ controller: 'target-reconciler' });
    this.metrics = o.registry ? operationMetrics(o.registry, 'cstor_target_reconcile') : undefined;
    const ns = o.namespace;
    this.volumes = new Informer<CStorVolume>({ source: o.cvs, name: 'cstorvolumes', namespace: ns, logger: this.logger, clock: this.clock, resyncPeriodMs: 5 * 60_000 });
    this.replicas = new Informer<CStorVolumeReplica>({
      source: o.cvrs,
      name: 'cstorvolumereplicas',
      namespace: ns,
      logger: this.logger,
      clock: this.clock,
      resyncPeriodMs: 5 * 60_000,
      indexers: {
        pv: (c) => labelValues(c, cvrLabels.persistentVolume),
        pool: (c) => labelValues(c, cvrLabels.pool),
      },
    });
    this.poolInformer = new Informer<CStorPool>({ source: o.pools, name: 'cstorpools', logger: this.logger, clock: this.clock, resyncPeriodMs: 5 * 60_000 });
    const recorder = new EventRecorder({ client: o.events, component: 'cstor-target', ...(o.host ? { host: o.host } : {}), logger: this.logger, clock: this.clock });
    const events: EventSink = { event: (subject, type, reason, message) => recorder.event(subject, type, reason, message) };
    const volumeKey = (pv: string): string => `${ns}/${pv}`;
    this.syncer = new VolumeSyncer({
      advertise: o.advertise,
      caches: {
        volume: (key) => this.volumes.cache.get(key),
        replicasOf: (pv) => this.replicas.cache.byIndex('pv', pv),
        pool: (name) => this.poolInformer.cache.get(name),
      },
      cvs: o.cvs,
      engine: o.engine,
      events,
      clock: this.clock,
      logger: this.logger,
      ...(this.metrics ? { metrics: this.metrics } : {}),
      ...(o.blockSize ? { blockSize: o.blockSize } : {}),
      ...(o.statusRefreshMs ? { statusRefreshMs: o.statusRefreshMs } : {}),
      enqueue: (key) => this.controller.queue.add(key),
    });
    const cvrKeys = (c: CStorVolumeReplica): string[] => {
      const pv = c.metadata.labels?.[cvrLabels.persistentVolume];
      return pv ? [volumeKey(pv)] : [];
    };
    const poolKeys = (p: CStorPool): string[] => {
      const keys = new Set<string>();
      for (const c of this.replicas.cache.byIndex('pool', p.metadata.name ?? '')) for (const k of cvrKeys(c)) keys.add(k);
      return [...keys];
    };
    this.controller = new Controller({
      name: 'cstorvolume',
      sources: [
        enqueueFrom(this.volumes, { updateMatters: cvUpdateMatters }),
        enqueueFrom(this.replicas, { keysFor: cvrKeys, updateMatters: cvrUpdateMatters }),
        enqueueFrom(this.poolInformer, { keysFor: poolKeys, updateMatters: poolUpdateMatters }),
      ],
      reconcile: (key) => (this.metrics ? this.metrics.observe('sync', () => this.syncer.sync(key)) : this.syncer.sync(key)),
      logger: this.logger,
      workers: o.workers ?? 2,
      clock: this.clock,
      registry: o.registry,
      backoff: o.backoff ?? defaultReconcileBackoff,
    });
  }

  /** Starts everything in the background; nothing here waits for the API server. */
  start(): void {
    this.logger.info('target reconciler starting', { namespace: this.o.namespace, advertise: this.o.advertise });
    this.tasks = [
      this.controller.run().catch((err: unknown) => {
        this.logger.error('CStorVolume controller stopped', { error: describeError(err) });
      }),
      this.refreshLoop(),
    ];
  }

  /** Stops the workers (volumes stay served: the daemon's shutdown stops them). */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.controller.stop();
    await Promise.all(this.tasks);
  }

  /** Reports every volume served for Kubernetes Offline (call once the workers stopped; bounded: 3 s). */
  async markOffline(): Promise<void> {
    const offline = this.syncer.markOffline().then(
      (n) => this.logger.info('reported volumes Offline', { volumes: n }),
      (err: unknown) => this.logger.warn('could not report volumes Offline', { error: describeError(err) }),
    );
    let cancel = (): void => {};
    const budget = new Promise<void>((resolve) => (cancel = this.clock.setTimer(resolve, 3000)));
    await Promise.race([offline, budget]);
    cancel();
  }

  /** Enqueues every assigned volume not in backoff, every status interval. */
  private async refreshLoop(): Promise<void> {
    const every = this.o.statusIntervalMs ?? 2000;
    while (await sleep(this.clock, every, this.stopping.signal)) {
      if (!this.volumes.hasSynced) continue;
      for (const cv of this.volumes.cache.list()) {
        if (!isAssigned(cv, this.o.advertise) && !cv.metadata.deletionTimestamp) continue;
        const key = `${cv.metadata.namespace ?? ''}/${cv.metadata.name ?? ''}`;
        if (this.controller.queue.numRequeues(key) === 0) this.controller.queue.add(key);
      }
    }
  }
}
