// The pool's per-IO cost under the real pipeline, qemu-img bench → iSCSI → `cstor target` → replica
// protocol → `cstor pool`, for pool variants side by side (not part of the tests):
//   node --import tsx bench/pool-protocol/through-target.ts [--pool-args '--inline-io-max 0|'] [--rounds 3]
//        [--ops4k 30000] [--ops1m 300] [--workloads 4k-write-qd16,4k-read-qd16,1m-seq-write,1m-seq-read] [--unix]
// (workloads run in the order given, each for all rounds)
// One pool process per variant (`--pool-args` lists each variant's extra `cstor pool` flags, split
// by '|'; the default compares the thread-pool data path, `--inline-io-max 0`, with the default),
// one target serving one RF=1 volume per variant (1 GiB, block 4096). The workloads are
// bench/iscsi/qemu-bench.ts's, rounds interleaved across variants. Per run it prints IOPS and, per
// IO, the CPU µs and context switches (voluntary + involuntary, every thread) of the variant's
// pool and of the target, from /proc. Every process is stopped by PID at the end.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { argString, hasFlag, positiveArg } from '../args.ts';
import { qemuBench, qemuWorkloads } from '../iscsi/qemu-bench.ts';
import { mgmt } from '../../test/pool-protocol/mgmt-client.ts';
import { startDaemon, stopAll, type Daemon } from '../../test/support/daemon.ts';
import { procCounters } from '../proc-counters.ts';

const LUN_BYTES = 1 << 30;
const variants = argString('pool-args', '--inline-io-max 0|').split('|').map((v) => v.split(' ').filter((s) => s !== ''));
const rounds = positiveArg('rounds', 3);
const unix = hasFlag('unix');
const wanted = argString('workloads', '4k-write-qd16,4k-read-qd16,1m-seq-write,1m-seq-read').split(',');
// In the order given (a 4 KiB write run after a 1 MiB one lands in the page cache's large folios).
const known = qemuWorkloads(positiveArg('ops4k', 30000), positiveArg('ops1m', 300));
const workloads = wanted.flatMap((name) => known.filter((w) => w.name === name));
if (workloads.length === 0) throw new Error('--workloads names none of 4k-write-qd16, 4k-read-qd16, 1m-seq-write, 1m-seq-read');

interface Sample {
  iops: number;
  poolUs: number;
  poolCtx: number;
  targetUs: number;
  targetCtx: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const fmt = (s: Sample): string =>
  `${(s.iops / 1000).toFixed(1).padStart(6)}k IOPS  pool ${s.poolUs.toFixed(1).padStart(6)} µs ${s.poolCtx.toFixed(2).padStart(5)} ctxsw  target ${s.targetUs.toFixed(1).padStart(6)} µs ${s.targetCtx.toFixed(2).padStart(5)} ctxsw`;

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-through-target-'));
try {
  const pools: Daemon[] = [];
  for (let i = 0; i < variants.length; i++) {
    const sock = unix ? ['--listen-unix', path.join(root, `pool${i}.sock`)] : [];
    pools.push(
      await startDaemon(['pool', '--name', `pool${i}`, '--data-dir', path.join(root, `pool${i}`), '--listen', '127.0.0.1:0', '--mgmt', '127.0.0.1:0', ...sock, ...variants[i]!], {
        listeners: unix ? ['replica', 'replica-unix', 'mgmt'] : ['replica', 'mgmt'],
      }),
    );
  }
  const target = await startDaemon(['target', '--iscsi', '127.0.0.1:0', '--mgmt', '127.0.0.1:0'], { listeners: ['iscsi', 'mgmt'] });
  const urls: string[] = [];
  for (let i = 0; i < pools.length; i++) {
    const vol = `vol-${i}`;
    const p = pools[i]!;
    const created = await mgmt(p.addresses.mgmt!, 'POST', '/v1/replicas', { volume: vol, size: LUN_BYTES, blockSize: 4096 });
    if (created.status >= 300) throw new Error(`creating replica: ${created.text}`);
    const replica = unix ? p.addresses['replica-unix']! : p.addresses.replica!;
    const served = await mgmt(target.addresses.mgmt!, 'PUT', `/v1/volumes/${vol}`, { capacity: LUN_BYTES, replicationFactor: 1, replicas: [replica], blockSize: 4096 });
    if (served.status >= 300) throw new Error(`serving ${vol}: ${served.text}`);
    for (let n = 0; ; n++) {
      const s = await mgmt(target.addresses.mgmt!, 'GET', `/v1/volumes/${vol}`);
      if ((s.body as { phase?: string } | null)?.phase === 'Healthy') break;
      if (n > 300) throw new Error(`${vol} not Healthy: ${s.text}`);
      await new Promise((res) => setTimeout(res, 100));
    }
    urls.push(`iscsi://${target.addresses.iscsi!}/iqn.2016-09.com.openebs.cstor:${vol}/0`);
  }
  console.log(`through-target bench: ${rounds} rounds, ${unix ? 'unix' : 'tcp'} replica sockets, ${os.cpus().length} CPUs, load ${os.loadavg()[0]!.toFixed(1)}`);
  variants.forEach((v, i) => console.log(`  [${i}] cstor pool ${v.join(' ') || '(defaults)'}`));
  const results = new Map<string, Sample[]>();
  for (const w of workloads) {
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? pools.map((_, i) => i) : pools.map((_, i) => pools.length - 1 - i);
      for (const i of order) {
        const p0 = procCounters(pools[i]!.pid);
        const t0 = procCounters(target.pid);
        const secs = await qemuBench(urls[i]!, w, 600_000);
        const p1 = procCounters(pools[i]!.pid);
        const t1 = procCounters(target.pid);
        const s: Sample = {
          iops: w.ops / secs,
          poolUs: ((p1.cpu - p0.cpu) * 1e6) / w.ops,
          poolCtx: (p1.ctx - p0.ctx) / w.ops,
          targetUs: ((t1.cpu - t0.cpu) * 1e6) / w.ops,
          targetCtx: (t1.ctx - t0.ctx) / w.ops,
        };
        const key = `${w.name} [${i}]`;
        results.set(key, [...(results.get(key) ?? []), s]);
        console.log(`${w.name.padEnd(13)} [${i}] round ${r + 1}: ${fmt(s)}`);
      }
    }
  }
  console.log(`medians (load at end ${os.loadavg()[0]!.toFixed(1)}):`);
  for (const [key, ss] of results) {
    const m = (f: (s: Sample) => number): number => median(ss.map(f));
    console.log(`${key.padEnd(17)} ${fmt({ iops: m((s) => s.iops), poolUs: m((s) => s.poolUs), poolCtx: m((s) => s.poolCtx), targetUs: m((s) => s.targetUs), targetCtx: m((s) => s.targetCtx) })}`);
  }
  // How much of the pools' file IO ran inline, and how often they went back to the thread pool.
  for (let i = 0; i < pools.length; i++) {
    const text = (await mgmt(pools[i]!.addresses.mgmt!, 'GET', '/metrics')).text;
    const lines = text.split('\n').filter((l) => l.startsWith('cstor_pool_inline_io'));
    console.log(`[${i}] ${lines.join('  ')}`);
  }
} finally {
  await stopAll();
  await fs.rm(root, { recursive: true, force: true });
}
