// CAS engine benchmark: snapshot create round trips through the engine (template + RunTasks read
// each run, CStorVolume get, target POST) against the same backend calls made directly (the floor
// any implementation pays), over a real kube-lite process (template reads from the API server, and
// from the watch-fed cache of --template-cache watch) and over in-memory fakes; and volume create
// -> Healthy over the fakes (engine cost alone). p50/p99 over N runs.
// Goal context (issue 5): snapshot create round trip p50 < 30 ms through m-apiserver.
// Run: node --import tsx bench/cas-engine/main.ts [--runs N]
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadAll } from 'js-yaml';
import { loadKubeConfig } from '../../lib/kube/kubeconfig.ts';
import { silentLogger } from '../../lib/logger.ts';
import { createKubeClients } from '../../lib/kube/kube-clients.ts';
import { NodeHttpCaller } from '../../maya-apiserver/cas/node-http-caller.ts';
import { templateCacheKinds, WatchedObjects } from '../../maya-apiserver/cas/watched-objects.ts';
import { CasEngine } from '../../maya-apiserver/cas/engine.ts';
import { FakeKubeObjects, FakeTargetMgmt } from '../../maya-apiserver/cas/fakes.ts';
import { installTemplates } from '../../maya-apiserver/cas/install.ts';
import type { HttpCaller, KubeObject, KubeObjects } from '../../maya-apiserver/cas/ports.ts';
import { TransportKubeObjects } from '../../maya-apiserver/cas/transport-kube-objects.ts';
import { CasFlows } from '../../maya-apiserver/flows/cas-flows.ts';
import { repoRoot, stopAll } from '../../test/support/daemon.ts';
import { startKubeLiteProc } from '../../test/kube-lite/support.ts';
import { startFakeTarget } from '../../test/mapi/support.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '200' } } });
const runs = Number(values.runs);
const ns = 'openebs';

