// Adversarial cases of the snapshot sync: names m-apiserver would refuse (a controller must not
// hold a finalizer it can never release), a Ready snapshot re-pointed at another
// VolumeSnapshotData, an in-flight create racing a delete, reused names and conflicts.
import { expect } from 'chai';
import { CstorError } from '../lib/errors.ts';
import { flush } from '../lib/kube/fake-clock.ts';
import { snapshotLabels } from '../lib/kube/types/volume-snapshot.ts';
import { checkSnapshotName, checkVolumeName } from '../maya-apiserver/flows/cas-flows.ts';
import { FakeApi } from './fake-api.ts';
import { snapshotDataName, snapshotFinalizer, snapshotIdAnnotation } from './naming.ts';
import { SnapshotRetryError } from './sync.ts';

async function syncOutcome(api: FakeApi, key: string): Promise<'ok' | 'retry' | string> {
  try {
    await api.syncer().syncSnapshot(key);
    return 'ok';
  } catch (err) {
    return err instanceof SnapshotRetryError ? 'retry' : err instanceof CstorError ? err.code : String(err);
  } finally {
    await flush();
  }
}

/** Makes the fake m-apiserver check names the way the real one does (400 invalid). */
function strictMaya(api: FakeApi): void {
  const { createSnapshot, deleteSnapshot } = api.maya;
  api.maya.createSnapshot = async (ref) => {
    checkSnapshotName(ref.snapshotId, 'metadata.name (the snapshot name)');
    checkVolumeName(ref.volumeName, 'spec.volumeName');
    return createSnapshot(ref);
  };
  api.maya.deleteSnapshot = async (ref) => {
    checkSnapshotName(ref.snapshotId, 'the snapshot name');
    checkVolumeName(ref.volumeName, 'the volume (query parameter volume)');
    return deleteSnapshot(ref);
  };
}

