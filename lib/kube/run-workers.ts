// Workers that drain a WorkQueue through a reconcile function (STYLE.md, controllers):
// reconcile(key) throws → warn log with the key, per-key backoff, requeue;
// returns {requeueAfter} → forget failures and poll again after that long (not a failure).
import type { Logger } from '../logger.ts';
import { describeError, isCstorError } from '../errors.ts';
import { realClock, type Clock } from './clock.ts';
import type { WorkQueue } from './work-queue.ts';

export interface ReconcileResult {
  /** Reconcile this key again after this many ms (polling; not counted as a failure). */
  requeueAfter?: number;
}

export type Reconcile = (key: string) => Promise<ReconcileResult | void>;

export interface RunWorkersOptions {
  /** Parallel workers (default 1). Never two on one key, whatever the count. */
  workers?: number;
  logger: Logger;
  clock?: Clock;
}

/** Runs workers until the queue is shut down; resolves when every worker has finished its last key. */
export async function runWorkers(queue: WorkQueue, reconcile: Reconcile, options: RunWorkersOptions): Promise<void> {
  const count = Math.max(1, options.workers ?? 1);
  const clock = options.clock ?? realClock;
  const loops: Promise<void>[] = [];
  for (let i = 0; i < count; i++) loops.push(workerLoop(queue, reconcile, { ...options, clock }));
  await Promise.all(loops);
}

async function workerLoop(queue: WorkQueue, reconcile: Reconcile, options: RunWorkersOptions & { clock: Clock }): Promise<void> {
  for (;;) {
    const key = await queue.get();
    if (key === undefined) return;
    const started = options.clock.now();
    try {
      const result = await reconcile(key);
      queue.forget(key);
      if (result && result.requeueAfter !== undefined) queue.addAfter(key, result.requeueAfter);
    } catch (err) {
      const retries = queue.numRequeues(key);
      options.logger.warn('reconcile failed; retrying with backoff', {
        key,
        queue: queue.name,
        retries,
        code: isCstorError(err) ? err.code : undefined,
        error: describeError(err),
      });
      queue.addRateLimited(key);
    } finally {
      queue.recordWorkDuration((options.clock.now() - started) / 1000);
      queue.done(key);
    }
  }
}