function pct(samples: number[], p: number): number {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

async function measure(label: string, fn: (i: number) => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  for (let i = 0; i < 10; i++) await fn(-1 - i); // warm up
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await fn(i);
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const r = { p50: pct(samples, 50), p99: pct(samples, 99) };
  console.log(`${label.padEnd(58)} p50 ${r.p50.toFixed(2).padStart(7)} ms   p99 ${r.p99.toFixed(2).padStart(7)} ms`);
  return r;
}

const cvObject = (name: string, mgmt: string): KubeObject => ({
  apiVersion: 'openebs.io/v1alpha1',
  kind: 'CStorVolume',
  metadata: { name, namespace: ns },
  spec: { targetIP: '127.0.0.1', targetPortal: '127.0.0.1:3260', targetMgmtAddress: mgmt, iqn: `iqn.2016-09.com.openebs.cstor:${name}`, capacity: '1G', replicationFactor: 3, consistencyFactor: 2 },
});

async function snapshotBench(label: string, kube: KubeObjects, caller: HttpCaller, target: FakeTargetMgmt, mgmt: string, tag: string, watched?: WatchedObjects): Promise<number> {
  const engine = new CasEngine({
    kube,
    http: caller,
    logger: silentLogger(),
    namespace: ns,
    env: { targetIP: '127.0.0.1', targetPortal: '127.0.0.1:3260', targetMgmtAddress: mgmt },
    ...(watched ? { templates: watched } : {}),
  });
  const flows = new CasFlows({ engine, kube, logger: silentLogger(), ...(watched ? { reader: watched } : {}) });
  const vol = `bench-${tag}`;
  await kube.create(cvObject(vol, mgmt));
  await kube.patchStatus({ apiVersion: 'openebs.io/v1alpha1', kind: 'CStorVolume', namespace: ns, name: vol }, { status: { phase: 'Healthy' } });
  target.addVolume(vol);
  const direct = await measure(`${label}: direct calls (get CV, POST)`, async (i) => {
    await kube.get({ apiVersion: 'openebs.io/v1alpha1', kind: 'CStorVolume', namespace: ns, name: vol });
    await caller.request('POST', `http://${mgmt}/v1/volumes/${vol}/snapshots`, { name: `d${tag}${i}` });
  });
  const viaEngine = await measure(`${label}: through CasFlows + engine`, (i) =>
    flows.createSnapshot({ metadata: { name: `e${i}` }, spec: { volumeName: vol } }),
  );
  console.log(`${label}: engine / direct p50 ratio ${(viaEngine.p50 / direct.p50).toFixed(2)}`);
  return viaEngine.p50;
}

async function main(): Promise<void> {
  console.log(`runs per figure: ${runs}`);
  // In memory.
  const fake = new FakeKubeObjects();
  const fakeTarget = new FakeTargetMgmt();
  await installTemplates({ kube: fake, logger: silentLogger(), namespace: ns });
  await snapshotBench('fakes   ', fake, fakeTarget, fakeTarget, '127.0.0.1:9500', 'fake');
  fake.reactors.push(({ verb, object, store }) => {
    if (verb === 'create' && object.kind === 'CStorVolume') store.applyPatch({ apiVersion: object.apiVersion, kind: object.kind, namespace: ns, name: String(object.metadata.name) }, { status: { phase: 'Healthy' } });
  });
  for (const p of ['a', 'b', 'c']) {
    fake.seed({ apiVersion: 'openebs.io/v1alpha1', kind: 'CStorPool', metadata: { name: `pool-${p}` }, spec: {}, status: { phase: 'Online' } });
  }
  const volEngine = new CasEngine({ kube: fake, http: fakeTarget, logger: silentLogger(), namespace: ns, env: { targetIP: '127.0.0.1', targetPortal: '127.0.0.1:3260', targetMgmtAddress: '127.0.0.1:9500' } });
  const volFlows = new CasFlows({ engine: volEngine, kube: fake, logger: silentLogger() });
  await measure('fakes   : volume create -> Healthy (3 replicas)', (i) => volFlows.createVolume({ metadata: { name: `v${i + 100}` }, spec: { capacity: '1G' } }));

  // Over a real kube-lite process and HTTP to a target stand-in.
  const kl = await startKubeLiteProc();
  try {
    const { kubeConfig } = loadKubeConfig({ kubeconfigPath: kl.kubeconfig, env: {} });
    const clients = createKubeClients(kubeConfig);
    const kube = new TransportKubeObjects(clients.transport);
    const server = await startFakeTarget();
    const { target, address: mgmt } = server;
    await kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    const crdDir = path.join(repoRoot, 'deploy', 'crds');
    for (const file of readdirSync(crdDir).filter((f) => f.endsWith('.yaml'))) {
      for (const doc of loadAll(readFileSync(path.join(crdDir, file), 'utf8'))) await kube.create(doc as KubeObject);
    }
    for (let i = 0; i < 100; i++) {
      try {
        await kube.list({ apiVersion: 'openebs.io/v1alpha1', kind: 'RunTask', namespace: ns });
        await kube.list({ apiVersion: 'openebs.io/v1alpha1', kind: 'CStorVolume', namespace: ns });
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    await installTemplates({ kube, logger: silentLogger(), namespace: ns });
    const caller = new NodeHttpCaller({ timeoutMs: 5000 });
    const p50 = await snapshotBench('kube-lite', kube, caller, target, mgmt, 'kl');
    const watched = new WatchedObjects({ kinds: templateCacheKinds(clients, ns), fallback: kube, logger: silentLogger() });
    watched.start();
    if (!(await watched.waitForSync(10_000))) throw new Error('the template cache did not sync');
    const cachedP50 = await snapshotBench('kube-lite, template cache', kube, caller, target, mgmt, 'klc', watched);
    await watched.stop();
    caller.close();
    console.log(`kube-lite: snapshot create p50 ${p50.toFixed(2)} ms, with the template cache ${cachedP50.toFixed(2)} ms (goal for the whole REST round trip: < 30 ms)`);
    await server.close();
  } finally {
    await stopAll();
  }
}

main().catch(async (err: unknown) => {
  console.error(err);
  await stopAll();
  process.exitCode = 1;
});
