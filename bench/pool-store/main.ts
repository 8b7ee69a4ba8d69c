// Layer store benchmarks (not part of the tests). Run: node --import tsx bench/pool-store/main.ts
//   [--dir DIR] [--quick]
// 1. snapshot create with 1 MiB vs 1 GiB written (really written, then synced): flat, < 5 ms;
//    then snapshot destroy of the oldest (all the data, a 4 KiB child) and of the newest; then
//    the 1 GiB case again while another process dirties the same filesystem (a noisy neighbour:
//    what made a loaded run measure a 48.8 ms median before the seal-record commit);
// 2. read throughput with 200 snapshots in the chain vs none (same data, same layout);
// 3. 4 KiB random and 1 MiB sequential write/read through the store vs straight to a file from
//    this same process (the physical limit here).
// --only snapshots|noisy|depth|io runs one part.
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openPool } from '../../cstor-pool/store/pool.ts';
import type { Pool, Replica } from '../../cstor-pool/store/types.ts';
import { seededRandom as rng } from '../../lib/seeded-random.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const dirArg = args[args.indexOf('--dir') + 1];
const onlyArg = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
const runs = (part: string): boolean => onlyArg === undefined || onlyArg === part;
const baseDir = args.includes('--dir') && dirArg ? dirArg : await fs.mkdtemp(path.join(os.tmpdir(), 'bench-pool-store-'));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const fmt = (n: number, d = 2): string => n.toFixed(d);

/**
 * Runs batch i of `a` and of `b` alternately (a0 b0 b1 a1 a2 b2 ...) and returns each side's total
 * wall milliseconds and CPU milliseconds (user + system, all threads): on a shared, noisy machine
 * both sides see the same disturbances, and CPU time is what the store itself costs.
 */
interface Totals {
  wall: number;
  cpu: number;
}
async function interleaved(batches: number, a: (i: number) => Promise<void>, b: (i: number) => Promise<void>): Promise<[Totals, Totals]> {
  const t: [Totals, Totals] = [
    { wall: 0, cpu: 0 },
    { wall: 0, cpu: 0 },
  ];
  for (let i = 0; i < batches; i++) {
    for (const side of i % 2 === 0 ? [0, 1] : [1, 0]) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await (side === 0 ? a(i) : b(i));
      const c = process.cpuUsage(c0);
      t[side]!.wall += performance.now() - t0;
      t[side]!.cpu += (c.user + c.system) / 1000;
    }
  }
  return t;
}

const mbps = (bytes: number, ms: number): number => bytes / MiB / (ms / 1000);
const results: Record<string, string> = {};
function report(key: string, value: string): void {
  results[key] = value;
  console.log(`${key.padEnd(58)} ${value}`);
}

async function writeFull(r: Replica, bytes: number, seq: { n: number }): Promise<number> {
  const buf = Buffer.alloc(MiB, 0xab);
  const t0 = performance.now();
  for (let off = 0; off < bytes; off += MiB) await r.write(off, buf, seq.n++);
  await r.sync();
  return performance.now() - t0;
}

async function snapshotTimes(r: Replica, seq: { n: number }, prefix: string, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    await r.write(0, Buffer.alloc(4 * KiB, i), seq.n++);
    await r.sync();
    const t0 = performance.now();
    await r.snapshotCreate(`${prefix}-${i}`, seq.n++);
    times.push(performance.now() - t0);
  }
  return times;
}

async function benchSnapshots(pool: Pool): Promise<void> {
  console.log('\n# snapshot create (after sync; median and best of 7)');
  for (const [label, bytes] of [
    ['1 MiB', MiB],
    ['1 GiB', quick ? 128 * MiB : GiB],
  ] as const) {
    const volume = `snap-${label.replace(' ', '').toLowerCase()}`;
    await pool.createReplica({ volume, size: 2 * GiB });
    const r = await pool.openReplica(volume);
    const seq = { n: 1 };
    const wms = await writeFull(r, bytes, seq);
    const times = await snapshotTimes(r, seq, 's', 7);
    report(`snapshot create, ${label} written (wrote ${fmt(mbps(bytes, wms), 0)} MiB/s)`, `median ${fmt(median(times))} ms, best ${fmt(Math.min(...times))} ms, worst ${fmt(Math.max(...times))} ms`);
    // Destroy: the oldest snapshot holds all the data and its child 4 KiB (the child is merged
    // into it), then the newest (its child is the head: folded into the head).
    for (const [which, name] of [['oldest', 's-0'], ['newest', 's-6']] as const) {
      const t0 = performance.now();
      await r.snapshotDestroy(name);
      report(`snapshot destroy, ${which} of 7, ${label} written`, `${fmt(performance.now() - t0)} ms`);
    }
    await r.close();
    await pool.deleteReplica(volume);
  }
}

