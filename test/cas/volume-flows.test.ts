// Volume flows end to end over the fakes: create (pool choice, objects, wait Healthy, idempotent,
// rollback), clone (source's pools, clone labels, refusals), read, list, delete (idempotent).
import { expect } from 'chai';
import { CstorError } from '../../lib/errors.ts';
import type { FakeKubeObjects } from '../../maya-apiserver/cas/fakes.ts';
import type { Json, JsonObject, KubeObject } from '../../maya-apiserver/cas/ports.ts';
import { cstorPool, cstorVolume, cvr, harness, ns, storageClass, targetMgmt, type Harness } from './harness.ts';
import { crdSchema, valueProblems } from './schema.ts';
import { rejection } from '../support/rejection.ts';

/** Plays the target: a CStorVolume turns Healthy as soon as it is created. */
function healthyOnCreate(kube: FakeKubeObjects, phase = 'Healthy'): void {
  kube.reactors.push(({ verb, object, store }) => {
    if (verb === 'create' && object.kind === 'CStorVolume') {
      store.applyPatch({ apiVersion: object.apiVersion, kind: object.kind, namespace: ns, name: String(object.metadata.name) }, { status: { phase } });
    }
  });
}

function volumeRequest(name: string, capacity = '5G', extra: JsonObject = {}): JsonObject {
  return {
    metadata: {
      name,
      namespace: 'default',
      labels: { 'openebs.io/storageclass': 'cstor-sc', 'openebs.io/namespace': 'default', 'openebs.io/persistentvolumeclaim': 'claim-1' },
    },
    spec: { capacity },
    ...extra,
  };
}

async function withPools(): Promise<Harness> {
  const h = await harness();
  h.kube.seed(
    storageClass('cstor-sc', { replicaCount: '3' }),
    cstorPool('pool-a'),
    cstorPool('pool-b'),
    cstorPool('pool-c', 'Offline'),
    cstorPool('pool-d'),
    cstorPool('pool-e'),
    cvr('pvc-old', 'pool-a'),
  );
  return h;
}

function stripVolatile(objects: KubeObject[]): Json[] {
  return objects.map((o) => {
    const { uid: _u, resourceVersion: _r, creationTimestamp: _c, ...metadata } = o.metadata;
    return { ...o, metadata };
  });
}

