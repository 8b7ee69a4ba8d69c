// kube-lite benchmark: durable creates/s with 10 watchers connected, list latency and RSS at
// 10,000 objects. Baselines measured in the same run: the disk's raw fsync rate (what a server
// without group commit could reach at best) and creates from a single client (no concurrency).
// Goals: >= 1,000 durable creates/s, list of 10k < 200 ms, RSS < 300 MB.
// Run: node --import tsx bench/kube-lite/main.ts [--objects N] [--concurrency N]
import fs from 'node:fs';
import type { ClientRequest } from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startDaemon, stopAll } from '../../test/support/daemon.ts';

const { values } = parseArgs({ options: { objects: { type: 'string', default: '10000' }, concurrency: { type: 'string', default: '64' }, watchers: { type: 'string', default: '10' } } });
const N = Number(values.objects);
const CONC = Number(values.concurrency);
const WATCHERS = Number(values.watchers);

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** User + system CPU seconds of a process. */
function cpuSeconds(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function fsyncBaseline(dir: string, ms: number): number {
  const fd = fs.openSync(path.join(dir, 'fsync-probe'), 'a');
  const buf = Buffer.alloc(300, 'x');
  const end = Date.now() + ms;
  let n = 0;
  while (Date.now() < end) {
    fs.writeSync(fd, buf);
    fs.fdatasyncSync(fd);
    n++;
  }
  fs.closeSync(fd);
  fs.rmSync(path.join(dir, 'fsync-probe'));
  return n / (ms / 1000);
}

async function main(): Promise<void> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kube-lite-bench-'));
  const fsyncRate = fsyncBaseline(dataDir, 1000);
  const d = await startDaemon(['kube-lite', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--log-level', 'info'], { listeners: ['api'] });
  const addr = d.addresses.api!;
  const token = fs.readFileSync(path.join(dataDir, 'token'), 'utf8').trim();
  const ca = fs.readFileSync(path.join(dataDir, 'tls.crt'), 'utf8');
  const agent = new https.Agent({ keepAlive: true, maxSockets: CONC + WATCHERS + 4, ca });
  const base = `https://${addr}`;

  const request = (method: string, p: string, body?: string): Promise<{ status: number; text: string }> =>
    new Promise((resolve, reject) => {
      const r = https.request(`${base}${p}`, { method, agent, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...(body ? { 'Content-Length': Buffer.byteLength(body) } : {}) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      });
      r.on('error', reject);
      if (body) r.write(body);
      r.end();
    });

  await request('POST', '/api/v1/namespaces', JSON.stringify({ metadata: { name: 'bench' } }));
  const body = (name: string): string => JSON.stringify({ metadata: { name, labels: { bench: 'yes' } }, data: { payload: 'x'.repeat(200) } });

  // Baseline: one client, one create at a time.
  const serialN = 300;
  let t0 = performance.now();
  for (let i = 0; i < serialN; i++) {
    const r = await request('POST', '/api/v1/namespaces/default/configmaps', body(`serial-${i}`));
    if (r.status !== 201) throw new Error(`create: ${r.status} ${r.text}`);
  }
  const serialRate = serialN / ((performance.now() - t0) / 1000);

  // 10 watchers on the benchmark namespace.
  const counts = new Array<number>(WATCHERS).fill(0);
  const watchReqs: ClientRequest[] = [];
  await Promise.all(
    counts.map(
      (_, w) =>
        new Promise<void>((resolve, reject) => {
          const r = https.request(`${base}/api/v1/namespaces/bench/configmaps?watch=1&resourceVersion=1`, { agent, headers: { Authorization: `Bearer ${token}` } }, (res) => {
            res.setEncoding('utf8');
            res.on('data', (c: string) => {
              for (let i = c.indexOf('\n'); i >= 0; i = c.indexOf('\n', i + 1)) counts[w]!++;
            });
            resolve();
          });
          r.on('error', reject);
          r.end();
          watchReqs.push(r);
        }),
    ),
  );

  t0 = performance.now();
  const cpu0 = cpuSeconds(d.pid);
  const selfCpu0 = process.cpuUsage();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (next < N) {
        const i = next++;
        const r = await request('POST', '/api/v1/namespaces/bench/configmaps', body(`obj-${i}`));
        if (r.status !== 201) throw new Error(`create: ${r.status} ${r.text}`);
      }
    }),
  );
  const createSecs = (performance.now() - t0) / 1000;
  const createRate = N / createSecs;
  const serverCpu = (cpuSeconds(d.pid) - cpu0) / createSecs;
  const selfCpu = process.cpuUsage(selfCpu0);
  const clientCpu = (selfCpu.user + selfCpu.system) / 1e6 / createSecs;
  const deadline = Date.now() + 60_000;
  while (counts.some((c) => c < N) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const watchLag = (performance.now() - t0) / 1000 - createSecs;

  const listTimes: number[] = [];
  for (let i = 0; i < 7; i++) {
    const s = performance.now();
    const r = await request('GET', '/api/v1/namespaces/bench/configmaps');
    listTimes.push(performance.now() - s);
    if (i === 0) {
      const items = (JSON.parse(r.text) as { items: unknown[] }).items.length;
      if (items !== N) throw new Error(`list returned ${items} items, not ${N}`);
    }
  }
  listTimes.sort((a, b) => a - b);
  const listMedian = listTimes[Math.floor(listTimes.length / 2)]!;
  const rss = rssMb(d.pid);

  const check = (ok: boolean): string => (ok ? 'OK' : 'MISSED');
  console.log(`kube-lite bench: ${N} ConfigMaps (~0.5 KiB each), ${CONC} concurrent clients, ${WATCHERS} watchers`);
  console.log(`  baseline: raw fdatasync rate of this disk       ${fsyncRate.toFixed(0)} /s`);
  console.log(`  baseline: creates from one client, one at a time ${serialRate.toFixed(0)} /s`);
  console.log(`  durable creates/s (concurrent, 10 watchers)      ${createRate.toFixed(0)} /s  goal >= 1000: ${check(createRate >= 1000)}  (${(createRate / serialRate).toFixed(1)}x one client, ${(createRate / fsyncRate).toFixed(1)}x the raw fsync rate)`);
  console.log(`  server CPU while creating: ${(serverCpu * 100).toFixed(0)}% of one core; bench clients: ${(clientCpu * 100).toFixed(0)}% (machine: ${os.cpus().length} cores, load average ${os.loadavg()[0]!.toFixed(1)})`);
  console.log(`  watchers saw all ${N} events each: ${counts.every((c) => c >= N) ? 'yes' : `no (${counts.join(',')})`}, ${Math.max(0, watchLag * 1000).toFixed(0)} ms after the last ack`);
  console.log(`  list of ${N} objects: median ${listMedian.toFixed(0)} ms, best ${listTimes[0]!.toFixed(0)} ms  goal < 200 ms: ${check(listMedian < 200)}`);
  console.log(`  RSS at ${N + serialN} objects: ${rss.toFixed(0)} MB  goal < 300 MB: ${check(rss < 300)}`);

  for (const r of watchReqs) r.destroy();
  agent.destroy();
  await stopAll();
  const closing = d.lines.find((l) => l.includes('closing the store'));
  if (closing) {
    const wal = (JSON.parse(closing) as { wal: { batches: number; records: number } }).wal;
    console.log(`  write-ahead log: ${wal.records} records in ${wal.batches} fsync'ed batches (${(wal.records / wal.batches).toFixed(1)} records per fsync)`);
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
}

main().catch(async (err: unknown) => {
  console.error(err);
  await stopAll();
  process.exit(1);
});
