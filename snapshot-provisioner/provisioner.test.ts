// The snapshot-promoter on the shared core (ProvisionerSync), table-driven over fakes: each
// refusal → a Warning ProvisioningFailed Event naming the problem and no m-apiserver call;
// success → the PV's exact fields and one clone request with the right cloneSpec; a retry after
// a crash → the same clone and one PV; a released PV → the clone volume deleted, then the PV.
import { expect } from 'chai';
import { CstorError } from '../lib/errors.ts';
import type { PersistentVolume, PersistentVolumeClaim } from '../lib/kube/types/core.ts';
import type { StorageClass } from '../lib/kube/types/storage.ts';
import { silentLogger } from '../lib/logger.ts';
import { FakePvApi, RecordingEvents } from '../lib/provisioner/fakes.ts';
import { ProvisionerSync } from '../lib/provisioner/sync.ts';
import { FakeMaya, FakeReads, promoterClaim, promoterClass, promoterClassName, readySnapshot, sourceClassName, sourcePv } from './fakes.ts';
import { promoterName, SnapshotPromoter } from './provisioner.ts';

interface World {
  claim: PersistentVolumeClaim;
  storageClass?: StorageClass;
  /** Mutate the default objects (a Ready snapshot-demo of pvc-src, 5G) before the run. */
  tweak?: (reads: FakeReads) => void;
}

function setup(w: World): { sync: ProvisionerSync; maya: FakeMaya; reads: FakeReads; api: FakePvApi; events: RecordingEvents } {
  const reads = new FakeReads();
  reads.pvs.set('pvc-src', sourcePv('pvc-src'));
  const demo = readySnapshot('snapshot-demo');
  reads.addSnapshot(demo.snapshot);
  reads.datas.set(demo.data.metadata.name ?? '', demo.data);
  w.tweak?.(reads);
  const maya = new FakeMaya();
  const api = new FakePvApi();
  const events = new RecordingEvents();
  const sc = w.storageClass ?? promoterClass({ reclaimPolicy: 'Delete' });
  const sync = new ProvisionerSync({
    provisioner: new SnapshotPromoter({ maya, reads, identity: 'promoter-1' }),
    claims: new Map([[`${w.claim.metadata.namespace}/${w.claim.metadata.name}`, w.claim]]),
    classes: new Map([[promoterClassName, sc]]),
    volumes: new Map(),
    pvApi: api,
    events,
    logger: silentLogger(),
  });
  return { sync, maya, reads, api, events };
}

const failedPrefix = `failed to provision volume with StorageClass "${promoterClassName}": `;

