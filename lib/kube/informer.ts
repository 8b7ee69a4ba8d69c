// An informer that never stops for good (DESIGN.md §8): list, then watch from the list's
// resourceVersion; after ANY watch failure or close, watch again from the last resourceVersion
// seen, with exponential backoff when the watch was not healthy; relist on 410 Gone and every
// resync period. A relist is diffed against the cache, so objects deleted while no watch was
// running come out as delete events: nothing is missed.
//
// Handlers are called in event order, one at a time, after the cache is updated; they should
// only enqueue keys. A periodic resync also calls onUpdate(old, same) for unchanged objects,
// so controllers re-reconcile everything now and then (client-go's resync).
import type { Logger } from '../logger.ts';
import { CstorError, describeError, hasErrorCode, isCstorError } from '../errors.ts';
import { backoffDelay, type BackoffOptions } from './backoff.ts';
import { realClock, sleep, type Clock } from './clock.ts';
import { objectKey } from './keys.ts';
import type { ListWatchSource, SelectorOptions, WatchHandle } from './list-watch.ts';
import { ObjectCache, type IndexFunc } from './object-cache.ts';
import type { KubeObject, Status, WatchEvent } from './types/meta.ts';

export interface InformerHandlers<T extends KubeObject> {
  onAdd?: (obj: T) => void;
  onUpdate?: (oldObj: T, newObj: T) => void;
  /** Called with the last state the informer knew. */
  onDelete?: (obj: T) => void;
}

export interface InformerOptions<T extends KubeObject> extends SelectorOptions {
  source: ListWatchSource<T>;
  /** For logs, e.g. "volumesnapshots". */
  name: string;
  logger: Logger;
  clock?: Clock;
  /** Relist this often (ms); 0 turns it off. Default 10 minutes. */
  resyncPeriodMs?: number;
  /** Backoff between failed lists and unhealthy watches. Default 250 ms doubling to 30 s, 20% jitter. */
  backoff?: BackoffOptions;
  /** A watch that lasted this long (or delivered an event) resets the backoff. Default 10 s. */
  healthyWatchMs?: number;
  /** Server-side watch timeout; default a random 5 to 10 minutes, like client-go. */
  watchTimeoutSeconds?: number;
  indexers?: Readonly<Record<string, IndexFunc<T>>>;
  random?: () => number;
}

export const defaultInformerBackoff: BackoffOptions = { baseMs: 250, maxMs: 30_000, jitter: 0.2 };

type WatchOutcome = 'closed' | 'gone' | 'failed' | 'interrupted';

const stoppedMark = Symbol('stopped');

export class Informer<T extends KubeObject> {
  readonly cache: ObjectCache<T>;
  readonly name: string;
  private readonly options: InformerOptions<T>;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly handlers: InformerHandlers<T>[] = [];
  private readonly stopController = new AbortController();
  /** Resolves when stop() is called: a list or watch request in flight is not waited for. */
  private readonly whenStopped: Promise<typeof stoppedMark>;
  private synced = false;
  private syncWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private running: Promise<void> | undefined;
  private currentWatch: WatchHandle | undefined;
  private relistWanted = false;
  private cancelResync: (() => void) | undefined;
  private lastResourceVersion: string | undefined;
  private stats = { lists: 0, watches: 0, failures: 0 };

  constructor(options: InformerOptions<T>) {
    this.options = options;
    this.name = options.name;
    this.clock = options.clock ?? realClock;
    this.logger = options.logger.child({ informer: options.name });
    this.cache = new ObjectCache<T>(options.indexers ?? {});
    this.whenStopped = new Promise((resolve) => this.stopController.signal.addEventListener('abort', () => resolve(stoppedMark), { once: true }));
  }

  /** Registers handlers; add them before start() so the initial list reaches them. */
  addHandlers(handlers: InformerHandlers<T>): this {
    this.handlers.push(handlers);
    return this;
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  /** The resourceVersion the informer has seen up to. */
  get resourceVersion(): string | undefined {
    return this.lastResourceVersion;
  }

  /** Counters for tests and debugging: lists done, watches started, failures seen. */
  get counters(): Readonly<{ lists: number; watches: number; failures: number }> {
    return { ...this.stats };
  }

  /** Resolves once the first list is in the cache; rejects if the informer is stopped first. */
  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    if (this.stopController.signal.aborted) return Promise.reject(new CstorError('aborted', `informer ${this.name} stopped before it synced`));
    return new Promise((resolve, reject) => this.syncWaiters.push({ resolve, reject }));
  }

