// Snapshot and clone benchmarks on the real embedded stack (not part of the tests).
// Run: node --import tsx bench/snapshots/main.ts   (BIG_MIB=256 ROUNDS=5 to change the big-volume run)
//
// Starts `cstor up --ports any` on a temp dir, then through the Kubernetes API (lib/kube, polling
// a keep-alive connection every 5 ms, so a figure is exact to about a poll):
// 1. VolumeSnapshot created → Ready, one at a time (30 in a row on one volume): p50/p99;
// 2. 200 VolumeSnapshots created at once over 20 volumes (10 each): every one's created → Ready,
//    p50/p99, and the time until all 200 are Ready;
// 3. promoter PVC created → Bound (10 in a row, clones of one snapshot): p50/p99;
// 4. created → Ready with 1 MiB written before each snapshot vs BIG_MIB MiB (default 256) written
//    before each snapshot on a 2×BIG_MIB volume, ROUNDS rounds each: copy-on-write should make them
//    the same.
// Goals (issue 6): Ready p50 < 150 ms; 200 at once all Ready < 10 s; clone Bound p50 < 500 ms.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { writePattern, pvIscsiUrl } from '../../lib/demo/iscsi-io.ts';
import { claimManifest, readyCondition, seedClients, snapshotManifest, waitClaimBound, waitSnapshotReady, type SeedClients } from '../../lib/demo/kube-wait.ts';
import { createKubeClients } from '../../lib/kube/kube-clients.ts';
import { loadKubeConfig } from '../../lib/kube/kubeconfig.ts';
import { cstorBin, repoRoot } from '../../test/support/daemon.ts';

const MiB = 1024 * 1024;
const ns = 'default';
const bigMiB = Number(process.env.BIG_MIB ?? 256);
const rounds = Number(process.env.ROUNDS ?? 5);

