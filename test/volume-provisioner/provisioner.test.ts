// The volume-provisioner as a real process (`cstor volume-provisioner`) with a real `cstor mapi`
// on kube-lite (data plane simulated, see test/mapi/support.ts): a PVC on an
// openebs-cstor-default-like class → a Bound PV with the right spec.iscsi; deleting the PVC
// (reclaim Delete) → the volume deleted through m-apiserver, the PV gone; `kill -9` of the
// provisioner mid-provision and a restart → exactly one volume and one PV.
import { expect } from 'chai';
import type { KubeObject } from '../../maya-apiserver/cas/ports.ts';
import { startDaemon, stopAll, type Daemon } from '../support/daemon.ts';
import { eventually } from '../kube-lite/support.ts';
import { cas, ns, startMapiStack, type MapiStack } from '../mapi/support.ts';

const className = 'openebs-cstor-default';

describe('volume-provisioner (cstor volume-provisioner + cstor mapi on kube-lite)', function () {
  this.timeout(120_000);
  let stack: MapiStack;
  let provisioner: Daemon;

  const startProvisioner = (): Promise<Daemon> =>
    startDaemon(['volume-provisioner', '--kubeconfig', stack.kl.kubeconfig, '--mapi-addr', stack.url, '--leader-elect', 'false', '--metrics', '127.0.0.1:0'], {
      listeners: ['metrics'],
    });
  const claim = (name: string): KubeObject => ({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace: 'default' },
    spec: { storageClassName: className, accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '2G' } } },
  });
  const getClaim = (name: string): Promise<KubeObject> => stack.kube.get({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: 'default', name });
  const listPvs = async (): Promise<KubeObject[]> => stack.kube.list({ apiVersion: 'v1', kind: 'PersistentVolume' });
  const listCvs = async (): Promise<KubeObject[]> => stack.kube.list({ apiVersion: cas, kind: 'CStorVolume', namespace: ns });
  const boundPvOf = async (name: string): Promise<KubeObject> =>
    eventually(async () => {
      const c = await getClaim(name);
      const phase = (c['status'] as { phase?: string } | undefined)?.phase;
      const volumeName = (c['spec'] as { volumeName?: string }).volumeName;
      if (phase !== 'Bound' || !volumeName) return undefined;
      return stack.kube.get({ apiVersion: 'v1', kind: 'PersistentVolume', name: volumeName });
    }, `claim ${name} Bound`, 30_000);

  before(async () => {
    stack = await startMapiStack();
    await stack.kube.create({
      apiVersion: 'storage.k8s.io/v1',
      kind: 'StorageClass',
      metadata: {
        name: className,
        annotations: { 'cas.openebs.io/config': '- name: ReplicaCount\n  value: "3"\n', 'openebs.io/cas-type': 'cstor' },
      },
      provisioner: 'openebs.io/provisioner-iscsi',
      reclaimPolicy: 'Delete',
      volumeBindingMode: 'Immediate',
    });
    provisioner = await startProvisioner();
  });
  after(async () => {
    await stack?.stop();
    await stopAll();
  });

  it('a PVC on the cStor class → a 3-replica volume through m-apiserver → a Bound iSCSI PV; Events on the claim', async () => {
    await stack.kube.create(claim('data-1'));
    const pv = await boundPvOf('data-1');
    const uid = (await getClaim('data-1')).metadata.uid as string;
    const pvName = `pvc-${uid}`;
    expect(pv.metadata.name).to.equal(pvName);
    expect(pv.metadata.annotations).to.include({ 'pv.kubernetes.io/provisioned-by': 'openebs.io/provisioner-iscsi' });
    expect(pv.metadata.labels).to.include({ 'openebs.io/cas-type': 'cstor', 'openebs.io/storageclass': className });
    const spec = pv['spec'] as Record<string, unknown>;
    expect(spec['iscsi']).to.deep.equal({ targetPortal: '127.0.0.1:3260', iqn: `iqn.2016-09.com.openebs.cstor:${pvName}`, lun: 0, fsType: 'ext4', readOnly: false });
    expect(spec['persistentVolumeReclaimPolicy']).to.equal('Delete');
    expect(spec['storageClassName']).to.equal(className);
    expect(spec['capacity']).to.deep.equal({ storage: '2G' });
    expect(spec['claimRef']).to.include({ namespace: 'default', name: 'data-1', uid });

    const cv = await stack.kube.get({ apiVersion: cas, kind: 'CStorVolume', namespace: ns, name: pvName });
    expect(cv.metadata.labels).to.include({ 'openebs.io/persistentvolumeclaim': 'data-1', 'openebs.io/namespace': 'default', 'openebs.io/storageclass': className });
    const cvrs = await stack.kube.list({ apiVersion: cas, kind: 'CStorVolumeReplica', namespace: ns, labelSelector: `openebs.io/persistent-volume=${pvName}` });
    expect(cvrs).to.have.length(3);

    const reasons = await eventually(async () => {
      const evs = (await stack.kube.list({ apiVersion: 'v1', kind: 'Event', namespace: 'default' })).filter((e) => (e['involvedObject'] as { name?: string }).name === 'data-1');
      const r = evs.map((e) => String(e['reason']));
      return r.includes('ProvisioningSucceeded') ? r : undefined;
    }, 'the ProvisioningSucceeded Event');
    expect(reasons).to.include('Provisioning');
  });

  it('deleting the PVC (reclaim Delete) deletes the volume through m-apiserver, then the PV', async () => {
    const uid = (await getClaim('data-1')).metadata.uid as string;
    const pvName = `pvc-${uid}`;
    await stack.kube.delete({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: 'default', name: 'data-1' });
    await eventually(async () => !(await listPvs()).some((p) => p.metadata.name === pvName), 'the PV deleted', 30_000);
    expect((await listCvs()).map((c) => c.metadata.name)).to.not.include(pvName);
    await eventually(
      async () => (await stack.kube.list({ apiVersion: cas, kind: 'CStorVolumeReplica', namespace: ns, labelSelector: `openebs.io/persistent-volume=${pvName}` })).length === 0,
      'the replicas deleted',
    );
    await stack.mapi.waitForLog((e) => e.message === 'request' && e.method === 'DELETE' && e.path === `/latest/volumes/${pvName}` && e.status === 200);
  });

  it('m-apiserver refusing (too few pools): a Warning ProvisioningFailed Event naming the problem, no PV, retried', async () => {
    await stack.kube.create({
      apiVersion: 'storage.k8s.io/v1',
      kind: 'StorageClass',
      metadata: { name: 'openebs-cstor-five' },
      provisioner: 'openebs.io/provisioner-iscsi',
      parameters: { replicaCount: '5' },
    });
    await stack.kube.create({ ...claim('data-5'), spec: { storageClassName: 'openebs-cstor-five', accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1G' } } } });
    const failed = await eventually(async () => {
      const evs = (await stack.kube.list({ apiVersion: 'v1', kind: 'Event', namespace: 'default' })).filter(
        (e) => (e['involvedObject'] as { name?: string }).name === 'data-5' && e['reason'] === 'ProvisioningFailed',
      );
      return evs[0];
    }, 'the ProvisioningFailed Event', 30_000);
    expect(failed['type']).to.equal('Warning');
    expect(String(failed['message'])).to.match(/^failed to provision volume with StorageClass "openebs-cstor-five": create volume pvc-[0-9a-f-]+: m-apiserver 503: task enough-pools \(\d+ of \d+\) failed: volume pvc-[0-9a-f-]+ needs 5 replicas on as many Online pools/);
    expect((await listPvs()).filter((p) => (p['spec'] as { claimRef?: { name?: string } }).claimRef?.name === 'data-5')).to.have.length(0);
    await stack.kube.delete({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: 'default', name: 'data-5' });
  });

  it('kill -9 of the provisioner mid-provision, then a restart: exactly one volume and one PV', async () => {
    stack.sim.paused = true; // the volume stays Init: m-apiserver's create waits for Healthy
    try {
      await stack.kube.create(claim('data-2'));
      const uid = await eventually(async () => (await getClaim('data-2')).metadata.uid as string | undefined, 'claim uid');
      const pvName = `pvc-${uid}`;
      await eventually(async () => (await listCvs()).some((c) => c.metadata.name === pvName), 'the CStorVolume created (provision in flight)', 30_000);
      await provisioner.kill();
      await stack.mapi.waitForLog((e) => e.message === 'request abandoned by the client' && e.path === '/latest/volumes/');
      expect((await listPvs()).some((p) => p.metadata.name === pvName)).to.equal(false);
      provisioner = await startProvisioner();
      // The restarted provisioner asks for the same volume (same name); m-apiserver answers the one in flight.
      await new Promise((r) => setTimeout(r, 300));
      stack.sim.paused = false;
      const pv = await boundPvOf('data-2');
      expect(pv.metadata.name).to.equal(pvName);
      expect((await listCvs()).filter((c) => c.metadata.name === pvName)).to.have.length(1);
      expect((await listPvs()).filter((p) => (p['spec'] as { claimRef?: { name?: string } }).claimRef?.name === 'data-2')).to.have.length(1);
      const cvrs = await stack.kube.list({ apiVersion: cas, kind: 'CStorVolumeReplica', namespace: ns, labelSelector: `openebs.io/persistent-volume=${pvName}` });
      expect(cvrs).to.have.length(3);
    } finally {
      stack.sim.paused = false;
    }
  });
});
