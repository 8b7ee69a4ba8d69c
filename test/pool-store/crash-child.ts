// Crash-test child: opens a pool and mutates it in a loop until killed. Before each operation it
// prints the operation as a JSON line, and after it a {done} line (stdout on a pipe is synchronous
// on Linux, so the parent knows exactly what may have started). Block contents are a 4-byte stamp
// repeated, so the parent can tell every version apart.
//   node --import tsx test/pool-store/crash-child.ts DIR SEED STAMP_BASE
import fs from 'node:fs';
import { openPool } from '../../cstor-pool/store/pool.ts';
import type { ReplicaMeta } from '../../cstor-pool/store/metadata.ts';
import type { Replica } from '../../cstor-pool/store/types.ts';
import { seededRandom as mulberry32 } from '../../lib/seeded-random.ts';

const crashBlockSize = 4096;
const crashVolumeBlocks = 64;

let lastSaid: unknown = null;
function say(obj: unknown): void {
  lastSaid = obj;
  fs.writeSync(1, `${JSON.stringify(obj)}\n`);
}

/** The stamp of each block of a buffer (0 for zeros, -1 for a block that is not one stamp). */
function stamps(buf: Buffer): number[] {
  const out: number[] = [];
  for (let off = 0; off < buf.length; off += crashBlockSize) {
    const s = buf.readUInt32LE(off);
    let same = true;
    for (let i = off + 4; i < off + crashBlockSize && same; i += 4) same = buf.readUInt32LE(i) === s;
    out.push(same ? s : -1);
  }
  return out;
}