function pct(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
const f = (n: number): string => `${n.toFixed(1)} ms`;
const summary = (label: string, v: readonly number[]): string => `${label}: n=${v.length} p50 ${f(pct(v, 50))} p99 ${f(pct(v, 99))} max ${f(Math.max(...v))}`;

async function snapshotOnce(c: SeedClients, claim: string, name: string): Promise<number> {
  const t0 = performance.now();
  await c.snapshots.create(snapshotManifest({ namespace: ns, name, claim }));
  await waitSnapshotReady(c, { namespace: ns, name }, { timeoutMs: 60_000, intervalMs: 2 });
  return performance.now() - t0;
}

async function makeVolume(c: SeedClients, name: string, size: string): Promise<string> {
  await c.pvcs.create(claimManifest({ namespace: ns, name, storageClassName: 'openebs-cstor-default', size }));
  const { pv } = await waitClaimBound(c, { namespace: ns, name }, { timeoutMs: 120_000, intervalMs: 20 });
  return pvIscsiUrl(pv);
}

async function main(): Promise<void> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-snapshots-'));
  const lines: string[] = [];
  const up = spawn(process.execPath, [cstorBin, 'up', '--data-dir', dataDir, '--ports', 'any', '--log-format', 'json'], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(up, 'exit');
  readline.createInterface({ input: up.stdout }).on('line', (l) => lines.push(l));
  readline.createInterface({ input: up.stderr }).on('line', (l) => lines.push(l));
  try {
    const t0 = performance.now();
    for (let i = 0; !fs.existsSync(path.join(dataDir, 'kubeconfig')) || !lines.some((l) => l.includes('cstor up: the embedded system is running')); i++) {
      if (up.exitCode !== null || i > 1500) throw new Error(`cstor up did not start:\n${lines.slice(-30).join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    console.log(`cstor up ready in ${((performance.now() - t0) / 1000).toFixed(1)} s (${dataDir}); machine: ${os.cpus().length} CPUs, load ${os.loadavg()[0]!.toFixed(2)}`);
    const { kubeConfig } = loadKubeConfig({ kubeconfigPath: path.join(dataDir, 'kubeconfig'), env: {} });
    const c = seedClients(createKubeClients(kubeConfig));

    // 1. One at a time.
    const v0 = await makeVolume(c, 'bench-v0', '64Mi');
    await writePattern(v0, { pattern: 0x11, offset: 0, length: MiB });
    const seq: number[] = [];
    for (let i = 0; i < 30; i++) seq.push(await snapshotOnce(c, 'bench-v0', `seq-${i}`));
    console.log(summary('1. VolumeSnapshot created → Ready, 1 at a time (30 in a row)', seq));

    // 2. 200 at once over 20 volumes.
    const vols = Array.from({ length: 20 }, (_, i) => `bench-m${i}`);
    await Promise.all(vols.map((v) => makeVolume(c, v, '64Mi')));
    const created = new Map<string, number>();
    const ready = new Map<string, number>();
    const tAll = performance.now();
    await Promise.all(
      vols.flatMap((v) =>
        Array.from({ length: 10 }, async (_, j) => {
          const name = `${v}-s${j}`;
          created.set(name, performance.now());
          await c.snapshots.create(snapshotManifest({ namespace: ns, name, claim: v }));
        }),
      ),
    );
    for (let i = 0; ready.size < created.size; i++) {
      if (performance.now() - tAll > 120_000) throw new Error(`only ${ready.size}/200 Ready after 120 s`);
      const list = await c.snapshots.list({ namespace: ns });
      const now = performance.now();
      for (const s of list.items) {
        const name = s.metadata?.name ?? '';
        const start = created.get(name);
        if (start === undefined || ready.has(name)) continue;
        const st = readyCondition(s);
        if (st.error) throw new Error(`${name}: ${st.error}`);
        if (st.ready) ready.set(name, now - start);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    const allMs = performance.now() - tAll;
    console.log(`${summary('2. 200 VolumeSnapshots at once over 20 volumes, each created → Ready', [...ready.values()])}; all 200 Ready in ${f(allMs)}`);

    // 3. Clones.
    await snapshotOnce(c, 'bench-v0', 'clone-src');
    const clones: number[] = [];
    for (let i = 0; i < 10; i++) {
      const name = `bench-clone-${i}`;
      const t = performance.now();
      await c.pvcs.create(claimManifest({ namespace: ns, name, storageClassName: 'openebs-snapshot-promoter', size: '64Mi', snapshot: 'clone-src' }));
      await waitClaimBound(c, { namespace: ns, name }, { timeoutMs: 60_000, intervalMs: 2 });
      clones.push(performance.now() - t);
    }
    console.log(summary('3. promoter PVC created → Bound (10 in a row)', clones));

    // 4. Flat in the data written.
    const small: number[] = [];
    const big: number[] = [];
    const vBig = await makeVolume(c, 'bench-big', `${2 * bigMiB}Mi`);
    let writeMs = 0;
    for (let r = 0; r < rounds; r++) {
      await writePattern(v0, { pattern: 0x20 + r, offset: 0, length: MiB });
      small.push(await snapshotOnce(c, 'bench-v0', `small-${r}`));
      const tw = performance.now();
      await writePattern(vBig, { pattern: 0x40 + r, offset: 0, length: bigMiB * MiB });
      writeMs += performance.now() - tw;
      big.push(await snapshotOnce(c, 'bench-big', `big-${r}`));
    }
    console.log(summary(`4a. created → Ready after 1 MiB written (${rounds} rounds)`, small));
    console.log(`${summary(`4b. created → Ready after ${bigMiB} MiB written (${rounds} rounds, ${2 * bigMiB} MiB volume)`, big)}; the writes ran at ${((rounds * bigMiB) / (writeMs / 1000)).toFixed(0)} MiB/s over iSCSI`);
    console.log(`    ratio p50 ${bigMiB} MiB / 1 MiB = ${(pct(big, 50) / pct(small, 50)).toFixed(2)}`);
    console.log('');
    console.log(`goals: Ready p50 < 150 ms: ${pct(seq, 50) < 150 ? 'met' : 'NOT met'} (${f(pct(seq, 50))}); 200 at once all Ready < 10 s: ${allMs < 10_000 ? 'met' : 'NOT met'} (${(allMs / 1000).toFixed(2)} s); clone Bound p50 < 500 ms: ${pct(clones, 50) < 500 ? 'met' : 'NOT met'} (${f(pct(clones, 50))})`);
  } finally {
    if (up.exitCode === null) {
      up.kill('SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 60_000))]);
      if (up.exitCode === null && up.signalCode === null) up.kill('SIGKILL');
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
