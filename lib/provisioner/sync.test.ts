// The provisioner core's logic, table-driven over fakes: objects in → PVs, backend calls and
// Events out, with API and backend errors injected.
import { expect } from 'chai';
import { CstorError } from '../errors.ts';
import { objectKey } from '../kube/keys.ts';
import type { PersistentVolume, PersistentVolumeClaim } from '../kube/types/core.ts';
import type { StorageClass } from '../kube/types/storage.ts';
import { silentLogger } from '../logger.ts';
import { provisioningFinalizer } from './claim-finalizer.ts';
import { FakeClaimApi, FakePvApi, FakeProvisioner, RecordingEvents, testClaim, testClass } from './fakes.ts';
import { ProvisionerSync } from './sync.ts';

interface World {
  claims: PersistentVolumeClaim[];
  classes: StorageClass[];
  pvs?: PersistentVolume[];
}

function setup(world: World): { sync: ProvisionerSync; api: FakePvApi; events: RecordingEvents; prov: FakeProvisioner; cachedPvs: Map<string, PersistentVolume>; claimApi: FakeClaimApi; claims: Map<string, PersistentVolumeClaim> } {
  const api = new FakePvApi();
  for (const pv of world.pvs ?? []) api.store.set(pv.metadata.name ?? '', pv);
  const cachedPvs = new Map((world.pvs ?? []).map((pv) => [pv.metadata.name ?? '', pv]));
  const claims = new Map(world.claims.map((c) => [objectKey(c), c]));
  const classes = new Map(world.classes.map((c) => [c.metadata.name ?? '', c]));
  const events = new RecordingEvents();
  const prov = new FakeProvisioner();
  // The claim API writes the map the sync reads as its cache: a cache that never lags.
  const claimApi = new FakeClaimApi(claims);
  const sync = new ProvisionerSync({ provisioner: prov, claims, classes, volumes: cachedPvs, pvApi: api, claimApi, events, logger: silentLogger() });
  return { sync, api, events, prov, cachedPvs, claimApi, claims };
}

function releasedPv(name: string, o: { by?: string; reclaim?: 'Delete' | 'Retain'; phase?: 'Released' | 'Bound' } = {}): PersistentVolume {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name, uid: `uid-${name}`, annotations: { 'pv.kubernetes.io/provisioned-by': o.by ?? 'example.com/fake' } },
    spec: { persistentVolumeReclaimPolicy: o.reclaim ?? 'Delete', storageClassName: 'fast' },
    status: { phase: o.phase ?? 'Released' },
  };
}