async function main(): Promise<void> {
  const [dir, seedArg, stampArg] = process.argv.slice(2);
  if (!dir || !seedArg || !stampArg) throw new Error('usage: crash-child.ts DIR SEED STAMP_BASE');
  const rand = mulberry32(Number(seedArg));
  const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
  let stamp = Number(stampArg);
  // A trace of every operation and the chain it left, kept in the pool directory for a post-mortem.
  const traceFd = fs.openSync(`${dir}/trace.log`, 'a');
  const trace = (obj: unknown): void => void fs.writeSync(traceFd, `${JSON.stringify(obj)}\n`);
  trace({ t: 'start', seed: seedArg, stamp: stampArg });
  const pool = await openPool({ dir, name: 'crash' });
  interface Vol {
    r: Replica | null;
    snaps: string[];
    seq: number;
    rebuilding?: boolean;
    /** What each block must read now, once known (read at the first open after start). */
    expect?: number[];
    snapExpect: Map<string, number[]>;
  }
  const vols = new Map<string, Vol>();
  for (const info of await pool.listReplicas()) {
    const rebuilding = info.mode === 'Rebuilding';
    vols.set(info.volume, { r: null, snaps: info.snapshots.map((s) => s.name), seq: info.checkpointedIoSeq + 1, rebuilding, snapExpect: new Map() });
  }
  const readAll = async (r: Replica): Promise<number[]> => stamps(await r.readAt(0, crashVolumeBlocks * crashBlockSize));
  const open = async (v: string): Promise<Replica> => {
    const st = vols.get(v)!;
    if (!st.r) {
      st.r = await pool.openReplica(v);
      if (!st.rebuilding) {
        const got = await readAll(st.r);
        const bad = st.expect ? got.findIndex((x, b) => x !== st.expect![b]) : -1;
        if (bad >= 0) throw new Error(`${v} block ${bad} reads ${got[bad]} at open, expected ${st.expect![bad]}`);
        st.expect = got;
      }
      for (const name of st.snaps) st.snapExpect.set(name, stamps(await st.r.readSnapshotAt(name, 0, crashVolumeBlocks * crashBlockSize)));
    }
    return st.r;
  };
  // After each operation: every open volume reads what this process wrote (a divergence is caught
  // at the operation that caused it, not only after the next kill and reopen).
  const check = async (op: unknown): Promise<void> => {
    trace({ t: 'check' });
    for (const [v, st] of vols) {
      if (!st.r || !st.expect) continue;
      const got = await readAll(st.r);
      const bad = got.findIndex((s, b) => s !== st.expect![b]);
      if (bad >= 0) throw new Error(`after ${JSON.stringify(op)}: ${v} block ${bad} reads ${got[bad]}, expected ${st.expect[bad]}`);
      for (const [name, want] of st.snapExpect) {
        const snap = stamps(await st.r.readSnapshotAt(name, 0, crashVolumeBlocks * crashBlockSize));
        const sb = snap.findIndex((s, b) => s !== want[b]);
        if (sb >= 0) throw new Error(`after ${JSON.stringify(op)}: ${v}@${name} block ${sb} reads ${snap[sb]}, expected ${want[sb]}`);
      }
    }
  };
  const chainOf = (st: Vol): unknown => {
    const c = (st.r as { chain?: ReplicaMeta } | null)?.chain;
    return c && { head: c.head, layers: c.layers.map((l) => `${l.id}:${l.snapshot.name}${l.hidden ? ':h' : ''}${l.base ? ':b' : ''}`), ckpt: st.r!.checkpointedIoSeq };
  };
  say({ t: 'ready' });
  for (let i = 0; i < 1_000_000; i++) {
    const names = [...vols.keys()];
    const x = rand();
    if (names.length === 0 || (x < 0.04 && names.length < 4)) {
      const v = `v-${int(0, 1e9)}`;
      say({ t: 'create', v });
      await pool.createReplica({ volume: v, size: crashVolumeBlocks * crashBlockSize, blockSize: crashBlockSize });
      vols.set(v, { r: null, snaps: [], seq: 1, expect: new Array<number>(crashVolumeBlocks).fill(0), snapExpect: new Map() });
      trace({ t: 'create', v });
      say({ t: 'done' });
      continue;
    }
    const v = names[int(0, names.length - 1)]!;
    const st = vols.get(v)!;
    const r = await open(v);
    if (x < 0.6) {
      const b0 = int(0, crashVolumeBlocks - 1);
      const n = int(1, Math.min(4, crashVolumeBlocks - b0));
      const stamps = Array.from({ length: n }, () => ++stamp);
      const data = Buffer.alloc(n * crashBlockSize);
      stamps.forEach((s, k) => {
        const pat = Buffer.alloc(4);
        pat.writeUInt32LE(s);
        data.fill(pat, k * crashBlockSize, (k + 1) * crashBlockSize);
      });
      say({ t: 'write', v, b0, stamps });
      trace({ t: 'write', v, b0, stamps, seq: st.seq });
      await r.write(b0 * crashBlockSize, data, st.seq++);
      stamps.forEach((s, k) => st.expect && (st.expect[b0 + k] = s));
    } else if (x < 0.68) {
      const b0 = int(0, crashVolumeBlocks - 1);
      const n = int(1, Math.min(8, crashVolumeBlocks - b0));
      say({ t: 'unmap', v, b0, n });
      trace({ t: 'unmap', v, b0, n, seq: st.seq });
      await r.unmapSeq(b0 * crashBlockSize, n * crashBlockSize, st.seq++);
      if (st.expect) st.expect.fill(0, b0, b0 + n);
    } else if (x < 0.8) {
      say({ t: 'sync', v });
      await r.sync();
      trace({ t: 'sync', v, chain: chainOf(st) });
    } else if (x < 0.835) {
      const name = `s-${int(0, 1e9)}`;
      say({ t: 'snap', v, name });
      await r.snapshotCreate(name, st.seq++);
      st.snaps.push(name);
      if (st.expect) st.snapExpect.set(name, [...st.expect]);
      trace({ t: 'snap', v, name, chain: chainOf(st) });
    } else if (x < 0.87) {
      // The two-step snapshot with writes between its cut and its durability (they go to the new
      // head and are not in the snapshot; unsynced, they may be lost by a kill, nothing else).
      const name = `s-${int(0, 1e9)}`;
      const writes = Array.from({ length: int(1, 4) }, () => {
        const b0 = int(0, crashVolumeBlocks - 1);
        return { b0, stamps: Array.from({ length: int(1, Math.min(4, crashVolumeBlocks - b0)) }, () => ++stamp) };
      });
      say({ t: 'snapw', v, name, writes });
      const staged = r.snapshotCreateStaged!(name, st.seq++);
      await staged.cut;
      if (st.expect) st.snapExpect.set(name, [...st.expect]);
      // One after another (they may overlap), while the snapshot is made durable.
      for (const w of writes) {
        const data = Buffer.alloc(w.stamps.length * crashBlockSize);
        w.stamps.forEach((s, k) => {
          const pat = Buffer.alloc(4);
          pat.writeUInt32LE(s);
          data.fill(pat, k * crashBlockSize, (k + 1) * crashBlockSize);
        });
        await r.write(w.b0 * crashBlockSize, data, st.seq++);
        w.stamps.forEach((s, k) => st.expect && (st.expect[w.b0 + k] = s));
      }
      await staged.durable;
      st.snaps.push(name);
      trace({ t: 'snapw', v, name, writes, chain: chainOf(st) });
    } else if (x < 0.92) {
      if (st.snaps.length === 0) continue;
      const name = st.snaps[int(0, st.snaps.length - 1)]!;
      say({ t: 'unsnap', v, name });
      await r.snapshotDestroy(name);
      st.snaps = st.snaps.filter((s) => s !== name);
      st.snapExpect.delete(name);
      trace({ t: 'unsnap', v, name, chain: chainOf(st) });
    } else if (x < 0.95) {
      if (st.snaps.length === 0 || names.length >= 5 || st.rebuilding) continue;
      const snap = st.snaps[int(0, st.snaps.length - 1)]!;
      const c = `c-${int(0, 1e9)}`;
      say({ t: 'clone', v: c, src: v, snap });
      await pool.createReplica({ volume: c, size: crashVolumeBlocks * crashBlockSize, cloneOf: { volume: v, snapshot: snap } });
      const known = st.snapExpect.get(snap);
      vols.set(c, { r: null, snaps: [], seq: 1, expect: known && [...known], snapExpect: new Map() });
      trace({ t: 'clone', v: c, src: v, snap });
    } else if (x < 0.975) {
      // Rebuild a new replica from v (not a clone: a clone's base layers are not streamed).
      if (v.startsWith('c-') || names.length >= 5) continue;
      const d = `r-${int(0, 1e9)}`;
      say({ t: 'rebuild', v: d, src: v });
      await pool.createReplica({ volume: d, size: crashVolumeBlocks * crashBlockSize, blockSize: crashBlockSize });
      const dr = await pool.openReplica(d);
      const dst: Vol = { r: dr, snaps: [], seq: st.seq, expect: st.expect && [...st.expect], snapExpect: new Map() };
      vols.set(d, dst);
      trace({ t: 'rebuild', v: d, src: v, srcChain: chainOf(st) });
      await dr.rebuildStart(null);
      for (const s of r.snapshots()) {
        await dr.importLayerBegin(s.name, s.ioSeq);
        for (let cursor: number | null = 0; cursor !== null; ) {
          const page = await r.readLayer(s.name, cursor, int(1, 16) * crashBlockSize);
          for (const run of page.runs) await dr.importLayerWrite(s.name, run.offset, run.data);
          trace({ t: 'layer-page', name: s.name, runs: page.runs.map((x) => [x.offset / crashBlockSize, stamps(x.data)]) });
          cursor = page.next;
        }
        await dr.importLayerEnd(s.name);
        dst.snaps.push(s.name);
        const known = st.snapExpect.get(s.name);
        if (known) dst.snapExpect.set(s.name, [...known]);
      }
      for (let cursor: number | null = 0; cursor !== null; ) {
        const page = await r.readHeadSince(0, cursor, int(1, 16) * crashBlockSize);
        for (const run of page.runs) await dr.writeIfNewer(run.offset, run.data, run.ioSeq ?? 0);
        trace({ t: 'head-page', runs: page.runs.map((x) => [x.offset / crashBlockSize, x.ioSeq, stamps(x.data)]) });
        cursor = page.next;
      }
      await dr.rebuildDone();
      trace({ t: 'rebuilt', v: d, chain: chainOf(dst) });
    } else {
      if (names.length < 2) continue;
      say({ t: 'delete', v });
      await pool.deleteReplica(v);
      vols.delete(v);
      trace({ t: 'delete', v });
    }
    await check(lastSaid);
    say({ t: 'done' });
  }
  await pool.close();
}

main().catch((err: unknown) => {
  say({ t: 'error', message: String(err) });
  process.exit(1);
});
