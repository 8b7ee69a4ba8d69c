// The snapshot-promoter as a real process (`cstor snapshot-provisioner`) against a real kube-lite
// and a fake m-apiserver (fake-mapi.ts): the objects the snapshot-controller would leave (a bound
// source PV/PVC, a Ready VolumeSnapshot bound to its VolumeSnapshotData) are written directly.
// A promoter PVC → one clone request with the right cloneSpec → a Bound PV with the fields of
// DESIGN.md §3; deleting it → the clone volume deleted, the PV gone; bad input → a Warning Event
// naming the problem, claim Pending; kill -9 mid-provision and a restart → one clone, one PV.
import { expect } from 'chai';
import { hasErrorCode } from '../../lib/errors.ts';
import { resources } from '../../lib/kube/resources.ts';
import type { CoreEvent, PersistentVolume, PersistentVolumeClaim } from '../../lib/kube/types/core.ts';
import type { CustomResourceDefinition } from '../../lib/kube/types/crd.ts';
import type { StorageClass } from '../../lib/kube/types/storage.ts';
import { silentLogger } from '../../lib/logger.ts';
import { ensureSnapshotCrds } from '../../snapshot-controller/crds.ts';
import { startDaemon, stopAll, type Daemon } from '../support/daemon.ts';
import { waitFor } from '../lib-kube/kube-lite-harness.ts';
import { Cluster, startController } from '../snapshot-controller/support.ts';
import { FakeVolumeMapi } from './fake-mapi.ts';

const promoter = 'volumesnapshot.external-storage.k8s.io/snapshot-promoter';
const promoterClass = 'openebs-snapshot-promoter';
const sourceClass = 'openebs-cstor-default';
const snapshotId = 'pvc-src_snapshot-demo_1763683200000000000';

