// Where the `cstor target` process spends its CPU under qemu-img bench (not part of the tests):
//   node --import tsx bench/target-iscsi/profile.ts [--rf 1] [--workload 4k-write-qd16] [--ops4k 30000] [--ops1m 300] [--runs 2] [--top 40] [--strace] [--perf] [--perf-sort sym] [--no-cpu-prof] [--unix]
//
// Starts RF pools and one target (real processes on 127.0.0.1, ports 0), the target under
// `node --cpu-prof`, serves one volume, runs the workload `runs` times, stops the target (SIGTERM:
// the profile is written as it exits) and prints the hottest functions by self time, then by file.
// The raw .cpuprofile is kept (its path is printed) for Chrome DevTools or speedscope.
// --strace counts the target's socket syscalls over the last run; --perf samples it with Linux perf
// over the last run (on-CPU time only, kernel included; JS frames named through --perf-basic-prof),
// which the V8 profile cannot tell apart from time spent descheduled on a busy machine.
// --perf-sort: perf report's sort keys (default sym; dso,sym splits kernel, node, JIT and libc).
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import axios from 'axios';
import { argString, hasFlag, positiveArg } from '../args.ts';
import { qemuBench, qemuWorkloads } from '../iscsi/qemu-bench.ts';
import { runTool } from '../../test/iscsi/run-tool.ts';
import { spawn } from 'node:child_process';
import readline from 'node:readline';
import { cstorBin, repoRoot, startDaemon, type Daemon } from '../../test/support/daemon.ts';

const LUN_BYTES = 1 << 30;
const BLOCK = 4096;
const rf = positiveArg('rf', 1);
const runs = positiveArg('runs', 2);
const top = positiveArg('top', 40);
const withStrace = hasFlag('strace');
const withPerf = hasFlag('perf');
const perfSort = argString('perf-sort', 'sym');
// --unix: replicas over the pools' UNIX sockets (pool --listen-unix) instead of loopback TCP.
const unix = hasFlag('unix');
// --no-cpu-prof: no V8 profile (its sampling costs CPU too); the per-run CPU and syscall figures remain.
const withCpuProf = !hasFlag('no-cpu-prof');
const workloadName = argString('workload', '4k-write-qd16');
const workload = qemuWorkloads(positiveArg('ops4k', 30000), positiveArg('ops1m', 300)).find((w) => w.name === workloadName);
if (!workload) throw new Error(`--workload must be one of ${qemuWorkloads(1, 1).map((w) => w.name).join(', ')}`);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Self time per function and per file (µs), from a V8 .cpuprofile. */
function summarize(p: CpuProfile): { total: number; byFn: Map<string, number>; byFile: Map<string, number> } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const byFn = new Map<string, number>();
  const byFile = new Map<string, number>();
  let total = 0;
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const file = n.callFrame.url.replace(/^file:\/\//, '').replace(`${process.cwd()}/`, '') || '(native)';
    if (n.callFrame.functionName === '(idle)') continue;
    total += us;
    const key = `${n.callFrame.functionName || '(anonymous)'}  ${file}:${n.callFrame.lineNumber + 1}`;
    byFn.set(key, (byFn.get(key) ?? 0) + us);
    byFile.set(file, (byFile.get(file) ?? 0) + us);
  }
  return { total, byFn, byFile };
}

