// Wiring of the pool reconciler: an informer of the CStorVolumeReplicas of this pool (label
// cstorpool.openebs.io/name=<pool>, in the OpenEBS namespace) whose handlers only enqueue
// "ns/name" keys, a work queue and its workers (cvr-sync.ts does the work), and three timers:
// - CStorPool status: at start (retried with backoff until it lands), soon after each replica
//   create/delete, and every resync period (a heartbeat);
// - orphan sweep: once the informer has synced, then every resync period;
// - status refresh: every few seconds every CVR key not in backoff is enqueued, so phases that
//   change on the data path (the target marks a replica Healthy, a rebuild starts or ends) and
//   space used reach status without a Kubernetes event.
import type { Registry } from 'prom-client';
import type { Logger } from '../../lib/logger.ts';
import { describeError } from '../../lib/errors.ts';
import { operationMetrics, type OperationMetrics } from '../../lib/metrics.ts';
import { backoffDelay, type BackoffOptions } from '../../lib/kube/backoff.ts';
import { realClock, sleep, type Clock } from '../../lib/kube/clock.ts';
import { Controller, enqueueFrom } from '../../lib/kube/controller.ts';
import { EventRecorder, type EventClient } from '../../lib/kube/event-recorder.ts';
import { Informer } from '../../lib/kube/informer.ts';
import type { ResourceClient } from '../../lib/kube/resource-client.ts';
import type { Pool } from '../store/types.ts';
import { CvrSyncer, type EventSink, type Failpoint } from './cvr-sync.ts';
import type { OwnedReplicas } from './owned-replicas.ts';
import { PoolStatusWriter } from './pool-status.ts';
import { cvrLabels, type CStorPool, type CStorVolumeReplica } from './types.ts';

export interface PoolReconcilerOptions {
  poolName: string;
  namespace: string;
  cvrs: ResourceClient<CStorVolumeReplica>;
  pools: ResourceClient<CStorPool>;
  events: EventClient;
  store: Pool;
  owned: OwnedReplicas;
  /** host:port of the replica protocol and of the mgmt API, as published in CStorPool.status. */
  address: string;
  mgmtAddress: string;
  node: string;
  dropVolume(volume: string): void;
  logger: Logger;
  registry?: Registry;
  clock?: Clock;
  workers?: number;
  /** CStorPool heartbeat and orphan sweep period (default 30 s). */
  resyncIntervalMs?: number;
  /** CVR status refresh period (default 5 s). */
  statusIntervalMs?: number;
  /** Per-key retry backoff (default 250 ms doubling to 60 s). */
  backoff?: BackoffOptions;
  failpoint?: (point: Failpoint) => void;
}

export const defaultReconcileBackoff: BackoffOptions = { baseMs: 250, maxMs: 60_000 };

/** True when an update changes something the sync reads (not only status, which we write). */
export function cvrUpdateMatters(oldObj: CStorVolumeReplica, newObj: CStorVolumeReplica): boolean {
  const o = oldObj.metadata;
  const n = newObj.metadata;
  if (o.resourceVersion === n.resourceVersion) return true; // periodic resync
  if (o.uid !== n.uid || o.deletionTimestamp !== n.deletionTimestamp) return true;
  return JSON.stringify([o.finalizers, o.labels, o.annotations, oldObj.spec]) !== JSON.stringify([n.finalizers, n.labels, n.annotations, newObj.spec]);
}

export class PoolReconciler {
  readonly informer: Informer<CStorVolumeReplica>;
  readonly syncer: CvrSyncer;
  readonly controller: Controller;
  readonly poolStatus: PoolStatusWriter;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly metrics: OperationMetrics | undefined;
  private readonly stopping = new AbortController();
  private wake: (() => void) | undefined;
  private nudged = false;
  private tasks: Promise<void>[] = [];

  constructor(private readonly o: PoolReconcilerOptions) {
    this.clock = o.clock ?? realClock;
    this.logger = o.logger.child({ controller: 'pool-reconciler' });
    this.metrics = o.registry ? operationMetrics(o.registry, 'cstor_pool_reconcile') : undefined;
    this.informer = new Informer<CStorVolumeReplica>({
      source: o.cvrs,
      name: 'cstorvolumereplicas',
      namespace: o.namespace,
      labelSelector: `${cvrLabels.pool}=${o.poolName}`,
      logger: this.logger,
      clock: this.clock,
      resyncPeriodMs: 5 * 60_000,
    });
    const recorder = new EventRecorder({ client: o.events, component: 'cstor-pool', host: o.poolName, logger: this.logger, clock: this.clock });
    const events: EventSink = { event: (subject, type, reason, message) => recorder.event(subject, type, reason, message) };
    this.syncer = new CvrSyncer({
      poolName: o.poolName,
      namespace: o.namespace,
      cache: { get: (key) => this.informer.cache.get(key), list: () => this.informer.cache.list() },
      cvrs: o.cvrs,
      store: o.store,
      owned: o.owned,
      events,
      dropVolume: o.dropVolume,
      onStoreChanged: () => this.nudge(),
      clock: this.clock,
      logger: this.logger,
      metrics: this.metrics,
      ...(o.failpoint ? { failpoint: o.failpoint } : {}),
    });
    this.controller = new Controller({
      name: 'cstorvolumereplica',
      sources: [enqueueFrom(this.informer, { updateMatters: cvrUpdateMatters })],
      reconcile: (key) => this.syncer.sync(key),
      logger: this.logger,
      workers: o.workers ?? 2,
      clock: this.clock,
      registry: o.registry,
      backoff: o.backoff ?? defaultReconcileBackoff,
    });
    this.poolStatus = new PoolStatusWriter({
      poolName: o.poolName,
      client: o.pools,
      store: o.store,
      address: o.address,
      mgmtAddress: o.mgmtAddress,
      spec: { path: o.store.dir, node: o.node },
      clock: this.clock,
      logger: this.logger,
      metrics: this.metrics,
    });
  }

