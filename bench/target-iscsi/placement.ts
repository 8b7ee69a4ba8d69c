// How CPU placement moves our 4 KiB IOPS (not part of the tests):
//   node --import tsx bench/target-iscsi/placement.ts [--rounds 3] [--ops4k 30000] [--workload 4k-write-qd16]
//
// One `cstor pool` and one `cstor target` serve an RF=1 volume (replica over the pool's UNIX
// socket); qemu-img bench runs the workload under several placements, pinned with taskset(1), rounds
// interleaved: `free` (the scheduler decides, as in bench/target-iscsi/main.ts), target and pool
// sharing one CPU with qemu-img on the other, and each of the three alone or paired otherwise.
// It shows what a 4 KiB IO costs in cross-CPU wake-ups: each IO crosses three processes here, and on
// this 2-vCPU VM a wake-up on the other CPU is far dearer than one on the same CPU.
// A diagnostic only: the product never pins itself (a cluster's CPU manager would).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import axios from 'axios';
import { argString, positiveArg } from '../args.ts';
import { qemuWorkloads } from '../iscsi/qemu-bench.ts';
import { runTool } from '../../test/iscsi/run-tool.ts';
import { startDaemon, type Daemon } from '../../test/support/daemon.ts';

const rounds = positiveArg('rounds', 3);
const name = argString('workload', '4k-write-qd16');
const workload = qemuWorkloads(positiveArg('ops4k', 30000), 100).find((w) => w.name === name);
if (!workload) throw new Error(`--workload must be one of ${qemuWorkloads(1, 1).map((w) => w.name).join(', ')}`);

/** name, then the CPU lists for target, pool and qemu-img. */
const placements: Array<[string, string, string, string]> = [
  ['free', '0,1', '0,1', '0,1'],
  ['target+pool | qemu', '0', '0', '1'],
  ['target | pool+qemu', '0', '1', '1'],
  ['target+qemu | pool', '0', '1', '0'],
  ['target | pool, qemu free', '0', '1', '0,1'],
];

/** Pins every thread of a process (taskset -p acts on one thread). */
function pin(pid: number, cpus: string): void {
  for (const tid of execFileSync('ls', [`/proc/${pid}/task`], { encoding: 'utf8' }).trim().split('\n')) {
    execFileSync('taskset', ['-p', '-c', cpus, tid], { stdio: 'ignore' });
  }
}

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-placement-'));
const daemons: Daemon[] = [];
try {
  const pool = await startDaemon(['pool', '--name', 'p0', '--data-dir', path.join(root, 'p0'), '--listen', '127.0.0.1:0', '--mgmt', '127.0.0.1:0', '--listen-unix', path.join(root, 'p0.sock')], {
    listeners: ['replica', 'replica-unix', 'mgmt'],
  });
  daemons.push(pool);
  const target = await startDaemon(['target', '--iscsi', '127.0.0.1:0', '--mgmt', '127.0.0.1:0', '--data-dir', path.join(root, 'target')], { listeners: ['iscsi', 'mgmt'] });
  daemons.push(target);
  const api = `http://${target.addresses.mgmt!}/v1/volumes/vol`;
  await axios.post(`http://${pool.addresses.mgmt!}/v1/replicas`, { volume: 'vol', size: 1 << 30, blockSize: 4096 });
  await axios.put(api, { capacity: 1 << 30, replicationFactor: 1, replicas: [pool.addresses['replica-unix']!], blockSize: 4096 });
  for (let i = 0; (await axios.get(api)).data.phase !== 'Healthy'; i++) {
    if (i > 300) throw new Error('volume not Healthy after 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  const url = `iscsi://${target.addresses.iscsi!}/iqn.2016-09.com.openebs.cstor:vol/0`;
  const iops = new Map<string, number[]>();
  for (let r = 0; r < rounds; r++) {
    for (const [label, t, p, q] of placements) {
      pin(target.pid, t);
      pin(pool.pid, p);
      const out = await runTool('taskset', ['-c', q, 'qemu-img', 'bench', '-f', 'raw', ...workload.args, url], 120_000);
      const m = /Run completed in ([\d.]+) seconds/.exec(out.stdout);
      if (out.code !== 0 || !m) throw new Error(`qemu-img bench failed (${out.code}): ${out.stderr || out.stdout}`);
      iops.set(label, [...(iops.get(label) ?? []), Math.round(workload.ops / Number(m[1]))]);
      process.stderr.write(`round ${r + 1} ${label}: ${Math.round(workload.ops / Number(m[1]))} IOPS\n`);
    }
  }
  console.log(`${workload.name}, RF=1 over a UNIX socket, ${rounds} rounds, ${os.cpus().length} CPUs (CPU lists: target | pool | qemu-img):`);
  const median = (v: number[]): number => [...v].sort((a, b) => a - b)[v.length >> 1]!;
  const free = median(iops.get('free')!);
  for (const [label, t, p, q] of placements) {
    const v = iops.get(label)!;
    console.log(`${label.padEnd(26)} ${`${t} | ${p} | ${q}`.padEnd(16)} median ${String(median(v)).padStart(6)} IOPS (${(median(v) / free).toFixed(2)}x free)  runs ${v.join(' ')}`);
  }
} finally {
  for (const d of daemons.reverse()) await d.stop(5000).catch(() => undefined);
  await fs.rm(root, { recursive: true, force: true });
}
