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

  constructor(capacity: number, floorRv: number) {
    this.capacity = capacity;
    this.floorRv = floorRv;
  }

  get oldestRetainedRv(): number {
    return this.floorRv;
  }

  get size(): number {
    return this.ring.length;
  }

  publish(ev: ChangeEvent): void {
    if (this.ring.length < this.capacity) {
      this.ring.push(ev);
    } else {
      const dropped = this.ring[this.head]!;
      this.floorRv = dropped.rv;
      this.ring[this.head] = ev;
      this.head = (this.head + 1) % this.capacity;
    }
    for (const l of this.listeners) l(ev);
  }

  /** Retained events with rv > fromRv, oldest first; throws `gone` when some were dropped. */
  since(fromRv: number): ChangeEvent[] {
    if (fromRv < this.floorRv) {
      throw new CstorError('gone', `too old resource version: ${fromRv} (${this.floorRv})`);
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