  /** Starts everything in the background; nothing here waits for the API server. */
  start(): void {
    this.logger.info('pool reconciler starting', { pool: this.o.poolName, namespace: this.o.namespace, address: this.o.address });
    this.tasks = [
      this.controller.run().catch((err: unknown) => {
        this.logger.error('CVR controller stopped', { error: describeError(err) });
      }),
      this.poolLoop(),
      this.refreshLoop(),
    ];
  }

  /** Stops the workers (waiting at most 4 s), then reports the pool and its replicas Offline (at most 3 s). */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.wake?.();
    const stopped = await this.within(4000, Promise.all([this.controller.stop(), ...this.tasks]));
    if (!stopped) this.logger.warn('reconciler steps still running at shutdown; not waiting for them');
    const offline = (async (): Promise<void> => {
      const n = await this.syncer.markOffline();
      await this.poolStatus.write('Offline');
      this.logger.info('reported Offline', { replicas: n });
    })();
    try {
      if (!(await this.within(3000, offline))) this.logger.warn('could not report Offline within 3 s');
    } catch (err) {
      this.logger.warn('could not report Offline', { error: describeError(err) });
    }
  }

  /** True when `p` settled within `ms` (its rejection is thrown), false when it did not. */
  private async within(ms: number, p: Promise<unknown>): Promise<boolean> {
    let cancel = (): void => {};
    const timeout = new Promise<false>((resolve) => (cancel = this.clock.setTimer(() => resolve(false), ms)));
    const settled = p.then(() => true);
    settled.catch(() => {}); // a rejection after the timeout is not an unhandled one
    try {
      return await Promise.race([settled, timeout]);
    } finally {
      cancel();
    }
  }

  /** Orphan sweep now (the informer must have synced). */
  async sweep(): Promise<string[]> {
    const run = (): Promise<string[]> => this.syncer.sweepOrphans();
    return this.metrics ? this.metrics.observe('sweep', run) : run();
  }

  private nudge(): void {
    this.nudged = true;
    this.wake?.();
  }

  /** CStorPool Online (retried until it lands), then heartbeat + sweep every resync period. */
  private async poolLoop(): Promise<void> {
    const signal = this.stopping.signal;
    for (let failures = 0; !signal.aborted; failures++) {
      try {
        await this.poolStatus.write('Online');
        break;
      } catch (err) {
        const delay = backoffDelay(defaultReconcileBackoff, failures);
        this.logger.warn('cannot write CStorPool status; retrying', { error: describeError(err), retryInMs: Math.round(delay) });
        await sleep(this.clock, delay, signal);
      }
    }
    let swept = false;
    const syncedOrStopped = Promise.race([this.informer.waitForSync().then(() => true), new Promise<boolean>((r) => signal.addEventListener('abort', () => r(false), { once: true }))]);
    void syncedOrStopped.then((synced) => synced && this.nudge()).catch(() => {});
    let lastFull = this.clock.now();
    const period = this.o.resyncIntervalMs ?? 30_000;
    while (!signal.aborted) {
      await this.waitForWake(Math.max(0, lastFull + period - this.clock.now()));
      if (signal.aborted) break;
      const full = this.clock.now() - lastFull >= period;
      if (this.nudged && !full) await sleep(this.clock, 200, signal); // coalesce a burst of creates/deletes
      this.nudged = false;
      if (full) lastFull = this.clock.now();
      if (this.informer.hasSynced && (full || !swept)) {
        try {
          const deleted = await this.sweep();
          swept = true;
          if (deleted.length > 0) this.logger.info('orphan sweep deleted replicas', { volumes: deleted });
        } catch (err) {
          this.logger.warn('orphan sweep failed; retrying at the next resync', { error: describeError(err) });
        }
      }
      try {
        await this.poolStatus.write('Online');
      } catch (err) {
        this.logger.warn('cannot write CStorPool status; retrying at the next resync', { error: describeError(err) });
      }
    }
  }

  private waitForWake(ms: number): Promise<void> {
    if (this.nudged || this.stopping.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const cancel = this.clock.setTimer(() => done(), ms);
      const done = (): void => {
        cancel();
        this.wake = undefined;
        resolve();
      };
      this.wake = done;
    });
  }

  /** Enqueues every CVR key not in backoff, every status interval. */
  private async refreshLoop(): Promise<void> {
    const signal = this.stopping.signal;
    const every = this.o.statusIntervalMs ?? 5000;
    while (await sleep(this.clock, every, signal)) {
      if (!this.informer.hasSynced) continue;
      for (const key of this.informer.cache.keys()) if (this.controller.queue.numRequeues(key) === 0) this.controller.queue.add(key);
    }
  }
}
