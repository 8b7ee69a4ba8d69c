// Table-driven tests of the sync steps: objects in → objects, API calls and Events out, with
// API errors injected.
import { expect } from 'chai';
import { CstorError } from '../lib/errors.ts';
import { flush } from '../lib/kube/fake-clock.ts';
import { snapshotLabels } from '../lib/kube/types/volume-snapshot.ts';
import { FakeApi } from './fake-api.ts';
import { snapshotDataName, snapshotFinalizer, snapshotIdAnnotation, successMessage } from './naming.ts';
import { SnapshotRetryError } from './sync.ts';

const key = 'default/snap1';

async function syncOutcome(api: FakeApi, k = key): Promise<'ok' | 'retry' | string> {
  const syncer = api.syncer();
  try {
    await syncer.syncSnapshot(k);
    return 'ok';
  } catch (err) {
    return err instanceof SnapshotRetryError ? 'retry' : err instanceof CstorError ? err.code : String(err);
  } finally {
    await flush();
  }
}

describe('snapshot-controller sync: creating', () => {
  it('turns a VolumeSnapshot of a bound cStor claim into a backend snapshot, a bound VolumeSnapshotData and Ready', async () => {
    const api = new FakeApi();
    api.addBoundClaim('pvc1', 'pv1');
    const given = api.addSnapshot('snap1', 'pvc1');
    expect(await syncOutcome(api)).to.equal('ok');

    const snap = api.snapshots.get(key)!;
    const id = snap.metadata.annotations?.[snapshotIdAnnotation];
    expect(id).to.match(/^pv1_snap1_\d{19}$/);
    expect(snap.metadata.finalizers).to.deep.equal([snapshotFinalizer]);
    expect(snap.metadata.labels).to.deep.equal({ [snapshotLabels.pvName]: 'pv1', [snapshotLabels.timestamp]: id!.split('_')[2] });
    const dataName = snapshotDataName(given.metadata.uid!);
    expect(dataName).to.match(/^k8s-volume-snapshot-[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(snap.spec.snapshotDataName).to.equal(dataName);
    expect(snap.status?.conditions).to.have.length(1);
    expect(snap.status?.conditions?.[0]).to.include({ type: 'Ready', status: 'True', message: successMessage });
    expect(snap.status?.creationTimestamp).to.be.a('string');

    expect([...api.datas.keys()]).to.deep.equal([dataName]);
    const data = api.datas.get(dataName)!;
    expect(data.spec).to.deep.equal({
      openebsVolume: { snapshotId: id, capacity: '5G' },
      volumeSnapshotRef: { kind: 'VolumeSnapshot', name: `default/snap1-${given.metadata.uid}` },
      persistentVolumeRef: { kind: 'PersistentVolume', name: 'pv1' },
    });
    expect(data.status?.conditions?.[0]).to.include({ type: 'Ready', status: 'True', message: successMessage });

    expect([...api.backend.values()]).to.deep.equal([{ snapshotId: id, volumeName: 'pv1', namespace: 'default' }]);
    expect(api.events.map((e) => `${e.type} ${e.reason}`)).to.deep.equal(['Normal SnapshotCreated']);
    // the id is written (with the finalizer) before m-apiserver is called
    const order = api.calls.map((c) => c.split(' ')[0]);
    expect(order.indexOf('snapshots.mergePatch')).to.be.lessThan(order.indexOf('maya.createSnapshot'));
    expect(order.indexOf('maya.createSnapshot')).to.be.lessThan(order.indexOf('datas.create'));

    // a second sync of a Ready snapshot changes nothing and calls nothing
    const before = api.calls.length;
    expect(await syncOutcome(api)).to.equal('ok');
    expect(api.calls.slice(before)).to.deep.equal([]);
  });

  const invalid: {
    name: string;
    setup: (api: FakeApi) => void;
    outcome: 'ok' | 'retry';
    reason: string;
    message: RegExp;
  }[] = [
    { name: 'no claim name', setup: (a) => a.addSnapshot('snap1', ''), outcome: 'ok', reason: 'ClaimNameMissing', message: /spec\.persistentVolumeClaimName is empty/ },
    {
      name: 'a claim in another namespace',
      setup: (a) => {
        a.addBoundClaim('pvc1', 'pv1', { namespace: 'other' });
        a.addSnapshot('snap1', 'other/pvc1');
      },
      outcome: 'ok',
      reason: 'CrossNamespaceReference',
      message: /namespace "other".*own namespace "default"/,
    },
    { name: 'a missing claim', setup: (a) => a.addSnapshot('snap1', 'nope'), outcome: 'retry', reason: 'ClaimNotFound', message: /PersistentVolumeClaim "default\/nope" not found/ },
    {
      name: 'an unbound claim',
      setup: (a) => {
        a.addBoundClaim('pvc1', 'pv1', { bound: false });
        a.addSnapshot('snap1', 'pvc1');
      },
      outcome: 'retry',
      reason: 'ClaimNotBound',
      message: /"default\/pvc1" is not bound to a volume yet \(phase Pending\)/,
    },
    {
      name: 'a PV that is not a cStor iSCSI volume',
      setup: (a) => {
        a.addBoundClaim('pvc1', 'pv1', { iscsi: false });
        a.addSnapshot('snap1', 'pvc1');
      },
      outcome: 'ok',
      reason: 'UnsupportedVolume',
      message: /PersistentVolume "pv1" of claim "default\/pvc1" is not a cStor iSCSI volume/,
    },
    {
      name: 'a volume that is not Healthy (m-apiserver 409)',
      setup: (a) => {
        a.addBoundClaim('pvc1', 'pv1');
        a.addSnapshot('snap1', 'pvc1');
        a.unhealthy.add('pv1');
      },
      outcome: 'retry',
      reason: 'VolumeNotHealthy',
      message: /cannot snapshot volume "pv1": it is not Healthy: volume pv1 is Degraded/,
    },
    {
      name: 'm-apiserver refusing the request (400)',
      setup: (a) => {
        a.addBoundClaim('pvc1', 'pv1');
        a.addSnapshot('snap1', 'pvc1');
        a.failNext('maya.createSnapshot', new CstorError('invalid', 'bad snapshot name'), 2);
      },
      outcome: 'ok',
      reason: 'SnapshotCreateFailed',
      message: /cannot create snapshot pv1_snap1_\d+ of volume "pv1": bad snapshot name/,
    },
  ];

  for (const c of invalid) {
    it(`records an Error condition and one Warning Event for ${c.name}${c.outcome === 'retry' ? ', and retries' : ''}`, async () => {
      const api = new FakeApi();
      c.setup(api);
      expect(await syncOutcome(api)).to.equal(c.outcome);
      const snap = api.snapshots.get(key)!;
      expect(snap.status?.conditions).to.have.length(1);
      const cond = snap.status!.conditions![0]!;
      expect(cond).to.include({ type: 'Error', status: 'True', reason: c.reason });
      expect(cond.message).to.match(c.message);
      expect(api.events).to.deep.equal([{ object: 'VolumeSnapshot/default/snap1', type: 'Warning', reason: c.reason, message: cond.message }]);
      expect(api.datas.size).to.equal(0);
      expect(api.backend.size).to.equal(0);

      // retrying the same problem: no second Event, no second status write
      const statusWrites = api.calls.filter((x) => x.startsWith('snapshots.patchStatus')).length;
      expect(await syncOutcome(api)).to.equal(c.outcome);
      expect(api.events).to.have.length(1);
      expect(api.calls.filter((x) => x.startsWith('snapshots.patchStatus')).length).to.equal(statusWrites);
    });
  }

  it('heals: an unbound claim that gets bound becomes Ready, with the Error replaced', async () => {
    const api = new FakeApi();
    api.addBoundClaim('pvc1', 'pv1', { bound: false });
    api.addSnapshot('snap1', 'pvc1');
    expect(await syncOutcome(api)).to.equal('retry');
    api.addBoundClaim('pvc1', 'pv1');
    expect(await syncOutcome(api)).to.equal('ok');
    expect(api.snapshots.get(key)!.status?.conditions?.map((c) => c.type)).to.deep.equal(['Ready']);
    expect(api.backend.size).to.equal(1);
  });

  const partialFailures: { name: string; op: string; err: CstorError }[] = [
    { name: 'm-apiserver unreachable', op: 'maya.createSnapshot', err: new CstorError('unavailable', 'connect ECONNREFUSED') },
    { name: 'the VolumeSnapshotData create failing', op: 'datas.create', err: new CstorError('unavailable', 'API server unreachable') },
    { name: 'the VolumeSnapshotData status write failing', op: 'datas.patchStatus', err: new CstorError('unavailable', 'API server unreachable') },
    { name: 'the bind failing', op: 'snapshots.mergePatch', err: new CstorError('unavailable', 'API server unreachable') },
  ];
  for (const c of partialFailures) {
    it(`retries after ${c.name} without a second backend snapshot or VolumeSnapshotData`, async () => {
      const api = new FakeApi();
      api.addBoundClaim('pvc1', 'pv1');
      api.addSnapshot('snap1', 'pvc1');
      if (c.op === 'snapshots.mergePatch') {
        // let the first merge patch (finalizer + id) through, fail the second (the bind)
        const syncer = api.syncer();
        const original = api.snapshotClient.mergePatch;
        let n = 0;
        api.snapshotClient.mergePatch = async (ref, patch) => {
          if (++n === 2) throw c.err;
          return original(ref, patch);
        };
        let failed = false;
        try {
          await syncer.syncSnapshot(key);
        } catch {
          failed = true;
        }
        expect(failed).to.equal(true);
        api.snapshotClient.mergePatch = original;
      } else {
        api.failNext(c.op, c.err);
        expect(await syncOutcome(api)).to.not.equal('ok');
      }
      expect(await syncOutcome(api)).to.equal('ok');
      const snap = api.snapshots.get(key)!;
      expect(snap.status?.conditions?.[0]?.type).to.equal('Ready');
      expect(api.backend.size).to.equal(1);
      expect(api.datas.size).to.equal(1);
      const creates = api.calls.filter((x) => x.startsWith('maya.createSnapshot'));
      expect(new Set(creates).size, 'every create used the same id').to.equal(1);
      expect(creates[0]).to.equal(`maya.createSnapshot ${snap.metadata.annotations?.[snapshotIdAnnotation]}`);
    });
  }

  it('never computes a second id from a stale cache: the id patch is conditional (409)', async () => {
    const api = new FakeApi();
    api.addBoundClaim('pvc1', 'pv1');
    api.addSnapshot('snap1', 'pvc1');
    api.freezeSnapshotCache(); // the informer has not seen any of our writes
    api.failNext('datas.create', new CstorError('unavailable', 'API server unreachable'));
    expect(await syncOutcome(api)).to.equal('unavailable');
    const id = api.snapshots.get(key)!.metadata.annotations?.[snapshotIdAnnotation];
    expect(await syncOutcome(api)).to.equal('conflict');
    expect(api.snapshots.get(key)!.metadata.annotations?.[snapshotIdAnnotation]).to.equal(id);
    api.thawSnapshotCache();
    expect(await syncOutcome(api)).to.equal('ok');
    expect([...api.backend.keys()]).to.deep.equal([id]);
  });

  it('refuses a VolumeSnapshotData name it did not make', async () => {
    const api = new FakeApi();
    api.addBoundClaim('pvc1', 'pv1');
    const snap = api.addSnapshot('snap1', 'pvc1');
    snap.spec.snapshotDataName = 'someone-elses';
    expect(await syncOutcome(api)).to.equal('ok');
    expect(api.snapshots.get(key)!.status?.conditions?.[0]).to.include({ type: 'Error', reason: 'SnapshotDataMismatch' });
    expect(api.backend.size).to.equal(0);
  });
});

describe('snapshot-controller sync: deleting', () => {
  async function readySnapshot(): Promise<FakeApi> {
    const api = new FakeApi();
    api.addBoundClaim('pvc1', 'pv1');
    api.addSnapshot('snap1', 'pvc1');
    expect(await syncOutcome(api)).to.equal('ok');
    return api;
  }

  it('deletes the backend snapshot and the VolumeSnapshotData, then lets the VolumeSnapshot go', async () => {
    const api = await readySnapshot();
    api.deleteSnapshot(key);
    expect(await syncOutcome(api)).to.equal('ok');
    expect(api.snapshots.has(key)).to.equal(false);
    expect(api.datas.size).to.equal(0);
    expect(api.backend.size).to.equal(0);
    // and again (the key is queued once more): nothing to do
    expect(await syncOutcome(api)).to.equal('ok');
  });

  it('keeps the finalizer and reports an Error when the backend delete fails, then finishes on retry', async () => {
    const api = await readySnapshot();
    api.deleteSnapshot(key);
    api.failNext('maya.deleteSnapshot', new CstorError('unavailable', 'm-apiserver 503: target down'));
    expect(await syncOutcome(api)).to.equal('retry');
    const snap = api.snapshots.get(key)!;
    expect(snap.metadata.finalizers).to.deep.equal([snapshotFinalizer]);
    expect(snap.status?.conditions?.[0]).to.include({ type: 'Error', reason: 'SnapshotDeleteFailed' });
    expect(api.events.at(-1)).to.include({ type: 'Warning', reason: 'SnapshotDeleteFailed' });
    expect(api.datas.size).to.equal(1);
    expect(await syncOutcome(api)).to.equal('ok');
    expect(api.snapshots.has(key)).to.equal(false);
    expect(api.datas.size + api.backend.size).to.equal(0);
  });

  it('cleans up a snapshot deleted before Ready (backend snapshot taken, no VolumeSnapshotData yet)', async () => {
    const api = new FakeApi();
    api.addBoundClaim('pvc1', 'pv1');
    api.addSnapshot('snap1', 'pvc1');
    api.failNext('datas.create', new CstorError('unavailable', 'API server unreachable'));
    expect(await syncOutcome(api)).to.equal('unavailable');
    expect(api.backend.size).to.equal(1);
    api.deleteSnapshot(key);
    expect(await syncOutcome(api)).to.equal('ok');
    expect(api.snapshots.has(key)).to.equal(false);
    expect(api.backend.size + api.datas.size).to.equal(0);
  });

  it('lets a snapshot without our finalizer go untouched', async () => {
    const api = new FakeApi();
    api.addSnapshot('snap1', '', 'default', { finalizers: ['someone/else'] });
    api.deleteSnapshot(key);
    expect(await syncOutcome(api)).to.equal('ok');
    expect(api.calls).to.deep.equal([]);
  });

  it('deletes an orphaned VolumeSnapshotData and its backend snapshot, but not one whose snapshot lives', async () => {
    const api = await readySnapshot();
    const dataName = [...api.datas.keys()][0]!;
    // the VolumeSnapshot is live in the API but not (yet) in the cache: not an orphan
    const live = api.snapshots.get(key)!;
    api.snapshots.delete(key);
    api.freezeSnapshotCache();
    api.snapshots.set(key, live);
    await api.syncer().syncData(dataName);
    expect(api.datas.size).to.equal(1);
    // gone for real (its finalizer was removed by hand)
    api.snapshots.delete(key);
    api.thawSnapshotCache();
    await api.syncer().syncData(dataName);
    expect(api.datas.size).to.equal(0);
    expect(api.backend.size).to.equal(0);
    expect(api.events.at(-1)).to.include({ type: 'Normal', reason: 'OrphanDeleted' });
  });

  it('treats a VolumeSnapshotData whose snapshot was recreated under the same name (new uid) as an orphan', async () => {
    const api = await readySnapshot();
    const oldId = [...api.backend.keys()][0]!;
    api.snapshots.delete(key);
    api.addSnapshot('snap1', 'pvc1');
    expect(await syncOutcome(api)).to.equal('ok');
    expect(api.datas.size).to.equal(2);
    for (const name of [...api.datas.keys()]) await api.syncer().syncData(name);
    expect(api.datas.size).to.equal(1);
    expect(api.backend.has(oldId)).to.equal(false);
    expect(api.backend.size).to.equal(1);
  });
});

describe('snapshot-controller sync: verifying Ready snapshots', () => {
  it('recreates a deleted VolumeSnapshotData when the backend snapshot is still there', async () => {
    const api = new FakeApi();
    api.addBoundClaim('pvc1', 'pv1');
    api.addSnapshot('snap1', 'pvc1');
    expect(await syncOutcome(api)).to.equal('ok');
    const [name, data] = [...api.datas.entries()][0]!;
    api.datas.clear();
    expect(await syncOutcome(api)).to.equal('ok');
    expect(api.datas.get(name)?.spec).to.deep.equal(data.spec);
    expect(api.backend.size).to.equal(1);
    expect(api.events.at(-1)).to.include({ reason: 'SnapshotDataRecreated' });
  });

  it('reports an Error when both the VolumeSnapshotData and the backend snapshot are gone', async () => {
    const api = new FakeApi();
    api.addBoundClaim('pvc1', 'pv1');
    api.addSnapshot('snap1', 'pvc1');
    expect(await syncOutcome(api)).to.equal('ok');
    api.datas.clear();
    api.backend.clear();
    expect(await syncOutcome(api)).to.equal('ok');
    expect(api.snapshots.get(key)!.status?.conditions?.[0]).to.include({ type: 'Error', reason: 'BackendSnapshotMissing' });
    expect(api.events.at(-1)).to.include({ type: 'Warning', reason: 'BackendSnapshotMissing' });
  });

  it('does nothing for a key whose VolumeSnapshot is gone', async () => {
    const api = new FakeApi();
    expect(await syncOutcome(api, 'default/none')).to.equal('ok');
    expect(api.calls).to.deep.equal([]);
  });
});
