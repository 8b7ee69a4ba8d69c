// Replica.readInto: runs of blocks from every layer of the chain read straight into the caller's
// Buffer, holes and unmapped blocks zero-filled, checked against a flat-buffer model; bad ranges
// refused with clear errors before a byte of the Buffer is touched.
import { expect } from 'chai';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hasErrorCode, type CstorError } from '../../lib/errors.ts';
import { LayerFile } from './layer-file.ts';
import { openPool } from './pool.ts';
import type { Pool, Replica } from './types.ts';
import { seededRandom as rng } from '../../lib/seeded-random.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const bs = 4 * KiB;

/** `n` blocks of data unique to (version, block): never all zeros. */
function blocksOf(version: number, firstBlock: number, n: number): Buffer {
  const b = Buffer.alloc(n * bs, (version % 254) + 1);
  for (let i = 0; i < n; i++) {
    b.writeUInt32LE(version, i * bs);
    b.writeUInt32LE(firstBlock + i, i * bs + 4);
  }
  return b;
}

/** A Buffer of `len` bytes of 0xee, so a region readInto forgot to fill shows. */
const garbage = (len: number): Buffer => Buffer.alloc(len, 0xee);

async function expectInvalid(p: Promise<unknown>, words: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect(hasErrorCode(err, 'invalid'), String(err)).to.equal(true);
    expect((err as CstorError).message).to.match(words);
    return;
  }
  expect.fail('expected an invalid error');
}

