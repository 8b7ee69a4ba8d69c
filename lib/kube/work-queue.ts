// A work queue of `ns/name` keys, like client-go's rate-limited delaying queue:
// - a key waiting in the queue is held once, however often it is added (dedup);
// - a key being processed is never handed to a second worker; if it is added meanwhile it is
//   queued again when the worker calls done(key);
// - addAfter(key, ms) holds the key back (the earliest pending time wins);
// - addRateLimited(key) waits base * 2^failures (capped) before re-adding; forget(key) resets.
import { KeyedBackoff, type BackoffOptions } from './backoff.ts';
import { realClock, type Clock } from './clock.ts';
import { noQueueMetrics, type QueueMetrics } from './queue-metrics.ts';

export interface WorkQueueOptions {
  /** For metrics and logs. */
  name: string;
  clock?: Clock;
  /** Per-key failure backoff; default 5 ms doubling to 5 minutes. */
  backoff?: BackoffOptions;
  metrics?: QueueMetrics;
}

export const defaultQueueBackoff: BackoffOptions = { baseMs: 5, maxMs: 5 * 60_000 };

export class WorkQueue {
  readonly name: string;
  private readonly clock: Clock;
  private readonly metrics: QueueMetrics;
  private readonly failures: KeyedBackoff;
  /** Keys ready for a worker, in order. */
  private readonly ready: string[] = [];
  /** Keys that need processing (waiting in `ready`, or re-added while processing), with when they were added. */
  private readonly dirty = new Map<string, number>();
  private readonly processing = new Set<string>();
  /** Delayed keys: the due time and the timer's cancel function. */
  private readonly delayed = new Map<string, { due: number; cancel: () => void }>();
  private readonly getters: ((key: string | undefined) => void)[] = [];
  private shuttingDown = false;

  constructor(options: WorkQueueOptions) {
    this.name = options.name;
    this.clock = options.clock ?? realClock;
    this.metrics = options.metrics ?? noQueueMetrics;
    this.failures = new KeyedBackoff(options.backoff ?? defaultQueueBackoff);
  }

  /** Queues `key` unless it is already waiting. */
  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.dirty.has(key)) return;
    this.metrics.added();
    this.dirty.set(key, this.clock.now());
    if (this.processing.has(key)) return;
    this.push(key);
  }

  /** Queues `key` after `ms` (now when ms <= 0). A later call with an earlier time wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const due = this.clock.now() + ms;
    const existing = this.delayed.get(key);
    if (existing && existing.due <= due) return;
    existing?.cancel();
    const cancel = this.clock.setTimer(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { due, cancel });
  }

  /** Re-queues `key` after its next backoff delay (a failure). */
  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    this.metrics.retried();
    this.addAfter(key, this.failures.next(key));
  }

  /** Clears the failure count of `key` (after a success). */
  forget(key: string): void {
    this.failures.forget(key);
  }

  /** Failures of `key` since it was last forgotten. */
  numRequeues(key: string): number {
    return this.failures.count(key);
  }

  /**
   * The next key to process, waiting until there is one; undefined once the queue is shut down.
   * The caller must call done(key) when finished.
   */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.take();
    if (key !== undefined) return Promise.resolve(key);
    return new Promise((resolve) => this.getters.push(resolve));
  }

  /** Marks `key` finished; if it was added while processing, it is queued again. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) this.push(key);
  }

  /** Keys ready for a worker. */
  get length(): number {
    return this.ready.length;
  }

  /** Keys delayed by addAfter/addRateLimited. */
  get delayedCount(): number {
    return this.delayed.size;
  }

  /** Records how long one reconcile took (called by runWorkers). */
  recordWorkDuration(seconds: number): void {
    this.metrics.worked(seconds);
  }

  isProcessing(key: string): boolean {
    return this.processing.has(key);
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Stops handing out keys: waiting get() calls resolve undefined; delayed keys are dropped. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const { cancel } of this.delayed.values()) cancel();
    this.delayed.clear();
    for (const g of this.getters.splice(0)) g(undefined);
  }

  private push(key: string): void {
    const getter = this.getters.shift();
    if (getter) {
      this.startProcessing(key);
      getter(key);
      return;
    }
    this.ready.push(key);
    this.metrics.depth(this.ready.length);
  }

  private take(): string | undefined {
    const key = this.ready.shift();
    if (key === undefined) return undefined;
    this.metrics.depth(this.ready.length);
    this.startProcessing(key);
    return key;
  }

  private startProcessing(key: string): void {
    const addedAt = this.dirty.get(key);
    if (addedAt !== undefined) this.metrics.queued((this.clock.now() - addedAt) / 1000);
    this.dirty.delete(key);
    this.processing.add(key);
  }
}
