// Profiles the pool process serving 4 KiB random reads (QD16) or 1 MiB sequential reads (QD4):
//   node --import tsx bench/pool-protocol/profile-read.ts [--big] [--ops N] [--prof-dir DIR]
// Writes a V8 CPU profile of the pool process (--cpu-prof) into DIR (default: a temp dir, printed)
// and prints the pool's CPU µs per read. Not part of the tests.
import fs from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connectReplica } from '../../lib/replica-protocol/client.ts';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { cstorBin } from '../../test/support/daemon.ts';
import { argString, hasFlag, positiveArg } from '../args.ts';
import { mgmt } from '../../test/pool-protocol/mgmt-client.ts';

const MiB = 1 << 20;
const big = hasFlag('big');
const ops = positiveArg('ops', big ? 4096 : 100_000);
const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'profile-pool-read-'));
const profDir = argString('prof-dir', path.join(tmp, 'prof'));
const size = (big ? 256 : 32) * MiB;
const bs = big ? MiB : 4096;
const depth = big ? 4 : 16;

const cpuOf = (pid: number): number => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};
// The pool runs under --cpu-prof (not allowed in NODE_OPTIONS, so spawned here, not by startDaemon).
const proc = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${profDir}`, cstorBin, 'pool', '--name', 'prof', '--data-dir', path.join(tmp, 'pool'), '--listen', '127.0.0.1:0', '--mgmt', '127.0.0.1:0'], {
  env: { ...process.env, LOG_LEVEL: 'info' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const addresses: Record<string, string> = {};
const ready = new Promise<void>((resolve, reject) => {
  proc.once('exit', (code) => reject(new Error(`pool exited (${code}) before listening`)));
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    const m = /"listener":"(\w+)".*"address":"([^"]+)"|"address":"([^"]+)".*"listener":"(\w+)"/.exec(line);
    if (m && line.includes('"listening"')) addresses[m[1] ?? m[4]!] = m[2] ?? m[3]!;
    if (addresses.replica && addresses.mgmt) resolve();
  });
});
try {
  await ready;
  const pool = { pid: proc.pid!, addresses };
  await mgmt(pool.addresses.mgmt!, 'POST', '/v1/replicas', { volume: 'prof', size, blockSize: 4096 });
  const c = await connectReplica(pool.addresses.replica!, { timeoutMs: 60_000 });
  await c.open({ volume: 'prof', size, blockSize: 4096, replicationFactor: 1, targetId: 'prof' });
  await c.markHealthy();
  const chunk = Buffer.alloc(MiB, 0x5a);
  for (let o = 0; o < size; o += MiB) await c.write(o, chunk, o / MiB + 1);
  let x = 7;
  const offsetOf = (i: number): number => {
    if (big) return (i * MiB) % size;
    x = (x * 1103515245 + 12345) % 2147483648;
    return (x % (size / 4096)) * 4096;
  };
  let next = 0;
  const c0 = cpuOf(pool.pid);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: depth }, async () => {
      const into = Buffer.alloc(bs);
      while (next < ops) {
        next++;
        await c.readInto!(offsetOf(next), into);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  console.log(`${ops} reads of ${bs} B at QD${depth}: ${(ops / secs).toFixed(0)} IOPS, pool CPU ${(((cpuOf(pool.pid) - c0) * 1e6) / ops).toFixed(1)} µs per read`);
  await c.close();
} finally {
  if (proc.exitCode === null) {
    proc.kill('SIGTERM');
    await once(proc, 'exit');
  }
  console.log(`profile in ${profDir}: ${(await fs.readdir(profDir).catch(() => [])).join(', ')}`);
  await fs.rm(path.join(tmp, 'pool'), { recursive: true, force: true });
}
