// A clone create of a name that exists is answered with the existing volume only when it is the
// same clone: a claim whose snapshot annotation changed between a lost answer and the retry, or
// replicas left by a create cut short from another snapshot, must never be handed out as the
// requested snapshot's data.
import { expect } from 'chai';
import type { JsonObject } from '../cas/ports.ts';
import { cstorVolume, cvr, harness, ns, storageClass, type Harness } from '../../test/cas/harness.ts';
import { rejection } from '../../test/support/rejection.ts';

async function withSource(): Promise<Harness> {
  const h = await harness();
  h.kube.reactors.push(({ verb, object, store }) => {
    if (verb === 'create' && object.kind === 'CStorVolume') {
      store.applyPatch({ apiVersion: object.apiVersion, kind: object.kind, namespace: ns, name: String(object.metadata.name) }, { status: { phase: 'Healthy' } });
    }
  });
  h.kube.seed(
    storageClass('cstor-sc', { replicaCount: '2' }),
    cstorVolume('pvc-src', 'Healthy', { capacity: '5G' }),
    cvr('pvc-src', 'pool-a'),
    cvr('pvc-src', 'pool-b'),
    cstorVolume('pvc-other', 'Healthy', { capacity: '5G' }),
    cvr('pvc-other', 'pool-a'),
  );
  h.target.addVolume('pvc-src', 'Healthy', ['snap-1', 'snap-2']);
  h.target.addVolume('pvc-other', 'Healthy', ['snap-1']);
  return h;
}

function cloneRequest(name: string, snapshotName: string, sourceVolume = 'pvc-src'): JsonObject {
  return {
    metadata: { name, namespace: 'default', labels: { 'openebs.io/storageclass': 'cstor-sc' } },
    spec: { capacity: '5G' },
    cloneSpec: { isClone: true, sourceVolume, snapshotName },
  };
}

describe('maya-apiserver flows: a clone create of a name that exists', () => {
  it('the same clone again: answered, nothing new', async () => {
    const h = await withSource();
    const first = await h.flows.createVolume(cloneRequest('pvc-clone', 'snap-1'));
    const before = h.kube.dump();
    expect(await h.flows.createVolume(cloneRequest('pvc-clone', 'snap-1'))).to.deep.equal(first);
    expect(h.kube.dump()).to.deep.equal(before);
  });

  it('a clone of another snapshot under that name: 409 naming both, nothing changed', async () => {
    const h = await withSource();
    await h.flows.createVolume(cloneRequest('pvc-clone', 'snap-1'));
    const before = h.kube.dump();
    const err = await rejection(h.flows.createVolume(cloneRequest('pvc-clone', 'snap-2')));
    expect(err.code).to.equal('conflict');
    expect(err.message).to.equal(
      'volume pvc-clone exists already (CStorVolume pvc-clone) as a clone of snapshot snap-1 of volume pvc-src: it is not a clone of snapshot snap-2 of volume pvc-src; delete it first or use another name',
    );
    expect(h.kube.dump()).to.deep.equal(before);
  });

  it('a clone of another source volume under that name: 409', async () => {
    const h = await withSource();
    await h.flows.createVolume(cloneRequest('pvc-clone', 'snap-1'));
    const err = await rejection(h.flows.createVolume(cloneRequest('pvc-clone', 'snap-1', 'pvc-other')));
    expect(err.code).to.equal('conflict');
    expect(err.message).to.match(/as a clone of snapshot snap-1 of volume pvc-src: it is not a clone of snapshot snap-1 of volume pvc-other/);
  });

  it('a plain volume under that name: 409, not answered as a clone', async () => {
    const h = await withSource();
    const err = await rejection(h.flows.createVolume(cloneRequest('pvc-other', 'snap-1')));
    expect(err.code).to.equal('conflict');
    expect(err.message).to.match(/^volume pvc-other exists already \(CStorVolume pvc-other\) as a volume that is not a clone/);
  });

  it('replicas left by a clone of another snapshot cut short (no CStorVolume yet) are not adopted', async () => {
    const h = await withSource();
    const left = cvr('pvc-clone', 'pool-a');
    left.metadata.annotations = { 'openebs.io/snapshot': 'snap-1', 'openebs.io/source-volume': 'pvc-src' };
    h.kube.seed(left);
    const err = await rejection(h.flows.createVolume(cloneRequest('pvc-clone', 'snap-2')));
    expect(err.code).to.equal('conflict');
    expect(err.message).to.match(/\(CStorVolumeReplica pvc-clone-pool-a\) as a clone of snapshot snap-1 of volume pvc-src/);
    expect(h.kube.find('CStorVolume', 'pvc-clone')).to.equal(undefined);
    // the same clone's leftovers are adopted by its retry
    const out = await h.flows.createVolume(cloneRequest('pvc-clone', 'snap-1'));
    expect(out).to.nested.include({ 'cloneSpec.snapshotName': 'snap-1', 'status.Phase': 'Healthy' });
  });
});
