// Target benchmarks (not part of the tests). Run: node --import tsx bench/target/main.ts
//
// Three real `cstor pool` processes; the target's engine and mgmt API run in this process (so
// every write's completion time is seen exactly), talking to the pools over the real replica
// protocol.
// 1. Snapshot create through the mgmt API (HTTP POST) during a write stream (4 KiB writes at
//    queue depth 8, RF=3): p50/p99 create latency (goal p50 < 20 ms) and the longest write stall a
//    snapshot causes (goal < 50 ms), against the longest stall of the same stream with no snapshot.
// 2. Replicated throughput, RF=1 vs RF=3: 4 KiB random writes at queue depth 16 and 1 MiB
//    sequential writes at queue depth 4, reads likewise.
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import axios from 'axios';
import { Registry } from 'prom-client';
import { closeServer, listen } from '../../lib/listen.ts';
import { createLogger, silentLogger } from '../../lib/logger.ts';
import { connectReplica } from '../../lib/replica-protocol/client.ts';
import { createMgmtApp } from '../../cstor-target/mgmt/app.ts';
import { VolumeManager } from '../../cstor-target/mgmt/volume-manager.ts';
import type { ReplicatedVolume } from '../../cstor-target/replication/replicated-volume.ts';
import { startDaemon, stopAll } from '../../test/support/daemon.ts';
import { argString, argValue, hasFlag } from '../args.ts';

const size = 256 << 20;
// `--block N`: the volume block size (default 4096, what the Kubernetes path uses); `--snap-only`
// skips the throughput runs.
const blockSize = Number(argString('block', '4096'));
const snapOnly = hasFlag('snap-only');
if (![512, 1024, 2048, 4096].includes(blockSize)) throw new Error(`--block must be 512, 1024, 2048 or 4096, not ${argValue('block')}`);

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
const f = (n: number): string => n.toFixed(1);

