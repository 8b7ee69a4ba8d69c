// Replica protocol throughput on loopback against a real `cstor pool` process, as a ratio of the
// same IO done straight to a file by this Node process (the physical limit here).
//   node --import tsx bench/pool-protocol/main.ts [--quick]
// Phases: 4 KiB random write/read at queue depth 16; 1 MiB sequential write (fresh blocks, then
// overwrite) and read at queue depth 4. A third column runs the same IO on the layer store opened
// in this process (no protocol), to separate the protocol's cost from the store's.
import { randomBytes } from 'node:crypto';
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
const volumeSize = (quick ? 256 : 1024) * MiB;
const randomOps = quick ? 20_000 : 60_000;
const seqBytes = (quick ? 256 : 1024) * MiB;

interface Target {
  write(offset: number, data: Buffer, ioSeq: number): Promise<void>;
  read(offset: number, length: number): Promise<unknown>;
}

interface Phase {
  name: string;
  blockSize: number;
  depth: number;
  ops: number;
  offsetOf: (i: number) => number;
  write: boolean;
}

/** Runs `ops` IOs with `depth` in flight; returns seconds taken. */
async function run(t: Target, p: Phase, seqBase: number): Promise<number> {
  const data = randomBytes(p.blockSize);
  let next = 0;
  const t0 = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    while (next < p.ops) {
      const i = next++;
      if (p.write) await t.write(p.offsetOf(i), data, seqBase + i + 1);
      else await t.read(p.offsetOf(i), p.blockSize);
    }
  };
  await Promise.all(Array.from({ length: p.depth }, worker));
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function phases(): Phase[] {
  const blocks4k = volumeSize / (4 * KiB);
  let x = 12345;
  const rnd = Array.from({ length: randomOps }, () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return (x % blocks4k) * 4 * KiB;
  });
  const seqOps = seqBytes / MiB;
  return [
    { name: '4 KiB random write, QD16', blockSize: 4 * KiB, depth: 16, ops: randomOps, offsetOf: (i) => rnd[i]!, write: true },
    { name: '4 KiB random read,  QD16', blockSize: 4 * KiB, depth: 16, ops: randomOps, offsetOf: (i) => rnd[i]!, write: false },
    { name: '1 MiB sequential write, QD4', blockSize: MiB, depth: 4, ops: seqOps, offsetOf: (i) => (i * MiB) % volumeSize, write: true },
    { name: '1 MiB sequential rewrite, QD4', blockSize: MiB, depth: 4, ops: seqOps, offsetOf: (i) => (i * MiB) % volumeSize, write: true },
    { name: '1 MiB sequential read,  QD4', blockSize: MiB, depth: 4, ops: seqOps, offsetOf: (i) => (i * MiB) % volumeSize, write: false },
  ];
}

async function main(): Promise<void> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-pool-protocol-'));
  try {
    // Baseline: a plain file, same IO pattern, same process.
    const fh = await fs.open(path.join(tmp, 'baseline.img'), 'w+');
    await fh.truncate(volumeSize);
    const file: Target = {
      write: async (offset, data) => void (await fh.write(data, 0, data.length, offset)),
      read: async (offset, length) => (await fh.read(Buffer.allocUnsafe(length), 0, length, offset)).buffer,
    };
    // Protocol: one connection to a real pool process.
    const pool = await startDaemon(['pool', '--name', 'bench', '--data-dir', path.join(tmp, 'pool'), '--listen', '127.0.0.1:0', '--mgmt', '127.0.0.1:0'], {
      listeners: ['replica', 'mgmt'],
      env: { LOG_LEVEL: 'info' },
    });
    const created = await mgmt(pool.addresses.mgmt!, 'POST', '/v1/replicas', { volume: 'bench', size: volumeSize, blockSize: 4096 });
    if (created.status !== 201) throw new Error(`create failed: ${created.text}`);
    const client: ReplicaClient = await connectReplica(pool.addresses.replica!, { timeoutMs: 60_000 });
    await client.open({ volume: 'bench', size: volumeSize, blockSize: 4096, replicationFactor: 1, targetId: 'bench' });
    await client.markHealthy();

    // The store in this process, for the protocol's own overhead.
    const local = await openPool({ dir: path.join(tmp, 'local'), name: 'local' });
    await local.createReplica({ volume: 'bench', size: volumeSize, blockSize: 4096 });
    const replica = await local.openReplica('bench');
    const store: Target = { write: (o, d, s) => replica.write(o, d, s), read: (o, l) => replica.readAt(o, l) };

    console.log(`pool-protocol bench: volume ${volumeSize / MiB} MiB, ${randomOps} random ops, ${seqBytes / MiB} MiB sequential${quick ? ' (quick)' : ''}`);
    console.log(`${'phase'.padEnd(30)} ${'file'.padStart(12)} ${'store'.padStart(12)} ${'protocol'.padStart(12)}  protocol/file  protocol/store`);
    let seq = 0;
    const results: { name: string; ratio: number }[] = [];
    for (const p of phases()) {
      const tf = await run(file, p, 0);
      const ts = await run(store, p, seq);
      const tp = await run(client, p, seq);
      seq += p.ops;
      const fmt = (t: number): string =>
        p.blockSize >= MiB ? `${((p.ops * p.blockSize) / MiB / t).toFixed(0)} MiB/s` : `${(p.ops / t / 1000).toFixed(1)}k IOPS`;
      const ratio = tf / tp;
      results.push({ name: p.name, ratio });
      console.log(
        `${p.name.padEnd(30)} ${fmt(tf).padStart(12)} ${fmt(ts).padStart(12)} ${fmt(tp).padStart(12)}  ${ratio.toFixed(2).padStart(12)}x  ${(ts / tp).toFixed(2).padStart(13)}x`,
      );
    }
    await client.sync();
    await client.close();
    await fh.close();
    await replica.close();
    await local.close();
    const seqRatios = results.filter((r) => r.name.startsWith('1 MiB')).map((r) => r.ratio);
    console.log(`load average during the run: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} CPUs`);
    const goal = Math.min(...seqRatios) >= 0.6;
    console.log(`goal (>= 0.6x for 1 MiB sequential): ${goal ? 'met' : 'NOT met'} (min ${Math.min(...seqRatios).toFixed(2)}x)`);
  } finally {
    await stopAll();
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

await main();