describe('snapshot-controller sync: adversarial', () => {
  it('refuses a VolumeSnapshot name that makes an id longer than m-apiserver accepts, before any finalizer; deleting it then just works', async () => {
    const api = new FakeApi();
    strictMaya(api);
    api.addBoundClaim('pvc1', 'pv1');
    const longName = `s${'x'.repeat(230)}`;
    api.addSnapshot(longName, 'pvc1');
    const key = `default/${longName}`;
    expect(await syncOutcome(api, key)).to.equal('ok'); // not retried: only a new name helps
    const snap = api.snapshots.get(key)!;
    expect(snap.metadata.finalizers ?? []).to.deep.equal([]);
    expect(snap.metadata.annotations?.[snapshotIdAnnotation]).to.equal(undefined);
    expect(snap.status?.conditions?.[0]).to.include({ type: 'Error', reason: 'InvalidSnapshotName' });
    expect(snap.status?.conditions?.[0]?.message).to.match(/would be 255 characters, more than the 253 the backend accepts: use a VolumeSnapshot name of at most 229 characters/);
    expect(api.events.map((e) => `${e.type} ${e.reason}`)).to.deep.equal(['Warning InvalidSnapshotName']);
    expect(api.calls.filter((c) => c.startsWith('maya.'))).to.deep.equal([]);
    api.deleteSnapshot(key);
    expect(api.snapshots.has(key)).to.equal(false);
  });

  it('a name just inside the limit is taken', async () => {
    const api = new FakeApi();
    strictMaya(api);
    api.addBoundClaim('pvc1', 'pv1');
    const name = `s${'x'.repeat(253 - 3 - 2 - 19 - 1)}`;
    api.addSnapshot(name, 'pvc1');
    expect(await syncOutcome(api, `default/${name}`)).to.equal('ok');
    const id = api.snapshots.get(`default/${name}`)!.metadata.annotations?.[snapshotIdAnnotation];
    expect(id).to.have.length(253);
    expect([...api.backend.keys()]).to.deep.equal([id]);
  });

  it('refuses a PV whose name m-apiserver cannot take as a volume name (dots), naming it', async () => {
    const api = new FakeApi();
    strictMaya(api);
    api.addBoundClaim('pvc1', 'static.pv.one');
    api.addSnapshot('snap1', 'pvc1');
    expect(await syncOutcome(api, 'default/snap1')).to.equal('ok');
    const snap = api.snapshots.get('default/snap1')!;
    expect(snap.metadata.finalizers ?? []).to.deep.equal([]);
    expect(snap.status?.conditions?.[0]).to.include({ type: 'Error', reason: 'InvalidSnapshotName' });
    expect(snap.status?.conditions?.[0]?.message).to.match(/PersistentVolume name "static\.pv\.one" is not a cStor volume name/);
    expect(api.calls.filter((c) => c.startsWith('maya.'))).to.deep.equal([]);
  });

  it('releases a finalizer whose stored id m-apiserver would refuse (made by an older controller) without asking m-apiserver', async () => {
    const api = new FakeApi();
    strictMaya(api);
    const longName = `s${'x'.repeat(230)}`;
    const key = `default/${longName}`;
    api.addSnapshot(longName, 'pvc1', 'default', {
      finalizers: [snapshotFinalizer],
      annotations: { [snapshotIdAnnotation]: `pv1_${longName}_1767323045000001000` },
      labels: { [snapshotLabels.pvName]: 'pv1', [snapshotLabels.timestamp]: '1767323045000001000' },
    });
    api.deleteSnapshot(key);
    expect(await syncOutcome(api, key)).to.equal('ok');
    expect(api.snapshots.has(key)).to.equal(false);
    expect(api.calls.filter((c) => c.startsWith('maya.'))).to.deep.equal([]);
  });

  it('deletes an orphaned VolumeSnapshotData whose id m-apiserver would refuse, without a retry loop', async () => {
    const api = new FakeApi();
    strictMaya(api);
    const id = `pv1_${'y'.repeat(240)}_1767323045000001000`;
    api.datas.set('k8s-volume-snapshot-orphan', {
      metadata: {
        name: 'k8s-volume-snapshot-orphan',
        annotations: {
          'snapshot.cstor.openebs.io/snapshot-namespace': 'default',
          'snapshot.cstor.openebs.io/snapshot-name': 'gone',
          'snapshot.cstor.openebs.io/snapshot-uid': 'uid-gone',
        },
      },
      spec: { openebsVolume: { snapshotId: id }, persistentVolumeRef: { kind: 'PersistentVolume', name: 'pv1' } },
    });
    await api.syncer().syncData('k8s-volume-snapshot-orphan');
    expect(api.datas.size).to.equal(0);
    expect(api.calls.filter((c) => c.startsWith('maya.'))).to.deep.equal([]);
  });

  it('binds a Ready snapshot whose spec.snapshotDataName was edited to another snapshot\'s data back to its own, with a Warning Event', async () => {
    const api = new FakeApi();
    api.addBoundClaim('pvc1', 'pv1');
    api.addBoundClaim('pvc2', 'pv2');
    api.addSnapshot('snap1', 'pvc1');
    const other = api.addSnapshot('snap2', 'pvc2');
    expect(await syncOutcome(api, 'default/snap1')).to.equal('ok');
    expect(await syncOutcome(api, 'default/snap2')).to.equal('ok');
    const snap1 = api.snapshots.get('default/snap1')!;
    const own = snapshotDataName(snap1.metadata.uid!);
    // the user points snap1 at snap2's data (pv2's backend snapshot)
    snap1.spec = { ...snap1.spec, snapshotDataName: snapshotDataName(other.metadata.uid!) };
    expect(await syncOutcome(api, 'default/snap1')).to.equal('ok');
    expect(api.snapshots.get('default/snap1')!.spec.snapshotDataName).to.equal(own);
    expect(api.events.at(-1)).to.include({ type: 'Warning', reason: 'SnapshotDataMismatch' });
    // both datas and both backend snapshots are untouched
    expect(api.datas.size).to.equal(2);
    expect(api.backend.size).to.equal(2);
    // the user clears it instead: bound back too, nothing new made
    api.snapshots.get('default/snap1')!.spec.snapshotDataName = undefined;
    expect(await syncOutcome(api, 'default/snap1')).to.equal('ok');
    expect(api.snapshots.get('default/snap1')!.spec.snapshotDataName).to.equal(own);
    expect(api.backend.size).to.equal(2);
    expect(api.calls.filter((c) => c.startsWith('maya.createSnapshot'))).to.have.length(2);
  });

  it('a delete that arrives while the backend create is in flight: the create finishes, then the next sync removes both, one backend call each', async () => {
    const api = new FakeApi();
    api.addBoundClaim('pvc1', 'pv1');
    api.addSnapshot('snap1', 'pvc1');
    const key = 'default/snap1';
    const { createSnapshot } = api.maya;
    api.maya.createSnapshot = async (ref) => {
      api.deleteSnapshot(key); // the user deletes it while m-apiserver works
      return createSnapshot(ref);
    };
    await syncOutcome(api, key);
    expect(api.snapshots.get(key)?.metadata.deletionTimestamp).to.be.a('string');
    expect(await syncOutcome(api, key)).to.equal('ok');
    expect(api.snapshots.has(key)).to.equal(false);
    expect(api.backend.size + api.datas.size).to.equal(0);
    expect(api.calls.filter((c) => c.startsWith('maya.')).map((c) => c.split(' ')[0])).to.deep.equal(['maya.createSnapshot', 'maya.deleteSnapshot']);
  });

  it('the same name reused after a delete gets a new id and a new VolumeSnapshotData; the old ones are gone', async () => {
    const api = new FakeApi();
    api.addBoundClaim('pvc1', 'pv1');
    const first = api.addSnapshot('snap1', 'pvc1');
    expect(await syncOutcome(api, 'default/snap1')).to.equal('ok');
    const firstId = api.snapshots.get('default/snap1')!.metadata.annotations?.[snapshotIdAnnotation];
    api.deleteSnapshot('default/snap1');
    expect(await syncOutcome(api, 'default/snap1')).to.equal('ok');
    const second = api.addSnapshot('snap1', 'pvc1');
    expect(await syncOutcome(api, 'default/snap1')).to.equal('ok');
    const secondId = api.snapshots.get('default/snap1')!.metadata.annotations?.[snapshotIdAnnotation];
    expect(secondId).to.not.equal(firstId);
    expect([...api.backend.keys()]).to.deep.equal([secondId]);
    expect([...api.datas.keys()]).to.deep.equal([snapshotDataName(second.metadata.uid!)]);
    expect(snapshotDataName(first.metadata.uid!)).to.not.equal(snapshotDataName(second.metadata.uid!));
  });

  it('a 409 on the Ready status write is retried without a second backend snapshot or Event', async () => {
    const api = new FakeApi();
    api.addBoundClaim('pvc1', 'pv1');
    api.addSnapshot('snap1', 'pvc1');
    api.failNext('snapshots.patchStatus', new CstorError('conflict', 'the object has been modified'), 1);
    // the first patchStatus is Pending: it fails, the sync throws, and the retry goes all the way
    expect(await syncOutcome(api, 'default/snap1')).to.equal('conflict');
    expect(await syncOutcome(api, 'default/snap1')).to.equal('ok');
    expect(api.backend.size).to.equal(1);
    expect(api.datas.size).to.equal(1);
    expect(api.events.map((e) => e.reason)).to.deep.equal(['SnapshotCreated']);
  });
});