describe('lib/provisioner: syncClaim', () => {
  const notOurs: Array<{ what: string; claim: PersistentVolumeClaim; classes?: StorageClass[] }> = [
    { what: 'no storage-provisioner annotation', claim: testClaim('c1', { provisioner: null }) },
    { what: 'annotated for another provisioner', claim: testClaim('c1', { provisioner: 'other.io/x' }) },
    { what: 'already bound (spec.volumeName set)', claim: testClaim('c1', { volumeName: 'pv-x' }) },
    { what: 'its class is for another provisioner', claim: testClaim('c1'), classes: [testClass('fast', 'other.io/x')] },
    { what: 'no storageClassName', claim: testClaim('c1', { className: '' }) },
  ];
  for (const c of notOurs) {
    it(`ignores a claim with ${c.what}: no backend call, no PV, no Event`, async () => {
      const { sync, api, events, prov } = setup({ claims: [c.claim], classes: c.classes ?? [testClass('fast')] });
      await sync.syncClaim('default/c1');
      expect(prov.provisionCalls).to.equal(0);
      expect(api.store.size).to.equal(0);
      expect(events.events).to.deep.equal([]);
    });
  }

  it('accepts the GA annotation volume.kubernetes.io/storage-provisioner too', async () => {
    const claim = testClaim('c1', { provisioner: null });
    claim.metadata.annotations = { 'volume.kubernetes.io/storage-provisioner': 'example.com/fake' };
    const { sync, api } = setup({ claims: [claim], classes: [testClass('fast')] });
    await sync.syncClaim('default/c1');
    expect([...api.store.keys()]).to.deep.equal(['pvc-uid-c1']);
  });

  it('provisions a claim that is ours: PV pvc-<uid> with claimRef, class, reclaim policy, provisioned-by; Events', async () => {
    const { sync, api, events, prov } = setup({ claims: [testClaim('c1')], classes: [testClass('fast', 'example.com/fake', 'Retain')] });
    await sync.syncClaim('default/c1');
    expect(prov.provisionCalls).to.equal(1);
    expect(prov.volumes.get('pvc-uid-c1')?.capacity).to.equal('5G');
    const pv = api.store.get('pvc-uid-c1');
    expect(pv?.metadata.annotations).to.deep.equal({ 'example.com/identity': 'fake-1', 'pv.kubernetes.io/provisioned-by': 'example.com/fake' });
    expect(pv?.metadata.labels).to.deep.equal({ 'example.com/made-by': 'fake' });
    expect(pv?.spec).to.deep.include({
      capacity: { storage: '5G' },
      accessModes: ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: 'Retain',
      storageClassName: 'fast',
      claimRef: { kind: 'PersistentVolumeClaim', apiVersion: 'v1', namespace: 'default', name: 'c1', uid: 'uid-c1', resourceVersion: '5' },
    });
    expect(pv?.spec.iscsi).to.deep.equal({ targetPortal: '127.0.0.1:3260', iqn: 'iqn.2016-09.com.openebs.cstor:pvc-uid-c1', lun: 0, fsType: 'ext4', readOnly: false });
    expect(events.reasons()).to.deep.equal(['Provisioning', 'ProvisioningSucceeded']);
    expect(events.events[1]?.message).to.equal('Successfully provisioned volume pvc-uid-c1');
  });

  it('reclaim policy defaults to Delete', async () => {
    const { sync, api } = setup({ claims: [testClaim('c1')], classes: [testClass('fast')] });
    await sync.syncClaim('default/c1');
    expect(api.store.get('pvc-uid-c1')?.spec.persistentVolumeReclaimPolicy).to.equal('Delete');
  });

  it('finds an existing PV (a retry after a crash): no second backend volume, no second PV', async () => {
    const existing = releasedPv('pvc-uid-c1', { phase: 'Bound' });
    const { sync, api, prov, events } = setup({ claims: [testClaim('c1')], classes: [testClass('fast')], pvs: [existing] });
    await sync.syncClaim('default/c1');
    await sync.syncClaim('default/c1');
    expect(prov.provisionCalls).to.equal(0);
    expect(api.creates).to.equal(0);
    expect(events.events).to.deep.equal([]);
  });

  const failures: Array<{ what: string; arrange: (f: { prov: FakeProvisioner; api: FakePvApi }) => void; message: RegExp; code: string }> = [
    {
      what: 'the backend refuses',
      arrange: ({ prov }) => prov.provisionFailures.push(new CstorError('unavailable', 'm-apiserver 503: volume pvc-uid-c1 needs 3 replicas on as many Online pools, and 2 are Online')),
      message: /^failed to provision volume with StorageClass "fast": m-apiserver 503: volume pvc-uid-c1 needs 3 replicas/,
      code: 'unavailable',
    },
    {
      what: 'the PV write keeps failing',
      arrange: ({ api }) => api.failures.create.push(new CstorError('unavailable', 'etcd down'), new CstorError('unavailable', 'etcd down'), new CstorError('unavailable', 'etcd down')),
      message: /the volume was made but saving PV pvc-uid-c1 failed: etcd down/,
      code: 'unavailable',
    },
  ];
  for (const f of failures) {
    it(`when ${f.what}: a Warning ProvisioningFailed Event with the message, and a throw (retry with backoff); the retry makes one volume`, async () => {
      const w = setup({ claims: [testClaim('c1')], classes: [testClass('fast')] });
      f.arrange(w);
      const err = await w.sync.syncClaim('default/c1').catch((e: unknown) => e);
      expect(err).to.be.instanceOf(CstorError);
      expect((err as CstorError).code).to.equal(f.code);
      const failed = w.events.events.find((e) => e.reason === 'ProvisioningFailed');
      expect(failed?.type).to.equal('Warning');
      expect(failed?.kind).to.equal('PersistentVolumeClaim');
      expect(failed?.message).to.match(f.message);
      await w.sync.syncClaim('default/c1');
      expect(w.prov.volumes.size).to.equal(1);
      expect([...w.api.store.keys()]).to.deep.equal(['pvc-uid-c1']);
      expect(w.events.reasons().at(-1)).to.equal('ProvisioningSucceeded');
    });
  }

  it('a PV that appeared meanwhile (already exists on create) is success', async () => {
    const w = setup({ claims: [testClaim('c1')], classes: [testClass('fast')] });
    w.api.failures.create.push(new CstorError('already_exists', 'persistentvolumes "pvc-uid-c1" already exists'));
    await w.sync.syncClaim('default/c1');
    expect(w.events.reasons()).to.deep.equal(['Provisioning', 'ProvisioningSucceeded']);
  });

  it('a claim whose class is missing: ProvisioningFailed naming the class, retried', async () => {
    const w = setup({ claims: [testClaim('c1', { className: 'nosuch' })], classes: [] });
    const err = await w.sync.syncClaim('default/c1').catch((e: unknown) => e);
    expect((err as CstorError).code).to.equal('not_found');
    expect(w.events.events[0]).to.include({ reason: 'ProvisioningFailed', type: 'Warning', message: 'storageclass.storage.k8s.io "nosuch" not found' });
  });

  it('a claim without a storage request: ProvisioningFailed, not retried', async () => {
    const w = setup({ claims: [testClaim('c1', { storage: null })], classes: [testClass('fast')] });
    await w.sync.syncClaim('default/c1');
    expect(w.events.events[0]).to.include({ reason: 'ProvisioningFailed', message: 'the claim has no spec.resources.requests.storage' });
    expect(w.prov.provisionCalls).to.equal(0);
  });

  it('a claim that is gone is a no-op', async () => {
    const w = setup({ claims: [], classes: [testClass('fast')] });
    await w.sync.syncClaim('default/c1');
    expect(w.prov.provisionCalls).to.equal(0);
  });
});

