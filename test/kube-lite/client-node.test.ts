// @kubernetes/client-node against a real kube-lite process: CRUD of every served resource, CRDs,
// selectors, watches (from a resourceVersion, 410), conflicts, finalizers, patches, garbage
// collection, namespaces, and kill -9 + restart.
import { expect } from 'chai';
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  PatchStrategy,
  Watch,
  setHeaderOptions,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { stopAll } from '../support/daemon.ts';
import { eventually, raw, startKubeLiteProc, tempDataDir, type KubeLiteProc } from './support.ts';

type Obj = KubernetesObject & Record<string, unknown>;

async function apiError(p: Promise<unknown>): Promise<{ code: number; body: Record<string, unknown> }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApiException) {
      const body = typeof err.body === 'string' ? (JSON.parse(err.body) as Record<string, unknown>) : (err.body as Record<string, unknown>);
      return { code: err.code, body };
    }
    throw err;
  }
  throw new Error('expected the request to fail');
}

const fixtures: Obj[] = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'crud-ns' } },
  { apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: 'crud-pv' }, spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], hostPath: { path: '/tmp/x' }, persistentVolumeReclaimPolicy: 'Retain' } },
  { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'crud-pvc', namespace: 'default' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, storageClassName: 'none-such' } },
  { apiVersion: 'v1', kind: 'Event', metadata: { name: 'crud-ev', namespace: 'default' }, involvedObject: { kind: 'Pod', name: 'p', namespace: 'default' }, reason: 'Tested', message: 'hello', type: 'Normal' },
  { apiVersion: 'v1', kind: 'Service', metadata: { name: 'crud-svc', namespace: 'default' }, spec: { ports: [{ port: 80 }] } },
  { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'crud-ep', namespace: 'default' }, subsets: [{ addresses: [{ ip: '10.0.0.1' }], ports: [{ port: 80 }] }] },
  { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'crud-secret', namespace: 'default' }, stringData: { a: 'b' } },
  { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'crud-cm', namespace: 'default' }, data: { a: 'b' } },
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'crud-pod', namespace: 'default' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } },
  { apiVersion: 'v1', kind: 'Node', metadata: { name: 'crud-node' }, spec: {} },
  { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'crud-sc' }, provisioner: 'example.com/p' },
  { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'crud-lease', namespace: 'default' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15 } },
];

const widgetCrd = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'widgets.example.com' },
  spec: {
    group: 'example.com',
    scope: 'Namespaced',
    names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        additionalPrinterColumns: [{ name: 'Size', type: 'string', jsonPath: '.spec.size' }],
      },
    ],
  },
};