/** CPU seconds and read/write syscalls a process has used so far (/proc/<pid>/stat and io; writev counts as a write). */
async function syscalls(pid: number): Promise<{ cpu: number; r: number; w: number }> {
  const io = await fs.readFile(`/proc/${pid}/io`, 'utf8').catch(() => '');
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { cpu: (Number(f[11]) + Number(f[12])) / 100, r: Number(/syscr: (\d+)/.exec(io)?.[1] ?? NaN), w: Number(/syscw: (\d+)/.exec(io)?.[1] ?? NaN) };
}

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'profile-target-iscsi-'));
const profDir = path.join(root, 'prof');
const daemons: Daemon[] = [];
let stopTarget = async (): Promise<void> => undefined;
try {
  const pools: Daemon[] = [];
  for (let i = 0; i < rf; i++) {
    const sock = unix ? ['--listen-unix', path.join(root, `pool${i}.sock`)] : [];
    const d = await startDaemon(['pool', '--name', `pool${i}`, '--data-dir', path.join(root, `pool${i}`), '--listen', '127.0.0.1:0', '--mgmt', '127.0.0.1:0', ...sock], {
      listeners: unix ? ['replica', 'replica-unix', 'mgmt'] : ['replica', 'mgmt'],
    });
    daemons.push(d);
    pools.push(d);
  }
  // --cpu-prof is refused in NODE_OPTIONS, so the target is spawned here rather than by startDaemon.
  const target = spawn(process.execPath, [...(withCpuProf ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []), ...(withPerf ? ['--perf-basic-prof'] : []), cstorBin, 'target', '--iscsi', '127.0.0.1:0', '--mgmt', '127.0.0.1:0', '--log-level', 'info'], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((res) => target.once('exit', () => res()));
  stopTarget = async () => {
    if (target.exitCode === null && target.signalCode === null) target.kill('SIGTERM');
    await exited;
  };
  const addresses: Record<string, string> = {};
  await new Promise<void>((resolve, reject) => {
    readline.createInterface({ input: target.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      const e = JSON.parse(line) as { message?: string; listener?: string; address?: string };
      if (e.message === 'listening' && e.listener && e.address) addresses[e.listener] = e.address;
      if (addresses.iscsi && addresses.mgmt) resolve();
    });
    void exited.then(() => reject(new Error('target exited before listening')));
  });
  const api = `http://${addresses.mgmt!}`;
  const vol = 'vol-prof';
  const replicas: string[] = [];
  for (const p of pools) {
    const r = await axios.post(`http://${p.addresses.mgmt!}/v1/replicas`, { volume: vol, size: LUN_BYTES, blockSize: BLOCK }, { validateStatus: () => true });
    if (r.status >= 300) throw new Error(`creating replica: ${r.status} ${JSON.stringify(r.data)}`);
    replicas.push(unix ? p.addresses['replica-unix']! : p.addresses.replica!);
  }
  const r = await axios.put(`${api}/v1/volumes/${vol}`, { capacity: LUN_BYTES, replicationFactor: rf, replicas, blockSize: BLOCK }, { validateStatus: () => true });
  if (r.status >= 300) throw new Error(`serving: ${r.status} ${JSON.stringify(r.data)}`);
  for (let i = 0; ; i++) {
    const s = await axios.get(`${api}/v1/volumes/${vol}`, { validateStatus: () => true });
    if ((s.data as { phase?: string }).phase === 'Healthy') break;
    if (i > 300) throw new Error(`not Healthy: ${JSON.stringify(s.data)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  const url = `iscsi://${addresses.iscsi!}/iqn.2016-09.com.openebs.cstor:${vol}/0`;
  // A read workload reads what a write run left (not holes).
  if (!workload.args.includes('-w')) await qemuBench(url, { ...workload, args: ['-w', ...workload.args] }, 300_000);
  for (let i = 0; i < runs; i++) {
    // --strace: count the target's syscalls during the last run (slows it; the counts per op still hold).
    const last = i === runs - 1;
    const perfData = path.join(root, 'perf.data');
    const tracer =
      withStrace && last
        ? spawn('strace', ['-c', '-f', '-e', 'trace=read,write,writev,readv,epoll_wait,epoll_pwait', '-p', String(target.pid)], { stdio: ['ignore', 'ignore', 'pipe'] })
        : withPerf && last
          ? spawn('perf', ['record', '-F', '1999', '-g', '-p', String(target.pid), '-o', perfData], { stdio: ['ignore', 'ignore', 'pipe'] })
          : undefined;
    const traced = tracer
      ? new Promise<string>((res) => {
          let out = '';
          tracer.stderr!.on('data', (c: Buffer) => (out += c.toString()));
          tracer.once('exit', () => res(out));
        })
      : undefined;
    if (tracer) await new Promise((res) => setTimeout(res, 500));
    const io0 = await syscalls(target.pid!);
    const secs = await qemuBench(url, workload, 300_000);
    const io1 = await syscalls(target.pid!);
    const per = (n: number): string => (n / workload.ops).toFixed(2);
    console.log(
      `run ${i + 1}: ${workload.name} RF=${rf}: ${secs.toFixed(2)} s, ${(workload.ops / secs).toFixed(0)} ops/s; target per op: ${((1e6 * (io1.cpu - io0.cpu)) / workload.ops).toFixed(1)} µs CPU, ${per(io1.r - io0.r)} reads, ${per(io1.w - io0.w)} writes/writevs`,
    );
    if (tracer && traced) {
      tracer.kill('SIGINT');
      const out = await traced;
      if (withStrace) console.log(`strace -c of the target over run ${i + 1} (${workload.ops} ops):\n${out}`);
      else {
        const report = await runTool('perf', ['report', '-i', perfData, '--no-children', '--sort', perfSort, '--stdio', '-g', 'none'], 120_000);
        const lines = report.stdout.split('\n').filter((l) => l.includes('%') && !l.startsWith('#'));
        console.log(`perf (on-CPU samples) of the target over run ${i + 1}, top ${top}:\n${lines.slice(0, top).join('\n')}`);
      }
    }
  }
  await stopTarget();
  if (withCpuProf) {
    const files = await fs.readdir(profDir);
    const file = files.find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error(`no .cpuprofile in ${profDir}`);
    const kept = path.join(os.tmpdir(), `target-${workload.name}-rf${rf}-${Date.now()}.cpuprofile`);
    await fs.copyFile(path.join(profDir, file), kept);
    const { total, byFn, byFile } = summarize(JSON.parse(await fs.readFile(kept, 'utf8')) as CpuProfile);
    const ops = workload.ops * runs;
    console.log(`profile: ${kept}\nbusy CPU ${(total / 1e6).toFixed(2)} s (incl. setup), ≈ ${(total / ops).toFixed(1)} µs per op\nTop functions by self time:`);
    for (const [k, us] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`);
    console.log('By file:');
    for (const [k, us] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`);
  }
} finally {
  await stopTarget();
  for (const d of [...daemons].reverse()) await d.stop(5000).catch(() => undefined);
  await fs.rm(root, { recursive: true, force: true });
}