describe('snapshot-provisioner: refusals (Event naming the problem, no backend call)', () => {
  const cases: Array<{ what: string; claim: PersistentVolumeClaim; tweak?: (r: FakeReads) => void; message: string | RegExp; code: string }> = [
    {
      what: 'no snapshot annotation',
      claim: promoterClaim('c', { snapshot: null }),
      message: 'the claim has no annotation snapshot.alpha.kubernetes.io/snapshot: the snapshot-promoter only makes volumes from a VolumeSnapshot named there',
      code: 'invalid',
    },
    { what: 'an empty annotation', claim: promoterClaim('c', { snapshot: ' ' }), message: /annotation snapshot\.alpha\.kubernetes\.io\/snapshot is empty: it must name a VolumeSnapshot in namespace default$/, code: 'invalid' },
    { what: 'a missing annotation target', claim: promoterClaim('c', { snapshot: 'snap-x' }), message: 'VolumeSnapshot default/snap-x not found', code: 'not_found' },
    { what: 'a misspelt name (a near name suggested)', claim: promoterClaim('c', { snapshot: 'snapshot-dmeo' }), message: 'VolumeSnapshot default/snapshot-dmeo not found (did you mean "snapshot-demo"?)', code: 'not_found' },
    { what: 'a name that is not a Kubernetes name', claim: promoterClaim('c', { snapshot: 'Snapshot_Demo' }), message: /annotation snapshot\.alpha\.kubernetes\.io\/snapshot "Snapshot_Demo" is not a valid VolumeSnapshot name: a lowercase RFC 1123 subdomain/, code: 'invalid' },
    {
      what: 'a cross-namespace reference',
      claim: promoterClaim('c', { snapshot: 'other/snapshot-demo' }),
      message: `the claim's annotation snapshot.alpha.kubernetes.io/snapshot "other/snapshot-demo" names a VolumeSnapshot in namespace other: cross-namespace clones are not allowed; the VolumeSnapshot must be in the claim's namespace default`,
      code: 'invalid',
    },
    {
      what: 'a snapshot that is not Ready (Pending)',
      claim: promoterClaim('c', { snapshot: 'snap-pending' }),
      tweak: (r) => r.addSnapshot(readySnapshot('snap-pending', { ready: false }).snapshot),
      message: 'VolumeSnapshot default/snap-pending is not Ready: Pending (SnapshotCreating: creating the backend snapshot); waiting for it',
      code: 'not_ready',
    },
    {
      what: 'a snapshot in Error',
      claim: promoterClaim('c', { snapshot: 'snap-bad' }),
      tweak: (r) => {
        const s = readySnapshot('snap-bad', { ready: false }).snapshot;
        s.status = { conditions: [{ type: 'Error', status: 'True', reason: 'VolumeNotHealthy', message: 'volume pvc-src is Degraded' }] };
        r.addSnapshot(s);
      },
      message: 'VolumeSnapshot default/snap-bad is not Ready: Error (VolumeNotHealthy: volume pvc-src is Degraded); waiting for it',
      code: 'not_ready',
    },
    {
      what: 'a Ready snapshot not bound to a VolumeSnapshotData',
      claim: promoterClaim('c', { snapshot: 'snap-unbound' }),
      tweak: (r) => r.addSnapshot(readySnapshot('snap-unbound', { bound: false }).snapshot),
      message: 'VolumeSnapshot default/snap-unbound is not bound to a VolumeSnapshotData yet (spec.snapshotDataName is empty); waiting for it',
      code: 'not_ready',
    },
    {
      what: 'a missing VolumeSnapshotData',
      claim: promoterClaim('c', { snapshot: 'snap-nodata' }),
      tweak: (r) => r.addSnapshot(readySnapshot('snap-nodata').snapshot),
      message: 'VolumeSnapshotData k8s-volume-snapshot-snap-nodata of VolumeSnapshot default/snap-nodata not found',
      code: 'not_found',
    },
    {
      what: 'a VolumeSnapshotData of another snapshot',
      claim: promoterClaim('c', { snapshot: 'snap-stolen' }),
      tweak: (r) => {
        const s = readySnapshot('snap-stolen').snapshot;
        s.spec.snapshotDataName = 'k8s-volume-snapshot-snapshot-demo';
        r.addSnapshot(s);
      },
      message: 'VolumeSnapshotData k8s-volume-snapshot-snapshot-demo belongs to VolumeSnapshot default/snapshot-demo-uid-snapshot-demo, not to default/snap-stolen (uid uid-snap-stolen)',
      code: 'invalid',
    },
    {
      what: 'a missing source PV',
      claim: promoterClaim('c'),
      tweak: (r) => r.pvs.clear(),
      message: 'source PersistentVolume pvc-src of VolumeSnapshot default/snapshot-demo not found',
      code: 'not_found',
    },
    {
      what: 'a clone smaller than its snapshot',
      claim: promoterClaim('c', { storage: '1Gi' }),
      message: 'requested 1Gi is smaller than snapshot snapshot-demo (5G): a clone must be at least as large as its snapshot',
      code: 'invalid',
    },
    {
      what: 'a clone one byte smaller (4.9G < 5G)',
      claim: promoterClaim('c', { storage: '4999999999' }),
      message: /^requested 4999999999 is smaller than snapshot snapshot-demo \(5G\)/,
      code: 'invalid',
    },
    { what: 'a request that is not a quantity', claim: promoterClaim('c', { storage: 'lots' }), message: `the claim's requested storage "lots" is not a quantity`, code: 'invalid' },
  ];
  for (const c of cases) {
    it(`${c.what} → Warning ProvisioningFailed, no m-apiserver call, no PV, retried`, async () => {
      const { sync, maya, api, events } = setup({ claim: c.claim, ...(c.tweak ? { tweak: c.tweak } : {}) });
      const err = await sync.syncClaim('default/c').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, 'the key is retried (the core throws)').to.be.instanceOf(CstorError);
      expect((err as CstorError).code).to.equal(c.code);
      expect(maya.requests).to.deep.equal([]);
      expect(api.store.size).to.equal(0);
      expect(events.events.map((e) => [e.type, e.reason])).to.deep.equal([
        ['Normal', 'Provisioning'],
        ['Warning', 'ProvisioningFailed'],
      ]);
      const message = events.events[1]?.message ?? '';
      expect(message.startsWith(failedPrefix), message).to.equal(true);
      const own = message.slice(failedPrefix.length);
      if (typeof c.message === 'string') expect(own).to.equal(c.message);
      else expect(own).to.match(c.message);
      expect(events.events[1]?.name).to.equal('c');
    });
  }
});

