// Test helper: pipelined random writes, unmaps, reads and syncs over one ReplicaClient, checked
// against a flat-buffer model applied in issue order. Ops go out in batches without waiting for
// one another, so the server's ordering rules are what make each read equal the model at the
// moment it was issued.
import { expect } from 'chai';
import type { ReplicaClient } from '../../lib/replica-protocol/types.ts';

export interface RandomOpsOptions {
  blocks: number;
  blockSize: number;
  ops: number;
  batch: number;
  seed: number;
  /** io_seq of the first write. */
  firstIoSeq?: number;
}

/** Runs the ops; returns the final model and the next io_seq. */
export async function randomPipelinedOps(c: ReplicaClient, o: RandomOpsOptions): Promise<{ model: Buffer; nextIoSeq: number; reads: number }> {
  let x = o.seed >>> 0 || 1;
  const rnd = (n: number): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
  const bs = o.blockSize;
  const model = Buffer.alloc(o.blocks * bs);
  let ioSeq = o.firstIoSeq ?? 1;
  let reads = 0;
  for (let done = 0; done < o.ops; ) {
    const pending: Promise<void>[] = [];
    for (let k = 0; k < o.batch && done < o.ops; k++, done++) {
      const kind = rnd(100);
      const n = 1 + rnd(8);
      const b = rnd(o.blocks - n + 1);
      if (kind < 45) {
        const data = Buffer.alloc(n * bs);
        for (let i = 0; i < data.length; i += 256) data.fill(rnd(256), i, i + 256);
        data.copy(model, b * bs);
        pending.push(c.write(b * bs, data, ioSeq++));
      } else if (kind < 55) {
        model.fill(0, b * bs, (b + n) * bs);
        pending.push(c.unmap(b * bs, n * bs, ioSeq++));
      } else if (kind < 98) {
        const expected = Buffer.from(model.subarray(b * bs, (b + n) * bs));
        const at = `read of blocks ${b}..${b + n - 1} issued as op ${done}`;
        reads++;
        pending.push(
          c.read(b * bs, n * bs).then((got) => {
            expect(got.equals(expected), at).to.equal(true);
          }),
        );
      } else {
        pending.push(c.sync().then(() => undefined));
      }
    }
    await Promise.all(pending);
  }
  return { model, nextIoSeq: ioSeq, reads };
}
