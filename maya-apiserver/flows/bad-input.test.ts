// Request shapes the flows refuse before any template runs (400 naming the field, nothing
// created): a clone request that would be misread as a plain create (an empty volume handed out
// where a snapshot's data was asked for), label values and namespaces that are not strings.
import { expect } from 'chai';
import type { JsonObject } from '../cas/ports.ts';
import { cstorPool, cstorVolume, cvr, harness, ns, storageClass, type Harness } from '../../test/cas/harness.ts';
import { rejection } from '../../test/support/rejection.ts';

async function world(): Promise<Harness> {
  const h = await harness();
  h.kube.reactors.push(({ verb, object, store }) => {
    if (verb === 'create' && object.kind === 'CStorVolume') {
      store.applyPatch({ apiVersion: object.apiVersion, kind: object.kind, namespace: ns, name: String(object.metadata.name) }, { status: { phase: 'Healthy' } });
    }
  });
  h.kube.seed(storageClass('cstor-sc', { replicaCount: '1' }), cstorPool('pool-a'), cstorVolume('pvc-src', 'Healthy'), cvr('pvc-src', 'pool-a'));
  h.target.addVolume('pvc-src', 'Healthy', ['snap-1']);
  return h;
}

const volume = (extra: JsonObject, metadata: JsonObject = {}): JsonObject => ({
  metadata: { name: 'pvc-new', namespace: 'default', labels: { 'openebs.io/storageclass': 'cstor-sc' }, ...metadata },
  spec: { capacity: '5G' },
  ...extra,
});

describe('maya-apiserver flows: bad input refused before any template runs', () => {
  const cases: Array<{ what: string; run: (h: Harness) => Promise<unknown>; message: string }> = [
    {
      what: 'cloneSpec.isClone "yes" (not a boolean)',
      run: (h) => h.flows.createVolume(volume({ cloneSpec: { isClone: 'yes', sourceVolume: 'pvc-src', snapshotName: 'snap-1' } })),
      message: 'cloneSpec.isClone must be true or false, not "yes"',
    },
    {
      what: 'a clone source without isClone',
      run: (h) => h.flows.createVolume(volume({ cloneSpec: { sourceVolume: 'pvc-src', snapshotName: 'snap-1' } })),
      message: 'cloneSpec.sourceVolume and cloneSpec.snapshotName given but cloneSpec.isClone is not true: set isClone: true for a clone, or leave cloneSpec out',
    },
    {
      what: 'a clone source with isClone false',
      run: (h) => h.flows.createVolume(volume({ cloneSpec: { isClone: false, snapshotName: 'snap-1' } })),
      message: 'cloneSpec.snapshotName given but cloneSpec.isClone is not true: set isClone: true for a clone, or leave cloneSpec out',
    },
    { what: 'cloneSpec not an object', run: (h) => h.flows.createVolume(volume({ cloneSpec: 'pvc-src@snap-1' })), message: 'cloneSpec must be an object' },
    {
      what: 'a label value that is not a string',
      run: (h) => h.flows.createVolume(volume({}, { labels: { 'openebs.io/persistentvolumeclaim': { name: 'x' } } })),
      message: 'metadata.labels["openebs.io/persistentvolumeclaim"] must be a string',
    },
    { what: 'a volume namespace that is not a string', run: (h) => h.flows.createVolume(volume({}, { namespace: ['a'] })), message: 'metadata.namespace must be a string' },
    {
      what: 'a snapshot namespace that is not a string',
      run: (h) => h.flows.createSnapshot({ metadata: { name: 's1', namespace: { a: 1 } }, spec: { volumeName: 'pvc-src' } }),
      message: 'metadata.namespace must be a string',
    },
    { what: 'a capacity past 2^53 bytes', run: (h) => h.flows.createVolume(volume({ spec: { capacity: '99999P' } })), message: 'spec.capacity "99999P" is too large' },
  ];
  for (const c of cases) {
    it(`${c.what} → 400 naming it, nothing created`, async () => {
      const h = await world();
      const before = h.kube.dump();
      const kubeCalls = h.kube.calls.length;
      const err = await rejection(c.run(h));
      expect(err.code).to.equal('invalid');
      expect(err.message).to.equal(c.message);
      expect(h.kube.dump()).to.deep.equal(before);
      expect(h.target.calls).to.deep.equal([]);
      expect(h.kube.calls.slice(kubeCalls)).to.deep.equal([]);
    });
  }

  it('cloneSpec {isClone: false} alone is a plain create; isClone "true" is a clone', async () => {
    const h = await world();
    const plain = await h.flows.createVolume(volume({ cloneSpec: { isClone: false } }));
    expect(plain).to.not.have.nested.property('cloneSpec.isClone', true);
    const clone = (await h.flows.createVolume(volume({ cloneSpec: { isClone: 'true', sourceVolume: 'pvc-src', snapshotName: 'snap-1' } }, { name: 'pvc-clone' }))) as JsonObject;
    expect(clone).to.nested.include({ 'cloneSpec.isClone': true, 'cloneSpec.snapshotName': 'snap-1' });
    expect(h.kube.find('CStorVolume', 'pvc-clone')?.metadata.annotations).to.deep.equal({ 'openebs.io/snapshot': 'snap-1' });
  });
});
