// `cstor snapshot-controller` as a real process against a real kube-lite and a fake
// m-apiserver: the happy path, deletion (also while the controller is down), bad input, an
// m-apiserver failure, kill -9 mid-flow, and two replicas with leader election.
import { expect } from 'chai';
import axios from 'axios';
import { isCstorError } from '../../lib/errors.ts';
import { resources } from '../../lib/kube/resources.ts';
import type { KubeObject, ObjectMeta } from '../../lib/kube/types/meta.ts';
import type { CustomResourceDefinition } from '../../lib/kube/types/crd.ts';
import { snapshotLabels } from '../../lib/kube/types/volume-snapshot.ts';
import { stopAll, type Daemon } from '../support/daemon.ts';
import { FakeMapi } from './fake-mapi.ts';
import { Cluster, startController, waitFor, waitLeading } from './support.ts';

const idAnnotation = 'snapshot.cstor.openebs.io/snapshot-id';

describe('snapshot-controller process (kube-lite + fake m-apiserver)', function () {
  this.timeout(120_000);
  const cluster = new Cluster();
  const mapi = new FakeMapi();
  let controller: Daemon | undefined;

  before(async () => {
    await Promise.all([cluster.start(), mapi.start()]);
  });
  after(async () => {
    await stopAll();
    await mapi.stop();
    await cluster.cleanup();
  });

  async function ensureController(): Promise<Daemon> {
    if (controller && controller.proc.exitCode === null && controller.proc.signalCode === null) return controller;
    controller = await startController({ cluster, mapiUrl: mapi.url });
    await waitLeading(controller);
    return controller;
  }

  it('creates the CRDs, then turns a VolumeSnapshot into one backend snapshot and one bound VolumeSnapshotData; deleting it deletes both', async () => {
    const c = await ensureController();
    const crds = cluster.client<CustomResourceDefinition>(resources.customResourceDefinitions);
    expect((await crds.get({ name: 'volumesnapshots.volumesnapshot.external-storage.k8s.io' })).spec.scope).to.equal('Namespaced');
    expect((await crds.get({ name: 'volumesnapshotdatas.volumesnapshot.external-storage.k8s.io' })).spec.scope).to.equal('Cluster');

    const { claim, pv } = await cluster.boundClaim('happy');
    const created = await cluster.createSnapshot('happy', 'snap1', claim);
    const snap = await cluster.waitForCondition('happy', 'snap1', 'Ready');
    const id = snap.metadata.annotations?.[idAnnotation] ?? '';
    expect(id).to.match(new RegExp(`^${pv}_snap1_\\d{19}$`));
    expect(snap.metadata.labels?.[snapshotLabels.pvName]).to.equal(pv);
    expect(snap.metadata.labels?.[snapshotLabels.timestamp]).to.equal(id.split('_').at(-1));
    expect(snap.status?.conditions?.[0]).to.include({ type: 'Ready', status: 'True', message: 'Snapshot created successfully' });
    expect(snap.spec.snapshotDataName).to.match(/^k8s-volume-snapshot-[0-9a-f-]{36}$/);

    const datas = await cluster.datasOf(created.metadata.uid!);
    expect(datas.map((d) => d.metadata.name)).to.deep.equal([snap.spec.snapshotDataName]);
    expect(datas[0]!.spec).to.deep.include({
      openebsVolume: { snapshotId: id, capacity: '5G' },
      volumeSnapshotRef: { kind: 'VolumeSnapshot', name: `happy/snap1-${created.metadata.uid}` },
      persistentVolumeRef: { kind: 'PersistentVolume', name: pv },
    });
    expect(datas[0]!.status?.conditions?.[0]).to.include({ type: 'Ready', status: 'True' });
    expect([...mapi.snapshots.keys()].filter((k) => k.startsWith(`${pv}_`))).to.deep.equal([id]);

    const metricsAddr = c.addresses.metrics!;
    expect((await axios.get(`http://${metricsAddr}/healthz`)).data).to.equal('ok');
    const metrics = String((await axios.get(`http://${metricsAddr}/metrics`)).data);
    expect(metrics).to.match(/snapshot_controller_operation_total_seconds_count\{[^}]*operation_name="CreateSnapshot"[^}]*operation_status="success"/);
    expect(metrics).to.match(/snapshot_controller_leader\{[^}]*\} 1/);

    // the platform guarantee the id write relies on: a patch with a stale resourceVersion is refused
    const stale = await cluster.snapshots
      .mergePatch({ namespace: 'happy', name: 'snap1' }, { metadata: { resourceVersion: created.metadata.resourceVersion, annotations: { [idAnnotation]: 'other' } } })
      .then(
        () => 'accepted',
        (err: unknown) => (isCstorError(err) ? err.code : String(err)),
      );
    expect(stale).to.equal('conflict');

    await cluster.snapshots.delete({ namespace: 'happy', name: 'snap1' });
    await waitFor(async () => (await cluster.snapshotOrUndefined('happy', 'snap1')) === undefined, 'the VolumeSnapshot to go');
    expect(await cluster.datasOf(created.metadata.uid!)).to.deep.equal([]);
    expect(mapi.snapshots.has(id)).to.equal(false);
  });

  it('deleting a VolumeSnapshot while the controller is down: on restart the backend snapshot and the VolumeSnapshotData go', async () => {
    await ensureController();
    const { claim, pv } = await cluster.boundClaim('down');
    const created = await cluster.createSnapshot('down', 'snap1', claim);
    const snap = await cluster.waitForCondition('down', 'snap1', 'Ready');
    const id = snap.metadata.annotations?.[idAnnotation] ?? '';
    await controller!.kill();
    await cluster.snapshots.delete({ namespace: 'down', name: 'snap1' });
    const held = await cluster.snapshotOrUndefined('down', 'snap1');
    expect(held?.metadata.deletionTimestamp, 'held by the finalizer').to.be.a('string');
    expect(mapi.snapshots.has(id)).to.equal(true);
    await ensureController();
    await waitFor(async () => (await cluster.snapshotOrUndefined('down', 'snap1')) === undefined, 'the VolumeSnapshot to go');
    expect(await cluster.datasOf(created.metadata.uid!)).to.deep.equal([]);
    expect([...mapi.snapshots.keys()].filter((k) => k.startsWith(`${pv}_`))).to.deep.equal([]);
  });

  it('bad input: a missing claim, an unbound claim, a non-Healthy volume and a cross-namespace reference each give an Error condition and a Warning Event naming the problem', async () => {
    await ensureController();
    await cluster.namespaces.create({ metadata: { name: 'bad' } });
    await cluster.claims.create({ metadata: { name: 'pending', namespace: 'bad' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1G' } }, storageClassName: 'none' } });
    const { claim: sick, pv: sickPv } = await cluster.boundClaim('bad', { claim: 'sick', pv: 'pv-sick' });
    mapi.unhealthy.set(sickPv, 'Degraded');
    await cluster.createSnapshot('bad', 'no-claim', 'missing');
    await cluster.createSnapshot('bad', 'unbound', 'pending');
    await cluster.createSnapshot('bad', 'sick', sick);
    await cluster.createSnapshot('bad', 'cross', 'happy/data');
    const cases = [
      { name: 'no-claim', reason: 'ClaimNotFound', message: /PersistentVolumeClaim "bad\/missing" not found/ },
      { name: 'unbound', reason: 'ClaimNotBound', message: /"bad\/pending" is not bound to a volume yet/ },
      { name: 'sick', reason: 'VolumeNotHealthy', message: /volume "pv-sick" is Degraded, not Healthy/ },
      { name: 'cross', reason: 'CrossNamespaceReference', message: /namespace "happy".*own namespace "bad"/ },
    ];
    for (const c of cases) {
      const snap = await cluster.waitForCondition('bad', c.name, 'Error', c.reason);
      expect(snap.status?.conditions?.[0]?.message).to.match(c.message);
      await waitFor(async () => (await cluster.eventsAbout('bad', c.name)).some((e) => e.reason === c.reason), `a ${c.reason} Event`);
      const events = (await cluster.eventsAbout('bad', c.name)).filter((e) => e.type === 'Warning');
      expect(events, `${c.name}: one Event, however often it is retried`).to.have.length(1);
      expect(events[0]!.message).to.match(c.message);
    }
    expect([...mapi.snapshots.values()].filter((s) => s.volumeName === sickPv)).to.deep.equal([]);

    // the volume heals: the snapshot becomes Ready on a retry, with one backend snapshot
    mapi.unhealthy.delete(sickPv);
    const healed = await cluster.waitForCondition('bad', 'sick', 'Ready', undefined, 90_000);
    expect([...mapi.snapshots.keys()].filter((k) => k.startsWith(`${sickPv}_`))).to.deep.equal([healed.metadata.annotations?.[idAnnotation]]);
  });

  it('m-apiserver failing once then recovering: exactly one backend snapshot', async () => {
    await ensureController();
    const { claim, pv } = await cluster.boundClaim('flaky');
    mapi.failCreates = 1;
    await cluster.createSnapshot('flaky', 'snap1', claim);
    const snap = await cluster.waitForCondition('flaky', 'snap1', 'Ready');
    const id = snap.metadata.annotations?.[idAnnotation];
    const creates = mapi.creates().filter((n) => n.startsWith(`${pv}_`));
    expect(creates.length).to.be.greaterThanOrEqual(2);
    expect(new Set(creates)).to.deep.equal(new Set([id]));
    expect([...mapi.snapshots.keys()].filter((k) => k.startsWith(`${pv}_`))).to.deep.equal([id]);
    // Events are written after the status; wait for them rather than race the recorder.
    const reasons = async (): Promise<string[]> => (await cluster.eventsAbout('flaky', 'snap1')).map((e) => e.reason ?? '');
    await waitFor(async () => {
      const rs = await reasons();
      return rs.includes('SnapshotCreateFailed') && rs.includes('SnapshotCreated');
    }, 'both Events');
    expect(await reasons()).to.include.members(['SnapshotCreateFailed', 'SnapshotCreated']);
  });

  it('deletes an orphaned VolumeSnapshotData (its VolumeSnapshot is gone) and its backend snapshot', async () => {
    await ensureController();
    mapi.snapshots.set('pv-orphan_lost_1', { name: 'pv-orphan_lost_1', namespace: 'gone', volumeName: 'pv-orphan' });
    await cluster.datas.create({
      metadata: {
        name: 'k8s-volume-snapshot-00000000-0000-5000-8000-000000000001',
        annotations: {
          'snapshot.cstor.openebs.io/snapshot-namespace': 'gone',
          'snapshot.cstor.openebs.io/snapshot-name': 'lost',
          'snapshot.cstor.openebs.io/snapshot-uid': '00000000-0000-4000-8000-00000000dead',
        },
      },
      spec: {
        openebsVolume: { snapshotId: 'pv-orphan_lost_1', capacity: '1G' },
        volumeSnapshotRef: { kind: 'VolumeSnapshot', name: 'gone/lost-00000000-0000-4000-8000-00000000dead' },
        persistentVolumeRef: { kind: 'PersistentVolume', name: 'pv-orphan' },
      },
    });
    await waitFor(async () => (await cluster.datas.list()).items.every((d) => d.metadata.name !== 'k8s-volume-snapshot-00000000-0000-5000-8000-000000000001'), 'the orphan to go');
    expect(mapi.snapshots.has('pv-orphan_lost_1')).to.equal(false);
  });

  it('kill -9 of the controller mid-flow, several times: converges to exactly one VolumeSnapshotData and one backend snapshot each', async () => {
    await ensureController();
    const { claim, pv } = await cluster.boundClaim('crash');
    mapi.createDelayMs = 200;
    const names = ['s0', 's1', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9'];
    try {
      for (const n of names) await cluster.createSnapshot('crash', n, claim);
      for (let round = 0; round < 3; round++) {
        // kill while a backend create is in flight (it completes after the controller died)
        const before = mapi.creates().length;
        await waitFor(() => mapi.creates().length > before, 'a create in flight', 5_000).catch(() => undefined);
        await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 100)));
        await controller!.kill();
        if (round === 1) await cluster.snapshots.delete({ namespace: 'crash', name: 's9' }); // deleted while down, maybe before Ready
        await ensureController();
      }
      for (const n of names.slice(0, 9)) await cluster.waitForCondition('crash', n, 'Ready', undefined, 60_000);
      await waitFor(async () => (await cluster.snapshotOrUndefined('crash', 's9')) === undefined, 's9 to go', 60_000);
    } finally {
      mapi.createDelayMs = 0;
    }
    const ids: string[] = [];
    for (const n of names.slice(0, 9)) {
      const snap = (await cluster.snapshotOrUndefined('crash', n))!;
      const datas = await cluster.datasOf(snap.metadata.uid!);
      expect(datas, `${n}: one VolumeSnapshotData`).to.have.length(1);
      expect(datas[0]!.metadata.name).to.equal(snap.spec.snapshotDataName);
      ids.push(snap.metadata.annotations![idAnnotation]!);
      expect(datas[0]!.spec.openebsVolume?.snapshotId).to.equal(ids.at(-1));
    }
    // exactly the nine Ready snapshots' ids remain in the backend: no duplicate, no orphan (s9's is gone)
    await waitFor(() => [...mapi.snapshots.keys()].filter((k) => k.startsWith(`${pv}_`)).length === 9, 'nine backend snapshots', 10_000, () => [...mapi.snapshots.keys()].join(' '));
    expect([...mapi.snapshots.keys()].filter((k) => k.startsWith(`${pv}_`)).sort()).to.deep.equal([...ids].sort());
    const allDatas = (await cluster.datas.list()).items.filter((d) => d.spec.persistentVolumeRef?.name === pv);
    expect(allDatas).to.have.length(9);
  });

  it('two controller processes: one leads; when it is killed the other takes over', async () => {
    if (controller) await controller.stop();
    controller = undefined;
    // a longer lease than the other tests: a loaded machine must not make a leader miss its renew deadline
    const a = await startController({ cluster, mapiUrl: mapi.url, identity: 'replica-a', leaseSeconds: 6 });
    const b = await startController({ cluster, mapiUrl: mapi.url, identity: 'replica-b', leaseSeconds: 6 });
    await Promise.race([waitLeading(a), waitLeading(b)]);
    await new Promise((r) => setTimeout(r, 1500)); // several renew periods
    const leading = (d: Daemon): boolean => d.lines.some((l) => l.includes('"message":"reconciling"')) && !d.lines.some((l) => l.includes('"message":"stopped reconciling"'));
    expect([leading(a), leading(b)].filter(Boolean), 'exactly one leader').to.have.length(1);
    const [leader, standby] = leading(a) ? [a, b] : [b, a];
    const { claim } = await cluster.boundClaim('ha');
    await cluster.createSnapshot('ha', 'before', claim);
    await cluster.waitForCondition('ha', 'before', 'Ready');
    await leader.kill();
    await waitLeading(standby, 30_000);
    await cluster.createSnapshot('ha', 'after', claim);
    await cluster.waitForCondition('ha', 'after', 'Ready');
    controller = standby;
  });

  it('finds m-apiserver through the Service maya-apiserver-service, and looks it up again after a failure', async () => {
    if (controller) await controller.stop();
    controller = undefined;
    const services = cluster.client<KubeObject & { metadata: ObjectMeta; spec?: { clusterIP?: string; ports?: { name?: string; port: number }[] } }>(resources.services);
    // first pointing at a port where nothing listens
    await services.create({ metadata: { name: 'maya-apiserver-service', namespace: 'openebs' }, spec: { clusterIP: '127.0.0.1', ports: [{ name: 'api', port: 1 }] } });
    const c = await startController({ cluster, mapiUrl: undefined });
    await waitLeading(c);
    controller = c;
    const { claim, pv } = await cluster.boundClaim('svc');
    await cluster.createSnapshot('svc', 'snap1', claim);
    const failed = await cluster.waitForCondition('svc', 'snap1', 'Error', 'SnapshotCreateFailed');
    expect(failed.status?.conditions?.[0]?.message).to.match(/m-apiserver at http:\/\/127\.0\.0\.1:1 unreachable/);
    const port = Number(new URL(mapi.url).port);
    await services.mergePatch({ namespace: 'openebs', name: 'maya-apiserver-service' }, { spec: { ports: [{ name: 'api', port }] } });
    const snap = await cluster.waitForCondition('svc', 'snap1', 'Ready', undefined, 90_000);
    expect([...mapi.snapshots.keys()].filter((k) => k.startsWith(`${pv}_`))).to.deep.equal([snap.metadata.annotations?.[idAnnotation]]);
  });
});