  start(): void {
    if (this.running) return;
    this.running = this.run().catch((err: unknown) => {
      this.logger.error('informer loop crashed', { error: describeError(err) });
    });
    this.scheduleResync();
  }

  /** Stops watching for good; resolves once the loop has exited. */
  async stop(): Promise<void> {
    this.stopController.abort();
    this.cancelResync?.();
    this.currentWatch?.abort();
    for (const w of this.syncWaiters.splice(0)) w.reject(new CstorError('aborted', `informer ${this.name} stopped before it synced`));
    await this.running;
  }

  /** Forces a relist now (as the resync timer does). */
  resync(): void {
    this.relistWanted = true;
    this.currentWatch?.abort();
  }

  private get stopped(): boolean {
    return this.stopController.signal.aborted;
  }

  private scheduleResync(): void {
    const period = this.options.resyncPeriodMs ?? 10 * 60_000;
    if (period <= 0 || this.stopped) return;
    this.cancelResync = this.clock.setTimer(() => {
      this.resync();
      this.scheduleResync();
    }, period);
  }

  private async run(): Promise<void> {
    const backoff = this.options.backoff ?? defaultInformerBackoff;
    let attempt = 0;
    let goneStreak = 0;
    let rv: string | undefined;
    let periodic = false;
    while (!this.stopped) {
      if (rv === undefined || this.relistWanted) {
        periodic = this.relistWanted && rv !== undefined;
        this.relistWanted = false;
        try {
          rv = await this.relist(periodic);
        } catch (err) {
          if (this.stopped) break;
          this.stats.failures++;
          const delay = backoffDelay(backoff, attempt++, this.options.random);
          this.logger.warn('list failed; retrying', { error: describeError(err), code: isCstorError(err) ? err.code : undefined, retryInMs: Math.round(delay) });
          await sleep(this.clock, delay, this.stopController.signal);
          continue;
        }
      }
      const started = this.clock.now();
      const { outcome, events, error } = await this.watchOnce(rv);
      rv = this.lastResourceVersion ?? rv;
      if (this.stopped || outcome === 'interrupted') continue;
      if (outcome === 'gone') {
        this.logger.info('watch resourceVersion expired (410); relisting', { resourceVersion: rv });
        rv = undefined;
      }
      const healthy = events > 0 || this.clock.now() - started >= (this.options.healthyWatchMs ?? 10_000);
      if (healthy) goneStreak = 0;
      // The first 410 in a row relists at once; repeated ones back off (no hot loop).
      if (outcome === 'gone' && goneStreak++ === 0) continue;
      if (healthy) {
        attempt = 0;
        if (outcome === 'failed') this.logger.warn('watch failed; watching again', { error: describeError(error), resourceVersion: rv });
        continue;
      }
      this.stats.failures++;
      const delay = backoffDelay(backoff, attempt++, this.options.random);
      this.logger.warn('watch ended early; retrying with backoff', {
        outcome,
        error: error === undefined ? undefined : describeError(error),
        retryInMs: Math.round(delay),
        resourceVersion: rv,
      });
      await sleep(this.clock, delay, this.stopController.signal);
    }
  }

  private selectors(): SelectorOptions {
    const { namespace, labelSelector, fieldSelector } = this.options;
    return { namespace, labelSelector, fieldSelector };
  }