describe('lib/provisioner: the provisioning finalizer on claims', () => {
  const deleting = (c: PersistentVolumeClaim, finalizers = [provisioningFinalizer]): PersistentVolumeClaim => ({
    ...c,
    metadata: { ...c.metadata, deletionTimestamp: '2026-11-21T08:00:00Z', finalizers },
  });
  const holding = (c: PersistentVolumeClaim): PersistentVolumeClaim => ({ ...c, metadata: { ...c.metadata, finalizers: ['other.io/keep', provisioningFinalizer] } });

  it('is on the claim during the backend call and gone once the PV exists (other finalizers kept)', async () => {
    const claim = testClaim('c1');
    claim.metadata.finalizers = ['kubernetes.io/pvc-protection'];
    const w = setup({ claims: [claim], classes: [testClass('fast')] });
    let during: string[] | undefined;
    w.prov.onProvision = async () => {
      during = w.claims.get('default/c1')?.metadata.finalizers;
    };
    await w.sync.syncClaim('default/c1');
    expect(during).to.deep.equal(['kubernetes.io/pvc-protection', provisioningFinalizer]);
    expect(w.claims.get('default/c1')?.metadata.finalizers).to.deep.equal(['kubernetes.io/pvc-protection']);
    expect([...w.api.store.keys()]).to.deep.equal(['pvc-uid-c1']);
  });

  it('stays when the backend call fails (the retry and a deletion find it)', async () => {
    const w = setup({ claims: [testClaim('c1')], classes: [testClass('fast')] });
    w.prov.provisionFailures.push(new CstorError('unavailable', 'm-apiserver unreachable'));
    await w.sync.syncClaim('default/c1').catch(() => undefined);
    expect(w.claims.get('default/c1')?.metadata.finalizers).to.deep.equal([provisioningFinalizer]);
  });

  it('a claim deleted before its PV was written: its backend volume pvc-<uid> is deleted, then the claim is released (and gone)', async () => {
    const w = setup({ claims: [deleting(testClaim('c1'))], classes: [testClass('fast')] });
    await w.sync.syncClaim('default/c1');
    expect(w.prov.deleted).to.deep.equal(['pvc-uid-c1']);
    expect(w.prov.provisionCalls).to.equal(0);
    expect(w.claims.has('default/c1')).to.equal(false);
    expect(w.events.events.at(-1)).to.include({ type: 'Normal', reason: 'VolumeDeleted', message: 'the claim was deleted before its PV was written: deleted its volume pvc-uid-c1' });
  });

  it('a claim deleted after its PV was written: released only (the PV reclaim deletes the volume)', async () => {
    const w = setup({ claims: [deleting(testClaim('c1'), ['other.io/keep', provisioningFinalizer])], classes: [testClass('fast')], pvs: [releasedPv('pvc-uid-c1', { phase: 'Bound' })] });
    await w.sync.syncClaim('default/c1');
    expect(w.prov.deleted).to.deep.equal([]);
    expect(w.claims.get('default/c1')?.metadata.finalizers).to.deep.equal(['other.io/keep']);
  });

  it('a failed backend delete keeps the finalizer, records VolumeFailedDelete on the claim and throws; the retry finishes', async () => {
    const w = setup({ claims: [deleting(testClaim('c1'))], classes: [testClass('fast')] });
    w.prov.deleteFailures.push(new CstorError('unavailable', 'm-apiserver unreachable'));
    const err = await w.sync.syncClaim('default/c1').catch((e: unknown) => e);
    expect((err as CstorError).code).to.equal('unavailable');
    expect(w.claims.get('default/c1')?.metadata.finalizers).to.deep.equal([provisioningFinalizer]);
    expect(w.events.events.at(-1)).to.include({ kind: 'PersistentVolumeClaim', type: 'Warning', reason: 'VolumeFailedDelete' });
    expect(w.events.events.at(-1)?.message).to.match(/deleting its volume pvc-uid-c1 failed: m-apiserver unreachable$/);
    await w.sync.syncClaim('default/c1');
    expect(w.claims.has('default/c1')).to.equal(false);
  });

  it('a bound claim still holding it (a crash after the PV write): released, nothing provisioned', async () => {
    const w = setup({ claims: [holding(testClaim('c1', { volumeName: 'pvc-uid-c1' }))], classes: [testClass('fast')] });
    await w.sync.syncClaim('default/c1');
    expect(w.claims.get('default/c1')?.metadata.finalizers).to.deep.equal(['other.io/keep']);
    expect(w.prov.provisionCalls).to.equal(0);
  });

  it('a claim of another provisioner holding it is left alone', async () => {
    const w = setup({ claims: [deleting(testClaim('c1', { provisioner: 'other.io/x' }))], classes: [testClass('fast')] });
    await w.sync.syncClaim('default/c1');
    expect(w.prov.deleted).to.deep.equal([]);
    expect(w.claims.get('default/c1')?.metadata.finalizers).to.deep.equal([provisioningFinalizer]);
  });

  it('never touches another claim made under the same name (another uid)', async () => {
    const w = setup({ claims: [holding(testClaim('c1', { volumeName: 'pvc-uid-c1' }))], classes: [testClass('fast')] });
    const cached = w.claims.get('default/c1')!;
    // The live claim is a new one (new uid) that holds the finalizer for its own provisioning.
    const live = new FakeClaimApi(new Map([['default/c1', { ...cached, metadata: { ...cached.metadata, uid: 'uid-c1-new' } }]]));
    const sync = new ProvisionerSync({
      provisioner: w.prov,
      claims: new Map([['default/c1', cached]]),
      classes: new Map([['fast', testClass('fast')]]),
      volumes: new Map(),
      pvApi: w.api,
      claimApi: live,
      events: w.events,
      logger: silentLogger(),
    });
    await sync.syncClaim('default/c1');
    expect(live.patches).to.equal(0);
    expect(live.store.get('default/c1')?.metadata.finalizers).to.deep.equal(['other.io/keep', provisioningFinalizer]);
  });

  it('a conflicting write (stale resourceVersion) is read again and retried', async () => {
    const w = setup({ claims: [testClaim('c1')], classes: [testClass('fast')] });
    w.claimApi.failures.mergePatch.push(new CstorError('conflict', 'the object has been modified'));
    await w.sync.syncClaim('default/c1');
    expect(w.claimApi.patches).to.equal(3); // add (conflict), add, remove
    expect(w.claims.get('default/c1')?.metadata.finalizers).to.equal(undefined);
    expect([...w.api.store.keys()]).to.deep.equal(['pvc-uid-c1']);
  });
});

