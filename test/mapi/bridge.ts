// Plays the pool and target reconcilers over REAL daemons (until theirs are wired): a polling
// loop that turns CStorVolumeReplicas into replicas on `cstor pool` processes (clones as
// `cloneOf: <source>@<snapshot>`), CStorVolumes into volumes served by a `cstor target` process,
// copies the target's status into CStorVolume.status, and undoes both on deletion (dropping the
// replica finalizer once the pool replica is gone).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import axios from 'axios';
import { loadKubeConfig } from '../../lib/kube/kubeconfig.ts';
import { HttpKubeTransport } from '../../lib/kube/transport.ts';
import { quantityBytes } from '../../maya-apiserver/cas/functions.ts';
import type { Json, KubeObject } from '../../maya-apiserver/cas/ports.ts';
import { TransportKubeObjects } from '../../maya-apiserver/cas/transport-kube-objects.ts';
import { startDaemon, type Daemon } from '../support/daemon.ts';
import { startKubeLiteProc } from '../kube-lite/support.ts';
import { cas, ns } from './support.ts';

export interface BridgePool {
  name: string;
  /** Replica protocol address (what the target connects to). */
  replicaAddress: string;
  mgmtAddress: string;
}

// The pool's default block size is 4096 and the target's 512: a volume needs one size on both (512: qemu's iSCSI driver asserts on 4 KiB LUNs when reading).
const blockSize = 512;

const http = axios.create({ validateStatus: () => true, proxy: false, timeout: 20_000 });

function labels(o: KubeObject): Record<string, string> {
  return (o.metadata.labels ?? {}) as Record<string, string>;
}

function annotations(o: KubeObject): Record<string, string> {
  return (o.metadata.annotations ?? {}) as Record<string, string>;
}