describe('kube-lite with @kubernetes/client-node', function () {
  this.timeout(60_000);
  let kl: KubeLiteProc;
  let objs: KubernetesObjectApi;
  let core: CoreV1Api;

  before(async () => {
    kl = await startKubeLiteProc();
    objs = KubernetesObjectApi.makeApiClient(kl.kc);
    core = kl.kc.makeApiClient(CoreV1Api);
  });
  after(stopAll);

  it('creates, reads, lists, replaces, patches and deletes every built-in resource', async () => {
    for (const f of fixtures) {
      const what = `${f.kind}`;
      const created = (await objs.create(f)) as Obj;
      expect(created.metadata?.uid, what).to.be.a('string');
      expect(Number(created.metadata?.resourceVersion), what).to.be.greaterThan(0);
      expect(created.metadata?.creationTimestamp, what).to.be.instanceOf(Date);
      const read = (await objs.read({ apiVersion: f.apiVersion!, kind: f.kind!, metadata: { name: f.metadata!.name!, namespace: f.metadata!.namespace! } })) as Obj;
      expect(read.metadata?.uid, what).to.equal(created.metadata?.uid);
      const list = await objs.list(f.apiVersion!, f.kind!, f.metadata!.namespace);
      expect(list.items.map((i) => i.metadata?.name), what).to.include(f.metadata!.name);
      expect(Number(list.metadata?.resourceVersion), what).to.be.at.least(Number(created.metadata?.resourceVersion));
      // A built-in controller may write the object between the read and the replace (a PV's
      // phase): a 409 then is right, and a client reads again and retries, as here.
      let base = read;
      let replaced: Obj | undefined;
      for (let attempt = 0; replaced === undefined; attempt++) {
        try {
          replaced = (await objs.replace({ ...base, metadata: { ...base.metadata, labels: { step: 'replaced' } } })) as Obj;
        } catch (err) {
          if ((err as { code?: number }).code !== 409 || attempt >= 5) throw err;
          base = (await objs.read({ apiVersion: f.apiVersion!, kind: f.kind!, metadata: { name: f.metadata!.name!, namespace: f.metadata!.namespace! } })) as Obj;
        }
      }
      expect(replaced.metadata?.labels, what).to.deep.include({ step: 'replaced' });
      expect(Number(replaced.metadata?.resourceVersion), what).to.be.greaterThan(Number(base.metadata?.resourceVersion));
      const patched = (await objs.patch(
        { apiVersion: f.apiVersion!, kind: f.kind!, metadata: { name: f.metadata!.name!, namespace: f.metadata!.namespace!, annotations: { step: 'patched' } } },
        undefined, undefined, undefined, undefined, PatchStrategy.MergePatch,
      )) as Obj;
      expect(patched.metadata?.annotations, what).to.deep.include({ step: 'patched' });
      expect(patched.metadata?.labels, what).to.deep.include({ step: 'replaced' });
      await objs.delete({ apiVersion: f.apiVersion!, kind: f.kind!, metadata: { name: f.metadata!.name!, namespace: f.metadata!.namespace! } });
      if (f.kind === 'Namespace') {
        await eventually(async () => (await apiError(objs.read({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'crud-ns' } }))).code === 404, 'the namespace to go');
      } else {
        const gone = await apiError(objs.read({ apiVersion: f.apiVersion!, kind: f.kind!, metadata: { name: f.metadata!.name!, namespace: f.metadata!.namespace! } }));
        expect(gone.code, what).to.equal(404);
        expect(gone.body.reason, what).to.equal('NotFound');
      }
    }
    const secret = fixtures.find((f) => f.kind === 'Secret')!;
    const s = (await objs.create({ ...secret, metadata: { name: 's2', namespace: 'default' } })) as Obj;
    expect(s.data).to.deep.equal({ a: Buffer.from('b').toString('base64') });
    expect(s.stringData).to.equal(undefined);
  });

  it('serves a CRD\'s resources once Established, with the status subresource, and removes them with it', async () => {
    const ext = KubernetesObjectApi.makeApiClient(kl.kc);
    await ext.create(widgetCrd);
    const crd = await eventually(async () => {
      const c = (await ext.read({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'widgets.example.com' } })) as Obj;
      const conds = ((c.status as { conditions?: { type: string; status: string }[] })?.conditions ?? []);
      return conds.some((x) => x.type === 'Established' && x.status === 'True') ? c : undefined;
    }, 'the CRD to be Established');
    const conds = (crd.status as { conditions: { type: string; status: string }[] }).conditions;
    expect(conds.find((c) => c.type === 'NamesAccepted')?.status).to.equal('True');
    const custom = kl.kc.makeApiClient(CustomObjectsApi);
    const w = (await eventually(
      () => custom.createNamespacedCustomObject({ group: 'example.com', version: 'v1', namespace: 'default', plural: 'widgets', body: { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w1' }, spec: { size: 'large' }, status: { phase: 'Ignored' } } }),
      'widgets to be served',
    )) as Obj;
    expect(w.status, 'status is ignored on create').to.equal(undefined);
    // The main endpoint ignores status; /status ignores everything else.
    const withStatus = (await custom.replaceNamespacedCustomObjectStatus({ group: 'example.com', version: 'v1', namespace: 'default', plural: 'widgets', name: 'w1', body: { ...w, spec: { size: 'tiny' }, status: { phase: 'Ready' } } })) as Obj;
    expect(withStatus.status).to.deep.equal({ phase: 'Ready' });
    expect(withStatus.spec).to.deep.equal({ size: 'large' });
    const mainPut = (await custom.replaceNamespacedCustomObject({ group: 'example.com', version: 'v1', namespace: 'default', plural: 'widgets', name: 'w1', body: { ...withStatus, spec: { size: 'small' }, status: { phase: 'Broken' } } })) as Obj;
    expect(mainPut.spec).to.deep.equal({ size: 'small' });
    expect(mainPut.status).to.deep.equal({ phase: 'Ready' });
    expect((mainPut.metadata as { generation: number }).generation).to.equal(2);
    const table = await raw(kl, '/apis/example.com/v1/namespaces/default/widgets', { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' });
    expect(table.json.kind).to.equal('Table');
    expect((table.json.columnDefinitions as { name: string }[]).map((c) => c.name)).to.deep.equal(['Name', 'Size']);
    expect((table.json.rows as { cells: unknown[] }[])[0]!.cells).to.deep.equal(['w1', 'small']);
    const list = (await custom.listNamespacedCustomObject({ group: 'example.com', version: 'v1', namespace: 'default', plural: 'widgets' })) as { kind: string; items: Obj[] };
    expect(list.kind).to.equal('WidgetList');
    expect(list.items.map((i) => i.metadata?.name)).to.deep.equal(['w1']);

    await ext.delete({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'widgets.example.com' } });
    await eventually(async () => (await apiError(ext.read({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'widgets.example.com' } }))).code === 404, 'the CRD to go');
    const after = await raw(kl, '/apis/example.com/v1/namespaces/default/widgets/w1');
    expect(after.status).to.equal(404);
    // Re-created, the CRD starts empty: its resources went with it.
    await ext.create(widgetCrd);
    const relist = await eventually(async () => (await custom.listNamespacedCustomObject({ group: 'example.com', version: 'v1', namespace: 'default', plural: 'widgets' })) as { items: Obj[] }, 'widgets served again');
    expect(relist.items).to.deep.equal([]);
  });

  it('serves a cluster-scoped CRD at every served version', async () => {
    await objs.create({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'pools.example.com' },
      spec: {
        group: 'example.com',
        scope: 'Cluster',
        names: { plural: 'pools', kind: 'Pool' },
        versions: [
          { name: 'v1alpha1', served: true, storage: false, schema: { openAPIV3Schema: { type: 'object' } } },
          { name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object' } } },
        ],
      },
    });
    const created = await eventually(async () => {
      const r = await raw(kl, '/apis/example.com/v1/pools', { method: 'POST', body: JSON.stringify({ apiVersion: 'example.com/v1', kind: 'Pool', metadata: { name: 'p1' }, status: { phase: 'kept' } }) });
      return r.status === 201 ? r : undefined;
    }, 'pools to be served');
    // No status subresource: status is an ordinary field.
    expect(created.json.status).to.deep.equal({ phase: 'kept' });
    const old = await raw(kl, '/apis/example.com/v1alpha1/pools/p1');
    expect(old.json.apiVersion).to.equal('example.com/v1alpha1');
    const discovery = await raw(kl, '/apis/example.com');
    expect((discovery.json.preferredVersion as { version: string }).version).to.equal('v1');
    expect((await raw(kl, '/apis/example.com/v1/namespaces/default/pools/p1')).status).to.equal(404);
  });

  it('lists with label and field selectors', async () => {
    const mk = (name: string, labels: Record<string, string>) => core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name, labels } } });
    await mk('sel-a', { app: 'web', tier: 'front' });
    await mk('sel-b', { app: 'web', tier: 'back' });
    await mk('sel-c', { app: 'db' });
    const names = async (labelSelector?: string, fieldSelector?: string) =>
      (await core.listNamespacedConfigMap({ namespace: 'default', ...(labelSelector ? { labelSelector } : {}), ...(fieldSelector ? { fieldSelector } : {}) })).items.map((i) => i.metadata?.name).filter((n) => n?.startsWith('sel-'));
    expect(await names('app=web')).to.deep.equal(['sel-a', 'sel-b']);
    expect(await names('app==web,tier!=front')).to.deep.equal(['sel-b']);
    expect(await names('app in (db,cache)')).to.deep.equal(['sel-c']);
    expect(await names('app notin (db)')).to.deep.equal(['sel-a', 'sel-b']);
    expect(await names('tier')).to.deep.equal(['sel-a', 'sel-b']);
    expect(await names('!tier')).to.deep.equal(['sel-c']);
    expect(await names(undefined, 'metadata.name=sel-b')).to.deep.equal(['sel-b']);
    expect(await names('app=web', 'metadata.name!=sel-a')).to.deep.equal(['sel-b']);
    await core.createNamespacedPod({ namespace: 'default', body: { metadata: { name: 'on-n1' }, spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'i' }] } } });
    await core.createNamespacedPod({ namespace: 'default', body: { metadata: { name: 'on-n2' }, spec: { nodeName: 'n2', containers: [{ name: 'c', image: 'i' }] } } });
    const pods = await core.listPodForAllNamespaces({ fieldSelector: 'spec.nodeName=n2' });
    expect(pods.items.map((p) => p.metadata?.name)).to.deep.equal(['on-n2']);
    await core.createNamespacedEvent({ namespace: 'default', body: { metadata: { name: 'ev-x' }, involvedObject: { kind: 'PersistentVolumeClaim', name: 'claim-x', namespace: 'default', uid: 'u1' }, reason: 'R', message: 'm' } });
    const evs = await core.listNamespacedEvent({ namespace: 'default', fieldSelector: 'involvedObject.name=claim-x,involvedObject.kind=PersistentVolumeClaim,involvedObject.uid=u1' });
    expect(evs.items.map((e) => e.metadata?.name)).to.deep.equal(['ev-x']);
    const bad = await apiError(core.listNamespacedConfigMap({ namespace: 'default', fieldSelector: 'spec.nope=1' }));
    expect(bad.code).to.equal(400);
    // pagination
    const page1 = await core.listNamespacedConfigMap({ namespace: 'default', labelSelector: 'app', limit: 2 });
    expect(page1.items).to.have.length(2);
    expect(page1.metadata?._continue).to.be.a('string');
    const page2 = await core.listNamespacedConfigMap({ namespace: 'default', labelSelector: 'app', limit: 2, _continue: page1.metadata!._continue! });
    expect(page2.items.map((i) => i.metadata?.name)).to.deep.equal(['sel-c']);
  });

  it('watches from a resourceVersion: every later event, in order, no gaps', async () => {
    const cm = await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'watched' }, data: { v: '0' } } });
    const fromRv = cm.metadata!.resourceVersion!;
    for (let i = 1; i <= 3; i++) await core.patchNamespacedConfigMap({ namespace: 'default', name: 'watched', body: { data: { v: String(i) } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    const seen: { type: string; v: string | undefined; rv: number }[] = [];
    const watch = new Watch(kl.kc);
    const ctrl = await watch.watch('/api/v1/namespaces/default/configmaps', { resourceVersion: fromRv, fieldSelector: 'metadata.name=watched' }, (type, obj: Obj) => {
      seen.push({ type, v: (obj.data as Record<string, string> | undefined)?.v, rv: Number(obj.metadata?.resourceVersion) });
    }, () => {});
    try {
      await eventually(() => seen.length >= 3, '3 replayed events');
      await core.deleteNamespacedConfigMap({ namespace: 'default', name: 'watched' });
      await eventually(() => seen.length >= 4, 'the live DELETED event');
      expect(seen.map((s) => `${s.type}:${s.v}`)).to.deep.equal(['MODIFIED:1', 'MODIFIED:2', 'MODIFIED:3', 'DELETED:3']);
      for (let i = 1; i < seen.length; i++) expect(seen[i]!.rv).to.be.greaterThan(seen[i - 1]!.rv);
    } finally {
      ctrl.abort();
    }
  });

  it('answers 410 Gone with a Status body for a resourceVersion past the retained window', async () => {
    const small = await startKubeLiteProc(tempDataDir(), ['--history-size', '5']);
    const c = small.kc.makeApiClient(CoreV1Api);
    const first = await c.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'h0' } } });
    for (let i = 1; i <= 10; i++) await c.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: `h${i}` } } });
    const res = await raw(small, `/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=${first.metadata!.resourceVersion!}`);
    expect(res.status).to.equal(410);
    expect(res.json).to.deep.include({ kind: 'Status', status: 'Failure', reason: 'Expired', code: 410 });
    expect(String(res.json.message)).to.match(/too old resource version/);
    const err = await new Promise<unknown>((resolve) => {
      void new Watch(small.kc).watch('/api/v1/namespaces/default/configmaps', { resourceVersion: first.metadata!.resourceVersion! }, () => {}, resolve);
    });
    expect((err as { statusCode?: number }).statusCode).to.equal(410);
    await small.daemon.stop();
  });

  it('refuses stale updates (409 Conflict) and existing names (409 AlreadyExists)', async () => {
    const cm = await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'conflicted' }, data: { a: '1' } } });
    await core.replaceNamespacedConfigMap({ namespace: 'default', name: 'conflicted', body: { ...cm, data: { a: '2' } } });
    const stale = await apiError(core.replaceNamespacedConfigMap({ namespace: 'default', name: 'conflicted', body: { ...cm, data: { a: '3' } } }));
    expect(stale.code).to.equal(409);
    expect(stale.body.reason).to.equal('Conflict');
    expect(String(stale.body.message)).to.match(/the object has been modified/);
    const dup = await apiError(core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'conflicted' } } }));
    expect(dup.code).to.equal(409);
    expect(dup.body.reason).to.equal('AlreadyExists');
    expect((await core.readNamespacedConfigMap({ namespace: 'default', name: 'conflicted' })).data).to.deep.equal({ a: '2' });
  });

  it('keeps an object with finalizers until the last one is removed', async () => {
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'held', finalizers: ['example.com/a', 'example.com/b'] } } });
    await core.deleteNamespacedConfigMap({ namespace: 'default', name: 'held' });
    const held = await core.readNamespacedConfigMap({ namespace: 'default', name: 'held' });
    expect(held.metadata?.deletionTimestamp).to.not.equal(undefined);
    const add = await apiError(core.patchNamespacedConfigMap({ namespace: 'default', name: 'held', body: { metadata: { finalizers: ['example.com/a', 'example.com/b', 'example.com/c'] } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)));
    expect(add.code).to.equal(422);
    await core.patchNamespacedConfigMap({ namespace: 'default', name: 'held', body: [{ op: 'remove', path: '/metadata/finalizers/0' }] }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch));
    expect((await core.readNamespacedConfigMap({ namespace: 'default', name: 'held' })).metadata?.finalizers).to.deep.equal(['example.com/b']);
    await core.patchNamespacedConfigMap({ namespace: 'default', name: 'held', body: { metadata: { '$deleteFromPrimitiveList/finalizers': ['example.com/b'] } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
    expect((await apiError(core.readNamespacedConfigMap({ namespace: 'default', name: 'held' }))).code).to.equal(404);
  });

  it('applies merge, JSON and strategic-merge patches', async () => {
    await core.createNamespacedPod({ namespace: 'default', body: { metadata: { name: 'patched', labels: { a: '1', b: '2' } }, spec: { containers: [{ name: 'app', image: 'app:1' }, { name: 'side', image: 'side:1' }] } } });
    const merge = await core.patchNamespacedPod({ namespace: 'default', name: 'patched', body: { metadata: { labels: { a: null, c: '3' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    expect(merge.metadata?.labels).to.deep.equal({ b: '2', c: '3' });
    const json = await core.patchNamespacedPod({ namespace: 'default', name: 'patched', body: [{ op: 'replace', path: '/spec/containers/1/image', value: 'side:2' }, { op: 'add', path: '/metadata/labels/d', value: '4' }] }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch));
    expect(json.spec?.containers.map((c) => c.image)).to.deep.equal(['app:1', 'side:2']);
    expect(json.metadata?.labels?.d).to.equal('4');
    const smp = await core.patchNamespacedPod({ namespace: 'default', name: 'patched', body: { spec: { containers: [{ name: 'app', image: 'app:2' }] } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
    expect(smp.spec?.containers.map((c) => `${c.name}=${c.image}`)).to.deep.equal(['app=app:2', 'side=side:2']);
    const status = await core.patchNamespacedPodStatus({ namespace: 'default', name: 'patched', body: { status: { conditions: [{ type: 'Ready', status: 'True' }] } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
    expect(status.status?.conditions?.map((c) => `${c.type}=${c.status}`)).to.deep.equal(['Ready=True']);
    const status2 = await core.patchNamespacedPodStatus({ namespace: 'default', name: 'patched', body: { status: { conditions: [{ type: 'Scheduled', status: 'True' }] } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
    expect(status2.status?.conditions?.map((c) => c.type)).to.deep.equal(['Ready', 'Scheduled']);
  });

  it('collects dependents whose owner is gone, and empties a deleted namespace', async () => {
    const owner = await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'owner' } } });
    await core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 'dependent', ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata!.uid! }] } } });
    await core.deleteNamespacedConfigMap({ namespace: 'default', name: 'owner' });
    await eventually(async () => (await apiError(core.readNamespacedSecret({ namespace: 'default', name: 'dependent' }))).code === 404, 'the dependent to be collected');

    // Foreground: the owner stays (deletionTimestamp, foregroundDeletion) until its dependents are gone.
    const fg = await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'fg-owner' } } });
    await core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 'fg-dep', finalizers: ['example.com/hold'], ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'fg-owner', uid: fg.metadata!.uid!, blockOwnerDeletion: true }] } } });
    await core.deleteNamespacedConfigMap({ namespace: 'default', name: 'fg-owner', propagationPolicy: 'Foreground' });
    const held = await eventually(async () => {
      const dep = await core.readNamespacedSecret({ namespace: 'default', name: 'fg-dep' });
      return dep.metadata?.deletionTimestamp ? dep : undefined;
    }, 'the dependent to be deleting');
    expect(held.metadata?.finalizers).to.deep.equal(['example.com/hold']);
    expect((await core.readNamespacedConfigMap({ namespace: 'default', name: 'fg-owner' })).metadata?.finalizers).to.deep.equal(['foregroundDeletion']);
    await core.patchNamespacedSecret({ namespace: 'default', name: 'fg-dep', body: { metadata: { finalizers: null } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await eventually(async () => (await apiError(core.readNamespacedConfigMap({ namespace: 'default', name: 'fg-owner' }))).code === 404, 'the foreground owner to go');

    // Orphan: the dependent stays, without the reference.
    const or = await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'or-owner' } } });
    await core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 'or-dep', ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'or-owner', uid: or.metadata!.uid! }] } } });
    await core.deleteNamespacedConfigMap({ namespace: 'default', name: 'or-owner', propagationPolicy: 'Orphan' });
    await new Promise((r) => setTimeout(r, 300));
    expect((await core.readNamespacedSecret({ namespace: 'default', name: 'or-dep' })).metadata?.ownerReferences).to.equal(undefined);

    const missing = await apiError(core.createNamespacedConfigMap({ namespace: 'nowhere', body: { metadata: { name: 'x' } } }));
    expect(missing.code).to.equal(404);
    expect(String(missing.body.message)).to.match(/namespaces "nowhere" not found/);
    await core.createNamespace({ body: { metadata: { name: 'doomed' } } });
    await core.createNamespacedConfigMap({ namespace: 'doomed', body: { metadata: { name: 'x' } } });
    await core.deleteNamespace({ name: 'doomed' });
    await eventually(async () => (await apiError(core.readNamespace({ name: 'doomed' }))).code === 404, 'the namespace to go');
    expect((await core.listNamespacedConfigMap({ namespace: 'doomed' })).items).to.deep.equal([]);
    const protectedNs = await apiError(core.deleteNamespace({ name: 'default' }));
    expect(protectedNs.code).to.equal(403);
  });

  it('keeps every acknowledged write across kill -9, continues resourceVersions, and resumes a watch', async () => {
    const dir = tempDataDir();
    const first = await startKubeLiteProc(dir);
    const c1 = first.kc.makeApiClient(CoreV1Api);
    const created = await Promise.all(Array.from({ length: 50 }, (_, i) => c1.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: `durable-${i}` }, data: { i: String(i) } } })));
    await c1.patchNamespacedConfigMap({ namespace: 'default', name: 'durable-0', body: { data: { i: 'patched' } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await c1.deleteNamespacedConfigMap({ namespace: 'default', name: 'durable-1' });
    const rvBefore = Number((await c1.listNamespacedConfigMap({ namespace: 'default' })).metadata!.resourceVersion);
    expect(rvBefore).to.be.at.least(Math.max(...created.map((c) => Number(c.metadata!.resourceVersion))));
    await first.daemon.kill();

    const second = await startKubeLiteProc(dir);
    const c2 = second.kc.makeApiClient(CoreV1Api);
    const list = await c2.listNamespacedConfigMap({ namespace: 'default', labelSelector: '' });
    const durable = list.items.filter((i) => i.metadata?.name?.startsWith('durable-'));
    expect(durable).to.have.length(49);
    expect(durable.find((d) => d.metadata?.name === 'durable-0')?.data).to.deep.equal({ i: 'patched' });
    expect(durable.find((d) => d.metadata?.name === 'durable-1')).to.equal(undefined);
    expect(Number(list.metadata!.resourceVersion)).to.be.at.least(rvBefore);
    // A watch from the resourceVersion seen before the crash resumes (no relist needed).
    const seen: string[] = [];
    const ctrl = await new Watch(second.kc).watch('/api/v1/namespaces/default/configmaps', { resourceVersion: String(rvBefore) }, (type, obj: Obj) => seen.push(`${type}:${obj.metadata?.name}:${obj.metadata?.resourceVersion}`), () => {});
    const after = await c2.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'after-restart' } } });
    expect(Number(after.metadata!.resourceVersion)).to.be.greaterThan(rvBefore);
    await eventually(() => seen.length >= 1, 'the watch to see the new object');
    ctrl.abort();
    expect(seen).to.deep.equal([`ADDED:after-restart:${after.metadata!.resourceVersion}`]);
    // Writes in flight at the kill: every acknowledged one survives.
    const acked: string[] = [];
    let stop = false;
    const writers = Array.from({ length: 16 }, async (_, w) => {
      for (let i = 0; !stop && i < 10_000; i++) {
        try {
          await c2.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: `inflight-${w}-${i}` } } });
          if (!stop) acked.push(`inflight-${w}-${i}`);
        } catch {
          return;
        }
      }
    });
    await eventually(() => acked.length >= 100, '100 acknowledged writes');
    stop = true;
    const ackedAtKill = [...acked];
    await second.daemon.kill();
    await Promise.all(writers);
    const again = await startKubeLiteProc(dir);
    const names = new Set((await again.kc.makeApiClient(CoreV1Api).listNamespacedConfigMap({ namespace: 'default' })).items.map((i) => i.metadata?.name));
    expect(ackedAtKill.filter((n) => !names.has(n))).to.deep.equal([]);
    expect(await again.daemon.stop()).to.equal(0);
    // A third start after a clean stop: still everything.
    const third = await startKubeLiteProc(dir);
    const l3 = await third.kc.makeApiClient(CoreV1Api).listNamespacedConfigMap({ namespace: 'default' });
    expect(l3.items.filter((i) => i.metadata?.name?.startsWith('durable-') || i.metadata?.name === 'after-restart')).to.have.length(50);
    expect(l3.items.filter((i) => i.metadata?.name?.startsWith('inflight-')).length).to.be.at.least(ackedAtKill.length);
    await third.daemon.stop();
  });
});
