// bench/mapi: m-apiserver end to end over HTTP, as the provisioners and the snapshot-controller
// see it: real `cstor mapi` processes on a real kube-lite.
//   A. target simulated (FakeTargetMgmt over HTTP, a polling loop playing the reconcilers,
//      test/mapi/support.ts): volume create → Healthy; snapshot create round trip against the
//      floor (the backend calls made directly: CStorVolume get, POST to the target).
//   B. the REAL data plane: three `cstor pool` processes and a `cstor target` (quiesce +
//      SNAP_CREATE to 3 replicas), the reconcilers played by test/mapi/bridge.ts: volume create →
//      Healthy; snapshot create round trip against the target's own POST (the floor).
// Variants in one run, interleaved (the machine is shared and noisy): two m-apiservers on the
// same kube-lite and target, `--template-cache off` (the default: the template, its RunTasks and
// the PV read from the API server at every run) and `--template-cache watch` (read from a
// watch-fed cache), and in B the snapshot template both ways, switched by editing its RunTask
// between blocks of runs (which also shows whether each edit reached the next runs): post-first
// (the default now) and list-first (the target's snapshot list before the POST, as before). Where the time goes is read from the
// m-apiserver's own log lines (request ms, template load, each task) and its CPU time (/proc).
// The code before this change can join B's list-first blocks as a third m-apiserver: extract it
// (e.g. `mkdir /tmp/old && git archive HEAD | tar -x -C /tmp/old`, node_modules linked, or only
// maya-apiserver/ and deploy/cas-templates/ of HEAD over a copy of the tree) and pass its
// bin/cstor.js in MAPI_BEFORE_BIN.
// Run: [MAPI_BEFORE_BIN=/tmp/old/bin/cstor.js] node --import tsx bench/mapi/main.ts [--runs 200]
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import axios, { type AxiosInstance } from 'axios';
import { NodeHttpCaller } from '../../maya-apiserver/cas/node-http-caller.ts';
import type { KubeObjects } from '../../maya-apiserver/cas/ports.ts';
import { startDataPlaneStack } from '../../test/mapi/bridge.ts';
import { cas, ns, startMapiStack } from '../../test/mapi/support.ts';
import { stopAll, type Daemon } from '../../test/support/daemon.ts';