describe('snapshot-provisioner: provisioning a clone', () => {
  it('makes one clone through m-apiserver (cloneSpec of DESIGN.md §4) and the PV of DESIGN.md §3, field by field', async () => {
    const claim = promoterClaim('demo-snap-vol-claim', { storage: '5G' });
    const { sync, maya, api, events } = setup({ claim, storageClass: promoterClass({ reclaimPolicy: 'Retain', mountOptions: ['noatime'] }) });
    await sync.syncClaim('default/demo-snap-vol-claim');
    expect(maya.requests).to.deep.equal([
      {
        metadata: {
          name: 'pvc-uid-demo-snap-vol-claim',
          namespace: 'default',
          labels: { 'openebs.io/storageclass': sourceClassName, 'openebs.io/namespace': 'default', 'openebs.io/persistentvolumeclaim': 'demo-snap-vol-claim' },
        },
        spec: { capacity: '5G' },
        cloneSpec: { isClone: true, sourceVolume: 'pvc-src', snapshotName: 'pvc-src_snapshot-demo_1763683200000000000' },
      },
    ]);
    expect([...api.store.keys()]).to.deep.equal(['pvc-uid-demo-snap-vol-claim']);
    const pv = api.store.get('pvc-uid-demo-snap-vol-claim') as PersistentVolume;
    expect(pv.metadata.annotations).to.deep.equal({ 'pv.kubernetes.io/provisioned-by': promoterName, snapshotProvisionerIdentity: 'promoter-1' });
    expect(pv.metadata.labels).to.deep.equal({ 'openebs.io/cas-type': 'cstor', 'openebs.io/storageclass': sourceClassName });
    expect(pv.spec).to.deep.equal({
      capacity: { storage: '5G' },
      accessModes: ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: 'Retain',
      storageClassName: promoterClassName,
      claimRef: { kind: 'PersistentVolumeClaim', apiVersion: 'v1', namespace: 'default', name: 'demo-snap-vol-claim', uid: 'uid-demo-snap-vol-claim', resourceVersion: '7' },
      mountOptions: ['noatime'],
      iscsi: { targetPortal: '10.0.0.7:3260', iqn: 'iqn.2016-09.com.openebs.cstor:pvc-uid-demo-snap-vol-claim', lun: 0, fsType: 'ext4', readOnly: false },
    });
    expect(events.events.map((e) => [e.type, e.reason, e.message])).to.deep.equal([
      ['Normal', 'Provisioning', 'External provisioner is provisioning volume for claim "default/demo-snap-vol-claim"'],
      ['Normal', 'ProvisioningSucceeded', 'Successfully provisioned volume pvc-uid-demo-snap-vol-claim'],
    ]);
  });

  it('a larger clone is fine; its capacity is the request; the fsType follows the source PV; reclaim defaults to Delete', async () => {
    const claim = promoterClaim('big', { storage: '10Gi' });
    const { sync, maya, api } = setup({ claim, storageClass: promoterClass(), tweak: (r) => r.pvs.set('pvc-src', sourcePv('pvc-src', { fsType: 'xfs' })) });
    await sync.syncClaim('default/big');
    expect(maya.requests[0]?.spec).to.deep.equal({ capacity: '10Gi' });
    const pv = api.store.get('pvc-uid-big') as PersistentVolume;
    expect(pv.spec.capacity).to.deep.equal({ storage: '10Gi' });
    expect(pv.spec.iscsi?.fsType).to.equal('xfs');
    expect(pv.spec.persistentVolumeReclaimPolicy).to.equal('Delete');
  });

  it('accepts "<claim namespace>/<name>" as the same as "<name>"', async () => {
    const { sync, maya, api } = setup({ claim: promoterClaim('c', { snapshot: 'default/snapshot-demo' }) });
    await sync.syncClaim('default/c');
    expect(maya.requests).to.have.length(1);
    expect(api.store.size).to.equal(1);
  });

  it('a clone of a clone: the source class is the source PV label, not the promoter class', async () => {
    const claim = promoterClaim('c', { snapshot: 'snap-of-clone' });
    const { sync, maya, api } = setup({
      claim,
      tweak: (r) => {
        const clonePv = sourcePv('pvc-clone', { className: promoterClassName });
        clonePv.metadata.labels = { 'openebs.io/cas-type': 'cstor', 'openebs.io/storageclass': sourceClassName };
        r.pvs.set('pvc-clone', clonePv);
        const f = readySnapshot('snap-of-clone', { pv: 'pvc-clone' });
        r.addSnapshot(f.snapshot);
        r.datas.set(f.data.metadata.name ?? '', f.data);
      },
    });
    await sync.syncClaim('default/c');
    expect(maya.requests[0]?.metadata.labels?.['openebs.io/storageclass']).to.equal(sourceClassName);
    expect(maya.requests[0]?.cloneSpec?.sourceVolume).to.equal('pvc-clone');
    expect(api.store.get('pvc-uid-c')?.metadata.labels?.['openebs.io/storageclass']).to.equal(sourceClassName);
  });

  it('a snapshot that turns Ready is provisioned on the next try (after the not-Ready refusal)', async () => {
    const claim = promoterClaim('c', { snapshot: 'snap-late' });
    const late = readySnapshot('snap-late', { ready: false });
    const { sync, maya, reads, api } = setup({ claim, tweak: (r) => r.addSnapshot(late.snapshot) });
    await sync.syncClaim('default/c').catch(() => undefined);
    expect(maya.requests).to.have.length(0);
    const ready = readySnapshot('snap-late');
    reads.addSnapshot(ready.snapshot);
    reads.datas.set(ready.data.metadata.name ?? '', ready.data);
    await sync.syncClaim('default/c');
    expect(maya.requests).to.have.length(1);
    expect(api.store.size).to.equal(1);
  });
});