export function runBridge(kube: TransportKubeObjects, pools: BridgePool[], targetMgmt: string, intervalMs = 50): { stop(): void; errors: string[] } {
  const byName = new Map(pools.map((p) => [p.name, p]));
  const errors: string[] = [];
  let busy = false;
  let stopped = false;
  const served = new Set<string>();
  const tick = async (): Promise<void> => {
    for (const cvr of await kube.list({ apiVersion: cas, kind: 'CStorVolumeReplica', namespace: ns })) {
      const ref = { apiVersion: cas, kind: 'CStorVolumeReplica', namespace: ns, name: String(cvr.metadata.name) };
      const pool = byName.get(labels(cvr)['cstorpool.openebs.io/name'] ?? '');
      const volume = labels(cvr)['openebs.io/persistent-volume'] ?? '';
      if (!pool) continue;
      if (cvr.metadata.deletionTimestamp) {
        const r = await http.delete(`http://${pool.mgmtAddress}/v1/replicas/${volume}`);
        if (r.status === 204) await kube.patch(ref, { metadata: { finalizers: null } });
        continue;
      }
      if ((cvr['status'] as { phase?: string } | undefined)?.phase) continue;
      const spec = cvr['spec'] as { capacity: string };
      const body: Record<string, unknown> = { volume, size: quantityBytes(spec.capacity), blockSize };
      if (labels(cvr)['openebs.io/cloned'] === 'true') body['cloneOf'] = `${annotations(cvr)['openebs.io/source-volume']}@${annotations(cvr)['openebs.io/snapshot']}`;
      const r = await http.post(`http://${pool.mgmtAddress}/v1/replicas`, body);
      if (r.status === 200 || r.status === 201) await kube.patchStatus(ref, { status: { phase: 'Healthy' } });
      else errors.push(`pool ${pool.name} replica ${volume}: ${r.status} ${JSON.stringify(r.data)}`);
    }
    const live = new Set<string>();
    for (const cv of await kube.list({ apiVersion: cas, kind: 'CStorVolume', namespace: ns })) {
      const name = String(cv.metadata.name);
      live.add(name);
      const ref = { apiVersion: cas, kind: 'CStorVolume', namespace: ns, name };
      if (!served.has(name)) {
        const cvrs = await kube.list({ apiVersion: cas, kind: 'CStorVolumeReplica', namespace: ns, labelSelector: `openebs.io/persistent-volume=${name}` });
        const spec = cv['spec'] as { capacity: string; replicationFactor: number };
        const replicas = cvrs.map((o) => byName.get(labels(o)['cstorpool.openebs.io/name'] ?? '')?.replicaAddress).filter((a): a is string => !!a);
        const r = await http.put(`http://${targetMgmt}/v1/volumes/${name}`, { capacity: quantityBytes(spec.capacity), replicationFactor: spec.replicationFactor, replicas, blockSize });
        if (r.status !== 200 && r.status !== 201) {
          errors.push(`target serve ${name}: ${r.status} ${JSON.stringify(r.data)}`);
          continue;
        }
        served.add(name);
      }
      const st = await http.get<{ phase?: string; replicaStatuses?: Json[] }>(`http://${targetMgmt}/v1/volumes/${name}`);
      const phase = st.data.phase;
      if (st.status === 200 && phase && phase !== (cv['status'] as { phase?: string } | undefined)?.phase) {
        await kube.patchStatus(ref, { status: { phase, replicaStatuses: st.data.replicaStatuses ?? [] } });
      }
    }
    for (const name of [...served]) {
      if (live.has(name)) continue;
      await http.delete(`http://${targetMgmt}/v1/volumes/${name}`);
      served.delete(name);
    }
  };
  const timer = setInterval(() => {
    if (busy || stopped) return;
    busy = true;
    void tick()
      .catch((err: unknown) => errors.push(err instanceof Error ? err.message : String(err)))
      .finally(() => (busy = false));
  }, intervalMs);
  return {
    errors,
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}

export interface DataPlaneStack {
  kube: TransportKubeObjects;
  pools: BridgePool[];
  target: Daemon;
  mapi: Daemon;
  bridge: ReturnType<typeof runBridge>;
  /** http://host:port of m-apiserver. */
  url: string;
  /** The kube-lite kubeconfig (for other processes of a bench). */
  kubeconfig: string;
  /** Starts another `cstor mapi` on the same kube-lite and target, with extra flags (benches). */
  startMapi(extraArgs?: string[]): Promise<Daemon>;
}

/** kube-lite, three `cstor pool`s, a `cstor target`, `cstor mapi`, CStorPools Online, the bridge running. */
export async function startDataPlaneStack(): Promise<DataPlaneStack> {
  const kl = await startKubeLiteProc();
  const kube = new TransportKubeObjects(new HttpKubeTransport(loadKubeConfig({ kubeconfigPath: kl.kubeconfig, env: {} }).kubeConfig));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mapi-dp-'));
  const pools: BridgePool[] = [];
  for (const name of ['pool-a', 'pool-b', 'pool-c']) {
    const d = await startDaemon(['pool', '--name', name, '--data-dir', path.join(dir, name), '--listen', '127.0.0.1:0', '--mgmt', '127.0.0.1:0'], { listeners: ['replica', 'mgmt'] });
    pools.push({ name, replicaAddress: d.addresses['replica'] as string, mgmtAddress: d.addresses['mgmt'] as string });
  }
  const target = await startDaemon(['target', '--iscsi', '127.0.0.1:0', '--mgmt', '127.0.0.1:0'], { listeners: ['iscsi', 'mgmt'] });
  const startMapi = (extraArgs: string[] = []): Promise<Daemon> =>
    startDaemon(
      ['mapi', '--listen', '127.0.0.1:0', '--kubeconfig', kl.kubeconfig, '--target-portal', target.addresses['iscsi'] as string, '--target-mgmt', target.addresses['mgmt'] as string, ...extraArgs],
      { listeners: ['api'], timeoutMs: 60_000 },
    );
  const mapi = await startMapi();
  for (const p of pools) {
    const ref = { apiVersion: cas, kind: 'CStorPool', name: p.name };
    await kube.create({ ...ref, metadata: { name: p.name }, spec: {} } as KubeObject);
    await kube.patchStatus(ref, { status: { phase: 'Online', address: p.replicaAddress, mgmtAddress: p.mgmtAddress } });
  }
  const bridge = runBridge(kube, pools, target.addresses['mgmt'] as string);
  return { kube, pools, target, mapi, bridge, url: `http://${mapi.addresses['api']}`, kubeconfig: kl.kubeconfig, startMapi };
}
