import { applyMergePatch } from '../json-merge-patch.ts';
import { expect } from 'chai';
import { silentLogger } from '../logger.ts';
import { CstorError } from '../errors.ts';
import type { ResourceType } from '../kube/resource-type.ts';
import { applyManifests, kindKey, type ApplyApi, type ObjectRef } from './applier.ts';
import { parseManifests } from './manifests.ts';
import { lastAppliedAnnotation, lastAppliedValue, threeWayMergePatch, type JsonObject } from './three-way-patch.ts';

/** An in-memory API server: serves core namespaces/services/configmaps, storageclasses, CRDs (and their kinds once Established). */
class FakeApi implements ApplyApi {
  readonly objects = new Map<string, JsonObject>();
  readonly writes: string[] = [];
  private rv = 1;
  readonly served = new Map<string, ResourceType>([
    ['v1/Namespace', { group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false }],
    ['v1/Service', { group: '', version: 'v1', plural: 'services', kind: 'Service', namespaced: true }],
    ['v1/ConfigMap', { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true }],
    ['storage.k8s.io/v1/StorageClass', { group: 'storage.k8s.io', version: 'v1', plural: 'storageclasses', kind: 'StorageClass', namespaced: false }],
    ['apiextensions.k8s.io/v1/CustomResourceDefinition', { group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', kind: 'CustomResourceDefinition', namespaced: false }],
  ]);
  failOn: string | null = null;

  private key(r: ResourceType, ref: ObjectRef): string {
    return `${r.plural}/${ref.namespace ?? ''}/${ref.name}`;
  }
  async discover(): Promise<Map<string, ResourceType>> {
    const m = new Map(this.served);
    for (const [k, o] of this.objects) {
      if (!k.startsWith('customresourcedefinitions/')) continue;
      const spec = o.spec as JsonObject;
      const names = spec.names as JsonObject;
      const version = String(((spec.versions as JsonObject[])[0] as JsonObject).name);
      m.set(`${String(spec.group)}/${version}/${String(names.kind)}`, { group: String(spec.group), version, plural: String(names.plural), kind: String(names.kind), namespaced: spec.scope === 'Namespaced' });
    }
    return m;
  }
  async get(r: ResourceType, ref: ObjectRef): Promise<JsonObject | null> {
    const o = this.objects.get(this.key(r, ref));
    return o ? structuredClone(o) : null;
  }
  async create(r: ResourceType, obj: JsonObject): Promise<JsonObject> {
    const meta = obj.metadata as JsonObject;
    if (this.failOn === meta.name) throw new CstorError('invalid', `${String(meta.name)} is refused`);
    const k = this.key(r, { name: String(meta.name), ...(meta.namespace ? { namespace: String(meta.namespace) } : {}) });
    if (this.objects.has(k)) throw new CstorError('already_exists', 'exists');
    const o = structuredClone(obj);
    (o.metadata as JsonObject).resourceVersion = String(++this.rv);
    if (r.kind === 'Service') for (const p of ((o.spec as JsonObject).ports as JsonObject[])) p.protocol ??= 'TCP';
    if (r.kind === 'CustomResourceDefinition') o.status = { conditions: [{ type: 'Established', status: 'True' }] };
    this.objects.set(k, o);
    this.writes.push(`create ${k}`);
    return structuredClone(o);
  }
  async mergePatch(r: ResourceType, ref: ObjectRef, patch: JsonObject): Promise<JsonObject> {
    const k = this.key(r, ref);
    const cur = this.objects.get(k);
    if (!cur) throw new CstorError('not_found', 'gone');
    const next = applyMergePatch(cur, patch) as JsonObject;
    if (JSON.stringify(next) !== JSON.stringify(cur)) (next.metadata as JsonObject).resourceVersion = String(++this.rv);
    this.objects.set(k, next);
    this.writes.push(`patch ${k} ${JSON.stringify(patch)}`);
    return structuredClone(next);
  }
}

const yaml = (replicas: string, extra = ''): string => `
apiVersion: v1
kind: Service
metadata: {name: maya-apiserver-service, namespace: openebs, labels: {app: maya-apiserver}}
spec:
  selector: {app: maya-apiserver}
  ports: [{name: api, port: 5656}]
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: openebs-cstor-default
  annotations: {note: "x"${extra}}
provisioner: openebs.io/provisioner-iscsi
parameters: {replicaCount: "${replicas}"}
reclaimPolicy: Delete
---
apiVersion: v1
kind: Namespace
metadata: {name: openebs}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: maya-apiserver, namespace: openebs}
spec: {replicas: 1}
---
apiVersion: openebs.io/v1alpha1
kind: CStorPool
metadata: {name: pool-1}
spec: {}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: cstorpools.openebs.io}
spec:
  group: openebs.io
  scope: Cluster
  names: {kind: CStorPool, plural: cstorpools}
  versions: [{name: v1alpha1, served: true, storage: true}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: no-namespace-given}
data: {a: "1"}
`;

describe('embedded/three-way-patch', () => {
  it('sets changed fields, removes fields the last apply set, and leaves server fields alone', () => {
    const original = { spec: { a: 1, gone: 2 }, metadata: { name: 'x' } };
    const modified = { spec: { a: 3 }, metadata: { name: 'x' } };
    const current = { spec: { a: 1, gone: 2, defaulted: 'y' }, metadata: { name: 'x', uid: 'u' }, status: { phase: 'Ok' } };
    expect(threeWayMergePatch(original, modified, current)).to.deep.equal({ spec: { a: 3, gone: null } });
  });
  it('writes the last-applied value as kubectl does (sorted keys, Go escapes, newline)', () => {
    expect(lastAppliedValue({ metadata: { name: 'a', annotations: {} }, kind: 'K', apiVersion: 'v1', spec: { d: 'iqn:<pv> & more' } })).to.equal(
      '{"apiVersion":"v1","kind":"K","metadata":{"annotations":{},"name":"a"},"spec":{"d":"iqn:\\u003cpv\\u003e \\u0026 more"}}\n',
    );
  });
  it('treats server defaults inside lists as no difference', () => {
    const m = { ports: [{ port: 1 }] };
    expect(threeWayMergePatch(m, m, { ports: [{ port: 1, protocol: 'TCP' }] })).to.deep.equal({});
    expect(threeWayMergePatch(m, { ports: [{ port: 2 }] }, { ports: [{ port: 1, protocol: 'TCP' }] })).to.deep.equal({ ports: [{ port: 2 }] });
  });
});

describe('embedded/applier', () => {
  it('creates, then finds everything unchanged, then updates only what changed', async () => {
    const api = new FakeApi();
    const logger = silentLogger();
    const first = await applyManifests(parseManifests(yaml('3'), 'test.yaml'), { api, logger });
    const outcome = (kind: string): string | undefined => first.find((r) => r.kind === kind)?.outcome;
    expect(outcome('CustomResourceDefinition')).to.equal('created');
    expect(outcome('Namespace')).to.equal('created');
    expect(outcome('Service')).to.equal('created');
    expect(outcome('StorageClass')).to.equal('created');
    expect(outcome('CStorPool')).to.equal('created');
    expect(first.find((r) => r.kind === 'Deployment')).to.include({ outcome: 'skipped', reason: 'apps/v1 Deployment is not served by this API server' });
    expect(first.find((r) => r.kind === 'ConfigMap')).to.include({ outcome: 'created', namespace: 'openebs' });
    // CRDs first, then namespaces, then the rest in file order
    expect(api.writes.map((w) => w.split(' ')[1]!.split('/')[0])).to.deep.equal(['customresourcedefinitions', 'namespaces', 'services', 'storageclasses', 'cstorpools', 'configmaps']);
    const sc = api.objects.get('storageclasses//openebs-cstor-default')!;
    expect(JSON.parse(String((sc.metadata as JsonObject & { annotations: JsonObject }).annotations[lastAppliedAnnotation]))).to.deep.include({ kind: 'StorageClass' });

    const writes = api.writes.length;
    const second = await applyManifests(parseManifests(yaml('3'), 'test.yaml'), { api, logger });
    expect(second.filter((r) => r.outcome !== 'skipped').every((r) => r.outcome === 'unchanged')).to.equal(true);
    expect(api.writes.length).to.equal(writes);

    const third = await applyManifests(parseManifests(yaml('2'), 'test.yaml'), { api, logger });
    expect(third.filter((r) => r.outcome === 'updated').map((r) => r.name)).to.deep.equal(['openebs-cstor-default']);
    const after = api.objects.get('storageclasses//openebs-cstor-default')!;
    expect(after.parameters).to.deep.equal({ replicaCount: '2' });
    expect(api.objects.get('services/openebs/maya-apiserver-service')!.spec).to.deep.include({ ports: [{ name: 'api', port: 5656, protocol: 'TCP' }] });
  });

  it('removes a field the previous apply set and keeps fields others wrote', async () => {
    const api = new FakeApi();
    const logger = silentLogger();
    await applyManifests(parseManifests(yaml('3', ', extra: "1"'), 'a.yaml'), { api, logger });
    const key = 'storageclasses//openebs-cstor-default';
    const sc = api.objects.get(key)!;
    (sc.metadata as JsonObject & { annotations: JsonObject }).annotations['someone-else'] = 'kept';
    await applyManifests(parseManifests(yaml('3'), 'a.yaml'), { api, logger });
    const annotations = (api.objects.get(key)!.metadata as JsonObject & { annotations: JsonObject }).annotations;
    expect(annotations).to.not.have.property('extra');
    expect(annotations).to.include({ note: 'x', 'someone-else': 'kept' });
  });

  it('tries every object and reports every failure, naming file and object', async () => {
    const api = new FakeApi();
    api.failOn = 'openebs-cstor-default';
    try {
      await applyManifests(parseManifests(yaml('3'), 'bad.yaml'), { api, logger: silentLogger() });
      expect.fail('should throw');
    } catch (err) {
      expect((err as Error).message).to.include('bad.yaml (document 2) StorageClass openebs-cstor-default: openebs-cstor-default is refused');
    }
    expect(api.objects.has('configmaps/openebs/no-namespace-given')).to.equal(true);
  });

  it('refuses manifests that are not objects, naming file and document', () => {
    expect(() => parseManifests('a: [', 'x.yaml')).to.throw(/x.yaml: not valid YAML/);
    expect(() => parseManifests('---\nkind: A\nmetadata: {}\n', 'y.yaml')).to.throw('y.yaml (document 1): apiVersion is missing; metadata.name is missing');
    expect(kindKey('v1', 'Service')).to.equal('v1/Service');
  });
});