describe('CAS volume flows', () => {
  it('create: picks the least-used Online pools, creates CVRs then the CStorVolume, waits Healthy, answers a CASVolume', async () => {
    const h = await withPools();
    healthyOnCreate(h.kube);
    const out = await h.flows.createVolume(volumeRequest('pvc-1'));
    const cvrs = h.kube.all('CStorVolumeReplica').filter((o) => o.metadata.labels && (o.metadata.labels as JsonObject)['openebs.io/persistent-volume'] === 'pvc-1');
    expect(stripVolatile(cvrs)).to.deep.equal(
      ['pool-b', 'pool-d', 'pool-e'].map((pool) => ({
        apiVersion: 'openebs.io/v1alpha1',
        kind: 'CStorVolumeReplica',
        metadata: {
          name: `pvc-1-${pool}`,
          namespace: ns,
          labels: {
            'cstorpool.openebs.io/name': pool,
            'cstorpool.openebs.io/uid': `uid-${pool}`,
            'openebs.io/persistent-volume': 'pvc-1',
            'openebs.io/cas-type': 'cstor',
          },
          finalizers: ['cstorvolumereplica.openebs.io/finalizer'],
        },
        spec: { capacity: '5G', targetIP: '127.0.0.1' },
      })),
    );
    const cv = h.kube.find('CStorVolume', 'pvc-1', ns);
    expect(cv?.metadata.labels).to.deep.equal({
      'openebs.io/persistent-volume': 'pvc-1',
      'openebs.io/storageclass': 'cstor-sc',
      'openebs.io/persistentvolumeclaim': 'claim-1',
      'openebs.io/namespace': 'default',
      'openebs.io/cas-type': 'cstor',
    });
    expect(cv?.['spec']).to.deep.equal({
      targetIP: '127.0.0.1',
      targetPortal: '127.0.0.1:3260',
      targetMgmtAddress: targetMgmt,
      iqn: 'iqn.2016-09.com.openebs.cstor:pvc-1',
      capacity: '5G',
      replicationFactor: 3,
      consistencyFactor: 2,
    });
    // Replicas first, then the volume (a CStorVolume that exists always has its replicas).
    const creates = h.kube.calls.filter((c) => c.verb === 'create').map((c) => `${c.kind}/${c.name ?? ''}`);
    expect(creates.filter((c) => !c.startsWith('CASTemplate') && !c.startsWith('RunTask'))).to.deep.equal([
      'CStorVolumeReplica/pvc-1-pool-b',
      'CStorVolumeReplica/pvc-1-pool-d',
      'CStorVolumeReplica/pvc-1-pool-e',
      'CStorVolume/pvc-1',
    ]);
    expect(out).to.deep.equal({
      apiVersion: 'v1alpha1',
      kind: 'CASVolume',
      metadata: { name: 'pvc-1', namespace: 'default', labels: cv?.metadata.labels as Json },
      spec: {
        capacity: '5G',
        iqn: 'iqn.2016-09.com.openebs.cstor:pvc-1',
        targetPortal: '127.0.0.1:3260',
        targetIP: '127.0.0.1',
        targetPort: '3260',
        replicas: 3,
        casType: 'cstor',
        fsType: 'ext4',
        lun: 0,
      },
      status: { Phase: 'Healthy', Message: '', Reason: '' },
    });
    // What the flow created fits the CRDs (nothing the API server would prune or refuse).
    for (const o of [cv as KubeObject, ...cvrs]) expect(valueProblems(crdSchema(o.kind), o), o.kind).to.deep.equal([]);
  });

  it('create twice: one CStorVolume, the same replicas, the same answer', async () => {
    const h = await withPools();
    healthyOnCreate(h.kube);
    const a = await h.flows.createVolume(volumeRequest('pvc-1'));
    const before = h.kube.dump();
    const b = await h.flows.createVolume(volumeRequest('pvc-1'));
    expect(b).to.deep.equal(a);
    expect(h.kube.dump()).to.deep.equal(before);
    expect(h.kube.all('CStorVolume')).to.have.length(1);
    // Two at once (serialized per volume): still one of each.
    const [c, d] = await Promise.all([h.flows.createVolume(volumeRequest('pvc-2')), h.flows.createVolume(volumeRequest('pvc-2'))]);
    expect(c).to.deep.equal(d);
    expect(h.kube.all('CStorVolume')).to.have.length(2);
  });

  it('the replica count comes from the StorageClass, else the template default (3)', async () => {
    const h = await withPools();
    healthyOnCreate(h.kube);
    h.kube.seed(storageClass('one', { replicaCount: '1' }));
    const req = volumeRequest('pvc-1');
    ((req['metadata'] as JsonObject)['labels'] as JsonObject)['openebs.io/storageclass'] = 'one';
    expect(await h.flows.createVolume(req)).to.have.nested.property('spec.replicas', 1);
    expect(h.kube.find('CStorVolume', 'pvc-1')?.['spec']).to.include({ replicationFactor: 1, consistencyFactor: 1 });
    const noClass = { metadata: { name: 'pvc-2' }, spec: { capacity: '1G' } };
    expect(await h.flows.createVolume(noClass)).to.have.nested.property('spec.replicas', 3);
    h.kube.seed(storageClass('cstor-style', {}, { 'cas.openebs.io/config': '- name: StoragePool\n  value: default\n- name: ReplicaCount\n  value: "2"\n' }));
    const cstorStyle = volumeRequest('pvc-3');
    ((cstorStyle['metadata'] as JsonObject)['labels'] as JsonObject)['openebs.io/storageclass'] = 'cstor-style';
    expect(await h.flows.createVolume(cstorStyle)).to.have.nested.property('spec.replicas', 2);
    h.kube.seed(storageClass('broken', {}, { 'cas.openebs.io/config': '- name: [' }));
    const broken = volumeRequest('pvc-4');
    ((broken['metadata'] as JsonObject)['labels'] as JsonObject)['openebs.io/storageclass'] = 'broken';
    const err = await rejection(h.flows.createVolume(broken));
    expect(err.message).to.match(/^task replicaCount \(3 of 10\) failed: spec\.set\.value: .*casConfig\(\): the cas\.openebs\.io\/config annotation is not valid YAML/);
  });

  it('not enough Online pools: 503 naming the need, nothing created', async () => {
    const h = await withPools();
    healthyOnCreate(h.kube);
    h.kube.seed(storageClass('five', { replicaCount: '5' }));
    const before = h.kube.dump();
    const req = volumeRequest('pvc-1');
    ((req['metadata'] as JsonObject)['labels'] as JsonObject)['openebs.io/storageclass'] = 'five';
    const err = await rejection(h.flows.createVolume(req));
    expect(err.code).to.equal('unavailable');
    expect(err.message).to.equal(
      'task enough-pools (7 of 10) failed: volume pvc-1 needs 5 replicas on as many Online pools (at most 5), and 4 are Online (pools: pool-a, pool-b, pool-c, pool-d, pool-e)',
    );
    expect(h.kube.dump()).to.deep.equal(before);
  });

  it('a volume that never turns Healthy: timeout naming the task, and everything the flow created is rolled back', async () => {
    const h = await withPools();
    healthyOnCreate(h.kube, 'Offline');
    const before = h.kube.dump();
    const err = await rejection(h.flows.createVolume(volumeRequest('pvc-1')));
    expect(err.code).to.equal('timeout');
    expect(err.message).to.equal('task healthy (10 of 10) failed: volume pvc-1 did not become Healthy (phase Offline) (waited 120s)');
    expect(h.kube.dump()).to.deep.equal(before);
    const deletes = h.kube.calls.filter((c) => c.verb === 'delete').map((c) => c.name);
    expect(deletes).to.deep.equal(['pvc-1', 'pvc-1-pool-e', 'pvc-1-pool-d', 'pvc-1-pool-b']);
  });

  it('a replica create failing mid-flow rolls back the replicas made before it', async () => {
    const h = await withPools();
    healthyOnCreate(h.kube);
    let made = 0;
    h.kube.reactors.push(({ verb, object, store }) => {
      if (verb === 'create' && object.kind === 'CStorVolumeReplica' && ++made === 2) {
        store.failNext('create', 'CStorVolumeReplica', new CstorError('unavailable', 'etcd leader changed'));
      }
    });
    const before = h.kube.dump();
    const err = await rejection(h.flows.createVolume(volumeRequest('pvc-1')));
    expect(err.code).to.equal('unavailable');
    expect(err.message).to.equal('task cvr-create (8 of 10) failed: etcd leader changed');
    expect(err.details).to.include({ task: 'cvr-create', runTask: 'cstor-volume-create-cvrs' });
    expect(h.kube.dump()).to.deep.equal(before);
  });

  it('a create cut short (replicas left, no volume) and run again reuses those replicas: nothing duplicated or leaked', async () => {
    const h = await withPools();
    healthyOnCreate(h.kube);
    // pool-a is the most used pool, yet the leftover replica there is reused, not orphaned.
    h.kube.seed({ ...cvr('pvc-1', 'pool-a'), spec: { capacity: '5G', targetIP: '127.0.0.1' } });
    await h.flows.createVolume(volumeRequest('pvc-1'));
    const mine = h.kube.all('CStorVolumeReplica').filter((o) => (o.metadata.labels as JsonObject)['openebs.io/persistent-volume'] === 'pvc-1');
    expect(mine.map((o) => o.metadata.name)).to.deep.equal(['pvc-1-pool-a', 'pvc-1-pool-b', 'pvc-1-pool-d']);
    expect(h.kube.find('CStorVolume', 'pvc-1')?.['spec']).to.include({ replicationFactor: 3 });
  });

  it('create refuses bad input with messages naming the field', async () => {
    const h = await withPools();
    const cases: Array<[unknown, string]> = [
      [{ spec: { capacity: '1G' } }, 'metadata.name (the volume name) is required'],
      [{ metadata: { name: 'Bad_Name' }, spec: { capacity: '1G' } }, 'metadata.name (the volume name) "Bad_Name" is not a valid name'],
      [{ metadata: { name: 'pvc-1' }, spec: {} }, 'spec.capacity is required'],
      [{ metadata: { name: 'pvc-1' }, spec: { capacity: 'lots' } }, 'spec.capacity "lots" is not a capacity (examples: 5G, 5Gi, 1073741824)'],
      [{ metadata: { name: 'pvc-1' }, spec: { capacity: '1G' }, cloneSpec: { isClone: true, snapshotName: 's' } }, 'cloneSpec.sourceVolume is required'],
      [{ metadata: { name: 'pvc-1' }, spec: { capacity: '1G' }, cloneSpec: { isClone: true, sourceVolume: 'pvc-0' } }, 'cloneSpec.snapshotName is required'],
      [[1, 2], 'the request body must be a CASVolume object'],
    ];
    for (const [body, message] of cases) {
      const err = await rejection(h.flows.createVolume(body));
      expect(err.code, message).to.equal('invalid');
      expect(err.message).to.include(message);
    }
    const noClass = await rejection(h.flows.createVolume({ metadata: { name: 'pvc-1', labels: { 'openebs.io/storageclass': 'nope' } }, spec: { capacity: '1G' } }));
    expect(noClass.code).to.equal('not_found');
    expect(noClass.message).to.equal('task sc (2 of 10) failed: storage class nope not found');
  });

  it('read: the CASVolume with its replicas; unknown volume is 404', async () => {
    const h = await withPools();
    healthyOnCreate(h.kube);
    await h.flows.createVolume(volumeRequest('pvc-1'));
    const out = await h.flows.readVolume({ name: 'pvc-1', namespace: 'default' });
    expect(out).to.nested.include({ kind: 'CASVolume', 'metadata.name': 'pvc-1', 'spec.iqn': 'iqn.2016-09.com.openebs.cstor:pvc-1', 'status.Phase': 'Healthy' });
    expect((out as { status: { replicas: Array<{ pool: string }> } }).status.replicas.map((r) => r.pool)).to.deep.equal(['pool-b', 'pool-d', 'pool-e']);
    const err = await rejection(h.flows.readVolume({ name: 'pvc-nope' }));
    expect(err.code).to.equal('not_found');
    expect(err.message).to.equal('task cv (1 of 3) failed: volume pvc-nope not found');
    const bad = await rejection(h.flows.readVolume({ name: '' }));
    expect(bad.message).to.equal('the volume name is required');
  });

  it('list: every volume as a CASVolume', async () => {
    const h = await withPools();
    healthyOnCreate(h.kube);
    expect(await h.flows.listVolumes({})).to.deep.equal({ apiVersion: 'v1alpha1', kind: 'CASVolumeList', items: [] });
    await h.flows.createVolume(volumeRequest('pvc-1'));
    await h.flows.createVolume(volumeRequest('pvc-2', '1G'));
    const list = (await h.flows.listVolumes({})) as { items: Array<{ metadata: { name: string; namespace: string }; spec: { capacity: string } }> };
    expect(list.items.map((i) => [i.metadata.name, i.metadata.namespace, i.spec.capacity])).to.deep.equal([
      ['pvc-1', 'default', '5G'],
      ['pvc-2', 'default', '1G'],
    ]);
  });

  it('delete: removes the volume and its replicas; deleting what is gone succeeds', async () => {
    const h = await withPools();
    healthyOnCreate(h.kube);
    const before = h.kube.dump();
    await h.flows.createVolume(volumeRequest('pvc-1'));
    const out = await h.flows.deleteVolume({ name: 'pvc-1' });
    expect(out).to.nested.include({ 'metadata.name': 'pvc-1', 'status.Phase': 'Deleted', 'status.Message': 'deleted' });
    expect(stripVolatile(h.kube.dump())).to.deep.equal(stripVolatile(before));
    const again = await h.flows.deleteVolume({ name: 'pvc-1' });
    expect(again).to.nested.include({ 'status.Message': 'already gone' });
    // Leftover replicas of an interrupted create (no CStorVolume) are removed too.
    h.kube.seed(cvr('pvc-9', 'pool-b'));
    await h.flows.deleteVolume({ name: 'pvc-9' });
    expect(h.kube.find('CStorVolumeReplica', 'pvc-9-pool-b')).to.equal(undefined);
  });

  describe('clone', () => {
    async function withSource(): Promise<Harness> {
      const h = await withPools();
      healthyOnCreate(h.kube);
      h.kube.seed(cstorVolume('pvc-src', 'Healthy', { capacity: '5G' }), cvr('pvc-src', 'pool-a'), cvr('pvc-src', 'pool-b'), cvr('pvc-src', 'pool-d'));
      h.target.addVolume('pvc-src', 'Healthy', ['snap-1']);
      return h;
    }
    const cloneRequest = (name: string, capacity: string, snapshotName = 'snap-1'): JsonObject =>
      volumeRequest(name, capacity, { cloneSpec: { isClone: true, sourceVolume: 'pvc-src', snapshotName } });

    it('puts clone replicas on the source volume pools, with the clone labels and annotations', async () => {
      const h = await withSource();
      const out = await h.flows.createVolume(cloneRequest('pvc-clone', '5G'));
      const cvrs = h.kube.all('CStorVolumeReplica').filter((o) => String(o.metadata.name).startsWith('pvc-clone-'));
      expect(cvrs.map((o) => o.metadata.name)).to.deep.equal(['pvc-clone-pool-a', 'pvc-clone-pool-b', 'pvc-clone-pool-d']);
      for (const o of cvrs) {
        expect(o.metadata.labels).to.include({ 'openebs.io/cloned': 'true', 'openebs.io/persistent-volume': 'pvc-clone' });
        expect(o.metadata.annotations).to.deep.equal({ 'openebs.io/snapshot': 'snap-1', 'openebs.io/source-volume': 'pvc-src' });
        expect(o['spec']).to.deep.equal({ capacity: '5G', targetIP: '127.0.0.1' });
        expect(valueProblems(crdSchema(o.kind), o)).to.deep.equal([]);
      }
      const cv = h.kube.find('CStorVolume', 'pvc-clone') as KubeObject;
      expect(cv.metadata.labels).to.include({ 'openebs.io/source-volume': 'pvc-src' });
      expect(cv.metadata.annotations).to.deep.equal({ 'openebs.io/snapshot': 'snap-1' });
      expect(cv['spec']).to.include({ replicationFactor: 3, consistencyFactor: 2, capacity: '5G' });
      expect(out).to.nested.include({ 'cloneSpec.isClone': true, 'cloneSpec.sourceVolume': 'pvc-src', 'status.Phase': 'Healthy' });
      // Again: the same clone, nothing new.
      const before = h.kube.dump();
      expect(await h.flows.createVolume(cloneRequest('pvc-clone', '5G'))).to.deep.equal(out);
      expect(h.kube.dump()).to.deep.equal(before);
    });

    it('refuses a clone smaller than its source, a missing snapshot, a missing source: nothing left behind', async () => {
      const h = await withSource();
      const before = h.kube.dump();
      const small = await rejection(h.flows.createVolume(cloneRequest('pvc-clone', '1G')));
      expect(small.code).to.equal('invalid');
      expect(small.message).to.equal(
        'task not-smaller (3 of 10) failed: clone pvc-clone of 1G is smaller than its source volume pvc-src (5G): a clone must be at least as large as its snapshot',
      );
      const missing = await rejection(h.flows.createVolume(cloneRequest('pvc-clone', '5G', 'snap-nope')));
      expect(missing.code).to.equal('not_found');
      expect(missing.message).to.equal('task snapshot-exists (5 of 10) failed: snapshot snap-nope of volume pvc-src not found: cannot clone pvc-clone from it');
      const req = cloneRequest('pvc-clone', '5G');
      (req['cloneSpec'] as JsonObject)['sourceVolume'] = 'pvc-gone';
      const noSource = await rejection(h.flows.createVolume(req));
      expect(noSource.code).to.equal('not_found');
      expect(noSource.message).to.equal('task source (2 of 10) failed: source volume pvc-gone of clone pvc-clone not found');
      expect(h.kube.dump()).to.deep.equal(before);
    });

    it('deleting the source volume leaves the clone objects alone', async () => {
      const h = await withSource();
      await h.flows.createVolume(cloneRequest('pvc-clone', '5G'));
      await h.flows.deleteVolume({ name: 'pvc-src' });
      expect(h.kube.find('CStorVolume', 'pvc-src')).to.equal(undefined);
      expect(h.kube.find('CStorVolume', 'pvc-clone')).to.not.equal(undefined);
      expect(h.kube.all('CStorVolumeReplica').filter((o) => String(o.metadata.name).startsWith('pvc-clone-'))).to.have.length(3);
    });
  });
});