  /** Lists, replaces the cache and emits the difference; returns the list's resourceVersion. */
  private async relist(periodic: boolean): Promise<string> {
    this.stats.lists++;
    const listing = this.options.source.list(this.selectors());
    const list = await Promise.race([listing, this.whenStopped]);
    if (list === stoppedMark || this.stopped) {
      listing.catch(() => {}); // its late failure is nobody's business now
      throw new CstorError('aborted', 'stopped');
    }
    const rv = list.metadata?.resourceVersion;
    if (!rv) throw new CstorError('protocol', `list of ${this.name} has no metadata.resourceVersion`);
    const seen = new Set<string>();
    for (const item of list.items) {
      const key = objectKey(item);
      seen.add(key);
      const old = this.cache.upsert(item);
      if (!old) this.emit('add', item);
      else if (old.metadata?.uid && item.metadata?.uid && old.metadata.uid !== item.metadata.uid) {
        // deleted and created again under the same name while we were not watching
        this.emit('delete', old);
        this.emit('add', item);
      } else if (periodic || old.metadata?.resourceVersion !== item.metadata?.resourceVersion) this.emit('update', item, old);
    }
    for (const key of this.cache.keys()) {
      if (seen.has(key)) continue;
      const old = this.cache.remove(key);
      if (old) this.emit('delete', old);
    }
    this.lastResourceVersion = rv;
    if (!this.synced) {
      this.synced = true;
      this.logger.debug('synced', { objects: this.cache.size, resourceVersion: rv });
      for (const w of this.syncWaiters.splice(0)) w.resolve();
    }
    return rv;
  }

  private async watchOnce(rv: string): Promise<{ outcome: WatchOutcome; events: number; error?: unknown }> {
    this.stats.watches++;
    let events = 0;
    let failure: { outcome: 'gone' | 'failed'; error?: unknown } | undefined;
    let handle: WatchHandle | undefined;
    const onEvent = (event: WatchEvent<T>): void => {
      if (failure || this.stopped) return;
      if (event.type === 'ERROR') {
        failure = statusFailure(event.object);
        handle?.abort();
        return;
      }
      events++;
      this.apply(event);
    };
    const timeoutSeconds = this.options.watchTimeoutSeconds ?? Math.floor(300 + 300 * (this.options.random ?? Math.random)());
    try {
      const opening = this.options.source.watch({ ...this.selectors(), resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds }, onEvent);
      const opened = await Promise.race([opening, this.whenStopped]);
      if (opened === stoppedMark) {
        // Stopped while the server had not answered yet: end that watch whenever it opens.
        opening.then(
          (h) => h.abort(),
          () => {},
        );
        return { outcome: 'interrupted', events };
      }
      handle = opened;
    } catch (err) {
      if (this.stopped) return { outcome: 'interrupted', events };
      return hasErrorCode(err, 'gone') ? { outcome: 'gone', events, error: err } : { outcome: 'failed', events, error: err };
    }
    this.currentWatch = handle;
    if (failure || this.stopped || this.relistWanted) handle.abort();
    try {
      await handle.done;
    } catch (err) {
      failure ??= { outcome: 'failed', error: err };
    } finally {
      this.currentWatch = undefined;
    }
    if (failure) return { ...failure, events };
    if (this.stopped || this.relistWanted) return { outcome: 'interrupted', events };
    return { outcome: 'closed', events };
  }

  private apply(event: WatchEvent<T>): void {
    if (event.type === 'ERROR') return;
    const rv = event.object.metadata?.resourceVersion;
    if (rv) this.lastResourceVersion = rv;
    if (event.type === 'BOOKMARK') return;
    const obj = event.object;
    if (event.type === 'DELETED') {
      const old = this.cache.remove(objectKey(obj));
      this.emit('delete', old ?? obj);
      return;
    }
    const old = this.cache.upsert(obj);
    if (old) this.emit('update', obj, old);
    else this.emit('add', obj);
  }

  private emit(kind: 'add' | 'update' | 'delete', obj: T, old?: T): void {
    for (const h of this.handlers) {
      try {
        if (kind === 'add') h.onAdd?.(obj);
        else if (kind === 'update') h.onUpdate?.(old ?? obj, obj);
        else h.onDelete?.(obj);
      } catch (err) {
        this.logger.error('informer handler threw', { event: kind, key: safeKey(obj), error: describeError(err) });
      }
    }
  }
}

function statusFailure(status: Status): { outcome: 'gone' | 'failed'; error: CstorError } {
  const message = status.message ?? 'watch error';
  if (status.code === 410 || status.reason === 'Expired' || status.reason === 'Gone') {
    return { outcome: 'gone', error: new CstorError('gone', message, { details: { reason: status.reason } }) };
  }
  return { outcome: 'failed', error: new CstorError('unavailable', `watch ERROR event: ${message}`, { details: { reason: status.reason, httpStatus: status.code } }) };
}

function safeKey(obj: KubeObject): string {
  try {
    return objectKey(obj);
  } catch {
    return '?';
  }
}
