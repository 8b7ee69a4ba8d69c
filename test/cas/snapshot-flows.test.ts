// Snapshot flows end to end over the fakes: create (idempotent, Healthy only), read, list, delete.
import { expect } from 'chai';
import { httpStatusFor } from '../../lib/errors.ts';
import { cstorVolume, harness, snapshotRequest, storageClass, targetMgmt } from './harness.ts';
import { rejection } from '../support/rejection.ts';

describe('CAS snapshot flows', () => {
  it('create: Healthy volume -> target snapshot -> CASSnapshot', async () => {
    const h = await harness();
    h.kube.seed(cstorVolume('pvc-1', 'Healthy'));
    h.target.addVolume('pvc-1');
    const out = await h.flows.createSnapshot(snapshotRequest('pvc-1_snap_1', 'pvc-1'));
    expect(out).to.deep.equal({
      apiVersion: 'v1alpha1',
      kind: 'CASSnapshot',
      metadata: { name: 'pvc-1_snap_1', namespace: 'default' },
      spec: { casType: 'cstor', volumeName: 'pvc-1' },
    });
    expect(h.target.snapshotsOf('pvc-1')).to.deep.equal(['pvc-1_snap_1']);
    const post = h.target.calls.find((c) => c.method === 'POST');
    expect(post).to.deep.equal({ method: 'POST', url: `http://${targetMgmt}/v1/volumes/pvc-1/snapshots`, body: { name: 'pvc-1_snap_1' } });
    // POST first: on a Healthy volume the target's POST is the idempotency check; no list.
    expect(h.target.calls.map((c) => c.method)).to.deep.equal(['POST']);
    // Logged task by task, with the template and task named: a line per task (debug), and the
    // run's summary (info) with each task's outcome.
    const tasks = h.logLines().filter((l) => (l['message'] === 'task done' || l['message'] === 'task skipped') && l['casTemplate'] === 'cstor-snapshot-create-default');
    expect(tasks.map((l) => `${String(l['task'])} ${String(l['message'])}`)).to.deep.equal(['volume task done', 'existing task skipped', 'healthy task done', 'snapshot task done']);
    const summary = h.logLines().find((l) => l['message'] === 'cas run succeeded' && l['casTemplate'] === 'cstor-snapshot-create-default');
    expect(summary?.['level']).to.equal('info');
    expect(String(summary?.['tasks'])).to.match(/^volume [\d.]+ms, existing skipped, healthy [\d.]+ms, snapshot [\d.]+ms$/);
  });

  it('create twice: one backend snapshot, the same answer', async () => {
    const h = await harness();
    h.kube.seed(cstorVolume('pvc-1', 'Healthy'));
    h.target.addVolume('pvc-1');
    const a = await h.flows.createSnapshot(snapshotRequest('s1', 'pvc-1'));
    const b = await h.flows.createSnapshot(snapshotRequest('s1', 'pvc-1'));
    expect(b).to.deep.equal(a);
    // The second POST is answered with the snapshot the first took (the target is idempotent by name).
    expect(h.target.calls.map((c) => c.method)).to.deep.equal(['POST', 'POST']);
    expect(h.target.snapshotsOf('pvc-1')).to.deep.equal(['s1']);
  });

  it('create of a snapshot that exists answers it even once the volume is Degraded', async () => {
    const h = await harness();
    h.kube.seed(cstorVolume('pvc-1', 'Degraded'));
    h.target.addVolume('pvc-1', 'Degraded', ['s1']);
    expect(await h.flows.createSnapshot(snapshotRequest('s1', 'pvc-1'))).to.have.nested.property('metadata.name', 's1');
    expect(h.target.calls.filter((c) => c.method === 'POST')).to.deep.equal([]);
  });

  it('create on an Offline volume is refused with 409 without asking its target', async () => {
    const h = await harness();
    h.kube.seed(cstorVolume('pvc-1', 'Offline'));
    h.target.addVolume('pvc-1', 'Offline');
    const err = await rejection(h.flows.createSnapshot(snapshotRequest('s1', 'pvc-1')));
    expect(err.code).to.equal('not_ready');
    expect(err.message).to.equal('task healthy (3 of 4) failed: volume pvc-1 is not Healthy (phase Offline): a snapshot needs a Healthy volume');
    expect(h.target.calls).to.deep.equal([]);
  });

  it('create on a Degraded volume is refused with 409 and leaves nothing behind', async () => {
    const h = await harness();
    h.kube.seed(cstorVolume('pvc-1', 'Degraded'));
    h.target.addVolume('pvc-1', 'Degraded');
    const before = h.kube.dump();
    const err = await rejection(h.flows.createSnapshot(snapshotRequest('s1', 'pvc-1')));
    expect(err.code).to.equal('not_ready');
    expect(httpStatusFor(err.code)).to.equal(409);
    expect(err.message).to.equal(
      'task healthy (3 of 4) failed: volume pvc-1 is not Healthy (phase Degraded): a snapshot needs a Healthy volume',
    );
    expect(h.target.calls.filter((c) => c.method !== 'GET')).to.deep.equal([]);
    expect(h.target.snapshotsOf('pvc-1')).to.deep.equal([]);
    expect(h.kube.dump()).to.deep.equal(before);
  });

  it('create of an unknown volume: 404 naming the volume', async () => {
    const h = await harness();
    const err = await rejection(h.flows.createSnapshot(snapshotRequest('s1', 'pvc-nope')));
    expect(err.code).to.equal('not_found');
    expect(err.message).to.equal('task volume (1 of 4) failed: volume pvc-nope not found');
  });

  it('create with missing or bad names: 400 naming the field', async () => {
    const h = await harness();
    const noName = await rejection(h.flows.createSnapshot({ metadata: {}, spec: { volumeName: 'pvc-1' } }));
    expect(noName.code).to.equal('invalid');
    expect(noName.message).to.equal('metadata.name (the snapshot name) is required');
    const noVolume = await rejection(h.flows.createSnapshot({ metadata: { name: 's1' }, spec: {} }));
    expect(noVolume.message).to.equal('spec.volumeName is required');
    const badName = await rejection(h.flows.createSnapshot(snapshotRequest('../x', 'pvc-1')));
    expect(badName.message).to.match(/^metadata.name \(the snapshot name\) "\.\.\/x" is not a valid snapshot name/);
    const notObject = await rejection(h.flows.createSnapshot('hello'));
    expect(notObject.message).to.equal('the request body must be a CASSnapshot object');
    const badType = await rejection(h.flows.createSnapshot({ metadata: { name: 's1' }, spec: { volumeName: 'pvc-1', casType: 'jiva' } }));
    expect(badType.message).to.equal('spec.casType "jiva" is not supported: only cstor');
  });

  it('create: a target failure names the task and maps the status', async () => {
    const h = await harness();
    h.kube.seed(cstorVolume('pvc-1', 'Healthy'));
    h.target.addVolume('pvc-1');
    h.target.failNext('POST', 503, 'quorum lost: 1 of 3 replicas healthy');
    const err = await rejection(h.flows.createSnapshot(snapshotRequest('s1', 'pvc-1')));
    expect(err.code).to.equal('unavailable');
    expect(err.message).to.equal(
      `task snapshot (4 of 4) failed: POST http://${targetMgmt}/v1/volumes/pvc-1/snapshots answered 503: quorum lost: 1 of 3 replicas healthy`,
    );
    expect(err.details).to.include({ task: 'snapshot', taskIndex: 4, casTemplate: 'cstor-snapshot-create-default' });
  });

  it('a target that does not serve the volume (yet) is 503, not 404', async () => {
    const h = await harness();
    h.kube.seed(cstorVolume('pvc-1', 'Healthy'));
    const err = await rejection(h.flows.createSnapshot(snapshotRequest('s1', 'pvc-1')));
    expect(err.code).to.equal('unavailable');
    expect(err.message).to.equal(
      `task snapshot (4 of 4) failed: POST http://${targetMgmt}/v1/volumes/pvc-1/snapshots answered 404: volume pvc-1 is not served by this target`,
    );
    h.kube.seed(cstorVolume('pvc-2', 'Degraded'));
    const degraded = await rejection(h.flows.createSnapshot(snapshotRequest('s1', 'pvc-2')));
    expect(degraded.code).to.equal('unavailable');
    expect(degraded.message).to.equal(
      `task existing (2 of 4) failed: GET http://${targetMgmt}/v1/volumes/pvc-2/snapshots answered 404: volume pvc-2 is not served by this target`,
    );
    const del = await rejection(h.flows.deleteSnapshot({ name: 's1', volume: 'pvc-1' }));
    expect(del.code).to.equal('unavailable');
  });

  it('read and list answer what the target holds; read of a missing snapshot is 404', async () => {
    const h = await harness();
    h.kube.seed(cstorVolume('pvc-1', 'Healthy'));
    h.target.addVolume('pvc-1', 'Healthy', ['a', 'b']);
    const one = await h.flows.readSnapshot({ name: 'b', volume: 'pvc-1', namespace: 'default' });
    expect(one).to.deep.include({ kind: 'CASSnapshot', metadata: { name: 'b', namespace: 'default' } });
    expect(one).to.have.nested.property('spec.volumeName', 'pvc-1');
    const list = await h.flows.listSnapshots({ volume: 'pvc-1', namespace: 'default' });
    expect(list).to.have.property('kind', 'CASSnapshotList');
    expect((list as { items: Array<{ metadata: { name: string } }> }).items.map((i) => i.metadata.name)).to.deep.equal(['a', 'b']);
    const err = await rejection(h.flows.readSnapshot({ name: 'zz', volume: 'pvc-1' }));
    expect(err.code).to.equal('not_found');
    expect(err.message).to.equal('task found (3 of 3) failed: snapshot zz of volume pvc-1 not found');
    const noVol = await rejection(h.flows.listSnapshots({ volume: 'pvc-2' }));
    expect(noVol.message).to.equal('task volume (1 of 3) failed: volume pvc-2 not found');
  });

  it('delete: removes the snapshot; deleting it again, or on a gone volume, succeeds', async () => {
    const h = await harness();
    h.kube.seed(cstorVolume('pvc-1', 'Healthy'));
    h.target.addVolume('pvc-1', 'Healthy', ['a', 'b']);
    const out = await h.flows.deleteSnapshot({ name: 'a', volume: 'pvc-1' });
    expect(out).to.have.nested.property('metadata.name', 'a');
    expect(h.target.snapshotsOf('pvc-1')).to.deep.equal(['b']);
    await h.flows.deleteSnapshot({ name: 'a', volume: 'pvc-1' });
    await h.flows.deleteSnapshot({ name: 'a', volume: 'pvc-gone' });
    expect(h.target.snapshotsOf('pvc-1')).to.deep.equal(['b']);
  });

  it('the StorageClass of the PV picks the template (annotation), else the default', async () => {
    const h = await harness();
    h.kube.seed(cstorVolume('pvc-1', 'Healthy'));
    h.target.addVolume('pvc-1');
    h.kube.seed(storageClass('custom', {}, { 'cas.openebs.io/create-snapshot-template': 'my-snapshot-create' }), {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: 'pvc-1' },
      spec: { storageClassName: 'custom' },
    });
    const err = await rejection(h.flows.createSnapshot(snapshotRequest('s1', 'pvc-1')));
    expect(err.message).to.equal('CASTemplate my-snapshot-create not found: are the CAS templates installed (deploy/cas-templates)?');
    // A copy of the default under the custom name makes it work, without any restart.
    const copy = h.kube.find('CASTemplate', 'cstor-snapshot-create-default');
    if (!copy) expect.fail('default template missing');
    copy.metadata = { name: 'my-snapshot-create' };
    h.kube.seed(copy);
    await h.flows.createSnapshot(snapshotRequest('s1', 'pvc-1'));
    expect(h.target.snapshotsOf('pvc-1')).to.deep.equal(['s1']);
  });
});