describe('snapshot-provisioner: retries after a crash make no duplicates', () => {
  it('the clone made but its answer lost (crash or timeout): the retry asks for the same name, one clone, one PV', async () => {
    const { sync, maya, api } = setup({ claim: promoterClaim('c') });
    maya.lostAnswers.push(new CstorError('unavailable', 'create volume pvc-uid-c: m-apiserver unreachable: socket hang up'));
    await sync.syncClaim('default/c').catch(() => undefined);
    expect(maya.volumes.size).to.equal(1);
    expect(api.store.size).to.equal(0);
    await sync.syncClaim('default/c');
    expect(maya.requests.map((r) => r.metadata.name)).to.deep.equal(['pvc-uid-c', 'pvc-uid-c']);
    expect([...maya.volumes.keys()]).to.deep.equal(['pvc-uid-c']);
    expect([...api.store.keys()]).to.deep.equal(['pvc-uid-c']);
  });

  it('the clone made but the PV write failed: the retry finds the clone (same name) and writes one PV', async () => {
    const { sync, maya, api } = setup({ claim: promoterClaim('c') });
    api.failures.create.push(new CstorError('invalid', 'injected PV write failure'));
    await sync.syncClaim('default/c').catch(() => undefined);
    await sync.syncClaim('default/c');
    expect([...maya.volumes.keys()]).to.deep.equal(['pvc-uid-c']);
    expect(api.store.size).to.equal(1);
  });

  it('the PV already there (restart after the PV write): no m-apiserver call, no Event, even if the snapshot is gone since', async () => {
    const first = setup({ claim: promoterClaim('c') });
    await first.sync.syncClaim('default/c');
    const { sync, maya, api, events, reads } = setup({ claim: promoterClaim('c'), tweak: (r) => r.snapshots.clear() });
    for (const [k, v] of first.api.store) api.store.set(k, v);
    await sync.syncClaim('default/c');
    expect(maya.requests).to.deep.equal([]);
    expect(reads.reads).to.equal(0);
    expect(events.events).to.deep.equal([]);
    expect(api.store.size).to.equal(1);
  });
});

