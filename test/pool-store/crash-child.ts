// Crash-test child: opens a pool and mutates it in a loop until killed. Before each operation it
// prints the operation as a JSON line, and after it a {done} line (stdout on a pipe is synchronous
// on Linux, so the parent knows exactly what may have started). Block contents are a 4-byte stamp
// repeated, so the parent can tell every version apart.
//   node --import tsx test/pool-store/crash-child.ts DIR SEED STAMP_BASE
import fs from 'node:fs';
import { openPool } from '../../cstor-pool/store/pool.ts';
import type { Replica } from '../../cstor-pool/store/types.ts';
import { seededRandom as mulberry32 } from '../../lib/seeded-random.ts';

const crashBlockSize = 4096;
const crashVolumeBlocks = 64;

function say(obj: unknown): void {
  fs.writeSync(1, `${JSON.stringify(obj)}\n`);
}

async function main(): Promise<void> {
  const [dir, seedArg, stampArg] = process.argv.slice(2);
  if (!dir || !seedArg || !stampArg) throw new Error('usage: crash-child.ts DIR SEED STAMP_BASE');
  const rand = mulberry32(Number(seedArg));
  const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
  let stamp = Number(stampArg);
  const pool = await openPool({ dir, name: 'crash' });
  const vols = new Map<string, { r: Replica | null; snaps: string[]; seq: number; rebuilding?: boolean }>();
  for (const info of await pool.listReplicas()) {
    const rebuilding = info.mode === 'Rebuilding';
    vols.set(info.volume, { r: null, snaps: info.snapshots.map((s) => s.name), seq: info.checkpointedIoSeq + 1, rebuilding });
  }
  const open = async (v: string): Promise<Replica> => {
    const st = vols.get(v)!;
    st.r ??= await pool.openReplica(v);
    return st.r;
  };
  say({ t: 'ready' });
  for (let i = 0; i < 1_000_000; i++) {
    const names = [...vols.keys()];
    const x = rand();
    if (names.length === 0 || (x < 0.04 && names.length < 4)) {
      const v = `v-${int(0, 1e9)}`;
      say({ t: 'create', v });
      await pool.createReplica({ volume: v, size: crashVolumeBlocks * crashBlockSize, blockSize: crashBlockSize });
      vols.set(v, { r: null, snaps: [], seq: 1 });
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
      await r.write(b0 * crashBlockSize, data, st.seq++);
    } else if (x < 0.68) {
      const b0 = int(0, crashVolumeBlocks - 1);
      const n = int(1, Math.min(8, crashVolumeBlocks - b0));
      say({ t: 'unmap', v, b0, n });
      await r.unmapSeq(b0 * crashBlockSize, n * crashBlockSize, st.seq++);
    } else if (x < 0.8) {
      say({ t: 'sync', v });
      await r.sync();
    } else if (x < 0.835) {
      const name = `s-${int(0, 1e9)}`;
      say({ t: 'snap', v, name });
      await r.snapshotCreate(name, st.seq++);
      st.snaps.push(name);
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
      // One after another (they may overlap), while the snapshot is made durable.
      for (const w of writes) {
        const data = Buffer.alloc(w.stamps.length * crashBlockSize);
        w.stamps.forEach((s, k) => {
          const pat = Buffer.alloc(4);
          pat.writeUInt32LE(s);
          data.fill(pat, k * crashBlockSize, (k + 1) * crashBlockSize);
        });
        await r.write(w.b0 * crashBlockSize, data, st.seq++);
      }
      await staged.durable;
      st.snaps.push(name);
    } else if (x < 0.92) {
      if (st.snaps.length === 0) continue;
      const name = st.snaps[int(0, st.snaps.length - 1)]!;
      say({ t: 'unsnap', v, name });
      await r.snapshotDestroy(name);
      st.snaps = st.snaps.filter((s) => s !== name);
    } else if (x < 0.95) {
      if (st.snaps.length === 0 || names.length >= 5 || st.rebuilding) continue;
      const snap = st.snaps[int(0, st.snaps.length - 1)]!;
      const c = `c-${int(0, 1e9)}`;
      say({ t: 'clone', v: c, src: v, snap });
      await pool.createReplica({ volume: c, size: crashVolumeBlocks * crashBlockSize, cloneOf: { volume: v, snapshot: snap } });
      vols.set(c, { r: null, snaps: [], seq: 1 });
    } else if (x < 0.975) {
      // Rebuild a new replica from v (not a clone: a clone's base layers are not streamed).
      if (v.startsWith('c-') || names.length >= 5) continue;
      const d = `r-${int(0, 1e9)}`;
      say({ t: 'rebuild', v: d, src: v });
      await pool.createReplica({ volume: d, size: crashVolumeBlocks * crashBlockSize, blockSize: crashBlockSize });
      const dr = await pool.openReplica(d);
      vols.set(d, { r: dr, snaps: [], seq: st.seq });
      await dr.rebuildStart(null);
      for (const s of r.snapshots()) {
        await dr.importLayerBegin(s.name, s.ioSeq);
        for (let cursor: number | null = 0; cursor !== null; ) {
          const page = await r.readLayer(s.name, cursor, int(1, 16) * crashBlockSize);
          for (const run of page.runs) await dr.importLayerWrite(s.name, run.offset, run.data);
          cursor = page.next;
        }
        await dr.importLayerEnd(s.name);
        vols.get(d)!.snaps.push(s.name);
      }
      for (let cursor: number | null = 0; cursor !== null; ) {
        const page = await r.readHeadSince(0, cursor, int(1, 16) * crashBlockSize);
        for (const run of page.runs) await dr.writeIfNewer(run.offset, run.data, run.ioSeq ?? 0);
        cursor = page.next;
      }
      await dr.rebuildDone();
    } else {
      if (names.length < 2) continue;
      say({ t: 'delete', v });
      await pool.deleteReplica(v);
      vols.delete(v);
    }
    say({ t: 'done' });
  }
  await pool.close();
}

main().catch((err: unknown) => {
  say({ t: 'error', message: String(err) });
  process.exit(1);
});
