// The pool's cost per IO over the replica protocol: CPU µs, context switches and syscalls of the
// pool process per request, for one or more source trees side by side (not part of the tests):
//   node --import tsx bench/pool-protocol/per-io.ts [--trees DIR,DIR] [--workloads 4k-write,4k-read,1m-write,1m-read]
//        [--rounds 3] [--ops4k 30000] [--ops1m 1000] [--size-mib 256] [--fill-bs 4096] [--unix]
//        [--pool-args '--flag value|--flag other'] [--perf] [--top 30] [--cpu-prof DIR]
// For each tree (default: this one) a real `cstor pool` process is started from that tree's
// bin/cstor.js; this process drives it with the replica client (one connection, 4 KiB random IO
// at QD16, 1 MiB sequential IO at QD4, data in the page cache), and the rounds are interleaved
// across trees so a busy machine slows them alike. Per run it reads the pool's /proc files before
// and after: CPU (utime + stime of every thread), context switches (voluntary + involuntary, summed
// over /proc/PID/task/*), read/write syscalls (/proc/PID/io: socket and file alike). Prints every
// run, then the median per tree (workloads run in the order given, each for all its rounds).
// Compare trees by copying the old one aside:
//   mkdir /tmp/old && tar --exclude=./node_modules -cf - . | tar -C /tmp/old -xf - && ln -s $PWD/node_modules /tmp/old/
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { argString, hasFlag, positiveArg } from '../args.ts';
import { connectReplica } from '../../lib/replica-protocol/client.ts';
import type { ReplicaClient } from '../../lib/replica-protocol/types.ts';
import { mgmt } from '../../test/pool-protocol/mgmt-client.ts';
import { repoRoot } from '../../test/support/daemon.ts';
import { procCounters } from '../proc-counters.ts';

const MiB = 1 << 20;
const trees = argString('trees', repoRoot).split(',').map((t) => path.resolve(t));
const rounds = positiveArg('rounds', 3);
const ops4k = positiveArg('ops4k', 30000);
const ops1m = positiveArg('ops1m', 1000);
const unix = hasFlag('unix');
// --pool-args: extra `cstor pool` flags; 'A|B' gives tree i the i-th list (a tree may be named twice).
const poolArgsFor = (i: number): string[] => {
  const lists = argString('pool-args', '').split('|');
  return (lists[i] ?? lists[0]!).split(' ').filter((s) => s !== '');
};
// --perf: Linux perf samples of each pool over its last run of each workload (on-CPU, kernel
// included; JS frames named through --perf-basic-prof); --top N lines of it.
const withPerf = hasFlag('perf');
const top = positiveArg('top', 30);
// --cpu-prof DIR: the pools run under node --cpu-prof, writing their V8 profiles into DIR on exit.
const cpuProfDir = argString('cpu-prof', '');
const volumeSize = positiveArg('size-mib', 256) * MiB;
// The volume is filled once before the runs with writes of this size (reads then hit written
// blocks). It matters on Linux 6.x ext4, whose page cache keeps a large write as one large folio:
// a later 4 KiB write into a 1 MiB folio costs ~25 µs more kernel time than into a 4 KiB one.
const fillBs = positiveArg('fill-bs', 4096);

interface Workload {
  name: string;
  bs: number;
  depth: number;
  ops: number;
  write: boolean;
  offsetOf: (i: number) => number;
}
const blocks4k = volumeSize / 4096;
const rnd = (i: number): number => ((((i + 1) * 2654435761) >>> 0) % blocks4k) * 4096;
const all: Workload[] = [
  { name: '4k-write', bs: 4096, depth: 16, ops: ops4k, write: true, offsetOf: rnd },
  { name: '4k-read', bs: 4096, depth: 16, ops: ops4k, write: false, offsetOf: rnd },
  { name: '1m-write', bs: MiB, depth: 4, ops: ops1m, write: true, offsetOf: (i) => (i * MiB) % volumeSize },
  { name: '1m-read', bs: MiB, depth: 4, ops: ops1m, write: false, offsetOf: (i) => (i * MiB) % volumeSize },
];
const wanted = argString('workloads', '4k-write,4k-read,1m-write,1m-read').split(',');
// In the order given (a 4 KiB write run after a 1 MiB one lands in the page cache's large folios).
const workloads = wanted.flatMap((name) => all.filter((w) => w.name === name));
if (workloads.length === 0) throw new Error(`--workloads: one or more of ${all.map((w) => w.name).join(', ')}`);