describe('snapshot-controller sync: edits of what the controller wrote', () => {
  /** snap1 of default/pvc1 (pv1) waiting on a non-Healthy volume (id stored), and a Ready snapshot of pv2 in namespace "other". */
  async function world(): Promise<{ api: FakeApi; victimId: string }> {
    const api = new FakeApi();
    api.addBoundClaim('pvc2', 'pv2', { namespace: 'other' });
    api.addSnapshot('snap1', 'pvc2', 'other');
    expect(await syncOutcome(api, 'other/snap1')).to.equal('ok');
    const victimId = api.snapshots.get('other/snap1')!.metadata.annotations![snapshotIdAnnotation]!;
    api.addBoundClaim('pvc1', 'pv1');
    api.addSnapshot('snap1', 'pvc1');
    return { api, victimId };
  }

  it("an id and PV label edited (before Ready) to another namespace's volume: refused, no snapshot of that volume", async () => {
    const { api, victimId } = await world();
    api.unhealthy.add('pv1');
    expect(await syncOutcome(api, 'default/snap1')).to.equal('retry');
    const snap = api.snapshots.get('default/snap1')!;
    const nanos = snap.metadata.labels![snapshotLabels.timestamp]!;
    snap.metadata.annotations = { [snapshotIdAnnotation]: `pv2_snap1_${nanos}` };
    snap.metadata.labels = { [snapshotLabels.pvName]: 'pv2', [snapshotLabels.timestamp]: nanos };
    api.unhealthy.delete('pv1');
    expect(await syncOutcome(api, 'default/snap1')).to.equal('ok');
    const after = api.snapshots.get('default/snap1')!;
    expect(after.status?.conditions?.[0]).to.include({ type: 'Error', reason: 'SnapshotMetadataChanged' });
    expect(after.status?.conditions?.[0]?.message).to.match(/"pv2_snap1_\d+" and the label SnapshotMetadata-PVName "pv2" were changed/);
    expect([...api.backend.values()].map((r) => r.volumeName)).to.deep.equal(['pv2']);
    expect([...api.backend.keys()]).to.deep.equal([victimId]);
    // deleting it deletes nothing of pv2's
    api.deleteSnapshot('default/snap1');
    expect(await syncOutcome(api, 'default/snap1')).to.equal('ok');
    expect(api.snapshots.has('default/snap1')).to.equal(false);
    expect([...api.backend.keys()]).to.deep.equal([victimId]);
  });

  it("a Ready snapshot whose id annotation is edited to another namespace's snapshot id: deleting it deletes only its own backend snapshot", async () => {
    const { api, victimId } = await world();
    expect(await syncOutcome(api, 'default/snap1')).to.equal('ok');
    const snap = api.snapshots.get('default/snap1')!;
    const ownId = snap.metadata.annotations![snapshotIdAnnotation]!;
    snap.metadata.annotations = { [snapshotIdAnnotation]: victimId };
    snap.metadata.labels = { ...snap.metadata.labels, [snapshotLabels.pvName]: 'pv2' };
    api.deleteSnapshot('default/snap1');
    expect(await syncOutcome(api, 'default/snap1')).to.equal('ok');
    expect(api.snapshots.has('default/snap1')).to.equal(false);
    expect([...api.backend.keys()]).to.deep.equal([victimId]);
    expect(api.calls.filter((c) => c.startsWith('maya.deleteSnapshot'))).to.deep.equal([`maya.deleteSnapshot ${ownId}`]);
  });

  it('a claim whose spec.volumeName names a PV bound to another claim: refused, no snapshot', async () => {
    const { api } = await world();
    api.claims.get('default/pvc1')!.spec.volumeName = 'pv2';
    expect(await syncOutcome(api, 'default/snap1')).to.equal('retry');
    const snap = api.snapshots.get('default/snap1')!;
    expect(snap.status?.conditions?.[0]).to.include({ type: 'Error', reason: 'VolumeNotBoundToClaim' });
    expect(snap.status?.conditions?.[0]?.message).to.equal('PersistentVolume "pv2" named by claim "default/pvc1" is bound to claim "other/pvc2", not to this one');
    expect(api.backend.size).to.equal(1);
    expect(snap.metadata.finalizers ?? []).to.deep.equal([]);
  });
});

