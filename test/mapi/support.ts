// A real `cstor mapi` process on a real kube-lite, with the data-plane stood in for: a target
// mgmt API (FakeTargetMgmt behind HTTP) and a loop playing the pool and target reconcilers
// (pools Online; a new CStorVolume turns Healthy and is served by the fake target, or turns
// Error when its name starts with "fail-"; replicas turn Healthy; deleted replicas lose their
// finalizer, as the pool does once the replica is gone).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadKubeConfig } from '../../lib/kube/kubeconfig.ts';
import { HttpKubeTransport } from '../../lib/kube/transport.ts';
import { FakeTargetMgmt } from '../../maya-apiserver/cas/fakes.ts';
import type { Json, KubeObject } from '../../maya-apiserver/cas/ports.ts';
import { TransportKubeObjects } from '../../maya-apiserver/cas/transport-kube-objects.ts';
import { startDaemon, type Daemon } from '../support/daemon.ts';
import { eventually, startKubeLiteProc, type KubeLiteProc } from '../kube-lite/support.ts';

export const ns = 'openebs';
export const cas = 'openebs.io/v1alpha1';

export interface FakeTargetServer {
  target: FakeTargetMgmt;
  address: string;
  close(): Promise<void>;
}

/** FakeTargetMgmt served over HTTP on 127.0.0.1:0. */
export async function startFakeTarget(): Promise<FakeTargetServer> {
  const target = new FakeTargetMgmt();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      void target.request(req.method as 'GET', `http://${req.headers.host ?? 'x'}${req.url ?? '/'}`, text ? (JSON.parse(text) as Json) : undefined).then((r) => {
        res.writeHead(r.status, { 'Content-Type': 'application/json' });
        res.end(r.body === null ? '' : JSON.stringify(r.body));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    target,
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Simulation {
  /** While true, new volumes stay without a status (Init): a flow waiting for Healthy waits. */
  paused: boolean;
  stop(): void;
}

/** Plays the pool and target reconcilers by polling (bounded work per tick). */
export function simulateReconcilers(kube: TransportKubeObjects, target: FakeTargetMgmt, intervalMs = 25): Simulation {
  let busy = false;
  let stopped = false;
  const sim: Simulation = {
    paused: false,
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
  const tick = async (): Promise<void> => {
    const cvs = await kube.list({ apiVersion: cas, kind: 'CStorVolume', namespace: ns });
    const live = new Set<string>();
    for (const cv of cvs) {
      const name = String(cv.metadata.name);
      live.add(name);
      const status = cv['status'] as { phase?: string } | undefined;
      if (status?.phase || sim.paused) continue;
      const ref = { apiVersion: cas, kind: 'CStorVolume', namespace: ns, name };
      if (name.startsWith('fail-')) {
        await kube.patchStatus(ref, { status: { phase: 'Error', message: 'replica pool-b refused the volume' } });
      } else {
        if (!target.volumes.has(name)) target.addVolume(name);
        await kube.patchStatus(ref, { status: { phase: 'Healthy', replicaStatuses: [] } });
      }
    }
    for (const name of [...target.volumes.keys()]) if (!live.has(name)) target.volumes.delete(name);
    for (const cvr of await kube.list({ apiVersion: cas, kind: 'CStorVolumeReplica', namespace: ns })) {
      const ref = { apiVersion: cas, kind: 'CStorVolumeReplica', namespace: ns, name: String(cvr.metadata.name) };
      if (cvr.metadata.deletionTimestamp) await kube.patch(ref, { metadata: { finalizers: null } });
      else if (!(cvr['status'] as { phase?: string } | undefined)?.phase) await kube.patchStatus(ref, { status: { phase: 'Healthy' } });
    }
  };
  const timer = setInterval(() => {
    if (busy || stopped) return;
    busy = true;
    void tick()
      .catch(() => undefined)
      .finally(() => (busy = false));
  }, intervalMs);
  return sim;
}

export interface MapiStack {
  kl: KubeLiteProc;
  mapi: Daemon;
  /** http://host:port of m-apiserver. */
  url: string;
  kube: TransportKubeObjects;
  fake: FakeTargetServer;
  sim: Simulation;
  /** Starts (again) a `cstor mapi` process, with extra flags (e.g. `--skip-install`); used by restart tests and benches. */
  startMapi(extraArgs?: string[]): Promise<Daemon>;
  stop(): Promise<void>;
}

export async function createPools(kube: TransportKubeObjects, names: string[]): Promise<void> {
  for (const pool of names) {
    const ref = { apiVersion: cas, kind: 'CStorPool', name: pool };
    await kube.create({ ...ref, metadata: { name: pool }, spec: { path: `/var/pools/${pool}` } } as KubeObject);
    await kube.patchStatus(ref, { status: { phase: 'Online', address: '127.0.0.1:3232', capacity: { total: '100G', used: '0', free: '100G' } } });
  }
}

export async function startMapiStack(): Promise<MapiStack> {
  const kl = await startKubeLiteProc();
  const { kubeConfig } = loadKubeConfig({ kubeconfigPath: kl.kubeconfig, env: {} });
  const kube = new TransportKubeObjects(new HttpKubeTransport(kubeConfig));
  const fake = await startFakeTarget();
  const startMapi = (extraArgs: string[] = []): Promise<Daemon> =>
    startDaemon(['mapi', '--listen', '127.0.0.1:0', '--kubeconfig', kl.kubeconfig, '--target-portal', '127.0.0.1:3260', '--target-mgmt', fake.address, ...extraArgs], {
      listeners: ['api'],
      timeoutMs: 60_000,
    });
  const mapi = await startMapi();
  await createPools(kube, ['pool-a', 'pool-b', 'pool-c']);
  const sim = simulateReconcilers(kube, fake.target);
  await eventually(async () => (await kube.list({ apiVersion: cas, kind: 'CStorPool' })).length === 3, 'pools listed');
  return {
    kl,
    mapi,
    url: `http://${mapi.addresses['api']}`,
    kube,
    fake,
    sim,
    startMapi,
    async stop() {
      sim.stop();
      await fake.close();
    },
  };
}
