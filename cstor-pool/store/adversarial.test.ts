// Adversarial interleavings and crash cuts of the layer store: each test drives one race or cuts
// one multi-step change at a chosen point, then checks every view (live, snapshots, clones), in
// this process and in a copy of the directory opened as a crash would leave it.
import { expect } from 'chai';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hasErrorCode } from '../../lib/errors.ts';
import { LayerFile } from './layer-file.ts';
import { openPool } from './pool.ts';
import { expectCode, fill, KiB, MiB } from './test-helpers.ts';
import { configureWriteback, defaultWritebackBytes } from './writeback.ts';
import type { Pool, Replica } from './types.ts';
const bs = 4 * KiB;

async function expectRejection(p: Promise<unknown>, message: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect(String(err)).to.match(message);
    return;
  }
  expect.fail('expected a rejection');
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** The first byte of each of the first `n` blocks. */
function firstBytes(buf: Buffer, n: number): number[] {
  return Array.from({ length: n }, (_x, k) => buf[k * bs]!);
}

describe('pool store: adversarial interleavings and crash cuts', () => {
  let root: string;
  let dir: string;
  let pool: Pool;
  const extra: Pool[] = [];

  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'pool-adv-'));
    dir = path.join(root, 'pool');
    pool = await openPool({ dir, name: 'pool-a' });
  });
  afterEach(async () => {
    for (const p of extra.splice(0)) await p.close();
    await pool.close();
    await fs.rm(root, { recursive: true, force: true });
  });

  /** Opens a copy of the pool directory as it is now (what a kill -9 now would leave). */
  async function crashCopy(name = 'copy'): Promise<Pool> {
    const copy = path.join(root, name);
    await fs.cp(dir, copy, { recursive: true });
    const p = await openPool({ dir: copy, name: 'pool-a' });
    extra.push(p);
    return p;
  }

  it('reads a snapshot being made durable right even when its bitmap left the cache meanwhile', async () => {
    await pool.createReplica({ volume: 'v', size: 1 * MiB });
    const first = await pool.openReplica('v');
    // Ten snapshots, each holding one block of its own.
    for (let k = 0; k < 10; k++) {
      await first.write(k * bs, fill(10 + k, bs), 2 * k + 1);
      await first.snapshotCreate(`s${k}`, 2 * k + 2);
    }
    await first.close();
    // Reloaded: the bitmap cache holds the newest 8 layers.
    const r = await pool.openReplica('v');
    await r.write(20 * bs, fill(77, bs), 30);
    // The snapshot's durable step waits (its old head's data fdatasync is slow).
    const gate = deferred();
    const orig = LayerFile.prototype.persistDirty;
    LayerFile.prototype.persistDirty = async function (this: LayerFile, ...args: Parameters<LayerFile['persistDirty']>) {
      await gate.promise;
      return orig.apply(this, args);
    };
    let staged;
    try {
      staged = r.snapshotCreateStaged!('late', 31);
      await staged.cut;
      // Reads of every older snapshot load ten bitmaps: more than the cache keeps.
      for (let k = 9; k >= 0; k--) expect((await r.readSnapshotAt(`s${k}`, k * bs, bs))[0]).to.equal(10 + k);
      const view = await r.readSnapshotAt('late', 0, 21 * bs);
      expect(view[20 * bs], 'the block only the durable-pending snapshot holds').to.equal(77);
    } finally {
      LayerFile.prototype.persistDirty = orig;
      gate.resolve();
    }
    await staged.durable;
    expect((await r.readSnapshotAt('late', 20 * bs, bs))[0]).to.equal(77);
    await r.close();
  });

  it('does not fold layers of a replica failed by a snapshot it could not make durable (a clone deleted meanwhile)', async () => {
    await pool.createReplica({ volume: 'src', size: 1 * MiB });
    const r = await pool.openReplica('src');
    await r.write(0, fill(1, bs), 1);
    await r.snapshotCreate('s1', 2);
    await pool.createReplica({ volume: 'cl', size: 1 * MiB, cloneOf: { volume: 'src', snapshot: 's1' } });
    await r.snapshotDestroy('s1'); // hidden: the clone needs it
    await r.write(bs, fill(2, bs), 3);
    await r.sync();
    // A snapshot whose old head's bitmap pages never reach the disk: the replica is failed.
    const orig = LayerFile.prototype.writePages;
    LayerFile.prototype.writePages = () => Promise.reject(Object.assign(new Error('EIO: injected'), { code: 'EIO' }));
    try {
      await r.write(2 * bs, fill(3, bs), 4);
      await expectCode(r.snapshotCreate('s2', 5), 'io');
    } finally {
      LayerFile.prototype.writePages = orig;
    }
    expect(r.isFailed).to.equal(true);
    // Deleting the clone makes the hidden s1 foldable: the pool must not do it from the failed
    // replica's memory (ahead of the disk: a snapshot never made durable, a head never named).
    await pool.deleteReplica('cl');
    const chain = JSON.parse(await fs.readFile(path.join(dir, 'replicas', 'src.json'), 'utf8')) as { layers: { snapshot: { name: string } }[]; head: string };
    expect(chain.layers.map((l) => l.snapshot.name), 'the chain file holds no snapshot that was never durable').to.not.include('s2');
    const again = await pool.openReplica('src');
    expect(again.snapshots().map((s) => s.name)).to.deep.equal([]);
    const live = await again.readAt(0, 3 * bs);
    expect(live[0]).to.equal(1);
    expect(live[bs]).to.equal(2);
    await again.close();
    const copy = await crashCopy();
    const c = await copy.openReplica('src');
    const cl = await c.readAt(0, 2 * bs);
    expect(firstBytes(cl, 2)).to.deep.equal([1, 2]);
    await c.close();
  });

  it('keeps at most 8 sealed bitmaps in memory however many snapshots are cut (2 bits per block each)', async () => {
    await pool.createReplica({ volume: 'v', size: 1 * MiB });
    const r = await pool.openReplica('v');
    for (let k = 0; k < 20; k++) {
      await r.write(k * bs, fill(k + 1, bs), 2 * k + 1);
      await r.snapshotCreate(`s${k}`, 2 * k + 2);
    }
    const cache = (r as unknown as { bitsCache: Map<string, unknown> }).bitsCache;
    expect(cache.size).to.be.at.most(8);
    for (let k = 0; k < 20; k++) expect((await r.readSnapshotAt(`s${k}`, 0, 20 * bs))[k * bs]).to.equal(k + 1);
    await r.close();
  });

  it('a fold into a sealed child cut after the child took the blocks (before the chain rename) leaves every view as it was', async () => {
    await pool.createReplica({ volume: 'v', size: 1 * MiB });
    const r = await pool.openReplica('v');
    // s0: blocks 0-3 (block 3 a zero marker over nothing); s1 (bigger, so s0 folds into it): 2-9.
    await r.write(0, fill(1, 4 * bs), 1);
    await r.unmapSeq(3 * bs, bs, 2);
    await r.snapshotCreate('s0', 3);
    await r.write(2 * bs, fill(2, 8 * bs), 4);
    await r.snapshotCreate('s1', 5);
    await r.write(0, fill(3, bs), 6);
    await r.sync();
    const want = {
      live: [3, 1, 2, 2, 2, 2, 2, 2, 2, 2, 0],
      s0: [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0],
      s1: [1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 0],
    };
    const orig = LayerFile.prototype.writeBits;
    LayerFile.prototype.writeBits = async function (this: LayerFile, bits) {
      await orig.call(this, bits);
      throw Object.assign(new Error('killed after the child took the blocks'), { code: 'EIO' });
    };
    try {
      await expectRejection(r.snapshotDestroy('s0'), /killed after/);
    } finally {
      LayerFile.prototype.writeBits = orig;
    }
    const copy = await crashCopy();
    const c = await copy.openReplica('v');
    expect(c.snapshots().map((x) => x.name)).to.deep.equal(['s0', 's1']);
    expect(firstBytes(await c.readAt(0, 11 * bs), 11)).to.deep.equal(want.live);
    expect(firstBytes(await c.readSnapshotAt('s0', 0, 11 * bs), 11)).to.deep.equal(want.s0);
    expect(firstBytes(await c.readSnapshotAt('s1', 0, 11 * bs), 11)).to.deep.equal(want.s1);
    // And the fold, done again on the copy, keeps them too.
    await c.snapshotDestroy('s0');
    expect(c.snapshots().map((x) => x.name)).to.deep.equal(['s1']);
    expect(firstBytes(await c.readAt(0, 11 * bs), 11)).to.deep.equal(want.live);
    expect(firstBytes(await c.readSnapshotAt('s1', 0, 11 * bs), 11)).to.deep.equal(want.s1);
    await c.close();
    // The replica that saw the failure goes on reading the same.
    expect(firstBytes(await r.readAt(0, 11 * bs), 11)).to.deep.equal(want.live);
    expect(firstBytes(await r.readSnapshotAt('s1', 0, 11 * bs), 11)).to.deep.equal(want.s1);
    await r.close();
  });

  it('deleting a clone source cut between its chain file removal and its layer deletion: the clone reads the same, orphans go on open', async () => {
    await pool.createReplica({ volume: 'src', size: 1 * MiB });
    const r = await pool.openReplica('src');
    await r.write(0, fill(1, 2 * bs), 1);
    await r.snapshotCreate('s1', 2);
    await r.write(bs, fill(2, 2 * bs), 3);
    await r.snapshotCreate('s2', 4); // sealed by a seal record: the chain file lags
    await r.write(2 * bs, fill(3, bs), 5);
    await pool.createReplica({ volume: 'cl', size: 2 * MiB, cloneOf: { volume: 'src', snapshot: 's2' } });
    const cl = await pool.openReplica('cl');
    await cl.write(3 * bs, fill(4, bs), 1);
    await cl.sync();
    await r.close();
    const layersBefore = new Set(await fs.readdir(path.join(dir, 'layers')));
    const p = pool as unknown as { releaseLayers(ids: string[]): Promise<void> };
    const orig = p.releaseLayers;
    p.releaseLayers = () => Promise.reject(Object.assign(new Error('killed before the layer files go'), { code: 'EIO' }));
    try {
      await expectRejection(pool.deleteReplica('src'), /killed before/);
    } finally {
      p.releaseLayers = orig;
    }
    const copy = await crashCopy();
    expect(await copy.getReplica('src')).to.equal(null);
    const c = await copy.openReplica('cl');
    expect(firstBytes(await c.readAt(0, 5 * bs), 5)).to.deep.equal([1, 2, 2, 4, 0]);
    await c.close();
    // What is left in the copy's layers: exactly the clone's chain (s1, s2 and its head).
    const left = await fs.readdir(path.join(root, 'copy', 'layers'));
    const info = (await copy.listReplicas()).map((x) => x.volume);
    expect(info).to.deep.equal(['cl']);
    expect(left.length).to.equal(6);
    expect(layersBefore.size).to.be.above(left.length);
    expect(firstBytes(await cl.readAt(0, 5 * bs), 5)).to.deep.equal([1, 2, 2, 4, 0]);
    await cl.close();
  });

  it('a rebuild with live writes and a user snapshot between imports: the snapshot goes above the imported layers, also after a crash', async () => {
    // Source: s1 (blocks 0-1), R, the internal rebuild snapshot (block 1-2 rewritten).
    await pool.createReplica({ volume: 'v', size: 1 * MiB });
    const src = await pool.openReplica('v');
    await src.write(0, fill(1, 2 * bs), 1);
    await src.snapshotCreate('s1', 2);
    await src.write(bs, fill(2, 2 * bs), 3);
    await src.snapshotCreate('rebuild-r', 4);
    const pool2 = await openPool({ dir: path.join(root, 'pool2'), name: 'pool-b' });
    extra.push(pool2);
    await pool2.createReplica({ volume: 'v', size: 1 * MiB });
    const dst = await pool2.openReplica('v');
    await dst.rebuildStart(null);
    // Live writes (the fan-out) and a user snapshot x, on both, before any layer is imported.
    for (const x of [src, dst]) {
      await x.write(2 * bs, fill(5, bs), 5);
      await x.write(4 * bs, fill(6, bs), 6);
      await x.snapshotCreate('x', 7);
      await x.write(4 * bs, fill(7, bs), 8);
    }
    const copyLayer = async (name: string): Promise<void> => {
      const s = src.snapshots().find((y) => y.name === name)!;
      await dst.importLayerBegin(name, s.ioSeq);
      for (let cursor: number | null = 0; cursor !== null; ) {
        const page = await src.readLayer(name, cursor, 2 * bs);
        for (const run of page.runs) await dst.importLayerWrite(name, run.offset, run.data);
        cursor = page.next;
      }
      await dst.importLayerEnd(name);
    };
    await copyLayer('s1');
    await dst.sync();
    // The crash point: s1 imported, R not yet; x known only by its seal record.
    const mid = path.join(root, 'mid');
    await fs.cp(path.join(root, 'pool2'), mid, { recursive: true });
    await copyLayer('rebuild-r');
    await dst.rebuildDone();
    expect(dst.snapshots().map((y) => y.name)).to.deep.equal(['s1', 'rebuild-r', 'x']);
    for (const name of ['s1', 'rebuild-r', 'x']) {
      expect(firstBytes(await dst.readSnapshotAt(name, 0, 6 * bs), 6), name).to.deep.equal(firstBytes(await src.readSnapshotAt(name, 0, 6 * bs), 6));
    }
    expect(firstBytes(await dst.readAt(0, 6 * bs), 6)).to.deep.equal([1, 2, 5, 0, 7, 0]);
    const m = await openPool({ dir: mid, name: 'pool-b' });
    extra.push(m);
    const md = await m.openReplica('v');
    expect(md.mode).to.equal('Rebuilding');
    expect(md.snapshots().map((y) => y.name)).to.deep.equal(['s1', 'x']);
    expect(firstBytes(await md.readAt(0, 6 * bs), 6)).to.deep.equal([1, 1, 5, 0, 7, 0]);
    // The rebuild carries on from there: R goes beneath x.
    await md.importLayerBegin('rebuild-r', 4);
    for (let cursor: number | null = 0; cursor !== null; ) {
      const page = await src.readLayer('rebuild-r', cursor, 2 * bs);
      for (const run of page.runs) await md.importLayerWrite('rebuild-r', run.offset, run.data);
      cursor = page.next;
    }
    await md.importLayerEnd('rebuild-r');
    await md.rebuildDone();
    expect(md.snapshots().map((y) => y.name)).to.deep.equal(['s1', 'rebuild-r', 'x']);
    expect(firstBytes(await md.readSnapshotAt('x', 0, 6 * bs), 6)).to.deep.equal(firstBytes(await src.readSnapshotAt('x', 0, 6 * bs), 6));
    expect(firstBytes(await md.readAt(0, 6 * bs), 6)).to.deep.equal([1, 2, 5, 0, 7, 0]);
    await md.close();
    await dst.close();
    await src.close();
  });

  it('a clone of a snapshot and the destroy of that snapshot, issued together, in either order: the clone reads the snapshot', async () => {
    for (const cloneFirst of [true, false]) {
      const v = cloneFirst ? 'a' : 'b';
      await pool.createReplica({ volume: v, size: 1 * MiB });
      const r = await pool.openReplica(v);
      await r.write(0, fill(1, 2 * bs), 1);
      await r.snapshotCreate('s1', 2);
      await r.write(0, fill(2, bs), 3);
      const clone = (): Promise<unknown> => pool.createReplica({ volume: `${v}-clone`, size: 1 * MiB, cloneOf: { volume: v, snapshot: 's1' } });
      const destroy = (): Promise<unknown> => r.snapshotDestroy('s1');
      const [c, d] = await Promise.allSettled(cloneFirst ? [clone(), destroy()] : [destroy(), clone()].reverse());
      expect(d!.status).to.equal('fulfilled');
      expect(r.snapshots()).to.deep.equal([]);
      expect(firstBytes(await r.readAt(0, 2 * bs), 2)).to.deep.equal([2, 1]);
      if (c!.status === 'fulfilled') {
        const cr = await pool.openReplica(`${v}-clone`);
        expect(firstBytes(await cr.readAt(0, 2 * bs), 2), `clone first: ${cloneFirst}`).to.deep.equal([1, 1]);
        await cr.close();
        await pool.deleteReplica(`${v}-clone`);
      } else {
        expect(hasErrorCode(c!.reason, 'not_found'), String(c!.reason)).to.equal(true);
      }
      // Whichever way it went, nothing of s1 is left once no clone needs it.
      expect((await pool.getReplica(v))!.snapshots).to.deep.equal([]);
      expect(firstBytes(await r.readAt(0, 2 * bs), 2)).to.deep.equal([2, 1]);
      await r.close();
      const again = await pool.openReplica(v);
      expect((again as unknown as { chain: { layers: unknown[] } }).chain.layers, 'the hidden layer was folded once the clone went').to.have.length(0);
      await again.close();
    }
  });

  it('a background writeback in flight while the replica is deleted (and its name reused) does no harm', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown): void => void unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    configureWriteback(4 * KiB);
    const gate = deferred();
    const orig = LayerFile.prototype.syncData;
    let started = 0;
    LayerFile.prototype.syncData = async function (this: LayerFile) {
      started++;
      await gate.promise;
      return orig.call(this);
    };
    try {
      await pool.createReplica({ volume: 'v', size: 1 * MiB });
      const r = await pool.openReplica('v');
      await r.write(0, fill(1, bs), 1); // starts a writeback, which now waits
      expect(started).to.equal(1);
      LayerFile.prototype.syncData = orig;
      await pool.deleteReplica('v');
      expect(await fs.readdir(path.join(dir, 'layers'))).to.deep.equal([]);
      await pool.createReplica({ volume: 'v', size: 1 * MiB });
      const r2 = await pool.openReplica('v');
      await r2.write(bs, fill(2, bs), 1);
      gate.resolve();
      await new Promise((res) => setTimeout(res, 50));
      await r2.sync();
      expect(firstBytes(await r2.readAt(0, 2 * bs), 2)).to.deep.equal([0, 2]);
      await expectCode(r.write(0, fill(3, bs), 2), 'aborted');
      await r2.close();
      expect(unhandled).to.deep.equal([]);
    } finally {
      LayerFile.prototype.syncData = orig;
      gate.resolve();
      configureWriteback(defaultWritebackBytes);
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('readHeadSince after a fold into the head, with a hidden layer above the last listed snapshot, and after a restart', async () => {
    await pool.createReplica({ volume: 'v', size: 1 * MiB });
    const r = await pool.openReplica('v');
    await r.write(0, fill(1, bs), 1);
    await r.snapshotCreate('s1', 2);
    await r.write(bs, fill(2, bs), 3);
    await r.snapshotCreate('s2', 4);
    await r.write(2 * bs, fill(3, bs), 5);
    await r.snapshotCreate('s3', 6);
    await r.write(3 * bs, fill(4, bs), 7);
    await pool.createReplica({ volume: 'c', size: 1 * MiB, cloneOf: { volume: 'v', snapshot: 's3' } });
    await r.snapshotDestroy('s3'); // a clone needs it: hidden, above the last listed snapshot (s2)
    await r.snapshotDestroy('s2'); // the clone's chain names it too (as a base layer): hidden as well
    const since = async (x: Replica, seq: number): Promise<[number, number, number][]> => {
      const out: [number, number, number][] = [];
      for (let cursor: number | null = 0; cursor !== null; ) {
        const page = await x.readHeadSince(seq, cursor, 1 * MiB);
        for (const run of page.runs) for (let k = 0; k < run.data.length / bs; k++) out.push([run.offset / bs + k, run.data[k * bs]!, run.ioSeq ?? -1]);
        cursor = page.next;
      }
      return out;
    };
    // Everything above s1 (io_seq 2): s2's block at 3, s3's at 5, the head's at 7.
    expect((await since(r, 1)).map((x) => x.slice(0, 2))).to.deep.equal([[1, 2], [2, 3], [3, 4]]);
    expect((await since(r, 3)).map((x) => x.slice(0, 2))).to.deep.equal([[2, 3], [3, 4]]);
    expect((await since(r, 5)).map((x) => x.slice(0, 2))).to.deep.equal([[3, 4]]);
    expect(await since(r, 7)).to.deep.equal([]);
    // The clone goes: both hidden layers are folded into the head; nothing a rebuild from s1 needs is lost.
    await pool.deleteReplica('c');
    expect((r as unknown as { chain: { layers: unknown[] } }).chain.layers).to.have.length(1);
    expect((await since(r, 2)).map((x) => x.slice(0, 2))).to.deep.equal([[1, 2], [2, 3], [3, 4]]);
    await r.sync();
    const copy = await crashCopy();
    const c = await copy.openReplica('v');
    // After a restart every head block counts as written at the highest io_seq its bitmap may hold.
    const after = await since(c, 2);
    expect(after.map((x) => x.slice(0, 2))).to.deep.equal([[1, 2], [2, 3], [3, 4]]);
    for (const x of after) expect(x[2]).to.be.at.least(7);
    expect(firstBytes(await c.readAt(0, 4 * bs), 4)).to.deep.equal([1, 2, 3, 4]);
    expect(firstBytes(await c.readSnapshotAt('s1', 0, 4 * bs), 4)).to.deep.equal([1, 0, 0, 0]);
    await c.close();
    await r.close();
  });

  it('accounts the same space in a crash copy (seal records pending, a clone sharing layers) as in the running pool', async () => {
    await pool.createReplica({ volume: 'v', size: 1 * MiB });
    const r = await pool.openReplica('v');
    await r.write(0, fill(1, 4 * bs), 1);
    await r.snapshotCreate('s1', 2);
    await r.write(0, fill(2, 2 * bs), 3);
    await r.unmapSeq(3 * bs, bs, 4);
    await r.snapshotCreate('s2', 5);
    await r.write(8 * bs, fill(3, bs), 6);
    await pool.createReplica({ volume: 'c', size: 1 * MiB, cloneOf: { volume: 'v', snapshot: 's1' } });
    const cl = await pool.openReplica('c');
    await cl.write(bs, fill(4, 3 * bs), 1);
    await cl.sync();
    await r.sync();
    const live = { space: (await pool.space()).usedBytes, v: (await pool.getReplica('v'))!, c: (await pool.getReplica('c'))! };
    expect(live.v.usedBytes, 'v: s2 (2 blocks) + head (1); s1 is shared').to.equal(3 * bs);
    expect(live.c.usedBytes).to.equal(3 * bs);
    expect(live.space).to.equal((4 + 2 + 1 + 3) * bs);
    const copy = await crashCopy();
    expect((await copy.space()).usedBytes).to.equal(live.space);
    for (const name of ['v', 'c'] as const) {
      const info = (await copy.getReplica(name))!;
      expect(info.usedBytes, name).to.equal(live[name].usedBytes);
      expect(info.snapshots, name).to.deep.equal(live[name].snapshots);
      expect(info.checkpointedIoSeq, name).to.equal(live[name].checkpointedIoSeq);
    }
    await cl.close();
    await r.close();
  });

  it('snapshot destroys during a rebuild, beneath and above where imports go: imports still land between them', async () => {
    await pool.createReplica({ volume: 'v', size: 1 * MiB });
    const r = await pool.openReplica('v');
    await r.write(0, fill(1, bs), 1);
    await r.snapshotCreate('s0', 2);
    await r.write(bs, fill(2, bs), 3);
    await r.snapshotCreate('s1', 4);
    await r.write(2 * bs, fill(9, bs), 5); // stale head data, dropped by rebuildStart
    await r.rebuildStart('s1'); // keeps s0 and s1; imports go above s1
    await r.write(4 * bs, fill(5, bs), 20);
    await r.snapshotCreate('x', 21); // above where imports go
    await r.write(5 * bs, fill(6, bs), 22);
    await r.snapshotDestroy('s0'); // beneath: folded into s1 (never merged up while Rebuilding)
    await r.importLayerBegin('s2', 10);
    await r.importLayerWrite('s2', 2 * bs, fill(3, 2 * bs));
    await r.importLayerWrite('s2', 4 * bs, fill(4, bs)); // older than the live write at block 4
    await r.snapshotDestroy('x'); // above: folded into the head, while s2 is being imported
    await r.importLayerEnd('s2');
    await r.importLayerBegin('s3', 12);
    await r.importLayerWrite('s3', 3 * bs, fill(7, bs));
    await r.importLayerEnd('s3');
    await r.rebuildDone();
    expect(r.snapshots().map((x) => x.name)).to.deep.equal(['s1', 's2', 's3']);
    const want = { live: [1, 2, 3, 7, 5, 6], s1: [1, 2, 0, 0, 0, 0], s2: [1, 2, 3, 3, 4, 0], s3: [1, 2, 3, 7, 4, 0] };
    const check = async (x: Replica, what: string): Promise<void> => {
      expect(firstBytes(await x.readAt(0, 6 * bs), 6), `${what} live`).to.deep.equal(want.live);
      for (const name of ['s1', 's2', 's3'] as const) expect(firstBytes(await x.readSnapshotAt(name, 0, 6 * bs), 6), `${what} ${name}`).to.deep.equal(want[name]);
    };
    await check(r, 'running');
    await r.sync();
    const copy = await crashCopy();
    const c = await copy.openReplica('v');
    expect(c.mode).to.equal('Healthy');
    await check(c, 'reopened');
    await c.close();
    await r.close();
  });

  it('refuses rebuild-source and snapshot reads on a closed replica with aborted (not an internal error)', async () => {
    await pool.createReplica({ volume: 'v', size: 1 * MiB });
    const r = await pool.openReplica('v');
    await r.write(0, fill(1, bs), 1);
    await r.snapshotCreate('s1', 2);
    await r.close();
    await expectCode(r.readLayer('s1', 0, 1 * MiB), 'aborted');
    await expectCode(r.readHeadSince(0, 0, 1 * MiB), 'aborted');
    await expectCode(r.readSnapshotAt('s1', 0, bs), 'aborted');
  });

  it('a write the disk refuses marks the replica Rebuilding, durably, before the error is answered; later writes do not make it trusted', async () => {
    await pool.createReplica({ volume: 'v', size: 1 * MiB });
    const r = await pool.openReplica('v');
    await r.markHealthy();
    await r.write(0, fill(1, bs), 1);
    const eio = (): never => {
      throw Object.assign(new Error('ENOSPC: injected'), { code: 'ENOSPC' });
    };
    const orig = { writeNow: LayerFile.prototype.writeNow, write: LayerFile.prototype.write };
    LayerFile.prototype.writeNow = eio;
    LayerFile.prototype.write = () => Promise.reject(Object.assign(new Error('ENOSPC: injected'), { code: 'ENOSPC' }));
    try {
      await expectRejection(r.write(bs, fill(2, bs), 2), /ENOSPC: injected/);
    } finally {
      Object.assign(LayerFile.prototype, orig);
    }
    expect(r.mode).to.equal('Rebuilding');
    // A later write lands (an overwrite, say): the checkpoint passes io_seq 2, which is missing.
    await r.write(0, fill(3, bs), 3);
    await r.sync();
    expect(r.checkpointedIoSeq).to.equal(3);
    expect(firstBytes(await r.readAt(0, 2 * bs), 2)).to.deep.equal([3, 0]);
    // On disk too: a target that never saw the error still finds a replica to rebuild.
    const copy = await crashCopy();
    expect((await copy.openReplica('v')).mode).to.equal('Rebuilding');
  });

  it('a write the disk refuses fails the replica when even the mark cannot be saved', async () => {
    await pool.createReplica({ volume: 'v', size: 1 * MiB });
    const r = await pool.openReplica('v');
    await r.markHealthy();
    const orig = { writeNow: LayerFile.prototype.writeNow, write: LayerFile.prototype.write };
    const saveMeta = (pool as unknown as { saveMeta: (m: unknown) => Promise<void> }).saveMeta;
    LayerFile.prototype.writeNow = () => {
      throw Object.assign(new Error('EIO: injected'), { code: 'EIO' });
    };
    LayerFile.prototype.write = () => Promise.reject(Object.assign(new Error('EIO: injected'), { code: 'EIO' }));
    (pool as unknown as { saveMeta: () => Promise<void> }).saveMeta = () => Promise.reject(Object.assign(new Error('EIO: metadata'), { code: 'EIO' }));
    try {
      await expectRejection(r.write(0, fill(2, bs), 2), /EIO: injected/);
    } finally {
      Object.assign(LayerFile.prototype, orig);
      (pool as unknown as { saveMeta: unknown }).saveMeta = saveMeta;
    }
    expect(r.isFailed).to.equal(true);
    await expectCode(r.readAt(0, bs), 'io');
    await expectCode(r.write(0, fill(3, bs), 3), 'io');
  });
});