describe('lib/provisioner: syncVolume', () => {
  const table: Array<{ what: string; pv: PersistentVolume; deletes: boolean }> = [
    { what: 'Released, reclaim Delete, provisioned by us', pv: releasedPv('pv1'), deletes: true },
    { what: 'Released but reclaim Retain', pv: releasedPv('pv1', { reclaim: 'Retain' }), deletes: false },
    { what: 'Released but provisioned by another', pv: releasedPv('pv1', { by: 'other.io/x' }), deletes: false },
    { what: 'still Bound', pv: releasedPv('pv1', { phase: 'Bound' }), deletes: false },
  ];
  for (const c of table) {
    it(`${c.what} → ${c.deletes ? 'backend volume deleted, then the PV' : 'left alone'}`, async () => {
      const w = setup({ claims: [], classes: [], pvs: [c.pv] });
      await w.sync.syncVolume('pv1');
      expect(w.prov.deleted).to.deep.equal(c.deletes ? ['pv1'] : []);
      expect(w.api.store.has('pv1')).to.equal(!c.deletes);
    });
  }

  it('a backend delete failure keeps the PV (to retry from), records VolumeFailedDelete and throws', async () => {
    const w = setup({ claims: [], classes: [], pvs: [releasedPv('pv1')] });
    w.prov.deleteFailures.push(new CstorError('unavailable', 'm-apiserver unreachable'));
    const err = await w.sync.syncVolume('pv1').catch((e: unknown) => e);
    expect((err as CstorError).code).to.equal('unavailable');
    expect(w.api.store.has('pv1')).to.equal(true);
    expect(w.events.events[0]).to.include({ kind: 'PersistentVolume', type: 'Warning', reason: 'VolumeFailedDelete', message: 'm-apiserver unreachable' });
    await w.sync.syncVolume('pv1');
    expect(w.api.store.has('pv1')).to.equal(false);
  });

  it('a PV deleted meanwhile (not found) is success', async () => {
    const w = setup({ claims: [], classes: [], pvs: [releasedPv('pv1')] });
    w.api.store.delete('pv1');
    await w.sync.syncVolume('pv1');
    expect(w.prov.deleted).to.deep.equal(['pv1']);
  });
});
