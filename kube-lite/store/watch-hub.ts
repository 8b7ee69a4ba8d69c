// The watch history: the last `capacity` committed changes, in resourceVersion order, and the
// live subscribers. A watch from resourceVersion R replays the retained events after R, then
// follows live ones; when events after R were already dropped it is refused as Gone (410).
import { CstorError } from '../../lib/errors.ts';
import type { ChangeEvent } from './types.ts';

export type WatchListener = (ev: ChangeEvent) => void;

export class WatchHub {
  private readonly capacity: number;
  private ring: ChangeEvent[] = [];
  private head = 0; // index of the oldest event in ring once it is full
  private readonly listeners = new Set<WatchListener>();
  /** Every event with rv > floorRv is retained. */
  private floorRv: number;
  /** The resourceVersion of the last published event (or the floor). */
  private lastRv: number;

  constructor(capacity: number, floorRv: number) {
    this.capacity = capacity;
    this.floorRv = floorRv;
    this.lastRv = floorRv;
  }

  get oldestRetainedRv(): number {
    return this.floorRv;
  }

  get size(): number {
    return this.ring.length;
  }

  publish(ev: ChangeEvent): void {
    this.lastRv = Math.max(this.lastRv, ev.rv);
    if (this.ring.length < this.capacity) {
      this.ring.push(ev);
    } else {
      const dropped = this.ring[this.head]!;
      this.floorRv = dropped.rv;
      this.ring[this.head] = ev;
      this.head = (this.head + 1) % this.capacity;
    }
    // The change is durable when this runs: a listener that throws must neither keep the event
    // from the listeners after it nor turn the writer's acknowledgement into an error.
    for (const l of this.listeners) {
      try {
        l(ev);
      } catch (err) {
        this.listenerErrors++;
        this.onListenerError?.(err);
      }
    }
  }

  /** Listener failures so far (each also goes to onListenerError). */
  listenerErrors = 0;
  onListenerError: ((err: unknown) => void) | undefined;

  /** Retained events with rv > fromRv, oldest first; throws `gone` when some were dropped. */
  since(fromRv: number): ChangeEvent[] {
    if (fromRv < this.floorRv) {
      throw new CstorError('gone', `too old resource version: ${fromRv} (${this.floorRv})`);
    }
    if (fromRv > this.lastRv) {
      // Never issued by this store (a client of a server whose data directory was replaced):
      // watching would silently skip every event up to fromRv. Kubernetes answers "Too large
      // resource version"; 410 makes informers (lib/kube's, client-go's) relist.
      throw new CstorError('gone', `too large resource version: ${fromRv}, current: ${this.lastRv}`);
    }
    const out: ChangeEvent[] = [];
    const n = this.ring.length;
    for (let i = 0; i < n; i++) {
      const ev = this.ring[(this.head + i) % n]!;
      if (ev.rv > fromRv) out.push(ev);
    }
    return out;
  }

  /**
   * Backlog after fromRv plus a live subscription, atomically (no event can fall between them:
   * publish is synchronous and this runs in one tick).
   */
  subscribe(fromRv: number, listener: WatchListener): { backlog: ChangeEvent[]; unsubscribe: () => void } {
    const backlog = this.since(fromRv);
    this.listeners.add(listener);
    return { backlog, unsubscribe: () => this.listeners.delete(listener) };
  }

  /** Live events only (for in-process controllers). */
  listen(listener: WatchListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
