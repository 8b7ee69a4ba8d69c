// Property test of the layer store: seeded random writes, unmaps, snapshots, clones, snapshot
// deletes, volume deletes, replica closes and pool reopens, checked against a flat-buffer model of
// every volume and snapshot. Reproduce a failure with POOL_PROPERTY_SEED=<seed> (printed on failure).
import { expect } from 'chai';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { openPool } from '../../cstor-pool/store/pool.ts';
import { createLogger } from '../../lib/logger.ts';
import type { Pool, Replica } from '../../cstor-pool/store/types.ts';
import { seededRandom as mulberry32 } from '../../lib/seeded-random.ts';

const bs = 512;

interface SnapModel {
  name: string;
  data: Buffer;
}

interface VolModel {
  size: number;
  data: Buffer;
  snaps: SnapModel[];
  seq: number;
  /** The clone source's data at clone time (what base layers hold), or zeros. */
  origin: Buffer;
  isClone: boolean;
}

async function runProperty(seed: number, ops: number, dir: string, dir2: string): Promise<Record<string, number>> {
  const rand = mulberry32(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const model = new Map<string, VolModel>();
  const handles = new Map<string, Replica>();
  const counts: Record<string, number> = {};
  const logger = createLogger({
    component: 'test',
    level: 'info',
    stream: new Writable({
      write(chunk: Buffer, _enc, done) {
        const msg = (JSON.parse(chunk.toString()) as { message: string }).message;
        counts[msg] = (counts[msg] ?? 0) + 1;
        done();
      },
    }),
  });
  let pool: Pool = await openPool({ dir, name: 'prop', logger });
  // Rebuild destinations live in a second pool.
  const pool2 = await openPool({ dir: dir2, name: 'prop-rebuild' });
  let nextVol = 0;
  let stamp = 0;

  const handle = async (v: string): Promise<Replica> => {
    let h = handles.get(v);
    if (!h) {
      h = await pool.openReplica(v);
      handles.set(v, h);
    }
    return h;
  };

  const check = async (v: string, compose: boolean): Promise<void> => {
    const m = model.get(v)!;
    const r = await handle(v);
    const live = await r.readAt(0, m.size);
    expect(live.equals(m.data), `volume ${v} live data`).to.equal(true);
    expect(r.snapshots().map((s) => s.name), `volume ${v} snapshot list`).to.deep.equal(m.snaps.map((s) => s.name));
    for (const s of m.snaps) {
      expect((await r.readSnapshotAt(s.name, 0, m.size)).equals(s.data), `snapshot ${v}@${s.name}`).to.equal(true);
    }
    if (!compose) return;
    // Rebuild composition: origin, then each listed snapshot's readLayer, then the head since 0.
    const img = Buffer.from(m.origin);
    const apply = (runs: { offset: number; data: Buffer }[]): void => {
      for (const run of runs) run.data.copy(img, run.offset);
    };
    for (const s of m.snaps) {
      for (let cursor: number | null = 0; cursor !== null; ) {
        const page = await r.readLayer(s.name, cursor, int(1, 8) * bs);
        apply(page.runs);
        cursor = page.next;
      }
      expect(img.equals(s.data), `readLayer composition up to ${v}@${s.name}`).to.equal(true);
    }
    for (let cursor: number | null = 0; cursor !== null; ) {
      const page = await r.readHeadSince(0, cursor, int(1, 16) * bs);
      apply(page.runs);
      cursor = page.next;
    }
    expect(img.equals(m.data), `readLayer+readHeadSince composition of ${v}`).to.equal(true);
  };

  const createVolume = async (): Promise<void> => {
    const v = `vol-${nextVol++}`;
    const size = int(8, 64) * bs;
    await pool.createReplica({ volume: v, size, blockSize: bs });
    model.set(v, { size, data: Buffer.alloc(size), snaps: [], seq: 1, origin: Buffer.alloc(size), isClone: false });
  };

  for (let i = 0; i < 3; i++) await createVolume();

  /**
   * Rebuilds a copy of `v` in pool2 the way a target would: rebuildStart, each snapshot's layer
   * oldest first, then the head since the last snapshot, with a live write landing on both
   * between reading the head and applying it (writeIfNewer must keep the live one).
   */
  const rebuildCopy = async (v: string, m: VolModel): Promise<void> => {
    const r = await handle(v);
    const name = `rb-${nextVol++}`;
    await pool2.createReplica({ volume: name, size: m.size, blockSize: bs });
    const d = await pool2.openReplica(name);
    await d.write(0, Buffer.alloc(bs, 0xee), 1); // stale content, discarded by rebuildStart
    await d.snapshotCreate('stale', 2);
    await d.rebuildStart(null);
    expect(d.snapshots()).to.deep.equal([]);
    const snaps = r.snapshots();
    for (const s of snaps) {
      await d.importLayerBegin(s.name, s.ioSeq);
      for (let cursor: number | null = 0; cursor !== null; ) {
        const page = await r.readLayer(s.name, cursor, int(1, 16) * bs);
        for (const run of page.runs) await d.importLayerWrite(s.name, run.offset, run.data);
        cursor = page.next;
      }
      await d.importLayerEnd(s.name);
    }
    const since = snaps.length > 0 ? Math.max(0, snaps[snaps.length - 1]!.ioSeq - 1) : 0;
    const runs: { offset: number; data: Buffer; ioSeq?: number }[] = [];
    for (let cursor: number | null = 0; cursor !== null; ) {
      const page = await r.readHeadSince(since, cursor, int(1, 16) * bs);
      runs.push(...page.runs);
      cursor = page.next;
    }
    const b = int(0, m.size / bs - 1);
    const live = Buffer.alloc(bs, 0x77);
    const seq = m.seq++;
    await r.write(b * bs, live, seq);
    await d.write(b * bs, live, seq);
    live.copy(m.data, b * bs);
    for (const run of runs) await d.writeIfNewer(run.offset, run.data, run.ioSeq ?? 0);
    await d.rebuildDone();
    expect(d.mode).to.equal('Healthy');
    expect((await d.readAt(0, m.size)).equals(m.data), `rebuilt copy of ${v}`).to.equal(true);
    expect(d.snapshots().map((s) => [s.name, s.ioSeq])).to.deep.equal(snaps.map((s) => [s.name, s.ioSeq]));
    for (const s of m.snaps) {
      expect((await d.readSnapshotAt(s.name, 0, m.size)).equals(s.data), `rebuilt copy of ${v}@${s.name}`).to.equal(true);
    }
    await d.close();
    await pool2.deleteReplica(name);
  };

  const weights: [string, number][] = [
    ['write', 30],
    ['unmap', 10],
    ['snapshot', 9],
    ['destroy', 8],
    ['clone', 5],
    ['create', 2],
    ['delete', 3],
    ['sync', 5],
    ['close-replica', 3],
    ['reopen', 2],
    ['check', 6],
    ['rebuild', 2],
  ];
  const total = weights.reduce((a, [, w]) => a + w, 0);

  for (let op = 0; op < ops; op++) {
    let x = rand() * total;
    let kind = 'check';
    for (const [k, w] of weights) {
      if (x < w) {
        kind = k;
        break;
      }
      x -= w;
    }
    const vols = [...model.keys()];
    if (vols.length === 0) kind = 'create';
    const v = pick(vols.length > 0 ? vols : ['none']);
    const m = model.get(v);
    counts[kind] = (counts[kind] ?? 0) + 1;
    switch (kind) {
      case 'write': {
        const blocks = m!.size / bs;
        const b0 = int(0, blocks - 1);
        const n = int(1, Math.min(8, blocks - b0));
        const data = Buffer.alloc(n * bs);
        for (let i = 0; i < n; i++) {
          const pat = Buffer.alloc(4);
          pat.writeUInt32LE(++stamp);
          data.fill(pat, i * bs, (i + 1) * bs);
        }
        await (await handle(v)).write(b0 * bs, data, m!.seq++);
        data.copy(m!.data, b0 * bs);
        break;
      }
      case 'unmap': {
        const blocks = m!.size / bs;
        const b0 = int(0, blocks - 1);
        const n = int(1, Math.min(16, blocks - b0));
        await (await handle(v)).unmapSeq(b0 * bs, n * bs, m!.seq++);
        m!.data.fill(0, b0 * bs, (b0 + n) * bs);
        break;
      }
      case 'snapshot': {
        const name = `s${int(0, 9)}`;
        await (await handle(v)).snapshotCreate(name, m!.seq++);
        if (!m!.snaps.some((s) => s.name === name)) m!.snaps.push({ name, data: Buffer.from(m!.data) });
        await check(v, false);
        break;
      }
      case 'destroy': {
        const name = m!.snaps.length > 0 && rand() < 0.9 ? pick(m!.snaps).name : `s${int(0, 9)}`;
        await (await handle(v)).snapshotDestroy(name);
        m!.snaps = m!.snaps.filter((s) => s.name !== name);
        await check(v, false);
        break;
      }
      case 'clone': {
        if (m!.snaps.length === 0) break;
        const s = pick(m!.snaps);
        const c = `clone-${nextVol++}`;
        const size = m!.size + int(0, 8) * bs;
        const info = await pool.createReplica({ volume: c, size, cloneOf: { volume: v, snapshot: s.name } });
        expect(info.cloneOf).to.equal(`${v}@${s.name}`);
        const data = Buffer.alloc(size);
        s.data.copy(data);
        model.set(c, { size, data, snaps: [], seq: 1, origin: Buffer.from(data), isClone: true });
        await check(c, true);
        break;
      }
      case 'create':
        await createVolume();
        break;
      case 'delete': {
        if (rand() < 0.5) break;
        const h = handles.get(v);
        handles.delete(v);
        await pool.deleteReplica(v);
        model.delete(v);
        if (h) {
          let failed = false;
          await h.readAt(0, bs).catch(() => (failed = true));
          expect(failed, 'a deleted replica handle refuses IO').to.equal(true);
        }
        for (const other of model.keys()) await check(other, false);
        break;
      }
      case 'sync': {
        const r = await handle(v);
        await r.sync();
        expect(r.checkpointedIoSeq).to.be.at.most(m!.seq - 1);
        break;
      }
      case 'close-replica': {
        const h = handles.get(v);
        if (h) {
          handles.delete(v);
          await h.close();
        }
        break;
      }
      case 'reopen': {
        await pool.close();
        handles.clear();
        pool = await openPool({ dir, name: 'prop', logger });
        for (const other of model.keys()) await check(other, true);
        break;
      }
      case 'rebuild': {
        if (m!.isClone) break;
        await rebuildCopy(v, m!);
        break;
      }
      default:
        await check(v, true);
    }
  }
  for (const v of model.keys()) await check(v, true);
  // Accounting: the pool's used bytes equal the allocated blocks of every layer once; deleting
  // every volume leaves no layer file behind.
  const space = await pool.space();
  expect(space.freeBytes).to.be.greaterThan(0);
  for (const v of [...model.keys()]) await pool.deleteReplica(v);
  expect((await pool.space()).usedBytes).to.equal(0);
  expect(await fs.readdir(path.join(dir, 'layers'))).to.deep.equal([]);
  expect(await pool.listReplicas()).to.deep.equal([]);
  await pool.close();
  expect(await pool2.listReplicas()).to.deep.equal([]);
  await pool2.close();
  return counts;
}

describe('pool store property test', function () {
  this.timeout(180_000);
  const seeds = process.env.POOL_PROPERTY_SEED ? [Number(process.env.POOL_PROPERTY_SEED)] : [1, 2, 3];
  const ops = Number(process.env.POOL_PROPERTY_OPS ?? 1200);
  for (const seed of seeds) {
    it(`seed ${seed}: ${ops} random operations match the flat-buffer model`, async () => {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pool-prop-'));
      const dir2 = await fs.mkdtemp(path.join(os.tmpdir(), 'pool-prop-'));
      try {
        const counts = await runProperty(seed, ops, dir, dir2);
        if (process.env.POOL_PROPERTY_VERBOSE) console.log(counts);
        // The interesting paths ran: clones, hidden snapshots and their later folds, plain folds.
        for (const k of ['clone', 'reopen', 'rebuild', 'snapshot hidden (a clone still uses it)', 'hidden snapshot folded (its last clone is gone)', 'snapshot deleted', 'layer folded by merging its smaller child into it']) {
          expect(counts[k] ?? 0, `${k} happened`).to.be.greaterThan(0);
        }
      } catch (err) {
        (err as Error).message = `[POOL_PROPERTY_SEED=${seed}] ${(err as Error).message}`;
        throw err;
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
        await fs.rm(dir2, { recursive: true, force: true });
      }
    });
  }
});