/**
 * Snapshot create on a volume with 1 GiB written and synced, while a child process rewrites a
 * 1 GiB file in a loop without fsync (the kernel writes it back; ext4 journal commits wait for
 * it): the case where an fsync of a new file or a directory costs tens of ms.
 */
async function benchNoisyNeighbour(pool: Pool): Promise<void> {
  const noiseFile = path.join(baseDir, 'noise.bin');
  const script = `const fs=require('fs');const b=Buffer.alloc(1<<20,7);for(let r=0;r<1e6;r++){const fd=fs.openSync(${JSON.stringify(noiseFile)},'w');for(let i=0;i<${quick ? 256 : 1024};i++)fs.writeSync(fd,b);fs.closeSync(fd);}`;
  const noise = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 1500));
    const volume = 'snap-noisy';
    await pool.createReplica({ volume, size: 2 * GiB });
    const r = await pool.openReplica(volume);
    const seq = { n: 1 };
    await writeFull(r, quick ? 128 * MiB : GiB, seq);
    const times = await snapshotTimes(r, seq, 'n', 15);
    report(`snapshot create, ${quick ? '128 MiB' : '1 GiB'} written, noisy neighbour (15)`, `median ${fmt(median(times))} ms, p90 ${fmt([...times].sort((a, b) => a - b)[13]!)} ms, best ${fmt(Math.min(...times))} ms, worst ${fmt(Math.max(...times))} ms`);
    await r.close();
    await pool.deleteReplica(volume);
  } finally {
    noise.kill('SIGKILL');
    await new Promise((r) => (noise.exitCode !== null || noise.signalCode !== null ? r(undefined) : noise.once('exit', r)));
    await fs.rm(noiseFile, { force: true });
  }
}

async function readAll(r: Replica, size: number): Promise<number> {
  const t0 = performance.now();
  for (let off = 0; off < size; off += MiB) await r.readAt(off, MiB);
  return performance.now() - t0;
}


/**
 * A volume written in 1 MiB writes, with `snaps` snapshots spread over the writes (so the data
 * lies in every layer of the chain), then `overwrites` random 4 KiB overwrites, also spread over
 * `snaps` more snapshots when `snaps` > 0.
 */
async function buildVolume(pool: Pool, volume: string, size: number, snaps: number, overwrites: number): Promise<Replica> {
  await pool.createReplica({ volume, size });
  const r = await pool.openReplica(volume);
  let seq = 1;
  const buf = Buffer.alloc(MiB, 0x5a);
  const mibs = size / MiB;
  let taken = 0;
  for (let i = 0; i < mibs; i++) {
    await r.write(i * MiB, buf, seq++);
    while (snaps > 0 && taken < Math.floor(((i + 1) * snaps) / mibs)) await r.snapshotCreate(`d-${taken++}`, seq++);
  }
  const rand = rng(3);
  for (let i = 0; i < overwrites; i++) {
    await r.write(Math.floor(rand() * (size / (4 * KiB))) * 4 * KiB, Buffer.alloc(4 * KiB, 1), seq++);
    if (snaps > 0 && i % Math.max(1, Math.floor(overwrites / snaps)) === 0) await r.snapshotCreate(`x-${i}`, seq++);
  }
  await r.sync();
  return r;
}