function pct(samples: number[], p: number): number {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

function mean(samples: number[]): number {
  return samples.length === 0 ? NaN : samples.reduce((a, b) => a + b, 0) / samples.length;
}

function fmt(ms: number): string {
  return Number.isNaN(ms) ? '-' : `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
}

/** CPU time of a process (all threads) in ms, from /proc/PID/task/TID/schedstat (ns). */
function cpuMs(pid: number): number {
  let total = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return total / 1e6;
}

const postFirstWhen = 'volume.status.phase == "Degraded"';
const listFirstWhen = 'volume.status.phase == "Healthy" || volume.status.phase == "Degraded"';

type MapiProcess = Pick<Daemon, 'pid' | 'lines' | 'addresses' | 'waitForLog'>;

/** Processes started by startLegacyMapi, killed (by PID) when B ends. */
const legacyProcs: ChildProcess[] = [];
process.on('exit', () => {
  for (const p of legacyProcs) p.kill('SIGKILL');
});

/** One m-apiserver under test, with what its own log lines say about each request. */
class Mapi {
  readonly api: AxiosInstance;
  readonly client: number[] = [];
  readonly cpu: number[] = [];
  /** Per request, from its log lines: server ms, template load ms, and ms per task id. */
  readonly server: Array<{ ms: number; loadMs: number; tasks: Map<string, number | 'skipped'> }> = [];
  mismatches = 0;
  private expected: string[] = [];

  constructor(
    readonly name: string,
    readonly daemon: MapiProcess,
    agent: http.Agent,
    /** Code from before this change: its log lines have no `tasks`/`loadMs`; only latency and CPU count. */
    readonly legacy = false,
  ) {
    this.api = axios.create({ baseURL: `http://${daemon.addresses['api']}`, httpAgent: agent, proxy: false, validateStatus: () => true });
    daemon.lines.splice(0);
  }

  /** A timed snapshot create; `variant` is what the template should be doing (checked from the log). */
  async snapshot(volume: string, name: string, variant: 'post-first' | 'list-first', timed = true): Promise<void> {
    const c0 = cpuMs(this.daemon.pid);
    const t0 = process.hrtime.bigint();
    const res = await this.api.post('/latest/snapshots/', { metadata: { name, namespace: 'default' }, spec: { casType: 'cstor', volumeName: volume } });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const cpu = cpuMs(this.daemon.pid) - c0;
    if (res.status !== 200) throw new Error(`${this.name}: snapshot create ${name}: ${res.status} ${JSON.stringify(res.data)}`);
    this.expected.push(timed ? variant : 'warm-up');
    if (!timed) return;
    this.client.push(ms);
    this.cpu.push(cpu);
  }

  /** Reads the log lines of the requests so far (pairs each `request` line with its `cas run succeeded`). */
  async drain(lastName: string): Promise<void> {
    await this.daemon.waitForLog((e) => e['message'] === 'cas run succeeded' && e['snapshot'] === lastName, 10_000);
    await new Promise((r) => setTimeout(r, 20));
    const requests: number[] = [];
    const runs: Array<{ loadMs: number; tasks: Map<string, number | 'skipped'> }> = [];
    for (const line of this.daemon.lines.splice(0)) {
      if (!line.startsWith('{')) continue;
      const e = JSON.parse(line) as Record<string, unknown>;
      if (e['message'] === 'request' && e['method'] === 'POST' && e['path'] === '/latest/snapshots/') requests.push(Number(e['ms']));
      if (e['message'] === 'cas run succeeded' && e['flow'] === 'create-snapshot') {
        const tasks = new Map<string, number | 'skipped'>();
        for (const part of String(e['tasks']).split(', ')) {
          const [id, what] = part.split(' ');
          if (id && what) tasks.set(id, what === 'skipped' ? 'skipped' : parseFloat(what));
        }
        runs.push({ loadMs: Number(e['loadMs']), tasks });
      }
    }
    if (this.legacy) {
      this.expected = [];
      return;
    }
    if (requests.length !== this.expected.length || runs.length !== this.expected.length) {
      throw new Error(`${this.name}: ${this.expected.length} requests but ${requests.length} request lines and ${runs.length} run lines`);
    }
    this.expected.forEach((variant, k) => {
      const run = runs[k]!;
      const listed = typeof run.tasks.get('existing') === 'number';
      if (variant !== 'warm-up' && listed !== (variant === 'list-first')) this.mismatches++;
      if (variant !== 'warm-up') this.server.push({ ms: requests[k]!, ...run });
    });
    this.expected = [];
  }
}

function row(name: string, samples: number[], extra = ''): void {
  console.log(`  ${name.padEnd(56)} p50 ${fmt(pct(samples, 50)).padStart(9)}   p99 ${fmt(pct(samples, 99)).padStart(9)}${extra}`);
}

