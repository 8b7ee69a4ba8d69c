// The REST API over the real data plane: `cstor mapi` on kube-lite with three `cstor pool`
// processes and a `cstor target` process; a test-side bridge plays the reconcilers (bridge.ts).
// Bytes written over iSCSI with qemu-io, a snapshot through REST, more bytes, a clone through
// REST on the source's pools: the clone holds the snapshot's bytes, the source the new ones, and
// deleting the snapshot leaves the clone whole.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import axios, { type AxiosInstance } from 'axios';
import { expect } from 'chai';
import type { TransportKubeObjects } from '../../maya-apiserver/cas/transport-kube-objects.ts';
import type { KubeObject } from '../../maya-apiserver/cas/ports.ts';
import { stopAll, type Daemon } from '../support/daemon.ts';
import { startDataPlaneStack, type runBridge } from './bridge.ts';
import { cas, ns } from './support.ts';

const exec = promisify(execFile);

async function qemuIo(portal: string, volume: string, command: string): Promise<string> {
  const url = `iscsi://${portal}/iqn.2016-09.com.openebs.cstor:${volume}/0`;
  const { stdout, stderr } = await exec('qemu-io', ['-f', 'raw', '-c', command, url], { timeout: 30_000 });
  const out = stdout + stderr;
  if (/fail|error/i.test(out)) throw new Error(`qemu-io ${command} ${url}: ${out}`);
  return out;
}

describe('m-apiserver REST over real pools and target (qemu-io)', function () {
  this.timeout(180_000);
  let api: AxiosInstance;
  let kube: TransportKubeObjects;
  let target: Daemon;
  let bridge: ReturnType<typeof runBridge> | undefined;
  const poolOf = (o: KubeObject): string => String((o.metadata.labels as Record<string, string>)['cstorpool.openebs.io/name']);

  before(async () => {
    const stack = await startDataPlaneStack();
    kube = stack.kube;
    target = stack.target;
    bridge = stack.bridge;
    api = axios.create({ baseURL: stack.url, validateStatus: () => true, proxy: false });
  });
  after(async () => {
    bridge?.stop();
    await stopAll();
  });

  it('volume → bytes → snapshot → more bytes → clone: the clone holds the snapshot-time bytes', async () => {
    const portal = target.addresses['iscsi'] as string;
    const created = await api.post('/latest/volumes/', { metadata: { name: 'pvc-dp', namespace: 'default' }, spec: { capacity: '64Mi' } });
    expect(created.status, `${JSON.stringify(created.data)} ${bridge?.errors.join('; ')}`).to.equal(200);
    expect(created.data.status.Phase).to.equal('Healthy');
    await qemuIo(portal, 'pvc-dp', 'write -P 0xa1 0 1M');

    // A DESIGN.md §3 style id (<pv>_<snapshot>_<nanos>): '_' must pass m-apiserver, target and pools.
    const snap = await api.post('/latest/snapshots/', { metadata: { name: 'pvc-dp_s1_1000', namespace: 'default' }, spec: { casType: 'cstor', volumeName: 'pvc-dp' } });
    expect(snap.status, JSON.stringify(snap.data)).to.equal(200);
    const list = await api.get<{ items: { metadata: { name: string } }[] }>('/latest/snapshots/', { params: { volume: 'pvc-dp', namespace: 'default', casType: 'cstor' } });
    expect(list.data.items.map((s) => s.metadata.name)).to.deep.equal(['pvc-dp_s1_1000']);
    await qemuIo(portal, 'pvc-dp', 'write -P 0xb2 0 1M');

    const clone = await api.post('/latest/volumes/', {
      metadata: { name: 'pvc-dp-clone', namespace: 'default' },
      spec: { capacity: '64Mi' },
      cloneSpec: { isClone: true, sourceVolume: 'pvc-dp', snapshotName: 'pvc-dp_s1_1000' },
    });
    expect(clone.status, `${JSON.stringify(clone.data)} ${bridge?.errors.join('; ')}`).to.equal(200);
    const sourcePools = (await kube.list({ apiVersion: cas, kind: 'CStorVolumeReplica', namespace: ns, labelSelector: 'openebs.io/persistent-volume=pvc-dp' })).map(poolOf).sort();
    const clonePools = (await kube.list({ apiVersion: cas, kind: 'CStorVolumeReplica', namespace: ns, labelSelector: 'openebs.io/persistent-volume=pvc-dp-clone' })).map(poolOf).sort();
    expect(clonePools).to.deep.equal(sourcePools);

    expect(await qemuIo(portal, 'pvc-dp-clone', 'read -P 0xa1 0 1M')).to.match(/read 1048576\/1048576 bytes/);
    expect(await qemuIo(portal, 'pvc-dp', 'read -P 0xb2 0 1M')).to.match(/read 1048576\/1048576 bytes/);

    // Deleting the snapshot the clone came from leaves the clone whole (DESIGN.md §8).
    const del = await api.delete('/latest/snapshots/pvc-dp_s1_1000', { params: { volume: 'pvc-dp', namespace: 'default', casType: 'cstor' } });
    expect(del.status, JSON.stringify(del.data)).to.equal(200);
    expect(await qemuIo(portal, 'pvc-dp-clone', 'read -P 0xa1 0 1M')).to.match(/read 1048576\/1048576 bytes/);
  });

  it('a snapshot of a volume whose target is not Healthy is refused by the real flow, nothing left on the target', async () => {
    bridge?.stop(); // else it copies the target's Healthy back
    await kube.patchStatus({ apiVersion: cas, kind: 'CStorVolume', namespace: ns, name: 'pvc-dp' }, { status: { phase: 'Offline' } });
    const res = await api.post<{ error: string }>('/latest/snapshots/', { metadata: { name: 'pvc-dp_s2_2000' }, spec: { casType: 'cstor', volumeName: 'pvc-dp' } });
    expect(res.status).to.equal(409);
    expect(res.data.error).to.match(/volume pvc-dp is not Healthy \(phase Offline\)/);
    const onTarget = await axios.get<{ items: { name: string }[] }>(`http://${target.addresses['mgmt']}/v1/volumes/pvc-dp/snapshots`, { proxy: false });
    expect(onTarget.data.items.map((s) => s.name)).to.not.include('pvc-dp_s2_2000');
  });
});
