// bench/mapi: m-apiserver end to end over HTTP, as the provisioners and the snapshot-controller
// see it: a real `cstor mapi` process on a real kube-lite, the data plane stood in for by a fake
// target mgmt API and a loop playing the target (test/mapi/support.ts).
//   1. volume create → Healthy (POST /latest/volumes/ answers once the volume is Healthy);
//   2. snapshot create round trip (POST /latest/snapshots/), against a floor measured in the same
//      run: the same backend calls made directly (GET the CStorVolume from kube-lite, list the
//      target's snapshots, POST the snapshot to the target).
//   3. the same two over the REAL data plane: three `cstor pool` processes and a `cstor target`
//      (quiesce + SNAP_CREATE to 3 replicas), the reconcilers played by test/mapi/bridge.ts.
// Run: node --import tsx bench/mapi/main.ts [--runs 200]
import http from 'node:http';
import { parseArgs } from 'node:util';
import axios from 'axios';
import { stopAll } from '../../test/support/daemon.ts';
import { startDataPlaneStack } from '../../test/mapi/bridge.ts';
import { cas, ns, startMapiStack } from '../../test/mapi/support.ts';

function pct(samples: number[], p: number): number {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

function fmt(ms: number): string {
  return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
}

async function time(fn: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '200' } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs "${values.runs}" must be a positive integer`);
  const stack = await startMapiStack();
  const agent = new http.Agent({ keepAlive: true });
  const api = axios.create({ baseURL: stack.url, httpAgent: agent, proxy: false, validateStatus: () => true });
  try {
    // 1. volume create → Healthy.
    const createMs: number[] = [];
    for (let i = 0; i < runs; i++) {
      createMs.push(
        await time(async () => {
          const res = await api.post('/latest/volumes/', { metadata: { name: `bench-v${i}`, namespace: 'default' }, spec: { capacity: '1G' } });
          if (res.status !== 200) throw new Error(`volume create ${i}: ${res.status} ${JSON.stringify(res.data)}`);
        }),
      );
    }
    // 2. snapshot create round trip, and the floor. The target stand-in's polling loop is stopped
    // first: every volume is Healthy already, and its lists would only compete for the CPU.
    stack.sim.stop();
    const target = stack.fake.address;
    const snapMs: number[] = [];
    const floorMs: number[] = [];
    for (let i = 0; i < runs; i++) {
      const volume = `bench-v${i % Math.min(runs, 20)}`;
      floorMs.push(
        await time(async () => {
          await stack.kube.get({ apiVersion: cas, kind: 'CStorVolume', namespace: ns, name: volume });
          await axios.get(`http://${target}/v1/volumes/${volume}/snapshots`, { httpAgent: agent, proxy: false });
          await axios.post(`http://${target}/v1/volumes/${volume}/snapshots`, { name: `${volume}_floor_${i}` }, { httpAgent: agent, proxy: false });
        }),
      );
      snapMs.push(
        await time(async () => {
          const res = await api.post('/latest/snapshots/', { metadata: { name: `${volume}_s_${i}`, namespace: 'default' }, spec: { casType: 'cstor', volumeName: volume } });
          if (res.status !== 200) throw new Error(`snapshot create ${i}: ${res.status} ${JSON.stringify(res.data)}`);
        }),
      );
    }
    const rows: Array<[string, number[]]> = [
      ['volume create → Healthy (3 replicas)', createMs],
      ['snapshot create: direct backend calls (floor)', floorMs],
      ['snapshot create through m-apiserver (REST)', snapMs],
    ];
    console.log(`bench/mapi: ${runs} runs each (real cstor mapi + kube-lite processes; target simulated)`);
    for (const [name, s] of rows) console.log(`  ${name.padEnd(48)} p50 ${fmt(pct(s, 50)).padStart(9)}   p99 ${fmt(pct(s, 99)).padStart(9)}`);
    const ratio = pct(snapMs, 50) / pct(floorMs, 50);
    console.log(`  snapshot create p50 = ${ratio.toFixed(1)}x the floor; goal p50 < 30 ms: ${pct(snapMs, 50) < 30 ? 'met' : 'NOT met'}`);
  } finally {
    await stack.stop();
    await stopAll();
  }
  await realDataPlane(runs, agent);
  agent.destroy();
}

/** Volume create → Healthy and snapshot create over real pools and a real target. */
async function realDataPlane(runs: number, agent: http.Agent): Promise<void> {
  const stack = await startDataPlaneStack();
  const api = axios.create({ baseURL: stack.url, httpAgent: agent, proxy: false, validateStatus: () => true });
  try {
    const volumes = Math.min(runs, 20);
    const createMs: number[] = [];
    for (let i = 0; i < volumes; i++) {
      createMs.push(
        await time(async () => {
          const res = await api.post('/latest/volumes/', { metadata: { name: `real-v${i}`, namespace: 'default' }, spec: { capacity: '64Mi' } });
          if (res.status !== 200) throw new Error(`volume create ${i}: ${res.status} ${JSON.stringify(res.data)} ${stack.bridge.errors.join('; ')}`);
        }),
      );
    }
    stack.bridge.stop();
    const snapMs: number[] = [];
    const directMs: number[] = [];
    const listMs: number[] = [];
    const mgmt = stack.target.addresses['mgmt'] as string;
    for (let i = 0; i < runs; i++) {
      const volume = `real-v${i % volumes}`;
      listMs.push(
        await time(async () => {
          const r = await axios.get(`http://${mgmt}/v1/volumes/${volume}/snapshots`, { httpAgent: agent, proxy: false, validateStatus: () => true });
          if (r.status !== 200) throw new Error(`target snapshot list ${i}: ${r.status} ${JSON.stringify(r.data)}`);
        }),
      );
      directMs.push(
        await time(async () => {
          const r = await axios.post(`http://${mgmt}/v1/volumes/${volume}/snapshots`, { name: `direct-${i}` }, { httpAgent: agent, proxy: false, validateStatus: () => true });
          if (r.status !== 201) throw new Error(`target snapshot ${i}: ${r.status} ${JSON.stringify(r.data)}`);
        }),
      );
      snapMs.push(
        await time(async () => {
          const res = await api.post('/latest/snapshots/', { metadata: { name: `${volume}-s-${i}`, namespace: 'default' }, spec: { casType: 'cstor', volumeName: volume } });
          if (res.status !== 200) throw new Error(`snapshot create ${i}: ${res.status} ${JSON.stringify(res.data)}`);
        }),
      );
    }
    console.log(`bench/mapi: real data plane (3 cstor pool + 1 cstor target processes), ${volumes} volumes, ${runs} snapshots`);
    const rows: Array<[string, number[]]> = [
      ['volume create → Healthy (3 replicas)', createMs],
      ['target mgmt API alone: snapshot list', listMs],
      ['target mgmt API alone: snapshot create (floor)', directMs],
      ['snapshot create through m-apiserver (REST)', snapMs],
    ];
    for (const [name, s] of rows) console.log(`  ${name.padEnd(48)} p50 ${fmt(pct(s, 50)).padStart(9)}   p99 ${fmt(pct(s, 99)).padStart(9)}`);
    console.log(`  snapshot create p50 = ${(pct(snapMs, 50) / pct(directMs, 50)).toFixed(1)}x the target alone; goal p50 < 30 ms: ${pct(snapMs, 50) < 30 ? 'met' : 'NOT met'}`);
  } finally {
    stack.bridge.stop();
    await stopAll();
  }
}

await main();