/** Where a series' time goes, p50 of each part, from the m-apiserver's log lines and /proc. */
function breakdown(m: Mapi): void {
  if (m.legacy) {
    console.log(`    ${m.name}: client ${fmt(pct(m.client, 50))}; m-apiserver CPU ${fmt(mean(m.cpu))}/request`);
    return;
  }
  const server = m.server.map((s) => s.ms);
  const load = m.server.map((s) => s.loadMs);
  const task = (id: string): number[] => m.server.map((s) => s.tasks.get(id)).filter((v): v is number => typeof v === 'number');
  const inTasks = m.server.map((s) => [...s.tasks.values()].reduce<number>((a, v) => a + (typeof v === 'number' ? v : 0), 0));
  const rest = m.server.map((s, k) => s.ms - s.loadMs - inTasks[k]!);
  const wire = m.client.map((c, k) => c - (m.server[k]?.ms ?? NaN));
  const list = task('existing');
  console.log(
    `    ${m.name}: client ${fmt(pct(m.client, 50))} = HTTP+client ${fmt(pct(wire, 50))} + server ${fmt(pct(server, 50))}` +
      ` [PV lookup, express, logs ${fmt(pct(rest, 50))}, then template load ${fmt(pct(load, 50))} (what is left of it: it is read while the PV is looked up)` +
      `, CStorVolume get ${fmt(pct(task('volume'), 50))}${list.length > 0 ? `, target list ${fmt(pct(list, 50))}` : ''}, target POST ${fmt(pct(task('snapshot'), 50))}]` +
      `; m-apiserver CPU ${fmt(mean(m.cpu))}/request`,
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '200' } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs "${values.runs}" must be a positive integer`);
  const agent = new http.Agent({ keepAlive: true });
  try {
    await simulated(runs, agent);
  } finally {
    await stopAll();
  }
  try {
    await realDataPlane(runs, agent);
  } finally {
    await stopAll();
  }
  agent.destroy();
}

/** A: the target simulated; volume create → Healthy, snapshot create (watch vs off) against the floor. */
async function simulated(runs: number, agent: http.Agent): Promise<void> {
  const stack = await startMapiStack();
  try {
    const off = new Mapi('cache off', stack.mapi, agent);
    const watch = new Mapi('cache watch', await stack.startMapi(['--skip-install', '--template-cache', 'watch']), agent);
    const createMs: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = process.hrtime.bigint();
      const res = await off.api.post('/latest/volumes/', { metadata: { name: `bench-v${i}`, namespace: 'default' }, spec: { capacity: '1G' } });
      if (res.status !== 200) throw new Error(`volume create ${i}: ${res.status} ${JSON.stringify(res.data)}`);
      createMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    // Every volume is Healthy now; the stand-in's polling would only compete for the CPU.
    stack.sim.stop();
    off.daemon.lines.splice(0);
    const target = stack.fake.address;
    const caller = new NodeHttpCaller();
    const floorMs: number[] = [];
    const volumes = Math.min(runs, 20);
    for (let i = 0; i < runs; i++) {
      const volume = `bench-v${i % volumes}`;
      const steps: Array<() => Promise<void>> = [
        async () => {
          const t0 = process.hrtime.bigint();
          await stack.kube.get({ apiVersion: cas, kind: 'CStorVolume', namespace: ns, name: volume });
          const r = await caller.request('POST', `http://${target}/v1/volumes/${volume}/snapshots`, { name: `${volume}_floor_${i}` });
          if (r.status !== 201) throw new Error(`floor ${i}: ${r.status}`);
          floorMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
        },
        () => watch.snapshot(volume, `${volume}_w_${i}`, 'post-first'),
        () => off.snapshot(volume, `${volume}_o_${i}`, 'post-first'),
      ];
      for (let k = 0; k < steps.length; k++) await steps[(i + k) % steps.length]!();
      if ((i + 1) % 25 === 0 || i === runs - 1) {
        await watch.drain(`${volume}_w_${i}`);
        await off.drain(`${volume}_o_${i}`);
      }
    }
    caller.close();
    console.log(`bench/mapi A: target simulated (real cstor mapi + kube-lite processes), ${runs} runs each`);
    row('volume create → Healthy (3 replicas)', createMs);
    row('snapshot create: direct calls (CStorVolume get + POST: floor)', floorMs);
    row('snapshot create through m-apiserver, --template-cache off', off.client, `   (${(pct(off.client, 50) / pct(floorMs, 50)).toFixed(1)}x floor)`);
    row('snapshot create through m-apiserver, --template-cache watch', watch.client, `   (${(pct(watch.client, 50) / pct(floorMs, 50)).toFixed(1)}x floor)`);
    console.log('  where the time goes (p50 of each part):');
    breakdown(off);
    breakdown(watch);
  } finally {
    await stack.stop();
  }
}

