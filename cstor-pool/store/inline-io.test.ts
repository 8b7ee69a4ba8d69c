import { expect } from 'chai';
import { hasErrorCode } from '../../lib/errors.ts';
import { poolConfig } from '../main.ts';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { configureInlineIo, defaultInlineIo, InlineIoPolicy } from './inline-io.ts';
import { LayerFile } from './layer-file.ts';
import { openPool } from './pool.ts';

const opts = { maxBytes: 65536, slowUs: 100, stallMs: 2, backoffMs: 1000 };

describe('store/inline-io: when READ/WRITE run on the event loop', () => {
  afterEach(() => configureInlineIo(defaultInlineIo));

  it('admits IOs up to maxBytes, none with maxBytes 0', () => {
    const p = new InlineIoPolicy('write', opts);
    expect(p.admits(4096, 1)).to.equal(true);
    expect(p.admits(65536, 1)).to.equal(true);
    expect(p.admits(65537, 1)).to.equal(false);
    p.configure({ maxBytes: 0 });
    expect(p.admits(4096, 1)).to.equal(false);
  });

  it('goes to the thread pool for backoffMs after two calls slower than stallMs close together, then tries again', () => {
    const p = new InlineIoPolicy('write', opts);
    p.record(4096, 0.005, 100);
    expect(p.admits(4096, 100)).to.equal(true);
    // A lone stall (preempted?) is let go; so is another 100 calls later.
    p.record(4096, 2.5, 100);
    for (let i = 0; i < 100; i++) p.record(4096, 0.005, 100);
    p.record(4096, 2.5, 100);
    expect(p.fallbacks).to.equal(0);
    expect(p.admits(4096, 100)).to.equal(true);
    for (let i = 0; i < 10; i++) p.record(4096, 0.005, 100);
    p.record(4096, 2.5, 100);
    expect(p.fallbacks).to.equal(1);
    expect(p.admits(4096, 100.1)).to.equal(false);
    expect(p.admits(4096, 1099)).to.equal(false);
    expect(p.admits(4096, 1100.5)).to.equal(true);
    expect(p.admits(4096, 1100.6)).to.equal(true);
  });

  it('tolerates an odd slow call, but not a run of them (reads that go to the disk)', () => {
    const p = new InlineIoPolicy('read', opts);
    // One call in 16 slow (a preempted syscall on a busy host): stays inline.
    for (let i = 0; i < 2000; i++) p.record(4096, i % 16 === 0 ? 0.4 : 0.004, i);
    expect(p.fallbacks).to.equal(0);
    expect(p.admits(4096, 2000)).to.equal(true);
    // Every call 300 µs (a cold read from a disk): off within a dozen calls.
    let n = 0;
    while (p.admits(4096, 3000 + n) && n < 100) p.record(4096, 0.3, 3000 + n++);
    expect(p.fallbacks).to.equal(1);
    expect(n).to.be.within(5, 15);
  });

  it('allows larger IOs their copying time before calling them slow', () => {
    const p = new InlineIoPolicy('write', { ...opts, maxBytes: 1 << 20 });
    // 1 MiB in 0.9 ms: 100 µs + ~1049 µs allowed, not slow.
    for (let i = 0; i < 200; i++) p.record(1 << 20, 0.9, i);
    expect(p.fallbacks).to.equal(0);
  });

  it('cstor pool --inline-io-max: 1 MiB by default, 0 turns it off, a bad value is refused naming the flag', () => {
    const base = ['--name', 'p', '--data-dir', '/tmp/x', '--listen', '127.0.0.1:0', '--mgmt', '127.0.0.1:0'];
    expect(poolConfig(base, {})?.inlineIoMaxBytes).to.equal(1 << 20);
    expect(poolConfig([...base, '--inline-io-max', '0'], {})?.inlineIoMaxBytes).to.equal(0);
    expect(poolConfig([...base, '--inline-io-max', '65536'], {})?.inlineIoMaxBytes).to.equal(65536);
    for (const bad of ['-1', '64k', '1e6', '16777217']) {
      let err: unknown;
      try {
        poolConfig([...base, '--inline-io-max', bad], {});
      } catch (e) {
        err = e;
      }
      expect(hasErrorCode(err, 'invalid'), bad).to.equal(true);
      expect((err as Error).message).to.contain(`--inline-io-max`);
    }
  });

  describe('LayerFile.readNow / writeNow', () => {
    let dir: string;
    beforeEach(async () => {
      dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inline-io-'));
    });
    afterEach(async () => {
      await fs.rm(dir, { recursive: true, force: true });
    });

    it('write and read in place while admitted; refuse (doing nothing) when not', async () => {
      const layer = await LayerFile.create({ dir, blockSize: 4096, blocks: 64 });
      try {
        const data = Buffer.alloc(8192, 7);
        expect(layer.writeNow(data, 0, 8192, 4096)).to.equal(true);
        const out = Buffer.alloc(8192);
        expect(layer.readNow(out, 0, 8192, 4096)).to.equal(true);
        expect(out.equals(data)).to.equal(true);
        configureInlineIo({ maxBytes: 4096 });
        const other = Buffer.alloc(8192, 9);
        expect(layer.writeNow(other, 0, 8192, 4096)).to.equal(false);
        expect(layer.readNow(out.fill(1), 0, 8192, 4096)).to.equal(false);
        expect(out.every((b) => b === 1)).to.equal(true);
        await layer.read(out, 0, 8192, 4096);
        expect(out.equals(data)).to.equal(true);
      } finally {
        await layer.close();
      }
    });

    it('readNow fills zeros past the end of the file; a closed layer does nothing inline', async () => {
      const layer = await LayerFile.create({ dir, blockSize: 4096, blocks: 2 });
      try {
        const out = Buffer.alloc(8192, 1);
        expect(layer.readNow(out, 0, 8192, 4096)).to.equal(true);
        expect(out.every((b) => b === 0)).to.equal(true);
      } finally {
        await layer.close();
      }
      // Closed: nothing inline (the caller's thread-pool path reports the closed layer).
      expect(layer.readNow(Buffer.alloc(4096), 0, 4096, 0)).to.equal(false);
      expect(layer.writeNow(Buffer.alloc(4096), 0, 4096, 0)).to.equal(false);
    });
  });

  it('a replica reads and writes the same bytes inline and through the thread pool', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'inline-io-replica-'));
    const pool = await openPool({ dir, name: 'inline' });
    try {
      const size = 32 << 20;
      await pool.createReplica({ volume: 'v', size, blockSize: 4096 });
      const r = await pool.openReplica('v');
      const model = Buffer.alloc(size);
      let x = 99;
      const rnd = (n: number): number => {
        x = (x * 1103515245 + 12345) % 2147483648;
        return x % n;
      };
      let seq = 0;
      for (let round = 0; round < 4; round++) {
        // Alternate: all inline, none inline (thread pool), a small limit (mixed by size), 1 MiB.
        configureInlineIo({ maxBytes: [65536, 0, 8192, 1 << 20][round]! });
        // The store does not order overlapping writes in flight (the server's IoOrdering does):
        // each batch writes disjoint ranges, one per 32-block slot, slots in random order.
        const slots = Array.from({ length: size / 4096 / 32 }, (_, i) => i);
        for (let i = slots.length - 1; i > 0; i--) {
          const j = rnd(i + 1);
          [slots[i], slots[j]] = [slots[j]!, slots[i]!];
        }
        const writes: Promise<void>[] = [];
        for (let i = 0; i < 200; i++) {
          const blocks = 1 + rnd(32);
          const off = (slots[i]! * 32 + rnd(33 - blocks)) * 4096;
          const data = Buffer.alloc(blocks * 4096, 1 + rnd(250));
          data.copy(model, off);
          writes.push(r.write(off, data, ++seq));
        }
        await Promise.all(writes);
        // After this snapshot, reads span runs in two layers (Replica.readRuns, inline or not).
        if (round === 1) await r.snapshotCreate(`s${round}`, seq);
        for (let i = 0; i < 100; i++) {
          const blocks = 1 + rnd(32);
          const off = rnd(size / 4096 - blocks) * 4096;
          const out = Buffer.alloc(blocks * 4096);
          await r.readInto(off, out);
          expect(out.equals(model.subarray(off, off + out.length)), `round ${round} read at ${off}`).to.equal(true);
        }
      }
      await r.sync();
      expect(r.checkpointedIoSeq).to.equal(seq);
    } finally {
      await pool.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