interface Pool {
  tree: string;
  mgmtAddress: string;
  proc: ChildProcess;
  client: ReplicaClient;
  ioSeq: number;
}

async function startPool(tree: string, dir: string, i: number): Promise<Pool> {
  const sock = path.join(dir, `pool${i}.sock`);
  const proc = spawn(
    process.execPath,
    [...(withPerf ? ['--perf-basic-prof'] : []), ...(cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(cpuProfDir)}`] : []), path.join(tree, 'bin', 'cstor.js'), 'pool', '--name', `p${i}`, '--data-dir', path.join(dir, `pool${i}`), '--listen', '127.0.0.1:0', '--mgmt', '127.0.0.1:0', ...(unix ? ['--listen-unix', sock] : []), ...poolArgsFor(i)],
    { cwd: tree, env: { ...process.env, LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const addresses: Record<string, string> = {};
  await new Promise<void>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`pool from ${tree} exited (${code}) before listening`)));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      const e = JSON.parse(line) as { message?: string; listener?: string; address?: string };
      if (e.message === 'listening' && e.listener && e.address) addresses[e.listener] = e.address;
      if (addresses.replica && addresses.mgmt && (!unix || addresses['replica-unix'])) resolve();
    });
  });
  const created = await mgmt(addresses.mgmt!, 'POST', '/v1/replicas', { volume: 'bench', size: volumeSize, blockSize: 4096 });
  if (created.status !== 201) throw new Error(`create failed: ${created.text}`);
  const client = await connectReplica(unix ? addresses['replica-unix']! : addresses.replica!, { timeoutMs: 120_000 });
  await client.open({ volume: 'bench', size: volumeSize, blockSize: 4096, replicationFactor: 1, targetId: 'bench' });
  await client.markHealthy();
  return { tree, mgmtAddress: addresses.mgmt!, proc, client, ioSeq: 0 };
}

interface Sample {
  iops: number;
  cpuUs: number;
  clientUs: number;
  ctx: number;
  sysr: number;
  sysw: number;
}

async function run(p: Pool, w: Workload, perfData?: string): Promise<Sample> {
  const perf = perfData ? spawn('perf', ['record', '-F', '2999', '-g', '-p', String(p.proc.pid), '-o', perfData], { stdio: ['ignore', 'ignore', 'pipe'] }) : undefined;
  const perfDone = perf ? once(perf, 'exit') : undefined;
  if (perf) await new Promise((res) => setTimeout(res, 300));
  const data = Buffer.alloc(w.bs, 0x5a);
  let next = 0;
  const a = procCounters(p.proc.pid!);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: w.depth }, async () => {
      const into = Buffer.alloc(w.bs);
      while (next < w.ops) {
        const i = next++;
        if (w.write) await p.client.write(w.offsetOf(i), data, ++p.ioSeq);
        else await p.client.readInto!(w.offsetOf(i), into);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const b = procCounters(p.proc.pid!);
  if (perf && perfDone && perfData) {
    perf.kill('SIGINT');
    await perfDone;
    const out = await new Promise<string>((resolve) => {
      const rep = spawn('perf', ['report', '-i', perfData, '--no-children', '--sort', 'sym', '--stdio', '-g', 'none'], { stdio: ['ignore', 'pipe', 'ignore'] });
      let text = '';
      rep.stdout.on('data', (c: Buffer) => (text += c.toString()));
      rep.once('exit', () => resolve(text));
    });
    const lines = out.split('\n').filter((l) => l.includes('%') && !l.startsWith('#'));
    console.log(`perf of the pool from ${p.tree}, ${w.name}, top ${top}:\n${lines.slice(0, top).join('\n')}`);
  }
  return {
    iops: w.ops / secs,
    cpuUs: ((b.cpu - a.cpu) * 1e6) / w.ops,
    clientUs: (c.user + c.system) / w.ops,
    ctx: (b.ctx - a.ctx) / w.ops,
    sysr: (b.sysr - a.sysr) / w.ops,
    sysw: (b.sysw - a.sysw) / w.ops,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const fmt = (s: Sample): string =>
  `${(s.iops / 1000).toFixed(1).padStart(7)}k IOPS  pool ${s.cpuUs.toFixed(1).padStart(7)} µs CPU ${s.ctx.toFixed(2).padStart(6)} ctxsw ${s.sysr.toFixed(2).padStart(5)} rd ${s.sysw.toFixed(2).padStart(5)} wr  client ${s.clientUs.toFixed(1).padStart(6)} µs`;

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-pool-per-io-'));
const pools: Pool[] = [];
try {
  for (let i = 0; i < trees.length; i++) pools.push(await startPool(trees[i]!, dir, i));
  // Fill the volume once (reads then hit written blocks in the page cache).
  const fill = Buffer.alloc(fillBs, 0x33);
  for (const p of pools) {
    let o = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (o < volumeSize) {
          const at = o;
          o += fillBs;
          await p.client.write(at, fill, ++p.ioSeq);
        }
      }),
    );
  }
  console.log(`pool per-IO bench: ${trees.length} tree(s), ${rounds} rounds, ${unix ? 'unix' : 'tcp'}, volume ${volumeSize / MiB} MiB filled by ${fillBs} B writes, ${os.cpus().length} CPUs, load ${os.loadavg()[0]!.toFixed(1)}`);
  trees.forEach((t, i) => console.log(`  [${i}] ${t} ${poolArgsFor(i).join(' ')}`));
  const results = new Map<string, Sample[]>();
  for (const w of workloads) {
    for (let r = 0; r < rounds; r++) {
      // Alternate which tree goes first.
      const order = r % 2 === 0 ? pools.map((_, i) => i) : pools.map((_, i) => pools.length - 1 - i);
      for (const i of order) {
        const s = await run(pools[i]!, w, withPerf && r === rounds - 1 ? path.join(dir, `perf${i}.data`) : undefined);
        const key = `${w.name} [${i}]`;
        results.set(key, [...(results.get(key) ?? []), s]);
        console.log(`${w.name.padEnd(9)} [${i}] round ${r + 1}: ${fmt(s)}`);
      }
    }
  }
  console.log(`medians (load at end ${os.loadavg()[0]!.toFixed(1)}):`);
  for (const [key, ss] of results) {
    const m = (f: (s: Sample) => number): number => median(ss.map(f));
    console.log(`${key.padEnd(13)} ${fmt({ iops: m((s) => s.iops), cpuUs: m((s) => s.cpuUs), clientUs: m((s) => s.clientUs), ctx: m((s) => s.ctx), sysr: m((s) => s.sysr), sysw: m((s) => s.sysw) })}`);
  }
  // How much of each pool's file IO ran inline (trees with store/inline-io.ts).
  for (let i = 0; i < pools.length; i++) {
    const text = (await mgmt(pools[i]!.mgmtAddress, 'GET', '/metrics')).text;
    const lines = text.split('\n').filter((l) => l.startsWith('cstor_pool_inline_io'));
    if (lines.length > 0) console.log(`[${i}] ${lines.join('  ')}`);
  }
  for (const p of pools) {
    await p.client.sync();
    await p.client.close();
  }
} finally {
  for (const p of pools) {
    if (p.proc.exitCode === null && p.proc.signalCode === null) {
      p.proc.kill('SIGTERM');
      await once(p.proc, 'exit');
    }
  }
  await fs.rm(dir, { recursive: true, force: true });
}
