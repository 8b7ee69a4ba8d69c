// qemu-img bench against the real daemons end to end (not part of the tests):
//   node --import tsx bench/target-iscsi/main.ts [--rounds 3] [--ops4k 30000] [--ops1m 500] [--unix]
//
// Three `cstor pool` processes and one `cstor target` (real processes on 127.0.0.1, ports 0) serve
// vol-rf1 (RF=1, one replica) and vol-rf3 (RF=3, one replica per pool), block 4096, 1 GiB. tgtd and
// istgt (if it starts) each serve a 1 GiB file. For each workload, each target gets the same
// qemu-img bench run: 4 KiB writes and reads at queue depth 16 (qemu-img bench has no random mode,
// so a step of 1 MiB + 4 KiB scatters them over the LUN) and 1 MiB sequential writes and reads at
// depth 16. Rounds are interleaved across targets; the best round counts. Prints IOPS / MB/s,
// the ratios RF=1/tgtd and RF=3/tgtd against the issue goals, and the CPU our target and pools
// used in the best runs (/proc/<pid>/stat). Every process is stopped by PID, even on failure.
// --unix: the target reaches the pools over their UNIX sockets (pool --listen-unix, replica
// addresses unix:PATH) instead of loopback TCP, as for pools on the target's own host.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import axios from 'axios';
import { hasFlag, positiveArg } from '../args.ts';
import { qemuBench, qemuWorkloads, type Workload } from '../iscsi/qemu-bench.ts';
import { startIstgt, startTgtd } from '../../test/iscsi/baseline-targets.ts';
import { startDaemon, type Daemon } from '../../test/support/daemon.ts';

const LUN_BYTES = 1 << 30;
const BLOCK = 4096;
const rounds = positiveArg('rounds', 3);
const ops4k = positiveArg('ops4k', 30000);
const ops1m = positiveArg('ops1m', 500);
const unix = hasFlag('unix');

const workloads = qemuWorkloads(ops4k, ops1m);