async function compareDepth(pool: Pool, label: string, size: number, overwrites: number): Promise<void> {
  const snaps = 200;
  const flat = await buildVolume(pool, `flat-${overwrites}`, size, 0, overwrites);
  const deep = await buildVolume(pool, `deep-${overwrites}`, size, snaps, overwrites);
  await readAll(flat, size); // warm the page cache and the JIT
  await readAll(deep, size);
  const chunk = 8 * MiB;
  const batches = 3 * (size / chunk);
  const readChunk = (r: Replica) => async (i: number) => {
    const base = (i % (size / chunk)) * chunk;
    for (let off = base; off < base + chunk; off += MiB) await r.readAt(off, MiB);
  };
  const [sf, sd] = await interleaved(batches, readChunk(flat), readChunk(deep));
  const perBatch = 500;
  const rand = rng(7);
  const offsets = Array.from({ length: batches * perBatch }, () => Math.floor(rand() * (size / (4 * KiB))) * 4 * KiB);
  const readRandom = (r: Replica) => async (i: number) => {
    for (let k = i * perBatch; k < (i + 1) * perBatch; k++) await r.readAt(offsets[k]!, 4 * KiB);
  };
  const [rf, rd] = await interleaved(batches, readRandom(flat), readRandom(deep));
  const total = batches * chunk;
  const seq = { flat: mbps(total, sf.wall), deep: mbps(total, sd.wall) };
  const rnd = { flat: (batches * perBatch) / (rf.wall / 1000), deep: (batches * perBatch) / (rd.wall / 1000) };
  const cpuSeq = sf.cpu / sd.cpu;
  const cpuRnd = rf.cpu / rd.cpu;
  const depth = deep.snapshots().length;
  report(
    `${label}: 1 MiB seq read, depth 0 / depth ${depth}`,
    `${fmt(seq.flat, 0)} / ${fmt(seq.deep, 0)} MiB/s = ${fmt(seq.deep / seq.flat)}x (by CPU time ${fmt(cpuSeq)}x)`,
  );
  report(
    `${label}: 4 KiB random read, depth 0 / depth ${depth}`,
    `${fmt(rnd.flat, 0)} / ${fmt(rnd.deep, 0)} IOPS = ${fmt(rnd.deep / rnd.flat)}x (by CPU time ${fmt(cpuRnd)}x)`,
  );
  for (const r of [flat, deep]) {
    await r.close();
    await pool.deleteReplica(r.volume);
  }
}

async function benchDepth(pool: Pool): Promise<void> {
  const size = quick ? 64 * MiB : 256 * MiB;
  console.log(`\n# read throughput, ${size / MiB} MiB volume, no snapshots vs a chain of 200+ (page cache warm; interleaved batches; goal >= 0.9x)`);
  await compareDepth(pool, 'same layout', size, 0);
  // With 4 KiB overwrites scattered over other layers, a 1 MiB read spans several layers and
  // cannot be one pread: this measures fragmentation, which depth alone does not cause.
  await compareDepth(pool, `+${size / MiB / 8 * 100} scattered 4 KiB overwrites`, size, (size / MiB / 8) * 100);
}

