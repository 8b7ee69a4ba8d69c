import { expect } from 'chai';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LayerFile } from './layer-file.ts';
import { openPool } from './pool.ts';
import { expectCode, fill, KiB, MiB } from './test-helpers.ts';
import { configureWriteback, defaultWritebackBytes } from './writeback.ts';
import type { Pool } from './types.ts';

describe('pool store', () => {
  let dir: string;
  let pool: Pool;

  beforeEach(async () => {
    // The pool one level down, so its parent (checked for escapes) is this test's alone.
    dir = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'pool-store-')), 'pool');
    pool = await openPool({ dir, name: 'pool-a' });
  });
  afterEach(async () => {
    await pool.close();
    await fs.rm(path.dirname(dir), { recursive: true, force: true });
  });

  it('reads zeros before any write, then what was written, across a reopen', async () => {
    await pool.createReplica({ volume: 'vol-1', size: 4 * MiB });
    const r = await pool.openReplica('vol-1');
    expect((await r.readAt(0, 64 * KiB)).equals(Buffer.alloc(64 * KiB))).to.equal(true);
    await r.write(8 * KiB, fill(7, 12 * KiB), 1);
    await r.write(1 * MiB, fill(9, 1 * MiB), 2);
    await r.sync();
    expect(r.checkpointedIoSeq).to.equal(2);
    const got = await r.readAt(0, 2 * MiB + 4 * KiB);
    expect(got.subarray(0, 8 * KiB).every((b) => b === 0)).to.equal(true);
    expect(got.subarray(8 * KiB, 20 * KiB).every((b) => b === 7)).to.equal(true);
    expect(got.subarray(1 * MiB, 2 * MiB).every((b) => b === 9)).to.equal(true);
    await pool.close();
    pool = await openPool({ dir, name: 'pool-a' });
    const r2 = await pool.openReplica('vol-1');
    expect(r2.checkpointedIoSeq).to.equal(2);
    expect((await r2.readAt(0, 2 * MiB + 4 * KiB)).equals(got)).to.equal(true);
    const info = await pool.getReplica('vol-1');
    expect(info?.usedBytes).to.equal(12 * KiB + 1 * MiB);
  });

  it('snapshots keep their data while the volume changes; unmap over a snapshot reads zeros live only', async () => {
    await pool.createReplica({ volume: 'vol-1', size: 1 * MiB });
    const r = await pool.openReplica('vol-1');
    await r.write(0, fill(1, 64 * KiB), 1);
    await r.snapshotCreate('s1', 2);
    await r.snapshotCreate('s1', 2); // idempotent
    await r.write(0, fill(2, 4 * KiB), 3);
    await r.unmapSeq(16 * KiB, 16 * KiB, 4);
    const live = await r.readAt(0, 64 * KiB);
    expect(live.subarray(0, 4 * KiB).every((b) => b === 2)).to.equal(true);
    expect(live.subarray(4 * KiB, 16 * KiB).every((b) => b === 1)).to.equal(true);
    expect(live.subarray(16 * KiB, 32 * KiB).every((b) => b === 0)).to.equal(true);
    const snap = await r.readSnapshotAt('s1', 0, 64 * KiB);
    expect(snap.every((b) => b === 1)).to.equal(true);
    expect(r.snapshots().map((s) => [s.name, s.ioSeq, s.usedBytes])).to.deep.equal([['s1', 2, 64 * KiB]]);
    // Deleting the snapshot folds it into the head: the live view is unchanged.
    await r.snapshotDestroy('s1');
    await r.snapshotDestroy('s1');
    expect(r.snapshots()).to.deep.equal([]);
    expect((await r.readAt(0, 64 * KiB)).equals(live)).to.equal(true);
    await pool.close();
    pool = await openPool({ dir, name: 'pool-a' });
    const r2 = await pool.openReplica('vol-1');
    expect((await r2.readAt(0, 64 * KiB)).equals(live)).to.equal(true);
    await r2.close(); // (an open replica also keeps a spare head ready)
    expect(await fs.readdir(path.join(dir, 'layers'))).to.have.length(2);
  });

  it('clones survive deleting their source snapshot and volume', async () => {
    await pool.createReplica({ volume: 'src', size: 1 * MiB });
    const r = await pool.openReplica('src');
    await r.write(0, fill(5, 8 * KiB), 1);
    await r.snapshotCreate('snap', 2);
    await r.write(0, fill(6, 8 * KiB), 3);
    await r.snapshotCreate('later', 4);
    const ci = await pool.createReplica({ volume: 'clone', size: 2 * MiB, cloneOf: { volume: 'src', snapshot: 'snap' } });
    expect(ci.cloneOf).to.equal('src@snap');
    expect((await pool.getReplica('src'))?.clones).to.deep.equal(['clone']);
    await expectCode(pool.createReplica({ volume: 'small', size: 512 * KiB, cloneOf: { volume: 'src', snapshot: 'snap' } }), 'invalid');
    await expectCode(pool.createReplica({ volume: 'x', size: 1 * MiB, cloneOf: { volume: 'src', snapshot: 'nope' } }), 'not_found');
    const c = await pool.openReplica('clone');
    await c.write(4 * KiB, fill(8, 4 * KiB), 1);
    await r.snapshotDestroy('snap');
    expect(r.snapshots().map((s) => s.name)).to.deep.equal(['later']);
    expect((await r.readSnapshotAt('later', 0, 8 * KiB)).every((b) => b === 6)).to.equal(true);
    await pool.deleteReplica('src');
    await pool.deleteReplica('src');
    const got = await c.readAt(0, 12 * KiB);
    expect(got.subarray(0, 4 * KiB).every((b) => b === 5)).to.equal(true);
    expect(got.subarray(4 * KiB, 8 * KiB).every((b) => b === 8)).to.equal(true);
    expect(got.subarray(8 * KiB).every((b) => b === 0)).to.equal(true);
    await pool.close();
    pool = await openPool({ dir, name: 'pool-a' });
    const c2 = await pool.openReplica('clone');
    expect((await c2.readAt(0, 12 * KiB)).equals(got)).to.equal(true);
    await c2.close();
    // Only the clone's base layer and head are left.
    expect(await fs.readdir(path.join(dir, 'layers'))).to.have.length(4);
    await pool.deleteReplica('clone');
    expect(await fs.readdir(path.join(dir, 'layers'))).to.have.length(0);
    expect((await pool.space()).usedBytes).to.equal(0);
  });

  it('refuses bad names without creating anything outside the pool directory', async () => {
    const bad = ['../x', 'a/b', '.', '..', '', 'A', 'Vol', 'x'.repeat(251), '/etc/passwd', 'a\0b', '-a', 'a_b'];
    for (const name of bad) {
      await expectCode(pool.createReplica({ volume: name, size: 1 * MiB }), 'invalid');
      await expectCode(pool.openReplica(name), 'invalid');
      await expectCode(pool.deleteReplica(name), 'invalid');
    }
    await pool.createReplica({ volume: 'ok', size: 1 * MiB });
    const r = await pool.openReplica('ok');
    // Snapshot names are ids like <pv>_<snap>_<nanos>: '_' and capitals are fine, paths are not.
    const badSnapshots = ['../x', 'a/b', '.', '..', '', '/etc/passwd', 'a\0b', '-a', '_a', 'x'.repeat(254)];
    for (const name of badSnapshots) {
      await expectCode(r.snapshotCreate(name, 1), 'invalid');
      await expectCode(r.snapshotDestroy(name), 'invalid');
      await expectCode(r.readLayer(name, 0, 4096), 'invalid');
    }
    expect(r.snapshots()).to.deep.equal([]);
    await r.snapshotCreate('pvc-1_snap-1_1700000000000000000', 1);
    expect(r.snapshots().map((s) => s.name)).to.deep.equal(['pvc-1_snap-1_1700000000000000000']);
    await r.snapshotDestroy('pvc-1_snap-1_1700000000000000000');
    expect(r.snapshots()).to.deep.equal([]);
    await expectCode(pool.createReplica({ volume: 'c', size: 1 * MiB, cloneOf: { volume: '../x', snapshot: 's' } }), 'invalid');
    expect((await fs.readdir(dir)).sort()).to.deep.equal(['layers', 'pool.json', 'replicas']);
    expect(await fs.readdir(path.join(dir, 'replicas'))).to.deep.equal(['ok.json']);
    const parent = await fs.readdir(path.dirname(dir));
    expect(parent.filter((f) => f === 'x' || f === 'b')).to.deep.equal([]);
  });

  it('refuses out-of-range and unaligned IO and bad sizes', async () => {
    await expectCode(pool.createReplica({ volume: 'v', size: 1000 }), 'invalid');
    await expectCode(pool.createReplica({ volume: 'v', size: 0 }), 'invalid');
    await expectCode(pool.createReplica({ volume: 'v', size: 1 * MiB, blockSize: 1000 }), 'invalid');
    await pool.createReplica({ volume: 'v', size: 1 * MiB });
    await expectCode(pool.createReplica({ volume: 'v', size: 2 * MiB }), 'already_exists');
    const r = await pool.openReplica('v');
    await expectCode(r.readAt(1 * MiB, 4 * KiB), 'invalid');
    await expectCode(r.readAt(-4096, 4 * KiB), 'invalid');
    await expectCode(r.readAt(100, 4 * KiB), 'invalid');
    await expectCode(r.write(1 * MiB - 4 * KiB, fill(1, 8 * KiB), 1), 'invalid');
    await expectCode(r.write(0, fill(1, 100), 1), 'invalid');
    await expectCode(r.unmapSeq(0, 2 * MiB, 1), 'invalid');
    await expectCode(r.write(0, fill(1, 4 * KiB), -1), 'invalid');
    await expectCode(r.readLayer('nope', 0, 1 * MiB), 'not_found');
    await expectCode(r.readHeadSince(0, -1, 1 * MiB), 'invalid');
  });

  it('rebuilds a second replica from snapshots and the head, importing beneath live writes', async () => {
    await pool.createReplica({ volume: 'v', size: 1 * MiB });
    const src = await pool.openReplica('v');
    await src.write(0, fill(1, 16 * KiB), 1);
    await src.snapshotCreate('a', 2);
    await src.write(8 * KiB, fill(2, 16 * KiB), 2);
    await src.unmapSeq(0, 4 * KiB, 3);
    await src.snapshotCreate('b', 4);
    await src.write(64 * KiB, fill(3, 4 * KiB), 4);
    await src.unmapSeq(8 * KiB, 4 * KiB, 5);

    const dir2 = await fs.mkdtemp(path.join(os.tmpdir(), 'pool-store-'));
    const pool2 = await openPool({ dir: dir2, name: 'pool-b' });
    try {
      await pool2.createReplica({ volume: 'v', size: 1 * MiB });
      const dst = await pool2.openReplica('v');
      await dst.write(0, fill(9, 4 * KiB), 1); // stale data, discarded by rebuildStart
      await dst.rebuildStart(null);
      expect(dst.mode).to.equal('Rebuilding');
      await dst.write(128 * KiB, fill(7, 4 * KiB), 6); // a live write during the rebuild
      for (const s of src.snapshots()) {
        await dst.importLayerBegin(s.name, s.ioSeq);
        for (let cursor: number | null = 0; cursor !== null; ) {
          const page = await src.readLayer(s.name, cursor, 8 * KiB);
          for (const run of page.runs) await dst.importLayerWrite(s.name, run.offset, run.data);
          cursor = page.next;
        }
        await dst.importLayerEnd(s.name);
      }
      for (let cursor: number | null = 0; cursor !== null; ) {
        const page = await src.readHeadSince(3, cursor, 1 * MiB);
        for (const run of page.runs) await dst.writeIfNewer(run.offset, run.data, run.ioSeq ?? 0);
        cursor = page.next;
      }
      await src.write(128 * KiB, fill(7, 4 * KiB), 6);
      await dst.rebuildDone();
      expect(dst.mode).to.equal('Healthy');
      expect((await dst.readAt(0, 1 * MiB)).equals(await src.readAt(0, 1 * MiB))).to.equal(true);
      for (const s of ['a', 'b']) {
        expect((await dst.readSnapshotAt(s, 0, 1 * MiB)).equals(await src.readSnapshotAt(s, 0, 1 * MiB))).to.equal(true);
      }
      expect(dst.snapshots().map((s) => s.name)).to.deep.equal(['a', 'b']);
    } finally {
      await pool2.close();
      await fs.rm(dir2, { recursive: true, force: true });
    }
  });

  it('accounts space per replica and per pool, counting shared layers once', async () => {
    await pool.createReplica({ volume: 'src', size: 1 * MiB });
    const r = await pool.openReplica('src');
    await r.write(0, fill(1, 64 * KiB), 1);
    await r.snapshotCreate('s', 2);
    await r.write(0, fill(2, 16 * KiB), 3);
    await r.unmapSeq(64 * KiB, 64 * KiB, 4); // nothing there: dropped, no space
    await pool.createReplica({ volume: 'cl', size: 1 * MiB, cloneOf: { volume: 'src', snapshot: 's' } });
    const c = await pool.openReplica('cl');
    await c.write(128 * KiB, fill(3, 8 * KiB), 1);
    await r.unmapSeq(0, 16 * KiB, 5); // head blocks over snapshot data: zero markers, no space
    const src = await pool.getReplica('src');
    expect(src?.usedBytes).to.equal(0); // its snapshot layer is shared with the clone
    expect(src?.snapshots.map((x) => x.usedBytes)).to.deep.equal([64 * KiB]);
    expect((await pool.getReplica('cl'))?.usedBytes).to.equal(8 * KiB);
    expect((await pool.space()).usedBytes).to.equal(64 * KiB + 8 * KiB);
    expect(r.stats()).to.include({ writes: 2, usedBytes: 0, snapshots: 1 });
    expect((await r.readAt(0, 16 * KiB)).every((b) => b === 0)).to.equal(true);
    expect((await r.readSnapshotAt('s', 0, 16 * KiB)).every((b) => b === 1)).to.equal(true);
    await pool.deleteReplica('cl');
    expect((await pool.getReplica('src'))?.usedBytes).to.equal(64 * KiB);
  });

  it('keeps the checkpoint behind writes still in flight, and persists it', async () => {
    await pool.createReplica({ volume: 'v', size: 4 * MiB });
    const r = await pool.openReplica('v');
    const writes = Array.from({ length: 64 }, (_x, k) => r.write(k * 64 * KiB, fill(k, 64 * KiB), k + 1));
    const syncs = [r.sync(), r.sync()];
    await Promise.all([...writes, ...syncs]);
    expect(r.checkpointedIoSeq).to.be.at.most(64);
    await r.sync();
    expect(r.checkpointedIoSeq).to.equal(64);
    await r.snapshotCreate('s', 65);
    await pool.close();
    pool = await openPool({ dir, name: 'pool-a' });
    const info = await pool.getReplica('v');
    expect(info?.checkpointedIoSeq).to.equal(64);
    const r2 = await pool.openReplica('v');
    for (let k = 0; k < 64; k += 9) expect((await r2.readAt(k * 64 * KiB, 64 * KiB)).every((b) => b === k)).to.equal(true);
  });

  it('persists modes and refuses transitions the contract forbids', async () => {
    await pool.createReplica({ volume: 'v', size: 1 * MiB });
    const r = await pool.openReplica('v');
    expect(r.mode).to.equal('New');
    await expectCode(r.rebuildDone(), 'conflict');
    await expectCode(r.importLayerBegin('s', 1), 'conflict');
    await r.markHealthy();
    await r.markHealthy();
    expect(r.mode).to.equal('Healthy');
    await r.rebuildStart(null);
    await expectCode(r.markHealthy(), 'conflict');
    await pool.close();
    pool = await openPool({ dir, name: 'pool-a' });
    const r2 = await pool.openReplica('v');
    expect(r2.mode).to.equal('Rebuilding');
    await r2.rebuildDone();
    expect((await pool.getReplica('v'))?.mode).to.equal('Healthy');
  });

  it('collects orphan layers, tmp files and an import cut short by a crash', async () => {
    await pool.createReplica({ volume: 'v', size: 1 * MiB });
    const r = await pool.openReplica('v');
    await r.write(0, fill(4, 8 * KiB), 1);
    await r.rebuildStart(null);
    await r.importLayerBegin('imp', 5);
    await r.importLayerWrite('imp', 0, fill(6, 8 * KiB));
    await r.sync();
    await fs.writeFile(path.join(dir, 'replicas', '0123456789abcdef.tmp'), 'partial');
    await fs.writeFile(path.join(dir, 'layers', 'fedcba9876543210.data'), 'orphan');
    // A second instance on the same directory sees what a restart after a crash would.
    const after = await openPool({ dir, name: 'pool-a' });
    try {
      const files = await fs.readdir(path.join(dir, 'layers'));
      const meta = JSON.parse(await fs.readFile(path.join(dir, 'replicas', 'v.json'), 'utf8')) as { head: string; layers: unknown[] };
      expect(meta.layers).to.deep.equal([]);
      expect(files.sort()).to.deep.equal([`${meta.head}.data`, `${meta.head}.map`].sort());
      expect(await fs.readdir(path.join(dir, 'replicas'))).to.deep.equal(['v.json']);
      const r2 = await after.openReplica('v');
      expect(r2.snapshots()).to.deep.equal([]);
      expect(r2.mode).to.equal('Rebuilding');
      expect((await r2.readAt(0, 8 * KiB)).every((b) => b === 0)).to.equal(true);
    } finally {
      await after.close();
    }
  });

  it('skips layer garbage collection when a chain file is unreadable, and still serves the others', async () => {
    await pool.createReplica({ volume: 'good', size: 1 * MiB });
    await pool.createReplica({ volume: 'bad', size: 1 * MiB });
    const g = await pool.openReplica('good');
    await g.write(0, fill(1, 4 * KiB), 1);
    await pool.close();
    await fs.writeFile(path.join(dir, 'replicas', 'bad.json'), '{"format": 1, "trunc');
    const before = (await fs.readdir(path.join(dir, 'layers'))).sort();
    pool = await openPool({ dir, name: 'pool-a' });
    expect((await pool.listReplicas()).map((i) => i.volume)).to.deep.equal(['good']);
    const g2 = await pool.openReplica('good');
    expect((await g2.readAt(0, 4 * KiB)).every((b) => b === 1)).to.equal(true);
    await g2.close();
    expect((await fs.readdir(path.join(dir, 'layers'))).sort()).to.deep.equal(before);
  });

  it('takes a snapshot between pipelined writes: each write is wholly before or after it', async () => {
    await pool.createReplica({ volume: 'v', size: 4 * MiB });
    const r = await pool.openReplica('v');
    const inFlight: Promise<unknown>[] = [];
    for (let k = 0; k < 200; k++) {
      inFlight.push(r.write(k * 16 * KiB, fill((k % 250) + 1, 16 * KiB), k + 1));
      if (k === 100) inFlight.push(r.snapshotCreate('mid', 101));
      if (k % 20 === 0) inFlight.push(r.readAt(0, 1 * MiB));
    }
    await Promise.all(inFlight);
    const live = await r.readAt(0, 200 * 16 * KiB);
    const snap = await r.readSnapshotAt('mid', 0, 200 * 16 * KiB);
    for (let k = 0; k < 200; k++) {
      const want = (k % 250) + 1;
      const l = live.subarray(k * 16 * KiB, (k + 1) * 16 * KiB);
      const sn = snap.subarray(k * 16 * KiB, (k + 1) * 16 * KiB);
      expect(l.every((b) => b === want), `live block ${k}`).to.equal(true);
      expect(sn.every((b) => b === want) || sn.every((b) => b === 0), `snapshot block ${k}`).to.equal(true);
    }
  });

  describe('two-step snapshot (cut, then durable while IO goes on)', () => {
    it('lets writes go on after the cut: they land in the new head, not in the snapshot, and a sync waits for durability', async () => {
      await pool.createReplica({ volume: 'v', size: 4 * MiB });
      const r = await pool.openReplica('v');
      await r.write(0, fill(1, 64 * KiB), 1);
      await r.write(64 * KiB, fill(2, 64 * KiB), 2); // dirty: the persist step syncs it
      const staged = r.snapshotCreateStaged!('s1', 3);
      let durable = false;
      void staged.durable.then(() => (durable = true));
      await staged.cut;
      // After the cut: writes and reads go on at once, before the snapshot is durable.
      await r.write(0, fill(3, 4 * KiB), 3);
      expect((await r.readAt(0, 4 * KiB)).every((b) => b === 3)).to.equal(true);
      await r.sync(); // waits for the seal: the new head is durable only in the new chain
      expect(durable, 'sync returned after the snapshot was durable').to.equal(true);
      await staged.durable;
      expect(r.snapshots().map((x) => x.name)).to.deep.equal(['s1']);
      const snap = await r.readSnapshotAt('s1', 0, 128 * KiB);
      expect(snap.subarray(0, 64 * KiB).every((b) => b === 1), 'snapshot has the pre-cut data').to.equal(true);
      expect(snap.subarray(64 * KiB).every((b) => b === 2)).to.equal(true);
      expect(r.checkpointedIoSeq).to.equal(3);
      // Idempotent, staged or not.
      await r.snapshotCreateStaged!('s1', 4).durable;
      expect(r.snapshots()).to.have.length(1);
    });

    it('commits by a seal record: the chain file lags until close, and a copy of the directory taken while open opens with every snapshot', async () => {
      await pool.createReplica({ volume: 'v', size: 1 * MiB });
      const r = await pool.openReplica('v');
      const chainFile = path.join(dir, 'replicas', 'v.json');
      const before = await fs.readFile(chainFile, 'utf8');
      for (let k = 0; k < 3; k++) {
        await r.write(k * 4 * KiB, fill(10 + k, 4 * KiB), 2 * k + 1);
        await r.snapshotCreate(`s${k}`, 2 * k + 2);
      }
      await r.write(12 * KiB, fill(20, 4 * KiB), 7);
      await r.sync();
      expect(await fs.readFile(chainFile, 'utf8'), 'the chain file is not rewritten by a snapshot').to.equal(before);
      // What a crash now would leave: the files as they are (all of it durable).
      const copy = path.join(path.dirname(dir), 'copy');
      await fs.cp(dir, copy, { recursive: true });
      const other = await openPool({ dir: copy, name: 'pool-a' });
      try {
        const info = (await other.getReplica('v'))!;
        expect(info.snapshots.map((x) => x.name)).to.deep.equal(['s0', 's1', 's2']);
        expect(info.checkpointedIoSeq).to.equal(7);
        const c = await other.openReplica('v');
        const live = await c.readAt(0, 16 * KiB);
        for (let k = 0; k < 4; k++) expect(live[k * 4 * KiB], `block ${k}`).to.equal(k < 3 ? 10 + k : 20);
        expect((await c.readSnapshotAt('s1', 0, 16 * KiB)).subarray(8 * KiB).every((b) => b === 0)).to.equal(true);
        expect((await c.readSnapshotAt('s1', 0, 16 * KiB))[4 * KiB]).to.equal(11);
        await c.close();
      } finally {
        await other.close();
      }
      // The other pool's close caught its chain file up; ours catches up on close too.
      const caughtUp = JSON.parse(await fs.readFile(path.join(copy, 'replicas', 'v.json'), 'utf8')) as { layers: unknown[] };
      expect(caughtUp.layers).to.have.length(3);
      await r.close();
      const ours = JSON.parse(await fs.readFile(chainFile, 'utf8')) as { layers: unknown[] };
      expect(ours.layers).to.have.length(3);
    });

    it('a snapshot whose seal cannot be made durable fails the replica; reopened, it is the chain as durable, without the snapshot', async () => {
      await pool.createReplica({ volume: 'v', size: 1 * MiB });
      const r = await pool.openReplica('v');
      await r.write(0, fill(5, 4 * KiB), 1);
      await r.sync();
      const orig = LayerFile.prototype.writeSeal;
      LayerFile.prototype.writeSeal = () => Promise.reject(Object.assign(new Error('EIO: injected'), { code: 'EIO' }));
      try {
        const staged = r.snapshotCreateStaged!('bad', 2);
        await staged.cut;
        await expectCode(staged.durable, 'io');
      } finally {
        LayerFile.prototype.writeSeal = orig;
      }
      expect(r.isFailed).to.equal(true);
      await expectCode(r.readAt(0, 4 * KiB), 'io');
      await expectCode(r.write(0, fill(6, 4 * KiB), 3), 'io');
      const again = await pool.openReplica('v');
      expect(again).to.not.equal(r);
      expect(again.snapshots()).to.deep.equal([]);
      expect((await again.readAt(0, 4 * KiB)).every((b) => b === 5)).to.equal(true);
      await again.snapshotCreate('good', 2);
      await again.write(0, fill(7, 4 * KiB), 3);
      expect((await again.readSnapshotAt('good', 0, 4 * KiB)).every((b) => b === 5)).to.equal(true);
      await again.close();
    });
  });

  it('streams head blocks of a sync cut short between its bitmap pages and its header (readHeadSince after a crash)', async () => {
    await pool.createReplica({ volume: 'v', size: 1 * MiB });
    const r = await pool.openReplica('v');
    await r.write(0, fill(3, 4 * KiB), 4);
    await r.write(8 * KiB, fill(4, 4 * KiB), 9);
    // The crash point: the bitmap pages are written, the header (checkpoint, max io_seq) is not.
    const orig = LayerFile.prototype.writeCheckpoint;
    LayerFile.prototype.writeCheckpoint = function (this: LayerFile, checkpoint: number, maxSeq: number) {
      if (checkpoint > this.checkpoint) return Promise.reject(Object.assign(new Error('killed'), { code: 'EIO' }));
      return orig.call(this, checkpoint, maxSeq);
    };
    try {
      await expectCode(r.sync(), 'io');
    } finally {
      LayerFile.prototype.writeCheckpoint = orig;
    }
    const copy = path.join(path.dirname(dir), 'copy');
    await fs.cp(dir, copy, { recursive: true });
    const other = await openPool({ dir: copy, name: 'pool-a' });
    try {
      const c = await other.openReplica('v');
      expect((await c.readAt(0, 4 * KiB)).every((b) => b === 3), 'block 0 is visible').to.equal(true);
      // Whatever it reads must stream: a rebuild copying it from io_seq 0 (or from any io_seq below
      // the writes') gets both blocks.
      const page = await c.readHeadSince!(3, 0, 1 * MiB);
      const got = page.runs.flatMap((run) => Array.from({ length: run.data.length / (4 * KiB) }, (_x, k) => [run.offset / (4 * KiB) + k, run.data[k * 4 * KiB], run.ioSeq]));
      expect(got.map((g) => g.slice(0, 2))).to.deep.equal([
        [0, 3],
        [2, 4],
      ]);
      for (const g of got) expect(g[2], 'a run io_seq at least the writes\'').to.be.at.least(9);
      await c.close();
    } finally {
      await other.close();
    }
    await r.close();
  });

  it('streams head blocks of a snapshot cut short before its seal (the old head stays the head after a crash)', async () => {
    await pool.createReplica({ volume: 'v', size: 1 * MiB });
    const r = await pool.openReplica('v');
    await r.write(0, fill(3, 4 * KiB), 4);
    await r.write(8 * KiB, fill(4, 4 * KiB), 9);
    const orig = LayerFile.prototype.writeSeal;
    LayerFile.prototype.writeSeal = () => Promise.reject(Object.assign(new Error('killed'), { code: 'EIO' }));
    try {
      await expectCode(r.snapshotCreate('s', 10), 'io');
    } finally {
      LayerFile.prototype.writeSeal = orig;
    }
    const copy = path.join(path.dirname(dir), 'copy');
    await fs.cp(dir, copy, { recursive: true });
    const other = await openPool({ dir: copy, name: 'pool-a' });
    try {
      const c = await other.openReplica('v');
      expect(c.snapshots()).to.deep.equal([]);
      const page = await c.readHeadSince!(3, 0, 1 * MiB);
      expect(page.runs.map((run) => [run.offset / (4 * KiB), run.data[0], run.data.length / (4 * KiB)])).to.deep.equal([
        [0, 3, 1],
        [2, 4, 1],
      ]);
      for (const run of page.runs) expect(run.ioSeq).to.be.at.least(9);
      await c.close();
    } finally {
      await other.close();
    }
    await r.close();
  });

  it('deletes a big snapshot by merging its small child into it, and finishes a merge cut short by a crash on open', async () => {
    // expected views: block 0 child data, block 2 a zero marker in the child, 1 MiB of parent data
    const expectSnap = (): Buffer => {
      const b = Buffer.alloc(2 * MiB);
      b.fill(0x11, 0, MiB);
      b.fill(0x22, 0, 4 * KiB);
      b.fill(0, 8 * KiB, 12 * KiB);
      return b;
    };
    const expectLive = (): Buffer => {
      const b = expectSnap();
      b.fill(0x33, 16 * KiB, 20 * KiB);
      return b;
    };
    const build = async (volume: string): Promise<void> => {
      await pool.createReplica({ volume, size: 2 * MiB });
      const r = await pool.openReplica(volume);
      await r.write(0, fill(0x11, MiB), 1);
      await r.snapshotCreate('s1', 2);
      await r.write(0, fill(0x22, 4 * KiB), 3);
      await r.unmapSeq(8 * KiB, 4 * KiB, 4);
      await r.snapshotCreate('s2', 5);
      await r.write(16 * KiB, fill(0x33, 4 * KiB), 6);
      await r.close();
    };
    const check = async (volume: string): Promise<void> => {
      const r = await pool.openReplica(volume);
      try {
        expect(r.snapshots().map((s) => s.name)).to.deep.equal(['s2']);
        expect((await r.readSnapshotAt('s2', 0, 2 * MiB)).equals(expectSnap()), 's2 reads what it held').to.equal(true);
        expect((await r.readAt(0, 2 * MiB)).equals(expectLive()), 'the volume reads its data').to.equal(true);
      } finally {
        await r.close();
      }
    };
    const layerFiles = async (): Promise<string[]> => (await fs.readdir(path.join(dir, 'layers'))).filter((f) => f.endsWith('.map')).sort();

    // 1. Straight through.
    await build('merge-a');
    const before = JSON.parse(await fs.readFile(path.join(dir, 'replicas', 'merge-a.json'), 'utf8')) as { layers: { id: string }[] };
    const r = await pool.openReplica('merge-a');
    await r.snapshotDestroy('s1');
    await r.close();
    await check('merge-a');
    const chainA = JSON.parse(await fs.readFile(path.join(dir, 'replicas', 'merge-a.json'), 'utf8')) as { layers: { id: string; snapshot: { name: string } }[]; head: string };
    expect(chainA.layers.map((l) => l.snapshot.name)).to.deep.equal(['s2']);
    expect(chainA.layers[0]!.id, 's1 layer kept (the small child was merged into it)').to.equal(before.layers[0]!.id);
    await pool.close();
    pool = await openPool({ dir, name: 'pool-a' });
    await check('merge-a');

    // 2. Cut short: the layer is hidden (the first rename) and part of the child is already copied
    // into it (block 0; block 2 scribbled as a copy in progress would leave it), then a crash.
    await build('merge-b');
    await pool.close();
    const chainFile = path.join(dir, 'replicas', 'merge-b.json');
    const chain = JSON.parse(await fs.readFile(chainFile, 'utf8')) as { layers: { id: string; hidden?: boolean }[] };
    chain.layers[0]!.hidden = true;
    await fs.writeFile(chainFile, JSON.stringify(chain));
    const data = await fs.open(path.join(dir, 'layers', `${chain.layers[0]!.id}.data`), 'r+');
    await data.write(fill(0x22, 4 * KiB), 0, 4 * KiB, 0);
    await data.write(fill(0x77, 4 * KiB), 0, 4 * KiB, 8 * KiB);
    await data.close();
    pool = await openPool({ dir, name: 'pool-a' });
    await check('merge-b');
    const chainB = JSON.parse(await fs.readFile(chainFile, 'utf8')) as { layers: { id: string }[]; head: string };
    expect(chainB.layers).to.have.length(1);
    // Only the layers the chains name are left (plus a spare head per loaded replica: none now).
    await pool.close();
    pool = await openPool({ dir, name: 'pool-a' });
    const named = [...chainA.layers.map((l) => l.id), chainA.head, ...chainB.layers.map((l) => l.id), chainB.head].map((id) => `${id}.map`).sort();
    expect(await layerFiles()).to.deep.equal(named);
  });

  it('writes back a head in the background after every --writeback-bytes written, and not with 0', async () => {
    await pool.createReplica({ volume: 'v', size: 1 * MiB });
    const r = await pool.openReplica('v');
    const orig = LayerFile.prototype.syncData;
    let calls = 0;
    LayerFile.prototype.syncData = function (this: LayerFile) {
      calls++;
      return orig.call(this);
    };
    try {
      configureWriteback(64 * KiB);
      for (let k = 0; k < 8; k++) await r.write(k * 16 * KiB, fill(k + 1, 16 * KiB), k + 1);
      for (let i = 0; i < 50 && calls < 1; i++) await new Promise((res) => setTimeout(res, 10));
      expect(calls, 'background fdatasyncs after 128 KiB at 64 KiB').to.be.within(1, 2);
      configureWriteback(0);
      calls = 0;
      for (let k = 0; k < 8; k++) await r.write(k * 16 * KiB, fill(k + 9, 16 * KiB), k + 9);
      await new Promise((res) => setTimeout(res, 50));
      expect(calls, 'none when off').to.equal(0);
    } finally {
      LayerFile.prototype.syncData = orig;
      configureWriteback(defaultWritebackBytes);
    }
    expect((await r.readAt(7 * 16 * KiB, 4 * KiB)).every((b) => b === 16)).to.equal(true);
    await r.close();
  });

  it('refuses a pool directory holding another pool', async () => {
    await pool.close();
    await expectCode(openPool({ dir, name: 'pool-b' }), 'conflict');
    pool = await openPool({ dir, name: 'pool-a' });
  });
});