describe('snapshot-provisioner process (kube-lite + fake m-apiserver)', function () {
  this.timeout(120_000);
  const cluster = new Cluster();
  const mapi = new FakeVolumeMapi();
  let proc: Daemon;

  const classes = (): ReturnType<Cluster['client']> => cluster.client<StorageClass>(resources.storageClasses);
  const startPromoter = (): Promise<Daemon> =>
    startDaemon(['snapshot-provisioner', '--kubeconfig', cluster.kubeconfig, '--mapi-addr', mapi.url, '--leader-elect', 'false', '--metrics', '127.0.0.1:0', '--identity', 'promoter-test'], {
      listeners: ['metrics'],
    });
  const promoterClaim = (name: string, snapshot: string, storage = '5G', ns = 'default'): PersistentVolumeClaim => ({
    metadata: { name, namespace: ns, annotations: { 'snapshot.alpha.kubernetes.io/snapshot': snapshot } },
    spec: { storageClassName: promoterClass, accessModes: ['ReadWriteOnce'], resources: { requests: { storage } } },
  });
  const claimOf = (name: string, ns = 'default'): Promise<PersistentVolumeClaim> => cluster.claims.get({ namespace: ns, name });
  const boundPv = async (name: string): Promise<PersistentVolume> => {
    let last: PersistentVolumeClaim | undefined;
    await waitFor(
      async () => {
        last = await claimOf(name);
        return last.status?.phase === 'Bound' && !!last.spec.volumeName;
      },
      `claim ${name} Bound`,
      30_000,
      () => JSON.stringify(last?.status ?? null),
    );
    return cluster.volumes.get({ name: last?.spec.volumeName ?? '' });
  };
  const failedEvent = async (name: string, pattern: RegExp, ns = 'default'): Promise<CoreEvent> => {
    let events: CoreEvent[] = [];
    await waitFor(
      async () => {
        events = await cluster.eventsAbout(ns, name);
        return events.some((e) => e.reason === 'ProvisioningFailed' && pattern.test(e.message ?? ''));
      },
      `a ProvisioningFailed Event on ${ns}/${name} matching ${String(pattern)}`,
      30_000,
      () => JSON.stringify(events.map((e) => [e.reason, e.message])),
    );
    return events.find((e) => e.reason === 'ProvisioningFailed' && pattern.test(e.message ?? '')) as CoreEvent;
  };
  const pvsOfClaim = async (name: string): Promise<PersistentVolume[]> => (await cluster.volumes.list()).items.filter((p) => p.spec.claimRef?.name === name);

  /** A Ready VolumeSnapshot bound to its VolumeSnapshotData, as the snapshot-controller leaves them. */
  const readySnapshot = async (ns: string, name: string, o: { ready?: boolean } = {}): Promise<void> => {
    const snap = await cluster.snapshots.create({ metadata: { name, namespace: ns, labels: { 'SnapshotMetadata-PVName': 'pvc-src' } }, spec: { persistentVolumeClaimName: 'openebs-pvc' } });
    if (o.ready === false) {
      await cluster.snapshots.patchStatus({ namespace: ns, name }, { conditions: [{ type: 'Pending', status: 'True', reason: 'SnapshotCreating', message: 'creating the backend snapshot' }] });
      return;
    }
    const dataName = `k8s-volume-snapshot-${name}`;
    await cluster.datas.create({
      metadata: { name: dataName },
      spec: {
        openebsVolume: { snapshotId, capacity: '5G' },
        volumeSnapshotRef: { kind: 'VolumeSnapshot', name: `${ns}/${name}-${snap.metadata.uid ?? ''}` },
        persistentVolumeRef: { kind: 'PersistentVolume', name: 'pvc-src' },
      },
    });
    await cluster.snapshots.mergePatch({ namespace: ns, name }, { spec: { snapshotDataName: dataName } });
    await cluster.snapshots.patchStatus(
      { namespace: ns, name },
      { creationTimestamp: new Date().toISOString(), conditions: [{ type: 'Ready', status: 'True', reason: 'SnapshotCreated', message: 'Snapshot created successfully', lastTransitionTime: new Date().toISOString() }] },
    );
  };

  before(async () => {
    await mapi.start();
    mapi.addSource('pvc-src', '5G', [snapshotId]);
    await cluster.start();
    await ensureSnapshotCrds({ client: cluster.client<CustomResourceDefinition>(resources.customResourceDefinitions), logger: silentLogger() });
    await classes().create({ metadata: { name: sourceClass }, provisioner: 'openebs.io/provisioner-iscsi', reclaimPolicy: 'Delete' } as StorageClass);
    await classes().create({ metadata: { name: promoterClass }, provisioner: promoter, reclaimPolicy: 'Delete', mountOptions: ['noatime'] } as StorageClass);
    await cluster.volumes.create({
      metadata: { name: 'pvc-src', labels: { 'openebs.io/cas-type': 'cstor', 'openebs.io/storageclass': sourceClass } },
      spec: {
        capacity: { storage: '5G' },
        accessModes: ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName: sourceClass,
        claimRef: { kind: 'PersistentVolumeClaim', namespace: 'default', name: 'openebs-pvc' },
        iscsi: { targetPortal: '127.0.0.1:3260', iqn: 'iqn.2016-09.com.openebs.cstor:pvc-src', lun: 0, fsType: 'ext4', readOnly: false },
      },
    });
    await cluster.claims.create({
      metadata: { name: 'openebs-pvc', namespace: 'default' },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '5G' } }, storageClassName: sourceClass, volumeName: 'pvc-src' },
    });
    await waitFor(async () => (await claimOf('openebs-pvc')).status?.phase === 'Bound', 'the source claim Bound');
    await readySnapshot('default', 'snapshot-demo');
    await cluster.namespaces.create({ metadata: { name: 'other' } }).catch((err: unknown) => {
      if (!hasErrorCode(err, 'already_exists')) throw err;
    });
    await readySnapshot('other', 'snapshot-other');
    proc = await startPromoter();
  });
  after(async () => {
    await stopAll();
    await mapi.stop();
    await cluster.cleanup();
  });

  it('a promoter PVC → exactly one clone request with the right cloneSpec → a Bound PV with the fields of DESIGN.md §3', async () => {
    await cluster.claims.create(promoterClaim('demo-snap-vol-claim', 'snapshot-demo'));
    const pv = await boundPv('demo-snap-vol-claim');
    const uid = (await claimOf('demo-snap-vol-claim')).metadata.uid ?? '';
    const pvName = `pvc-${uid}`;
    expect(pv.metadata.name).to.equal(pvName);
    expect(pv.metadata.annotations).to.include({ 'pv.kubernetes.io/provisioned-by': promoter, snapshotProvisionerIdentity: 'promoter-test' });
    expect(pv.metadata.labels).to.deep.equal({ 'openebs.io/cas-type': 'cstor', 'openebs.io/storageclass': sourceClass });
    expect(pv.spec.iscsi).to.deep.equal({ targetPortal: '127.0.0.1:3260', iqn: `iqn.2016-09.com.openebs.cstor:${pvName}`, lun: 0, fsType: 'ext4', readOnly: false });
    expect(pv.spec.capacity).to.deep.equal({ storage: '5G' });
    expect(pv.spec.persistentVolumeReclaimPolicy).to.equal('Delete');
    expect(pv.spec.storageClassName).to.equal(promoterClass);
    expect(pv.spec.mountOptions).to.deep.equal(['noatime']);
    expect(pv.spec.claimRef).to.include({ namespace: 'default', name: 'demo-snap-vol-claim', uid });

    const clones = mapi.createBodies.filter((b) => b.metadata?.name === pvName);
    expect(clones).to.deep.equal([
      {
        metadata: { name: pvName, namespace: 'default', labels: { 'openebs.io/storageclass': sourceClass, 'openebs.io/namespace': 'default', 'openebs.io/persistentvolumeclaim': 'demo-snap-vol-claim' } },
        spec: { capacity: '5G' },
        cloneSpec: { isClone: true, sourceVolume: 'pvc-src', snapshotName: snapshotId },
      },
    ]);
    expect(mapi.volumes.get(pvName)?.cloneOf).to.deep.equal({ sourceVolume: 'pvc-src', snapshotName: snapshotId });
    await waitFor(async () => (await cluster.eventsAbout('default', 'demo-snap-vol-claim')).some((e) => e.reason === 'ProvisioningSucceeded'), 'the ProvisioningSucceeded Event');
  });

  it('deleting the clone PVC (reclaim Delete) → the clone volume deleted through m-apiserver, then the PV', async () => {
    const uid = (await claimOf('demo-snap-vol-claim')).metadata.uid ?? '';
    const pvName = `pvc-${uid}`;
    await cluster.claims.delete({ namespace: 'default', name: 'demo-snap-vol-claim' });
    await waitFor(async () => !(await cluster.volumes.list()).items.some((p) => p.metadata.name === pvName), 'the clone PV deleted', 30_000);
    expect(mapi.deletes).to.include(pvName);
    expect(mapi.volumes.has(pvName)).to.equal(false);
    expect(mapi.volumes.has('pvc-src'), 'the source volume is untouched').to.equal(true);
  });

  it('bad input: each gives a Warning ProvisioningFailed Event naming the problem; the claim stays Pending; no clone asked for', async () => {
    await readySnapshot('default', 'snapshot-pending', { ready: false });
    const cases: Array<{ claim: PersistentVolumeClaim; pattern: RegExp }> = [
      { claim: promoterClaim('bad-missing', 'snap-x'), pattern: /VolumeSnapshot default\/snap-x not found$/ },
      { claim: promoterClaim('bad-misspelt', 'snapshot-dmeo'), pattern: /VolumeSnapshot default\/snapshot-dmeo not found \(did you mean "snapshot-demo"\?\)/ },
      { claim: promoterClaim('bad-pending', 'snapshot-pending'), pattern: /VolumeSnapshot default\/snapshot-pending is not Ready: Pending \(SnapshotCreating/ },
      { claim: promoterClaim('bad-cross', 'other/snapshot-other'), pattern: /names a VolumeSnapshot in namespace other: cross-namespace clones are not allowed/ },
      { claim: promoterClaim('bad-small', 'snapshot-demo', '1Gi'), pattern: /requested 1Gi is smaller than snapshot snapshot-demo \(5G\)/ },
    ];
    const before = mapi.createBodies.length;
    for (const c of cases) await cluster.claims.create(c.claim);
    for (const c of cases) {
      const name = c.claim.metadata.name ?? '';
      const ev = await failedEvent(name, c.pattern);
      expect(ev.type).to.equal('Warning');
      expect(ev.message).to.match(new RegExp(`^failed to provision volume with StorageClass "${promoterClass}": `));
      expect(ev.involvedObject).to.include({ kind: 'PersistentVolumeClaim', namespace: 'default', name });
    }
    for (const c of cases) {
      const name = c.claim.metadata.name ?? '';
      expect((await claimOf(name)).status?.phase ?? 'Pending', name).to.equal('Pending');
      expect(await pvsOfClaim(name), name).to.deep.equal([]);
    }
    expect(mapi.createBodies.length, 'no clone was asked for').to.equal(before);
    for (const c of cases) await cluster.claims.delete({ namespace: 'default', name: c.claim.metadata.name ?? '' });
  });

  it('a claim waiting on a snapshot that is not Ready yet binds once the snapshot turns Ready (retried with backoff)', async () => {
    await readySnapshot('default', 'snapshot-late', { ready: false });
    await cluster.claims.create(promoterClaim('late-claim', 'snapshot-late'));
    await failedEvent('late-claim', /VolumeSnapshot default\/snapshot-late is not Ready/);
    // What the snapshot-controller does when the backend snapshot exists: data, bind, Ready.
    const snap = await cluster.snapshots.get({ namespace: 'default', name: 'snapshot-late' });
    await cluster.datas.create({
      metadata: { name: 'k8s-volume-snapshot-snapshot-late' },
      spec: {
        openebsVolume: { snapshotId, capacity: '5G' },
        volumeSnapshotRef: { kind: 'VolumeSnapshot', name: `default/snapshot-late-${snap.metadata.uid ?? ''}` },
        persistentVolumeRef: { kind: 'PersistentVolume', name: 'pvc-src' },
      },
    });
    await cluster.snapshots.mergePatch({ namespace: 'default', name: 'snapshot-late' }, { spec: { snapshotDataName: 'k8s-volume-snapshot-snapshot-late' } });
    await cluster.snapshots.patchStatus({ namespace: 'default', name: 'snapshot-late' }, { conditions: [{ type: 'Ready', status: 'True', reason: 'SnapshotCreated', message: 'Snapshot created successfully' }] });
    const pv = await boundPv('late-claim');
    expect(pv.metadata.annotations).to.include({ 'pv.kubernetes.io/provisioned-by': promoter });
    expect(mapi.made.filter((n) => n === pv.metadata.name)).to.have.length(1);
  });

  it('kill -9 of the promoter while the clone is in flight, then a restart: exactly one clone volume and one PV', async () => {
    mapi.createDelayMs = 60_000; // the clone is made at once; its answer never comes before the kill
    try {
      await cluster.claims.create(promoterClaim('crash-claim', 'snapshot-demo'));
      const uid = (await claimOf('crash-claim')).metadata.uid ?? '';
      const pvName = `pvc-${uid}`;
      await waitFor(() => mapi.made.includes(pvName), 'the clone request in flight', 30_000);
      await proc.kill();
      expect(await pvsOfClaim('crash-claim')).to.deep.equal([]);
      mapi.createDelayMs = 0;
      proc = await startPromoter();
      const pv = await boundPv('crash-claim');
      expect(pv.metadata.name).to.equal(pvName);
      expect(mapi.made.filter((n) => n === pvName), 'one clone volume made').to.have.length(1);
      expect([...mapi.volumes.keys()].filter((n) => n === pvName)).to.have.length(1);
      expect(await pvsOfClaim('crash-claim')).to.have.length(1);
      expect(mapi.createBodies.filter((b) => b.metadata?.name === pvName).length, 'the restart asked for the same name').to.be.at.least(2);
    } finally {
      mapi.createDelayMs = 0;
    }
  });

  it('12 clone claims with the promoter killed (-9) at 3 random moments: each claim Bound with one PV and one clone, no orphan clone; all deleted after', async () => {
    let seed = Number(process.env.PROMOTER_TEST_SEED ?? Date.now() % 100_000);
    const seedUsed = seed;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    mapi.createDelayMs = 150; // clones in flight for a while, so kills land mid-request
    const names = Array.from({ length: 12 }, (_, i) => `many-${i}`);
    try {
      for (const n of names) await cluster.claims.create(promoterClaim(n, 'snapshot-demo'));
      for (let k = 0; k < 3; k++) {
        await new Promise((r) => setTimeout(r, 50 + Math.floor(random() * 400)));
        await proc.kill();
        proc = await startPromoter();
      }
      const pvs = new Map<string, PersistentVolume>();
      for (const n of names) pvs.set(n, await boundPv(n));
      for (const n of names) {
        const uid = (await claimOf(n)).metadata.uid ?? '';
        const pvName = `pvc-${uid}`;
        expect(pvs.get(n)?.metadata.name, `seed ${seedUsed}: ${n}`).to.equal(pvName);
        expect(await pvsOfClaim(n), `seed ${seedUsed}: PVs of ${n}`).to.have.length(1);
        expect(mapi.made.filter((m) => m === pvName), `seed ${seedUsed}: clones of ${n}`).to.have.length(1);
      }
      const cloneVolumes = [...mapi.volumes.values()].filter((v) => v.labels['openebs.io/persistentvolumeclaim']?.startsWith('many-')).map((v) => v.name);
      expect(cloneVolumes.sort(), `seed ${seedUsed}: no orphan clone volume`).to.deep.equal([...pvs.values()].map((p) => p.metadata.name ?? '').sort());
    } finally {
      mapi.createDelayMs = 0;
    }
    for (const n of names) await cluster.claims.delete({ namespace: 'default', name: n });
    await waitFor(async () => (await cluster.volumes.list()).items.every((p) => !p.spec.claimRef?.name?.startsWith('many-')), 'the clone PVs deleted', 60_000);
    expect([...mapi.volumes.values()].filter((v) => v.labels['openebs.io/persistentvolumeclaim']?.startsWith('many-'))).to.deep.equal([]);
  });

  it('with the real snapshot-controller: a VolumeSnapshot it makes Ready → a promoter PVC → a Bound clone of that backend snapshot', async () => {
    const controller = await startController({ cluster, mapiUrl: mapi.url, extraArgs: ['--leader-elect', 'false'] });
    try {
      await cluster.snapshots.create({ metadata: { name: 'snapshot-real', namespace: 'default' }, spec: { persistentVolumeClaimName: 'openebs-pvc' } });
      const snap = await cluster.waitForCondition('default', 'snapshot-real', 'Ready');
      const data = await cluster.datas.get({ name: snap.spec.snapshotDataName ?? '' });
      const id = data.spec.openebsVolume?.snapshotId ?? '';
      expect(id).to.match(/^pvc-src_snapshot-real_\d+$/);
      expect(mapi.snapshots.get('pvc-src')?.has(id)).to.equal(true);
      await cluster.claims.create(promoterClaim('real-claim', 'snapshot-real'));
      const pv = await boundPv('real-claim');
      expect(mapi.createBodies.filter((b) => b.metadata?.name === pv.metadata.name).map((b) => b.cloneSpec)).to.deep.equal([{ isClone: true, sourceVolume: 'pvc-src', snapshotName: id }]);
      expect(pv.metadata.labels).to.deep.equal({ 'openebs.io/cas-type': 'cstor', 'openebs.io/storageclass': sourceClass });
    } finally {
      await controller.stop();
    }
  });
});
