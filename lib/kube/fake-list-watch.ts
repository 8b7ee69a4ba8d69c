// An in-memory ListWatchSource for unit tests: a store with increasing resourceVersions, an
// event history watches replay from, and knobs to take the "server" down, break or close
// watches, and compact the history (so old resourceVersions get 410 Gone).
import { CstorError } from '../errors.ts';
import { objectKey } from './keys.ts';
import type { ListOptions, ListWatchSource, WatchHandle, WatchOptions } from './list-watch.ts';
import type { KubeList, KubeObject, WatchEvent } from './types/meta.ts';

interface FakeWatch<T extends KubeObject> {
  onEvent: (e: WatchEvent<T>) => void;
  finish: (err?: Error) => void;
}

export class FakeListWatch<T extends KubeObject> implements ListWatchSource<T> {
  private readonly objects = new Map<string, T>();
  private history: { rv: number; event: WatchEvent<T> }[] = [];
  private compactedTo = 0;
  private rv = 0;
  private readonly watches = new Set<FakeWatch<T>>();
  /** While true, list and watch fail with `unavailable`. */
  down = false;
  listCalls = 0;
  watchCalls: WatchOptions[] = [];

  /** Creates or updates; returns the stored copy with its new resourceVersion. */
  put(obj: T): T {
    const key = objectKey(obj);
    const stored = structuredClone(obj);
    stored.metadata = { ...stored.metadata, resourceVersion: String(++this.rv) };
    const type = this.objects.has(key) ? 'MODIFIED' : 'ADDED';
    this.objects.set(key, stored);
    this.record({ type, object: stored });
    return stored;
  }

  remove(key: string): void {
    const old = this.objects.get(key);
    if (!old) throw new CstorError('not_found', key);
    this.objects.delete(key);
    const gone = structuredClone(old);
    gone.metadata = { ...gone.metadata, resourceVersion: String(++this.rv) };
    this.record({ type: 'DELETED', object: gone });
  }

  /** The server's state, for comparing with an informer cache. */
  state(): Map<string, T> {
    return new Map(this.objects);
  }

  /** Forgets history: watches from an older resourceVersion get 410. */
  compact(): void {
    this.compactedTo = this.rv;
    this.history = [];
  }

  /** Fails every open watch (as a dropped connection does). */
  breakWatches(): void {
    for (const w of [...this.watches]) w.finish(new CstorError('unavailable', 'connection reset'));
  }

  /** Ends every open watch normally (as a server-side timeout does). */
  closeWatches(): void {
    for (const w of [...this.watches]) w.finish();
  }

  /** Sends an ERROR event with this status code on every open watch. */
  sendError(code: number, reason: string): void {
    for (const w of this.watches) w.onEvent({ type: 'ERROR', object: { kind: 'Status', status: 'Failure', code, reason, message: `fake ${reason}` } });
  }

  get openWatches(): number {
    return this.watches.size;
  }

  async list(_options: ListOptions): Promise<KubeList<T>> {
    this.listCalls++;
    if (this.down) throw new CstorError('unavailable', 'connect ECONNREFUSED');
    return { metadata: { resourceVersion: String(this.rv) }, items: [...this.objects.values()].map((o) => structuredClone(o)) };
  }

  async watch(options: WatchOptions, onEvent: (event: WatchEvent<T>) => void): Promise<WatchHandle> {
    this.watchCalls.push(options);
    if (this.down) throw new CstorError('unavailable', 'connect ECONNREFUSED');
    const from = Number(options.resourceVersion ?? this.rv);
    if (from < this.compactedTo) throw new CstorError('gone', `too old resource version: ${from} (${this.compactedTo})`);
    let resolveDone!: () => void;
    let rejectDone!: (err: Error) => void;
    const done = new Promise<void>((resolve, reject) => {
      resolveDone = resolve;
      rejectDone = reject;
    });
    const w: FakeWatch<T> = {
      onEvent,
      finish: (err) => {
        if (!this.watches.delete(w)) return;
        if (err) rejectDone(err);
        else resolveDone();
      },
    };
    this.watches.add(w);
    for (const h of this.history) if (h.rv > from) onEvent(structuredClone(h.event));
    return { done, abort: () => w.finish() };
  }

  private record(event: WatchEvent<T>): void {
    this.history.push({ rv: this.rv, event });
    for (const w of this.watches) w.onEvent(structuredClone(event));
  }
}
