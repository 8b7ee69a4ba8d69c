// Adversarial cases of the promoter: a VolumeSnapshotData that does not point back at exactly the
// annotated VolumeSnapshot (no reference, no uid, an earlier snapshot of the same name, another
// namespace's), a snapshot being deleted, two clones of one snapshot at once.
import { expect } from 'chai';
import { CstorError } from '../lib/errors.ts';
import type { PersistentVolumeClaim } from '../lib/kube/types/core.ts';
import { silentLogger } from '../lib/logger.ts';
import { FakePvApi, RecordingEvents } from '../lib/provisioner/fakes.ts';
import { ProvisionerSync } from '../lib/provisioner/sync.ts';
import { FakeMaya, FakeReads, promoterClaim, promoterClass, promoterClassName, readySnapshot, sourcePv } from './fakes.ts';
import { SnapshotPromoter } from './provisioner.ts';

function world(claims: PersistentVolumeClaim[], tweak?: (r: FakeReads) => void): { sync: ProvisionerSync; maya: FakeMaya; api: FakePvApi; events: RecordingEvents } {
  const reads = new FakeReads();
  reads.pvs.set('pvc-src', sourcePv('pvc-src'));
  const demo = readySnapshot('snapshot-demo');
  reads.addSnapshot(demo.snapshot);
  reads.datas.set(demo.data.metadata.name ?? '', demo.data);
  tweak?.(reads);
  const maya = new FakeMaya();
  const api = new FakePvApi();
  const events = new RecordingEvents();
  const sync = new ProvisionerSync({
    provisioner: new SnapshotPromoter({ maya, reads, identity: 'promoter-1' }),
    claims: new Map(claims.map((c) => [`${c.metadata.namespace}/${c.metadata.name}`, c])),
    classes: new Map([[promoterClassName, promoterClass({ reclaimPolicy: 'Delete' })]]),
    volumes: new Map(),
    pvApi: api,
    events,
    logger: silentLogger(),
  });
  return { sync, maya, api, events };
}

async function refusal(p: Promise<unknown>): Promise<CstorError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof CstorError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('snapshot-provisioner: adversarial', () => {
  const foreign: Array<{ what: string; tweak: (r: FakeReads) => void; message: string }> = [
    {
      what: 'a VolumeSnapshotData with no volumeSnapshotRef (a hand-made one)',
      tweak: (r) => {
        delete r.datas.get('k8s-volume-snapshot-snapshot-demo')!.spec.volumeSnapshotRef;
      },
      message:
        'VolumeSnapshotData k8s-volume-snapshot-snapshot-demo names no VolumeSnapshot (spec.volumeSnapshotRef.name is empty): it is not the data of default/snapshot-demo (uid uid-snapshot-demo)',
    },
    {
      what: 'a VolumeSnapshotData whose reference has no uid (could be an earlier snapshot of that name)',
      tweak: (r) => {
        r.datas.get('k8s-volume-snapshot-snapshot-demo')!.spec.volumeSnapshotRef = { kind: 'VolumeSnapshot', name: 'default/snapshot-demo' };
      },
      message: 'VolumeSnapshotData k8s-volume-snapshot-snapshot-demo belongs to VolumeSnapshot default/snapshot-demo, not to default/snapshot-demo (uid uid-snapshot-demo)',
    },
    {
      what: 'a VolumeSnapshotData of an earlier VolumeSnapshot of the same name (other uid)',
      tweak: (r) => {
        r.snapshots.get('default/snapshot-demo')!.metadata.uid = 'uid-recreated';
      },
      message: 'VolumeSnapshotData k8s-volume-snapshot-snapshot-demo belongs to VolumeSnapshot default/snapshot-demo-uid-snapshot-demo, not to default/snapshot-demo (uid uid-recreated)',
    },
    {
      what: "a VolumeSnapshotData of another namespace's snapshot (spec.snapshotDataName edited to it)",
      tweak: (r) => {
        const other = readySnapshot('secret-snap', { namespace: 'team-b', pv: 'pvc-src' });
        r.datas.set(other.data.metadata.name ?? '', other.data);
        r.snapshots.get('default/snapshot-demo')!.spec.snapshotDataName = other.data.metadata.name;
      },
      message: 'VolumeSnapshotData k8s-volume-snapshot-secret-snap belongs to VolumeSnapshot team-b/secret-snap-uid-secret-snap, not to default/snapshot-demo (uid uid-snapshot-demo)',
    },
  ];
  for (const c of foreign) {
    it(`${c.what}: refused, no clone asked for, no PV`, async () => {
      const { sync, maya, api, events } = world([promoterClaim('c')], c.tweak);
      const err = await refusal(sync.syncClaim('default/c'));
      expect(err.code).to.equal('invalid');
      expect(err.message).to.equal(c.message);
      expect(events.events.at(-1)).to.include({ type: 'Warning', reason: 'ProvisioningFailed', message: `failed to provision volume with StorageClass "${promoterClassName}": ${c.message}` });
      expect(maya.requests).to.deep.equal([]);
      expect(api.store.size).to.equal(0);
    });
  }

  it('a VolumeSnapshot being deleted: refused, no clone asked for', async () => {
    const { sync, maya, api } = world([promoterClaim('c')], (r) => {
      r.snapshots.get('default/snapshot-demo')!.metadata.deletionTimestamp = '2026-11-21T00:00:00Z';
    });
    const err = await refusal(sync.syncClaim('default/c'));
    expect(err.message).to.equal('VolumeSnapshot default/snapshot-demo is being deleted: it cannot be cloned');
    expect(maya.requests).to.deep.equal([]);
    expect(api.store.size).to.equal(0);
  });

  it('two clones of one snapshot at once: two clone volumes of the same backend snapshot, two PVs', async () => {
    const { sync, maya, api } = world([promoterClaim('c1'), promoterClaim('c2', { storage: '8Gi' })]);
    await Promise.all([sync.syncClaim('default/c1'), sync.syncClaim('default/c2')]);
    expect([...maya.volumes.keys()].sort()).to.deep.equal(['pvc-uid-c1', 'pvc-uid-c2']);
    for (const req of maya.volumes.values()) {
      expect(req.cloneSpec).to.deep.equal({ isClone: true, sourceVolume: 'pvc-src', snapshotName: 'pvc-src_snapshot-demo_1763683200000000000' });
    }
    expect(maya.volumes.get('pvc-uid-c2')?.spec.capacity).to.equal('8Gi');
    expect([...api.store.keys()].sort()).to.deep.equal(['pvc-uid-c1', 'pvc-uid-c2']);
  });
});
