// qemu-img bench against our portal, tgtd and istgt, each serving a file on this machine, in one run:
// 4 KiB writes and reads at queue depth 16 (scattered: qemu-img bench has no random mode, so a step
// of 1 MiB + 4 KiB spreads them over the LUN) and 1 MiB sequential writes and reads at depth 16.
// Rounds are interleaved across targets and the best round counts, to damp a noisy shared machine.
//   node --import tsx bench/iscsi/main.ts [--rounds 3] [--ops4k 50000] [--ops1m 1000]
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { positiveArg } from '../args.ts';
import { qemuBench, qemuWorkloads } from './qemu-bench.ts';
import { startIstgt, startTgtd } from '../../test/iscsi/baseline-targets.ts';

const LUN_BYTES = 1 << 30;
const rounds = positiveArg('rounds', 3);
const ops4k = positiveArg('ops4k', 50000);
const ops1m = positiveArg('ops1m', 1000);

const workloads = qemuWorkloads(ops4k, ops1m);

/** Our portal in its own process (as the daemon runs it), over a file, with a 16-thread libuv pool. */
async function startOurs(dir: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const serve = path.join(path.dirname(fileURLToPath(import.meta.url)), 'serve.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', serve, '--port', '0', '--file', path.join(dir, 'ours.img'), '--size-mib', String(LUN_BYTES >> 20), '--inline-max', '65536', '--log', 'warn'], {
    env: { ...process.env, UV_THREADPOOL_SIZE: '16' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      const m = /^serving (iscsi:\/\/\S+)/.exec(line);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`serve.ts exited with ${code}`)));
  });
  return {
    url,
    stop: async () => {
      if (child.exitCode === null && child.pid) {
        const exited = new Promise((r) => child.once('exit', r));
        process.kill(child.pid, 'SIGTERM');
        await exited;
      }
    },
  };
}

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'iscsi-bench-'));
const targets: Array<{ name: string; url: string; stop: () => Promise<void> }> = [];
try {
  targets.push({ name: 'cstor-target', ...(await startOurs(dir)) });
  const tgtd = await startTgtd({ sizeBytes: LUN_BYTES });
  targets.push({ name: 'tgtd', url: tgtd.url, stop: tgtd.stop });
  try {
    const istgt = await startIstgt({ sizeBytes: LUN_BYTES });
    targets.push({ name: 'istgt', url: istgt.url, stop: istgt.stop });
  } catch (err) {
    console.log(`istgt: not measured (${(err as Error).message})`);
  }
  const best = new Map<string, number>();
  for (let round = 0; round < rounds; round++) {
    for (const w of workloads) {
      for (const t of targets) {
        const secs = await qemuBench(t.url, w, 300_000);
        const key = `${t.name}/${w.name}`;
        best.set(key, Math.min(best.get(key) ?? Infinity, secs));
      }
    }
  }
  console.log(`qemu-img bench, best of ${rounds} rounds (${os.cpus().length} CPUs):`);
  const header = ['workload', ...targets.map((t) => t.name), ...targets.slice(1).map((t) => `ours/${t.name}`)];
  console.log(header.map((h) => h.padEnd(16)).join(''));
  for (const w of workloads) {
    const cells: string[] = [w.name];
    const rate = (t: string): number => w.ops / best.get(`${t}/${w.name}`)!;
    for (const t of targets) {
      const r = rate(t.name);
      cells.push(w.bytes === 4096 ? `${Math.round(r)} IOPS` : `${((r * w.bytes) / 1e6).toFixed(0)} MB/s`);
    }
    for (const t of targets.slice(1)) cells.push(`${(rate('cstor-target') / rate(t.name)).toFixed(2)}x`);
    console.log(cells.map((c) => c.padEnd(16)).join(''));
  }
} finally {
  for (const t of targets) await t.stop().catch(() => undefined);
  await fs.rm(dir, { recursive: true, force: true });
}