async function benchIo(pool: Pool): Promise<void> {
  const size = quick ? 128 * MiB : 512 * MiB;
  console.log(`\n# IO through the store vs straight to a file (${size / MiB} MiB, one request at a time, page cache; interleaved batches)`);
  const rawPath = path.join(baseDir, 'raw.img');
  const fh = await fs.open(rawPath, 'w+');
  await fh.truncate(size);
  await pool.createReplica({ volume: 'io', size });
  const r = await pool.openReplica('io');
  let seq = 1;
  const big = Buffer.alloc(MiB, 0x33);
  const chunk = 16 * MiB;
  const chunks = size / chunk;
  const rawWrite = async (off: number, buf: Buffer): Promise<void> => void (await fh.write(buf, 0, buf.length, off));
  const rawRead = async (off: number, len: number): Promise<void> => {
    const b = Buffer.alloc(len);
    await fh.read(b, 0, len, off);
  };
  const storeWrite = (off: number, buf: Buffer): Promise<void> => r.write(off, buf, seq++);
  const storeRead = async (off: number, len: number): Promise<void> => void (await r.readAt(off, len));
  // The same reads into one reused Buffer per size (what the pool server does since readInto).
  const reused = new Map<number, Buffer>([
    [MiB, Buffer.alloc(MiB)],
    [4 * KiB, Buffer.alloc(4 * KiB)],
  ]);
  const rawReadInto = async (off: number, len: number): Promise<void> => {
    const b = reused.get(len)!;
    await fh.read(b, 0, len, off);
  };
  const storeReadInto = (off: number, len: number): Promise<void> => r.readInto(off, reused.get(len)!);
  const seqBatch = (op: (off: number, buf: Buffer) => Promise<void>) => async (i: number) => {
    for (let off = i * chunk; off < (i + 1) * chunk; off += MiB) await op(off, big);
  };
  const seqReadBatch = (op: (off: number, len: number) => Promise<void>) => async (i: number) => {
    for (let off = (i % chunks) * chunk; off < ((i % chunks) + 1) * chunk; off += MiB) await op(off, MiB);
  };
  const figures: [string, number, number, string, number, number, number][] = [];
  const seqOps = size / MiB;
  let [a, b] = await interleaved(chunks, seqBatch(rawWrite), seqBatch(storeWrite));
  figures.push(['1 MiB sequential write', mbps(size, b.wall), mbps(size, a.wall), 'MiB/s', a.cpu / b.cpu, (b.cpu * 1000) / seqOps, (a.cpu * 1000) / seqOps]);
  await fh.sync();
  await r.sync();
  [a, b] = await interleaved(2 * chunks, seqReadBatch(rawRead), seqReadBatch(storeRead));
  figures.push(['1 MiB sequential read', mbps(2 * size, b.wall), mbps(2 * size, a.wall), 'MiB/s', a.cpu / b.cpu, (b.cpu * 1000) / (2 * seqOps), (a.cpu * 1000) / (2 * seqOps)]);
  [a, b] = await interleaved(2 * chunks, seqReadBatch(rawReadInto), seqReadBatch(storeReadInto));
  figures.push(['1 MiB sequential read into a reused Buffer (readInto)', mbps(2 * size, b.wall), mbps(2 * size, a.wall), 'MiB/s', a.cpu / b.cpu, (b.cpu * 1000) / (2 * seqOps), (a.cpu * 1000) / (2 * seqOps)]);
  const perBatch = 500;
  const batches = quick ? 10 : 40;
  const rand = rng(11);
  const offsets = Array.from({ length: batches * perBatch }, () => Math.floor(rand() * (size / (4 * KiB))) * 4 * KiB);
  const small = Buffer.alloc(4 * KiB, 0x44);
  const rndWrite = (op: (off: number, buf: Buffer) => Promise<void>) => async (i: number) => {
    for (let k = i * perBatch; k < (i + 1) * perBatch; k++) await op(offsets[k]!, small);
  };
  const rndRead = (op: (off: number, len: number) => Promise<void>) => async (i: number) => {
    for (let k = i * perBatch; k < (i + 1) * perBatch; k++) await op(offsets[k]!, 4 * KiB);
  };
  const ops = batches * perBatch;
  [a, b] = await interleaved(batches, rndWrite(rawWrite), rndWrite(storeWrite));
  figures.push(['4 KiB random write', ops / (b.wall / 1000), ops / (a.wall / 1000), 'IOPS', a.cpu / b.cpu, (b.cpu * 1000) / ops, (a.cpu * 1000) / ops]);
  [a, b] = await interleaved(batches, rndRead(rawRead), rndRead(storeRead));
  figures.push(['4 KiB random read', ops / (b.wall / 1000), ops / (a.wall / 1000), 'IOPS', a.cpu / b.cpu, (b.cpu * 1000) / ops, (a.cpu * 1000) / ops]);
  [a, b] = await interleaved(batches, rndRead(rawReadInto), rndRead(storeReadInto));
  figures.push(['4 KiB random read into a reused Buffer (readInto)', ops / (b.wall / 1000), ops / (a.wall / 1000), 'IOPS', a.cpu / b.cpu, (b.cpu * 1000) / ops, (a.cpu * 1000) / ops]);
  for (const [label, st, raw, unit, cpu, stUs, rawUs] of figures) {
    report(`${label}: store / raw file`, `${fmt(st, 0)} / ${fmt(raw, 0)} ${unit} = ${fmt(st / raw)}x (by CPU time ${fmt(cpu)}x; CPU ${fmt(stUs, 1)} / ${fmt(rawUs, 1)} µs per IO)`);
  }
  await fh.close();
  await fs.rm(rawPath);
  await r.close();
  await pool.deleteReplica('io');
}

const pool = await openPool({ dir: path.join(baseDir, 'pool'), name: 'bench' });
try {
  console.log(`layer store bench in ${baseDir}${quick ? ' (quick)' : ''}, node ${process.version}, ${os.cpus().length} CPUs`);
  if (runs('snapshots')) await benchSnapshots(pool);
  if (runs('noisy')) await benchNoisyNeighbour(pool);
  if (runs('depth')) await benchDepth(pool);
  if (runs('io')) await benchIo(pool);
} finally {
  await pool.close();
  if (!args.includes('--dir')) await fs.rm(baseDir, { recursive: true, force: true });
}
console.log(`\n${JSON.stringify(results)}`);
