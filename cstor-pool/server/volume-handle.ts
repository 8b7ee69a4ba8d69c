// What the server keeps per open volume, shared by every connection to it: the store's Replica,
// and the request ordering.
import type { Replica } from '../store/types.ts';
import { IoOrdering } from './io-ordering.ts';

export class VolumeHandle {
  readonly ordering: IoOrdering;

  constructor(readonly replica: Replica) {
    const r = replica;
    this.ordering = new IoOrdering(r.holdSeq ? { holdSeq: (ioSeq) => r.holdSeq!(ioSeq) } : null);
  }

  /**
   * SNAPSHOT_CREATE: a barrier against everything that arrived before it; requests that arrive
   * after it wait only for its cut (the replica's head switch), not for it to be durable, so the
   * target can let writes go as soon as the request is sent (docs/pool-storage.md, "Two-step
   * snapshot"). Resolves when the snapshot is durable.
   */
  snapshotCreate(name: string, ioSeq: number): Promise<void> {
    const r = this.replica;
    if (!r.snapshotCreateStaged) return this.ordering.run('barrier', 0, 0, () => r.snapshotCreate(name, ioSeq));
    const staged = r.snapshotCreateStaged.bind(r);
    return this.ordering.runStaged(() => {
      const s = staged(name, ioSeq);
      return { released: s.cut, result: s.durable };
    });
  }
}