describe('Replica.readInto', () => {
  let dir: string;
  let pool: Pool;

  beforeEach(async () => {
    dir = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'pool-read-into-')), 'pool');
    pool = await openPool({ dir, name: 'pool-a' });
  });
  afterEach(async () => {
    await pool.close();
    await fs.rm(path.dirname(dir), { recursive: true, force: true });
  });

  it('reads runs from several layers, holes, zero markers and dropped blocks in place (fragmented span path included)', async () => {
    const size = 4 * MiB;
    await pool.createReplica({ volume: 'frag', size });
    const r = await pool.openReplica('frag');
    const model = Buffer.alloc(size);
    let seq = 1;
    const write = async (block: number, n: number): Promise<void> => {
      const data = blocksOf(seq, block, n);
      await r.write(block * bs, data, seq++);
      data.copy(model, block * bs);
    };
    const unmap = async (block: number, n: number): Promise<void> => {
      await r.unmapSeq(block * bs, n * bs, seq++);
      model.fill(0, block * bs, (block + n) * bs);
    };
    // Layer 1: blocks 0..255 (1 MiB) and 512..767; blocks 256..511 never written (a hole).
    await write(0, 256);
    await write(512, 256);
    await r.snapshotCreate('s1', seq++);
    // Layer 2: every 8th block of the first MiB, so a 1 MiB read there is 64+ runs over 2 layers.
    for (let b = 0; b < 256; b += 8) await write(b, 1);
    await r.snapshotCreate('s2', seq++);
    // Head: every 8th block offset by 4, zero markers over layer-1 data, a head block dropped.
    for (let b = 4; b < 256; b += 8) await write(b, 2);
    await unmap(100, 3); // zero markers hiding layer 1 (and layer 2's block 104)
    await write(300, 2); // in the hole, head only
    await unmap(300, 1); // dropped: nothing beneath, reads zeros
    await unmap(600, 10); // zero markers over layer 1
    const check = async (offset: number, length: number): Promise<void> => {
      // Into the middle of a larger Buffer: the bytes around it must stay untouched.
      const outer = garbage(length + 2 * bs);
      const into = outer.subarray(bs, bs + length);
      await r.readInto(offset, into);
      expect(into.equals(model.subarray(offset, offset + length)), `readInto ${offset}+${length}`).to.equal(true);
      expect(outer.subarray(0, bs).every((x) => x === 0xee), 'bytes before the destination').to.equal(true);
      expect(outer.subarray(bs + length).every((x) => x === 0xee), 'bytes after the destination').to.equal(true);
      expect((await r.readAt(offset, length)).equals(model.subarray(offset, offset + length)), `readAt ${offset}+${length}`).to.equal(true);
    };
    await check(0, MiB); // fragmented: span of layer 1 with head and layer-2 runs and zero markers patched over it
    await check(MiB, MiB); // hole, a dropped block, a head run
    await check(2 * MiB, MiB); // layer 1 with zero markers
    await check(3 * MiB, MiB); // never written at all
    await check(96 * bs, 16 * bs);
    await check(300 * bs, bs); // one dropped block
    await check(301 * bs, bs); // one head block
    await check(0, size); // everything at once
    await check(0, 0);
    // Many random ranges, also after a reopen (the index rebuilt from the bitmaps).
    const rand = rng(5);
    for (let k = 0; k < 200; k++) {
      const b0 = Math.floor(rand() * 1024);
      const n = Math.min(1 + Math.floor(rand() * 300), 1024 - b0);
      await check(b0 * bs, n * bs);
    }
    await r.close();
    await pool.close();
    pool = await openPool({ dir, name: 'pool-a' });
    const again = await pool.openReplica('frag');
    const all = garbage(size);
    await again.readInto(0, all);
    expect(all.equals(model)).to.equal(true);
  });

  it('matches a flat model through random writes, unmaps, snapshots and snapshot deletes, with reads in flight during them', async function () {
    this.timeout(120_000);
    const blocks = 512;
    const size = blocks * bs;
    await pool.createReplica({ volume: 'rand', size });
    const r: Replica = await pool.openReplica('rand');
    const model = Buffer.alloc(size);
    const rand = rng(11);
    let seq = 1;
    const snaps: string[] = [];
    for (let step = 0; step < 400; step++) {
      const x = rand();
      const b0 = Math.floor(rand() * blocks);
      const n = Math.min(1 + Math.floor(rand() * 40), blocks - b0);
      if (x < 0.5) {
        const data = blocksOf(seq, b0, n);
        await r.write(b0 * bs, data, seq++);
        data.copy(model, b0 * bs);
      } else if (x < 0.65) {
        await r.unmapSeq(b0 * bs, n * bs, seq++);
        model.fill(0, b0 * bs, (b0 + n) * bs);
      } else if (x < 0.8) {
        // Reads racing a snapshot (the lock is taken exclusively): each must read the same.
        const name = `s${step}`;
        const into = Array.from({ length: 4 }, () => garbage(n * bs));
        await Promise.all([...into.map((b) => r.readInto(b0 * bs, b)), r.snapshotCreate(name, seq++), ...into.map((b) => r.readInto(b0 * bs, b))]);
        for (const b of into) expect(b.equals(model.subarray(b0 * bs, (b0 + n) * bs)), `step ${step}: reads around a snapshot`).to.equal(true);
        snaps.push(name);
      } else if (x < 0.88 && snaps.length > 0) {
        const [name] = snaps.splice(Math.floor(rand() * snaps.length), 1);
        await r.snapshotDestroy(name!);
      } else {
        const into = garbage(n * bs);
        await r.readInto(b0 * bs, into);
        expect(into.equals(model.subarray(b0 * bs, (b0 + n) * bs)), `step ${step}: read ${b0}+${n}`).to.equal(true);
      }
    }
    const all = garbage(size);
    await r.readInto(0, all);
    expect(all.equals(model)).to.equal(true);
    expect(r.snapshots().length).to.equal(snaps.length);
  });

  it('refuses misaligned, negative, past-the-end and non-Buffer requests with clear errors, leaving the Buffer alone', async () => {
    await pool.createReplica({ volume: 'bad', size: MiB });
    const r = await pool.openReplica('bad');
    await r.write(0, blocksOf(1, 0, 256), 1);
    const cases: [number, Buffer, RegExp][] = [
      [512, garbage(bs), /offset 512 is not a non-negative multiple of the block size 4096/],
      [-bs, garbage(bs), /offset -4096/],
      [1.5, garbage(bs), /offset 1.5/],
      [Number.NaN, garbage(bs), /offset NaN/],
      [0, garbage(bs + 1), /buffer length 4097 is not a multiple of the block size 4096/],
      [0, garbage(100), /buffer length 100/],
      [MiB - bs, garbage(2 * bs), /8192 bytes at offset 1044480 end at 1052672, past the end of replica bad \(1048576 bytes\)/],
      [MiB, garbage(bs), /past the end/],
      [0, garbage(2 * MiB), /2097152 bytes at offset 0 .*past the end/],
    ];
    for (const [offset, buf, words] of cases) {
      await expectInvalid(r.readInto(offset, buf), words);
      expect(buf.every((x) => x === 0xee), `buffer untouched after ${String(words)}`).to.equal(true);
    }
    await expectInvalid(r.readInto(0, 'nope' as unknown as Buffer), /must be a Buffer/);
    // Still serving after all that.
    const ok = garbage(bs);
    await r.readInto(0, ok);
    expect(ok.equals(blocksOf(1, 0, 1))).to.equal(true);
    await r.close();
    try {
      await r.readInto(0, garbage(bs));
      expect.fail('a closed replica read');
    } catch (err) {
      expect(hasErrorCode(err, 'aborted'), String(err)).to.equal(true);
    }
  });

  it('LayerFile: reads issued before close complete with their data (close waits for them), reads after it are refused', async () => {
    const layer = await LayerFile.create({ dir: path.dirname(dir), blockSize: bs, blocks: 1024 });
    const data = blocksOf(9, 0, 1024);
    await layer.write(data, 0, data.length, 0);
    const outs = Array.from({ length: 64 }, () => garbage(64 * KiB));
    const reads = outs.map((b, i) => layer.read(b, 0, b.length, (i % 64) * 64 * KiB));
    const closed = layer.close();
    await Promise.all([...reads, closed]);
    outs.forEach((b, i) => expect(b.equals(data.subarray((i % 64) * 64 * KiB, ((i % 64) + 1) * 64 * KiB)), `read ${i}`).to.equal(true));
    try {
      await layer.read(garbage(bs), 0, bs, 0);
      expect.fail('a closed layer read');
    } catch (err) {
      expect(hasErrorCode(err, 'aborted'), String(err)).to.equal(true);
    }
  });
});