describe('snapshot-provisioner: delete', () => {
  function releasedClone(o: { by?: string; reclaim?: 'Delete' | 'Retain' } = {}): PersistentVolume {
    return {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: 'pvc-uid-c', uid: 'pv-uid', labels: { 'openebs.io/storageclass': sourceClassName }, annotations: { 'pv.kubernetes.io/provisioned-by': o.by ?? promoterName } },
      spec: { persistentVolumeReclaimPolicy: o.reclaim ?? 'Delete', storageClassName: promoterClassName, claimRef: { namespace: 'apps', name: 'c' } },
      status: { phase: 'Released' },
    };
  }

  function withPv(pv: PersistentVolume): { sync: ProvisionerSync; maya: FakeMaya; api: FakePvApi } {
    const maya = new FakeMaya();
    const api = new FakePvApi();
    api.store.set(pv.metadata.name ?? '', pv);
    const sync = new ProvisionerSync({
      provisioner: new SnapshotPromoter({ maya, reads: new FakeReads(), identity: 'promoter-2' }),
      claims: new Map(),
      classes: new Map(),
      volumes: new Map([[pv.metadata.name ?? '', pv]]),
      pvApi: api,
      events: new RecordingEvents(),
      logger: silentLogger(),
    });
    return { sync, maya, api };
  }

  it('a released clone PV with reclaim Delete: DELETE the volume (scope: claim namespace, source class), then the PV (any identity)', async () => {
    const { sync, maya, api } = withPv(releasedClone());
    await sync.syncVolume('pvc-uid-c');
    expect(maya.deleted).to.deep.equal([{ name: 'pvc-uid-c', scope: { namespace: 'apps', storageClass: sourceClassName } }]);
    expect(api.store.size).to.equal(0);
  });

  const kept: Array<{ what: string; pv: PersistentVolume }> = [
    { what: 'reclaim Retain', pv: releasedClone({ reclaim: 'Retain' }) },
    { what: 'provisioned by another provisioner', pv: releasedClone({ by: 'openebs.io/provisioner-iscsi' }) },
  ];
  for (const k of kept) {
    it(`${k.what}: the volume and the PV are kept`, async () => {
      const { sync, maya, api } = withPv(k.pv);
      await sync.syncVolume('pvc-uid-c');
      expect(maya.deleted).to.deep.equal([]);
      expect(api.store.size).to.equal(1);
    });
  }
});