interface Target {
  readonly name: string;
  readonly url: string;
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat (Linux). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const started = Date.now();
const root = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-target-iscsi-'));
const daemons: Daemon[] = [];
const stops: Array<() => Promise<void>> = [];
const targets: Target[] = [];
let failed = false;
try {
  // Default log level: the daemons announce their listeners at info.
  const env = {};
  const pools: Daemon[] = [];
  for (let i = 0; i < 3; i++) {
    const sock = unix ? ['--listen-unix', path.join(root, `pool${i}.sock`)] : [];
    const d = await startDaemon(['pool', '--name', `pool${i}`, '--data-dir', path.join(root, `pool${i}`), '--listen', '127.0.0.1:0', '--mgmt', '127.0.0.1:0', ...sock], {
      listeners: unix ? ['replica', 'replica-unix', 'mgmt'] : ['replica', 'mgmt'],
      env,
    });
    daemons.push(d);
    pools.push(d);
  }
  const target = await startDaemon(['target', '--iscsi', '127.0.0.1:0', '--mgmt', '127.0.0.1:0', '--data-dir', path.join(root, 'target')], {
    listeners: ['iscsi', 'mgmt'],
    env,
  });
  daemons.push(target);
  const api = `http://${target.addresses.mgmt!}`;
  for (const [vol, rf] of [['vol-rf1', 1], ['vol-rf3', 3]] as const) {
    const replicas: string[] = [];
    for (const p of pools.slice(0, rf)) {
      const r = await axios.post(`http://${p.addresses.mgmt!}/v1/replicas`, { volume: vol, size: LUN_BYTES, blockSize: BLOCK }, { validateStatus: () => true });
      if (r.status >= 300) throw new Error(`creating replica ${vol} on pool: ${r.status} ${JSON.stringify(r.data)}`);
      replicas.push(unix ? p.addresses['replica-unix']! : p.addresses.replica!);
    }
    const r = await axios.put(`${api}/v1/volumes/${vol}`, { capacity: LUN_BYTES, replicationFactor: rf, replicas, blockSize: BLOCK }, { validateStatus: () => true });
    if (r.status >= 300) throw new Error(`serving ${vol}: ${r.status} ${JSON.stringify(r.data)}`);
    const deadline = Date.now() + 30_000;
    for (let i = 0; ; i++) {
      const s = await axios.get(`${api}/v1/volumes/${vol}`, { validateStatus: () => true });
      if (s.status === 200 && (s.data as { phase?: string }).phase === 'Healthy') break;
      if (Date.now() > deadline || i > 1000) throw new Error(`${vol} not Healthy after 30 s: ${JSON.stringify(s.data)}`);
      await new Promise((res) => setTimeout(res, 100));
    }
    targets.push({ name: vol === 'vol-rf1' ? 'RF=1' : 'RF=3', url: `iscsi://${target.addresses.iscsi!}/iqn.2016-09.com.openebs.cstor:${vol}/0` });
  }
  const tgtd = await startTgtd({ sizeBytes: LUN_BYTES });
  stops.push(tgtd.stop);
  targets.push({ name: 'tgtd', url: tgtd.url });
  try {
    const istgt = await startIstgt({ sizeBytes: LUN_BYTES });
    stops.push(istgt.stop);
    targets.push({ name: 'istgt', url: istgt.url });
  } catch (err) {
    console.log(`istgt: not measured (${(err as Error).message})`);
  }

  const best = new Map<string, number>();
  // Where the time goes on our side: CPU seconds of the target and of the pools during the best run.
  const cpu = new Map<string, { target: number; pools: number }>();
  for (let round = 0; round < rounds; round++) {
    for (const w of workloads) {
      for (const t of targets) {
        const ours = t.name.startsWith('RF=');
        const before = ours ? await Promise.all(daemons.map((d) => cpuSeconds(d.pid))) : [];
        const secs = await qemuBench(t.url, w, 120_000);
        const key = `${t.name}/${w.name}`;
        if (secs < (best.get(key) ?? Infinity) && ours) {
          const after = await Promise.all(daemons.map((d) => cpuSeconds(d.pid)));
          const used = after.map((a, i) => a - before[i]!);
          cpu.set(key, { target: used[3]!, pools: used[0]! + used[1]! + used[2]! });
        }
        best.set(key, Math.min(best.get(key) ?? Infinity, secs));
        process.stderr.write(`round ${round + 1} ${w.name} ${t.name}: ${secs.toFixed(2)} s\n`);
      }
    }
  }

  console.log(
    `qemu-img bench, best of ${rounds} rounds, ${ops4k} x 4 KiB / ${ops1m} x 1 MiB per run, QD 16, ${os.cpus().length} CPUs, LUNs of 1 GiB, our block ${BLOCK}, replicas over ${unix ? 'UNIX sockets' : 'loopback TCP'}:`,
  );
  const header = ['workload', ...targets.map((t) => t.name), 'RF=1/tgtd', 'RF=3/tgtd'];
  console.log(header.map((h) => h.padEnd(15)).join(''));
  const rate = (t: string, w: Workload): number => w.ops / best.get(`${t}/${w.name}`)!;
  const verdicts: string[] = [];
  for (const w of workloads) {
    const cells: string[] = [w.name];
    for (const t of targets) {
      const r = rate(t.name, w);
      cells.push(w.bytes === 4096 ? `${Math.round(r)} IOPS` : `${((r * w.bytes) / 1e6).toFixed(0)} MB/s`);
    }
    const r1 = rate('RF=1', w) / rate('tgtd', w);
    const r3 = rate('RF=3', w) / rate('tgtd', w);
    const goal3 = w.bytes === 4096 ? 0.5 : 0.7;
    cells.push(`${r1.toFixed(2)}x`, `${r3.toFixed(2)}x`);
    console.log(cells.map((c) => c.padEnd(15)).join(''));
    verdicts.push(`${w.name}: RF=1 ${r1.toFixed(2)}x (goal >= 0.8) ${r1 >= 0.8 ? 'OK' : 'NOT met'}; RF=3 ${r3.toFixed(2)}x (goal >= ${goal3}) ${r3 >= goal3 ? 'OK' : 'NOT met'}`);
  }
  for (const v of verdicts) console.log(v);
  console.log('our CPU in the best run (of 2 CPUs; % of the run wall time): target process / 3 pool processes');
  for (const w of workloads) {
    const cells = [w.name];
    for (const t of ['RF=1', 'RF=3']) {
      const c = cpu.get(`${t}/${w.name}`)!;
      const wall = best.get(`${t}/${w.name}`)!;
      cells.push(`${t}: ${((100 * c.target) / wall).toFixed(0)}% / ${((100 * c.pools) / wall).toFixed(0)}%`);
    }
    console.log(cells.map((c) => c.padEnd(28)).join(''));
  }
  console.log(`total ${((Date.now() - started) / 1000).toFixed(0)} s`);
} catch (err) {
  failed = true;
  console.error(`bench failed: ${(err as Error).message}`);
  for (const d of daemons) {
    const tail = d.lines.slice(-5);
    if (tail.length > 0) console.error(`--- pid ${d.pid} (last lines):\n${tail.join('\n')}`);
  }
} finally {
  for (const s of stops) await s().catch(() => undefined);
  // Target first (it drains and closes its replicas), then the pools; each by its PID.
  for (const d of [...daemons].reverse()) await d.stop(5000).catch(() => undefined);
  await fs.rm(root, { recursive: true, force: true });
}
process.exitCode = failed ? 1 : 0;