async function main(): Promise<void> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-target-'));
  const pools = [];
  for (let i = 0; i < 3; i++) {
    pools.push(
      await startDaemon(['pool', '--name', `pool${i}`, '--data-dir', path.join(root, `pool${i}`), '--listen', '127.0.0.1:0', '--mgmt', '127.0.0.1:0'], {
        listeners: ['replica', 'mgmt'],
      }),
    );
  }
  for (const [vol, n] of [['bench3', 3], ['bench1', 1]] as const) {
    for (const p of pools.slice(0, n)) {
      await axios.post(`http://${p.addresses.mgmt}/v1/replicas`, { volume: vol, size, blockSize });
    }
  }
  const manager = new VolumeManager({
    connect: (a) => connectReplica(a, { timeoutMs: 8000 }), // the target's default --replica-timeout
    portal: null,
    stateFile: null,
    // Replica evictions and rebuilds (warn) go to stderr: a bench run that has any says so.
    logger: createLogger({ component: 'bench', level: 'warn', format: 'text', stream: process.stderr }),
    targetId: 'bench',
  });
  const server = http.createServer(createMgmtApp({ manager, logger: silentLogger(), registry: new Registry() }));
  const addr: AddressInfo = await listen(server, '127.0.0.1', 0);
  const api = `http://127.0.0.1:${addr.port}`;
  for (const [vol, n] of [['bench3', 3], ['bench1', 1]] as const) {
    await axios.put(`${api}/v1/volumes/${vol}`, { capacity: size, replicationFactor: n, blockSize, replicas: pools.slice(0, n).map((p) => p.addresses.replica) });
    await manager.get(vol).waitFor((v) => v.phase === 'Healthy', 10_000);
  }
  const vol3 = manager.get('bench3');
  const vol1 = manager.get('bench1');
  console.log(`cstor target bench: ${os.cpus().length} CPUs, volumes of ${size >> 20} MiB, block ${blockSize}, pools as separate processes`);

  // ---- 1. snapshot latency and write stall ------------------------------------------------------
  const data = Buffer.alloc(4096, 0x5a);
  const runStream = async (vol: ReplicatedVolume, ms: number, duringStream?: () => Promise<void>) => {
    const completions: number[] = [];
    const latencies: number[] = [];
    let stop = false;
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; !stop && i < 10_000_000; i++) {
        const off = (((w * 7919 + i * 104729) % (size / 4096)) >>> 0) * 4096;
        const t0 = performance.now();
        await vol.writeAt(off, data);
        const t1 = performance.now();
        completions.push(t1);
        latencies.push(t1 - t0);
      }
    };
    const workers = Array.from({ length: 8 }, (_, w) => worker(w));
    const extra = duringStream?.();
    await new Promise((r) => setTimeout(r, ms));
    await extra;
    stop = true;
    await Promise.all(workers);
    completions.sort((a, b) => a - b);
    return { completions, latencies: latencies.sort((a, b) => a - b) };
  };
  const maxGap = (c: number[], from = -Infinity, to = Infinity): number => {
    let g = 0;
    for (let i = 1; i < c.length; i++) if (c[i]! >= from && c[i - 1]! <= to) g = Math.max(g, c[i]! - c[i - 1]!);
    return g;
  };

  await runStream(vol3, 1000); // warm-up
  const base = await runStream(vol3, 4000);
  const baseGap = maxGap(base.completions.slice(10));
  const snapLat: number[] = [];
  const windows: [number, number][] = [];
  const withSnaps = await runStream(vol3, 4000, async () => {
    for (let i = 0; i < 30; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const t0 = performance.now();
      const res = await axios.post(`${api}/v1/volumes/bench3/snapshots`, { name: `bench-${i}` });
      const t1 = performance.now();
      if (res.status !== 201) throw new Error(`snapshot failed: ${JSON.stringify(res.data)}`);
      snapLat.push(t1 - t0);
      windows.push([t0, t1]);
    }
  });
  snapLat.sort((a, b) => a - b);
  const stall = Math.max(...windows.map(([a, b]) => maxGap(withSnaps.completions, a, b + 50)));
  const iopsBase = base.completions.length / 4;
  const iopsSnap = withSnaps.completions.length / 4;
  console.log('\n1. snapshot create via mgmt API during a 4 KiB write stream (QD 8, RF=3), 30 snapshots');
  console.log(`   create latency  p50 ${f(pct(snapLat, 50))} ms   p99 ${f(pct(snapLat, 99))} ms   max ${f(snapLat.at(-1)!)} ms   (goal p50 < 20 ms)`);
  console.log(`   longest write stall during a snapshot ${f(stall)} ms   (goal < 50 ms)`);
  console.log(`   baseline, same stream without snapshots: longest gap between write completions ${f(baseGap)} ms, p99 write latency ${f(pct(base.latencies, 99))} ms`);
  console.log(`   engine quiesce (writes held: drain + send SNAPSHOT_CREATE) max ${f(vol3.stats.maxQuiesceMs)} ms, of which draining in-flight writes max ${f(vol3.stats.maxDrainMs)} ms;`);
  console.log(`   then each pool holds later requests only for the snapshot's cut (two-step snapshot), and makes it durable while IO flows`);
  const st = vol3.stats;
  const n = Math.max(1, st.snapshotsCreated);
  console.log(`   engine phases, mean per create: list ${f(st.snapshotListMs / n)} ms, quiesce ${f(st.snapshotQuiescedMs / n)} ms, wait for the pools to make it durable ${f(st.snapshotFlushMs / n)} ms`);
  console.log(`   write IOPS without/with snapshots: ${iopsBase.toFixed(0)} / ${iopsSnap.toFixed(0)} (ratio ${(iopsSnap / iopsBase).toFixed(2)})`);
  const destroyLat: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const res = await axios.delete(`${api}/v1/volumes/bench3/snapshots/bench-${i}`, { validateStatus: () => true });
    destroyLat.push(performance.now() - t0);
    if (res.status !== 204) {
      console.log(`   snapshot destroy bench-${i} failed (${res.status}): ${JSON.stringify(res.data)}`);
      break;
    }
  }
  destroyLat.sort((a, b) => a - b);
  console.log(`   snapshot destroy (idle, 3 of them: each folds a layer of ~100 ms of writes) p50 ${f(pct(destroyLat, 50))} ms   max ${f(destroyLat.at(-1)!)} ms`);
  await vol3.waitFor((v) => v.phase === 'Healthy' && v.count('healthy') === 3, 60_000, 'all healthy before the throughput runs');
  if (snapOnly) {
    await closeServer(server);
    await manager.close();
    await stopAll();
    await fs.rm(root, { recursive: true, force: true });
    return;
  }

  // ---- 2. throughput RF=1 vs RF=3 ---------------------------------------------------------------
  const measure = async (vol: ReplicatedVolume, kind: 'write' | 'read', bytes: number, qd: number, ms: number, random: boolean) => {
    const buf = Buffer.alloc(bytes, 0xa5);
    const slots = size / bytes;
    let ops = 0;
    let stop = false;
    const t0 = performance.now();
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; !stop && i < 10_000_000; i++) {
        const slot = random ? (((w * 2654435761 + i * 40503) >>> 0) % slots) : (w + i * qd) % slots;
        if (kind === 'write') await vol.writeAt(slot * bytes, buf);
        else await vol.readAt(slot * bytes, bytes);
        ops++;
      }
    };
    const workers = Array.from({ length: qd }, (_, w) => worker(w));
    await new Promise((r) => setTimeout(r, ms));
    stop = true;
    await Promise.all(workers);
    const secs = (performance.now() - t0) / 1000;
    return { iops: ops / secs, mibs: (ops * bytes) / secs / (1 << 20) };
  };
  console.log('\n2. replicated throughput through the engine (replica protocol over loopback), 3 s each');
  const rows: [string, 'write' | 'read', number, number, boolean][] = [
    ['4 KiB random write QD16', 'write', 4096, 16, true],
    ['4 KiB random read  QD16', 'read', 4096, 16, true],
    ['1 MiB seq write    QD4 ', 'write', 1 << 20, 4, false],
    ['1 MiB seq read     QD4 ', 'read', 1 << 20, 4, false],
  ];
  for (const [label, kind, bytes, qd, random] of rows) {
    const r1 = await measure(vol1, kind, bytes, qd, 3000, random);
    const r3 = await measure(vol3, kind, bytes, qd, 3000, random);
    console.log(
      `   ${label}: RF=1 ${r1.iops.toFixed(0).padStart(6)} IOPS ${f(r1.mibs).padStart(7)} MiB/s | RF=3 ${r3.iops.toFixed(0).padStart(6)} IOPS ${f(r3.mibs).padStart(7)} MiB/s | RF3/RF1 ${(r3.iops / r1.iops).toFixed(2)}`,
    );
  }

  await closeServer(server);
  await manager.close();
  await stopAll();
  await fs.rm(root, { recursive: true, force: true });
}

main().catch(async (err: unknown) => {
  console.error(err);
  await stopAll();
  process.exitCode = 1;
});
