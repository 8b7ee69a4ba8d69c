// Replica protocol throughput on loopback against a real `cstor pool` process, as a ratio of the
// same IO done straight to a file by this Node process (the physical limit here).
//   node --import tsx bench/pool-protocol/main.ts [--quick] [--rounds N]
// Every target runs the same IO at the same queue depth (printed per phase): 4 KiB random
// write/read at QD16; 1 MiB sequential write to fresh blocks, overwrite and read at QD4.
// Targets, run one after the other within each round (so a busy machine slows them alike):
//   file   a plain file through fs.FileHandle, in this process (the baseline);
//   store  the layer store opened in this process (no protocol: the store's own cost);
//   tcp    a real pool process over loopback TCP (the wire contract);
//   unix   the same pool over its UNIX domain socket (--listen-unix; same frames).
// Before each timed run, sync(1) flushes what earlier runs left dirty. Figures are medians over
// the rounds, ratios are medians of the per-round ratios; CPU is µs per IO, this process plus the
// pool process (from /proc), so it shows the cost even when the machine is too busy for
// throughput to mean much. Reads go into a Buffer each worker reuses (readInto for the store and the
// protocol, fh.read for the file).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connectReplica } from '../../lib/replica-protocol/client.ts';
import type { ReplicaClient } from '../../lib/replica-protocol/types.ts';
import { openPool } from '../../cstor-pool/store/pool.ts';
import { startDaemon, stopAll } from '../../test/support/daemon.ts';
import { mgmt } from '../../test/pool-protocol/mgmt-client.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const quick = process.argv.includes('--quick');
const roundsArg = process.argv.indexOf('--rounds');
const rounds = roundsArg > 0 ? Math.max(1, Number(process.argv[roundsArg + 1]) || 3) : 3;
const volumeSize = (quick ? 256 : 1024) * MiB;
const randomOps = quick ? 10_000 : 30_000;
const seqBytes = (quick ? 256 : 1024) * MiB;

interface Target {
  name: string;
  write(offset: number, data: Buffer, ioSeq: number): Promise<void>;
  /** Reads into `into` (each worker reuses its own Buffer, as a target serving reads would). */
  read(offset: number, into: Buffer): Promise<unknown>;
  /** CPU seconds of the process serving it (0 when it is this process). */
  serverCpu(): number;
}

interface Phase {
  name: string;
  blockSize: number;
  depth: number;
  ops: number;
  offsetOf: (i: number) => number;
  write: boolean;
  /** Runs once (the first pass writes fresh blocks: later passes would not). */
  once?: boolean;
}

interface Sample {
  seconds: number;
  cpuUs: number;
}

/**
 * Runs `ops` IOs with `depth` in flight; returns seconds taken and CPU µs per IO (both processes).
 * Dirty pages are flushed first (sync(1), not timed): otherwise the kernel's writeback of what an
 * earlier target wrote throttles whichever target runs later.
 */
async function run(t: Target, p: Phase, seqBase: number): Promise<Sample> {
  execFileSync('sync');
  const data = randomBytes(p.blockSize);
  let next = 0;
  const c0 = process.cpuUsage();
  const s0 = t.serverCpu();
  const t0 = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    const into = Buffer.allocUnsafe(p.blockSize);
    while (next < p.ops) {
      const i = next++;
      if (p.write) await t.write(p.offsetOf(i), data, seqBase + i + 1);
      else await t.read(p.offsetOf(i), into);
    }
  };
  await Promise.all(Array.from({ length: p.depth }, worker));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  const cpuUs = (c.user + c.system + (t.serverCpu() - s0) * 1e6) / p.ops;
  return { seconds, cpuUs };
}

function phases(): Phase[] {
  const blocks4k = volumeSize / (4 * KiB);
  let x = 12345;
  const rnd = Array.from({ length: randomOps }, () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return (x % blocks4k) * 4 * KiB;
  });
  const seqOps = seqBytes / MiB;
  const seq = (i: number): number => (i * MiB) % volumeSize;
  return [
    { name: '4 KiB random write', blockSize: 4 * KiB, depth: 16, ops: randomOps, offsetOf: (i) => rnd[i]!, write: true },
    { name: '4 KiB random read', blockSize: 4 * KiB, depth: 16, ops: randomOps, offsetOf: (i) => rnd[i]!, write: false },
    { name: '1 MiB seq write, fresh', blockSize: MiB, depth: 4, ops: seqOps, offsetOf: seq, write: true, once: true },
    { name: '1 MiB seq overwrite', blockSize: MiB, depth: 4, ops: seqOps, offsetOf: seq, write: true },
    { name: '1 MiB seq read', blockSize: MiB, depth: 4, ops: seqOps, offsetOf: seq, write: false },
  ];
}

