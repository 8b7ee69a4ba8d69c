// The PV binder inside kube-lite: storage-provisioner annotations on claims of classes with an
// external provisioner, binding both ways from a PV's claimRef, matching Available PVs, and
// Released on claim deletion.
import { expect } from 'chai';
import { CoreV1Api, StorageV1Api, type V1PersistentVolume, type V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { stopAll } from '../support/daemon.ts';
import { eventually, startKubeLiteProc, type KubeLiteProc } from './support.ts';

describe('kube-lite PV binder', function () {
  this.timeout(60_000);
  let kl: KubeLiteProc;
  let core: CoreV1Api;
  before(async () => {
    kl = await startKubeLiteProc();
    core = kl.kc.makeApiClient(CoreV1Api);
    const storage = kl.kc.makeApiClient(StorageV1Api);
    await storage.createStorageClass({ body: { metadata: { name: 'ext' }, provisioner: 'example.com/ext', reclaimPolicy: 'Delete' } });
    await storage.createStorageClass({ body: { metadata: { name: 'manual' }, provisioner: 'kubernetes.io/no-provisioner', reclaimPolicy: 'Retain' } });
  });
  after(stopAll);

  const claim = (name: string, cls: string, size = '5G'): V1PersistentVolumeClaim => ({
    metadata: { name },
    spec: { storageClassName: cls, accessModes: ['ReadWriteOnce'], resources: { requests: { storage: size } } },
  });

  it('annotates a claim of an external provisioner\'s class, binds the PV made for it both ways, and releases it', async () => {
    const c = await core.createNamespacedPersistentVolumeClaim({ namespace: 'default', body: claim('ext-claim', 'ext') });
    const annotated = await eventually(async () => {
      const cur = await core.readNamespacedPersistentVolumeClaim({ namespace: 'default', name: 'ext-claim' });
      return cur.metadata?.annotations?.['volume.kubernetes.io/storage-provisioner'] ? cur : undefined;
    }, 'the storage-provisioner annotations');
    expect(annotated.metadata?.annotations).to.deep.include({
      'volume.beta.kubernetes.io/storage-provisioner': 'example.com/ext',
      'volume.kubernetes.io/storage-provisioner': 'example.com/ext',
    });
    expect(annotated.status?.phase).to.equal('Pending');

    // What an external provisioner does: a PV with a claimRef to the claim.
    const pvName = `pvc-${c.metadata!.uid!}`;
    await core.createPersistentVolume({
      body: {
        metadata: { name: pvName, annotations: { 'pv.kubernetes.io/provisioned-by': 'example.com/ext' } },
        spec: {
          capacity: { storage: '5G' },
          accessModes: ['ReadWriteOnce'],
          persistentVolumeReclaimPolicy: 'Delete',
          storageClassName: 'ext',
          iscsi: { targetPortal: '127.0.0.1:3260', iqn: 'iqn.2016-09.com.openebs.cstor:x', lun: 0, fsType: 'ext4' },
          claimRef: { kind: 'PersistentVolumeClaim', namespace: 'default', name: 'ext-claim', uid: c.metadata!.uid!, apiVersion: 'v1' },
        },
      },
    });
    const bound = await eventually(async () => {
      const cur = await core.readNamespacedPersistentVolumeClaim({ namespace: 'default', name: 'ext-claim' });
      return cur.status?.phase === 'Bound' ? cur : undefined;
    }, 'the claim to be Bound');
    expect(bound.spec?.volumeName).to.equal(pvName);
    expect(bound.status?.capacity).to.deep.equal({ storage: '5G' });
    expect(bound.status?.accessModes).to.deep.equal(['ReadWriteOnce']);
    expect(bound.metadata?.annotations?.['pv.kubernetes.io/bind-completed']).to.equal('yes');
    expect(bound.metadata?.annotations?.['pv.kubernetes.io/bound-by-controller']).to.equal('yes');
    const pv = await eventually(async () => {
      const cur = await core.readPersistentVolume({ name: pvName });
      return cur.status?.phase === 'Bound' ? cur : undefined;
    }, 'the PV to be Bound');
    expect(pv.spec?.claimRef?.uid).to.equal(c.metadata!.uid);

    await core.deleteNamespacedPersistentVolumeClaim({ namespace: 'default', name: 'ext-claim' });
    const released = await eventually(async () => {
      const cur = await core.readPersistentVolume({ name: pvName });
      return cur.status?.phase === 'Released' ? cur : undefined;
    }, 'the PV to be Released');
    // Delete policy with an external provisioner: the PV is left for the provisioner to delete.
    expect(released.spec?.claimRef?.name).to.equal('ext-claim');
  });

  it('binds a claim to the smallest matching Available PV and keeps a Retain PV Released', async () => {
    const mkPv = (name: string, size: string): V1PersistentVolume => ({
      metadata: { name },
      spec: { capacity: { storage: size }, accessModes: ['ReadWriteOnce', 'ReadOnlyMany'], storageClassName: 'manual', persistentVolumeReclaimPolicy: 'Retain', hostPath: { path: `/tmp/${name}` } },
    });
    await core.createPersistentVolume({ body: mkPv('big', '100Gi') });
    await core.createPersistentVolume({ body: mkPv('small', '2Gi') });
    await core.createPersistentVolume({ body: mkPv('tiny', '500Mi') });
    await eventually(async () => (await core.readPersistentVolume({ name: 'small' })).status?.phase === 'Available', 'the PVs to be Available');
    const c = await core.createNamespacedPersistentVolumeClaim({ namespace: 'default', body: claim('manual-claim', 'manual', '1Gi') });
    const bound = await eventually(async () => {
      const cur = await core.readNamespacedPersistentVolumeClaim({ namespace: 'default', name: 'manual-claim' });
      return cur.status?.phase === 'Bound' ? cur : undefined;
    }, 'the claim to bind');
    expect(bound.spec?.volumeName).to.equal('small');
    expect(bound.status?.capacity).to.deep.equal({ storage: '2Gi' });
    expect(bound.metadata?.annotations?.['volume.kubernetes.io/storage-provisioner']).to.equal(undefined);
    const pv = await core.readPersistentVolume({ name: 'small' });
    expect(pv.spec?.claimRef).to.deep.include({ name: 'manual-claim', namespace: 'default', uid: c.metadata!.uid });
    expect(pv.metadata?.annotations?.['pv.kubernetes.io/bound-by-controller']).to.equal('yes');
    await core.deleteNamespacedPersistentVolumeClaim({ namespace: 'default', name: 'manual-claim' });
    await eventually(async () => (await core.readPersistentVolume({ name: 'small' })).status?.phase === 'Released', 'the PV to be Released');
    await new Promise((r) => setTimeout(r, 300));
    expect((await core.readPersistentVolume({ name: 'small' })).status?.phase).to.equal('Released');
    expect((await core.readPersistentVolume({ name: 'big' })).status?.phase).to.equal('Available');
  });
});