describe('snapshot-controller sync: the source goes away', () => {
  it('a Ready snapshot whose claim and PV are deleted stays Ready, and deleting it later releases it (backend delete of a gone volume succeeds)', async () => {
    const api = new FakeApi();
    api.addBoundClaim('pvc1', 'pv1');
    api.addSnapshot('snap1', 'pvc1');
    expect(await syncOutcome(api, 'default/snap1')).to.equal('ok');
    api.claims.delete('default/pvc1');
    api.volumes.delete('pv1');
    expect(await syncOutcome(api, 'default/snap1')).to.equal('ok');
    expect(api.snapshots.get('default/snap1')!.status?.conditions?.[0]).to.include({ type: 'Ready' });
    api.deleteSnapshot('default/snap1');
    expect(await syncOutcome(api, 'default/snap1')).to.equal('ok');
    expect(api.snapshots.has('default/snap1')).to.equal(false);
    expect(api.backend.size + api.datas.size).to.equal(0);
  });

  it('a snapshot whose claim is deleted after its id was stored is still taken of the stored PV', async () => {
    const api = new FakeApi();
    api.addBoundClaim('pvc1', 'pv1');
    api.addSnapshot('snap1', 'pvc1');
    api.unhealthy.add('pv1');
    expect(await syncOutcome(api, 'default/snap1')).to.equal('retry');
    api.claims.delete('default/pvc1');
    api.unhealthy.delete('pv1');
    expect(await syncOutcome(api, 'default/snap1')).to.equal('ok');
    expect(api.snapshots.get('default/snap1')!.status?.conditions?.[0]).to.include({ type: 'Ready' });
    expect([...api.backend.values()].map((r) => r.volumeName)).to.deep.equal(['pv1']);
  });
});