/** B: the real data plane; the snapshot template post-first and list-first, cache watch and off. */
async function realDataPlane(runs: number, agent: http.Agent): Promise<void> {
  const stack = await startDataPlaneStack();
  try {
    const volumes = Math.min(runs, 20);
    const createMs: number[] = [];
    const first = new Mapi('off', stack.mapi, agent);
    for (let i = 0; i < volumes; i++) {
      const t0 = process.hrtime.bigint();
      const res = await first.api.post('/latest/volumes/', { metadata: { name: `real-v${i}`, namespace: 'default' }, spec: { capacity: '64Mi' } });
      if (res.status !== 200) throw new Error(`volume create ${i}: ${res.status} ${JSON.stringify(res.data)} ${stack.bridge.errors.join('; ')}`);
      createMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    stack.bridge.stop();
    const watchDaemon = await stack.startMapi(['--skip-install', '--template-cache', 'watch']);
    const series = {
      'post-first': { watch: new Mapi('post-first, cache watch', watchDaemon, agent), off: new Mapi('post-first, cache off', stack.mapi, agent) },
      'list-first': { watch: new Mapi('list-first, cache watch', watchDaemon, agent), off: new Mapi('list-first, cache off', stack.mapi, agent) },
    };
    const beforeBin = process.env['MAPI_BEFORE_BIN'];
    const before = beforeBin ? new Mapi('before this change (its code, list-first template)', await startLegacyMapi(beforeBin, stack), agent, true) : undefined;
    const mgmt = stack.target.addresses['mgmt'] as string;
    const caller = new NodeHttpCaller();
    const floorMs: number[] = [];
    const listMs: number[] = [];
    const block = 25;
    const blocks = 2 * Math.ceil(runs / block);
    let i = 0;
    for (let b = 0; b < blocks; b++) {
      const variant = b % 2 === 0 ? 'post-first' : 'list-first';
      await setExistingWhen(stack.kube, variant === 'post-first' ? postFirstWhen : listFirstWhen);
      const { watch, off } = series[variant];
      // The next run of each m-apiserver after the edit, untimed; its log line says which variant ran.
      await watch.snapshot('real-v0', `real-v0-warm-w-${b}`, variant, false);
      await off.snapshot('real-v0', `real-v0-warm-o-${b}`, variant, false);
      const old = variant === 'list-first' ? before : undefined;
      await old?.snapshot('real-v0', `real-v0-warm-b-${b}`, variant, false);
      let last = '';
      for (let j = 0; j < block && watch.client.length < runs; j++, i++) {
        const volume = `real-v${i % volumes}`;
        last = `${volume}-s-${i}`;
        const steps: Array<() => Promise<void>> = [
          async () => {
            const t0 = process.hrtime.bigint();
            const r = await caller.request('POST', `http://${mgmt}/v1/volumes/${volume}/snapshots`, { name: `direct-${i}` });
            if (r.status !== 201) throw new Error(`target snapshot ${i}: ${r.status} ${JSON.stringify(r.body)}`);
            floorMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
          },
          () => watch.snapshot(volume, `${volume}-w-${i}`, variant),
          () => off.snapshot(volume, `${volume}-o-${i}`, variant),
          ...(old ? [() => old.snapshot(volume, `${volume}-b-${i}`, variant)] : []),
        ];
        for (let k = 0; k < steps.length; k++) await steps[(i + k) % steps.length]!();
        const t0 = process.hrtime.bigint();
        const r = await caller.request('GET', `http://${mgmt}/v1/volumes/${volume}/snapshots`);
        if (r.status !== 200) throw new Error(`target snapshot list ${i}: ${r.status}`);
        listMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      if (last) {
        await watch.drain(last.replace('-s-', '-w-'));
        await off.drain(last.replace('-s-', '-o-'));
        await old?.drain(last.replace('-s-', '-b-'));
      }
    }
    await setExistingWhen(stack.kube, postFirstWhen);
    caller.close();
    console.log(`bench/mapi B: real data plane (3 cstor pool + 1 cstor target processes), ${volumes} volumes, ${runs} snapshots per series`);
    row('volume create → Healthy (3 replicas)', createMs);
    row('target mgmt API alone: snapshot list', listMs);
    row('target mgmt API alone: snapshot create (floor)', floorMs);
    const ratio = (m: Mapi): string => `   (${(pct(m.client, 50) / pct(floorMs, 50)).toFixed(2)}x floor)`;
    if (before) row('through m-apiserver: BEFORE this change', before.client, ratio(before));
    row('through m-apiserver: list-first, cache off (old template)', series['list-first'].off.client, ratio(series['list-first'].off));
    row('through m-apiserver: list-first, cache watch', series['list-first'].watch.client, ratio(series['list-first'].watch));
    row('through m-apiserver: post-first, cache off (the default)', series['post-first'].off.client, ratio(series['post-first'].off));
    row('through m-apiserver: post-first, cache watch', series['post-first'].watch.client, ratio(series['post-first'].watch));
    const after = pct(series['post-first'].off.client, 50);
    const cachedP50 = pct(series['post-first'].watch.client, 50);
    console.log(
      `  goal p50 < 30 ms: ${after < 30 ? 'met' : 'NOT met'} by the default (${fmt(after)}: ${fmt(after - pct(floorMs, 50))} over the target's POST); ` +
        `with --template-cache watch ${fmt(cachedP50)} (${fmt(cachedP50 - pct(floorMs, 50))} over)`,
    );
    console.log('  where the time goes (p50 of each part):');
    if (before) breakdown(before);
    for (const v of ['list-first', 'post-first'] as const) for (const m of [series[v].off, series[v].watch]) breakdown(m);
    const seen = [series['post-first'].watch, series['list-first'].watch].reduce((a, m) => a + m.mismatches, 0);
    const seenOff = [series['post-first'].off, series['list-first'].off].reduce((a, m) => a + m.mismatches, 0);
    console.log(`  template edits between blocks (${blocks} edits): runs that did not follow the edit: cache watch ${seen}, cache off ${seenOff}`);
  } finally {
    stack.bridge.stop();
    for (const p of legacyProcs.splice(0)) p.kill('SIGKILL');
  }
}

/** `cstor mapi` from another tree (the code before this change), on B's kube-lite and target; killed at exit. */
async function startLegacyMapi(bin: string, stack: Awaited<ReturnType<typeof startDataPlaneStack>>): Promise<MapiProcess> {
  const args = ['mapi', '--listen', '127.0.0.1:0', '--kubeconfig', stack.kubeconfig, '--skip-install'];
  args.push('--target-portal', stack.target.addresses['iscsi'] as string, '--target-mgmt', stack.target.addresses['mgmt'] as string);
  const proc = spawn(process.execPath, [bin, ...args], { cwd: path.dirname(path.dirname(bin)), env: { ...process.env, LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
  legacyProcs.push(proc);
  const lines: string[] = [];
  const entries: Array<Record<string, unknown>> = [];
  const onLine = (line: string): void => {
    lines.push(line);
    if (!line.startsWith('{')) return;
    try {
      entries.push(JSON.parse(line) as Record<string, unknown>);
      if (entries.length > 5000) entries.shift();
    } catch {
      // not a log line
    }
  };
  readline.createInterface({ input: proc.stdout }).on('line', onLine);
  readline.createInterface({ input: proc.stderr }).on('line', onLine);
  const waitForLog = async (pred: (e: Record<string, unknown>) => boolean, timeoutMs = 30_000): Promise<Record<string, unknown>> => {
    for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await new Promise((r) => setTimeout(r, 10))) {
      const found = entries.find(pred);
      if (found) return found;
      if (proc.exitCode !== null) break;
    }
    throw new Error(`${bin} mapi: no matching log line; last lines:\n${lines.slice(-20).join('\n')}`);
  };
  const listening = await waitForLog((e) => e['message'] === 'listening' && e['listener'] === 'api', 60_000);
  return { pid: proc.pid!, lines, addresses: { api: String(listening['address']) }, waitForLog };
}

async function setExistingWhen(kube: KubeObjects, when: string): Promise<void> {
  await kube.patch({ apiVersion: cas, kind: 'RunTask', namespace: ns, name: 'cstor-snapshot-create-existing' }, { spec: { when } });
}

await main();
