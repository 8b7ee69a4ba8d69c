// Wiring for one controller, as external-snapshotter splits it: informers whose handlers only
// enqueue keys → one work queue → workers calling the controller's reconcile(key). A controller
// is then a wiring file (which informers, which keys) and a logic file (reconcile).
import type { Registry } from 'prom-client';
import type { Logger } from '../logger.ts';
import type { BackoffOptions } from './backoff.ts';
import type { Clock } from './clock.ts';
import type { Informer } from './informer.ts';
import { objectKey } from './keys.ts';
import { promQueueMetrics } from './queue-metrics.ts';
import { runWorkers, type Reconcile } from './run-workers.ts';
import type { KubeObject } from './types/meta.ts';
import { WorkQueue } from './work-queue.ts';

/** An informer connected to a controller's queue (built by enqueueFrom). */
export interface ControllerSource {
  readonly name: string;
  start(): void;
  stop(): Promise<void>;
  waitForSync(): Promise<void>;
  connect(enqueue: (key: string) => void): void;
}

export interface EnqueueOptions<T extends KubeObject> {
  /** The keys an object event concerns (default: the object's own key). */
  keysFor?: (obj: T) => readonly string[];
  /** Return false to skip an update that changes nothing the controller cares about. */
  updateMatters?: (oldObj: T, newObj: T) => boolean;
}

/** Enqueues keys for every add, update and delete the informer sees. */
export function enqueueFrom<T extends KubeObject>(informer: Informer<T>, options: EnqueueOptions<T> = {}): ControllerSource {
  const keysFor = options.keysFor ?? ((o: T) => [objectKey(o)]);
  return {
    name: informer.name,
    start: () => informer.start(),
    stop: () => informer.stop(),
    waitForSync: () => informer.waitForSync(),
    connect(enqueue) {
      const add = (o: T): void => {
        for (const k of keysFor(o)) enqueue(k);
      };
      informer.addHandlers({
        onAdd: add,
        onUpdate: (oldObj, newObj) => {
          if (options.updateMatters && !options.updateMatters(oldObj, newObj)) return;
          add(newObj);
        },
        onDelete: add,
      });
    },
  };
}

export interface ControllerOptions {
  name: string;
  sources: readonly ControllerSource[];
  reconcile: Reconcile;
  logger: Logger;
  workers?: number;
  clock?: Clock;
  backoff?: BackoffOptions;
  /** Work queue metrics go here when given. */
  registry?: Registry;
  /** Stop the sources' informers on stop() (default true; false when informers are shared). */
  ownsInformers?: boolean;
}

export class Controller {
  readonly queue: WorkQueue;
  private readonly logger: Logger;
  private workers: Promise<void> | undefined;

  constructor(private readonly options: ControllerOptions) {
    this.logger = options.logger.child({ controller: options.name });
    this.queue = new WorkQueue({
      name: options.name,
      clock: options.clock,
      backoff: options.backoff,
      metrics: options.registry ? promQueueMetrics(options.registry, options.name) : undefined,
    });
    for (const s of options.sources) s.connect((key) => this.queue.add(key));
  }

  /** Starts the informers, waits until all have synced, then runs the workers until stop(). */
  async run(): Promise<void> {
    for (const s of this.options.sources) s.start();
    try {
      await Promise.all(this.options.sources.map((s) => s.waitForSync()));
    } catch (err) {
      if (this.queue.isShuttingDown) return; // stopped before the caches synced
      throw err;
    }
    if (this.queue.isShuttingDown) return;
    this.logger.info('caches synced; starting workers', { workers: this.options.workers ?? 1 });
    this.workers = runWorkers(this.queue, this.options.reconcile, { workers: this.options.workers, logger: this.logger, clock: this.options.clock });
    await this.workers;
  }

  /** Stops taking keys, lets running reconciles finish, and stops owned informers. */
  async stop(): Promise<void> {
    this.queue.shutDown();
    if (this.options.ownsInformers ?? true) await Promise.all(this.options.sources.map((s) => s.stop()));
    await this.workers;
  }
}