/** CPU seconds (user + system) of a process, from /proc/PID/stat. */
function processCpu(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function protocolTarget(name: string, address: string, volume: string, pid: number): Promise<{ target: Target; client: ReplicaClient }> {
  const client = await connectReplica(address, { timeoutMs: 120_000 });
  await client.open({ volume, size: volumeSize, blockSize: 4096, replicationFactor: 1, targetId: 'bench' });
  await client.markHealthy();
  return {
    client,
    target: { name, write: (o, d, s) => client.write(o, d, s), read: (o, into) => client.readInto!(o, into), serverCpu: () => processCpu(pid) },
  };
}

async function main(): Promise<void> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-pool-protocol-'));
  try {
    const fh = await fs.open(path.join(tmp, 'baseline.img'), 'w+');
    await fh.truncate(volumeSize);
    const file: Target = {
      name: 'file',
      write: async (offset, data) => void (await fh.write(data, 0, data.length, offset)),
      read: (offset, into) => fh.read(into, 0, into.length, offset),
      serverCpu: () => 0,
    };
    const local = await openPool({ dir: path.join(tmp, 'local'), name: 'local' });
    await local.createReplica({ volume: 'bench', size: volumeSize, blockSize: 4096 });
    const replica = await local.openReplica('bench');
    const store: Target = { name: 'store', write: (o, d, s) => replica.write(o, d, s), read: (o, into) => replica.readInto(o, into), serverCpu: () => 0 };

    const socketPath = path.join(tmp, 'replica.sock');
    const pool = await startDaemon(
      ['pool', '--name', 'bench', '--data-dir', path.join(tmp, 'pool'), '--listen', '127.0.0.1:0', '--listen-unix', socketPath, '--mgmt', '127.0.0.1:0'],
      { listeners: ['replica', 'replica-unix', 'mgmt'], env: { LOG_LEVEL: 'info' } },
    );
    for (const volume of ['bench-tcp', 'bench-unix']) {
      const created = await mgmt(pool.addresses.mgmt!, 'POST', '/v1/replicas', { volume, size: volumeSize, blockSize: 4096 });
      if (created.status !== 201) throw new Error(`create failed: ${created.text}`);
    }
    const tcp = await protocolTarget('tcp', pool.addresses.replica!, 'bench-tcp', pool.pid);
    const unix = await protocolTarget('unix', pool.addresses['replica-unix']!, 'bench-unix', pool.pid);
    const targets = [file, store, tcp.target, unix.target];

    console.log(
      `pool-protocol bench: volume ${volumeSize / MiB} MiB, ${randomOps} random ops, ${seqBytes / MiB} MiB sequential, ${rounds} rounds${quick ? ' (quick)' : ''}; ` +
        `${os.cpus().length} CPUs, load ${os.loadavg()[0]!.toFixed(1)}`,
    );
    const cols = ['file', 'store', 'tcp', 'unix'];
    console.log(
      `${'phase'.padEnd(28)} QD ${cols.map((c) => c.padStart(11)).join(' ')}  tcp/file unix/file  cpu µs/IO: ${cols.map((c) => c.padStart(6)).join(' ')}`,
    );
    let seq = 0;
    const summary: { name: string; tcp: number; unix: number }[] = [];
    for (const p of phases()) {
      const samples = new Map<string, Sample[]>(targets.map((t) => [t.name, []]));
      const n = p.once ? 1 : rounds;
      for (let r = 0; r < n; r++) {
        for (const t of targets) samples.get(t.name)!.push(await run(t, p, seq));
        seq += p.ops;
      }
      const rate = (s: Sample): number => (p.blockSize >= MiB ? (p.ops * p.blockSize) / MiB / s.seconds : p.ops / s.seconds / 1000);
      const fmt = (v: number): string => (p.blockSize >= MiB ? `${v.toFixed(0)} MiB/s` : `${v.toFixed(1)}k IOPS`);
      const ratio = (name: string): number => median(samples.get(name)!.map((s, i) => samples.get('file')![i]!.seconds / s.seconds));
      const rTcp = ratio('tcp');
      const rUnix = ratio('unix');
      summary.push({ name: p.name, tcp: rTcp, unix: rUnix });
      console.log(
        `${p.name.padEnd(28)} ${String(p.depth).padStart(2)} ${cols.map((c) => fmt(median(samples.get(c)!.map(rate))).padStart(11)).join(' ')}` +
          `  ${rTcp.toFixed(2).padStart(7)}x ${rUnix.toFixed(2).padStart(8)}x  ${''.padStart(10)} ${cols.map((c) => median(samples.get(c)!.map((s) => s.cpuUs)).toFixed(0).padStart(6)).join(' ')}`,
      );
    }
    for (const c of [tcp.client, unix.client]) {
      await c.sync();
      await c.close();
    }
    await fh.close();
    await replica.close();
    await local.close();
    const seqRows = summary.filter((s) => s.name.startsWith('1 MiB') && !s.name.endsWith('fresh'));
    const minTcp = Math.min(...seqRows.map((s) => s.tcp));
    const minUnix = Math.min(...seqRows.map((s) => s.unix));
    console.log(`load average at the end: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} CPUs`);
    console.log(`goal (>= 0.6x for 1 MiB sequential overwrite and read): tcp ${minTcp >= 0.6 ? 'met' : 'NOT met'} (min ${minTcp.toFixed(2)}x), unix ${minUnix >= 0.6 ? 'met' : 'NOT met'} (min ${minUnix.toFixed(2)}x)`);
  } finally {
    await stopAll();
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

await main();
