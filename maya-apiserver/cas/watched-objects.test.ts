// WatchedObjects over in-memory list-watch sources (lib/kube/fake-list-watch.ts): reads served
// from the cache only while its watch is live, the API server otherwise; misses trusted or
// checked by kind; metrics.
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { CstorError } from '../../lib/errors.ts';
import { FakeListWatch } from '../../lib/kube/fake-list-watch.ts';
import type { KubeObject as LibKubeObject } from '../../lib/kube/types/meta.ts';
import { silentLogger } from '../../lib/logger.ts';
import type { KubeObject, ObjectRef } from './ports.ts';
import { WatchedObjects } from './watched-objects.ts';
import { rejection } from '../../test/support/rejection.ts';

const cas = 'openebs.io/v1alpha1';

/** The API server as the fallback sees it: objects by kind/namespace/name, and every read. */
class ApiServer {
  readonly objects = new Map<string, KubeObject>();
  readonly reads: string[] = [];
  private static key(ref: ObjectRef): string {
    return `${ref.kind}/${ref.namespace ?? ''}/${ref.name}`;
  }
  put(o: KubeObject): void {
    this.objects.set(ApiServer.key({ apiVersion: o.apiVersion, kind: o.kind, name: String(o.metadata.name), ...(o.metadata.namespace ? { namespace: String(o.metadata.namespace) } : {}) }), o);
  }
  async get(ref: ObjectRef): Promise<KubeObject> {
    this.reads.push(`${ref.kind} ${ref.name}`);
    const o = this.objects.get(ApiServer.key(ref));
    if (!o) throw new CstorError('not_found', `${ref.kind} ${ref.name} not found`);
    return o;
  }
}

function runTask(name: string, value: string): LibKubeObject & KubeObject {
  return { apiVersion: cas, kind: 'RunTask', metadata: { name, namespace: 'openebs' }, spec: { id: 'a', set: { value } } };
}

async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  expect.fail(`timed out waiting for: ${what}`);
}

function setup(): { api: ApiServer; tasks: FakeListWatch<LibKubeObject>; pvs: FakeListWatch<LibKubeObject>; watched: WatchedObjects; registry: Registry } {
  const api = new ApiServer();
  const tasks = new FakeListWatch<LibKubeObject>();
  const pvs = new FakeListWatch<LibKubeObject>();
  const registry = new Registry();
  const watched = new WatchedObjects({
    kinds: [
      { apiVersion: cas, kind: 'RunTask', namespace: 'openebs', source: tasks, trustMisses: false },
      { apiVersion: 'v1', kind: 'PersistentVolume', source: pvs, trustMisses: true },
    ],
    fallback: api,
    logger: silentLogger(),
    registry,
    backoff: { baseMs: 5, maxMs: 20 },
  });
  return { api, tasks, pvs, watched, registry };
}

const ref = (name: string): ObjectRef => ({ apiVersion: cas, kind: 'RunTask', namespace: 'openebs', name });
const spec = (o: KubeObject): unknown => o['spec'];

describe('WatchedObjects (the template cache)', () => {
  let stop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await stop?.();
    stop = undefined;
  });

  it('serves reads from the cache while its watch is live; an edit reaches the next read', async () => {
    const { api, tasks, watched } = setup();
    stop = () => watched.stop();
    tasks.put(runTask('t-a', 'first'));
    watched.start();
    expect(await watched.waitForSync(2000)).to.equal(true);
    expect(watched.isLive(cas, 'RunTask')).to.equal(true);
    expect(spec(await watched.get(ref('t-a')))).to.deep.equal({ id: 'a', set: { value: 'first' } });
    tasks.put(runTask('t-a', 'second'));
    expect(spec(await watched.get(ref('t-a')))).to.deep.equal({ id: 'a', set: { value: 'second' } });
    expect(api.reads).to.deep.equal([]);
    expect(watched.stats()).to.deep.equal({ 'RunTask/hit': 2 });
  });

  it('reads from the API server until the first list, while the watch is down, and again from the cache once it is back', async () => {
    const { api, tasks, watched } = setup();
    stop = () => watched.stop();
    tasks.down = true; // the API server refuses lists and watches
    api.put(runTask('t-a', 'from the API'));
    watched.start();
    expect(await watched.waitForSync(50)).to.equal(false);
    expect(spec(await watched.get(ref('t-a')))).to.deep.equal({ id: 'a', set: { value: 'from the API' } });
    tasks.down = false;
    tasks.put(runTask('t-a', 'first'));
    await eventually(() => watched.isLive(cas, 'RunTask'), 'live');
    expect(spec(await watched.get(ref('t-a')))).to.deep.equal({ id: 'a', set: { value: 'first' } });

    // The watch is cut and cannot be re-established: an edit made meanwhile is read from the API
    // server by the very next read.
    tasks.down = true;
    tasks.breakWatches();
    await new Promise((r) => setImmediate(r)); // the watch's end is seen a microtask later
    expect(watched.isLive(cas, 'RunTask')).to.equal(false);
    tasks.put(runTask('t-a', 'edited while down'));
    api.put(runTask('t-a', 'edited while down'));
    expect(spec(await watched.get(ref('t-a')))).to.deep.equal({ id: 'a', set: { value: 'edited while down' } });
    // Back: the informer watches again from its last resourceVersion and catches the edit up.
    tasks.down = false;
    await eventually(() => watched.isLive(cas, 'RunTask'), 'live again');
    api.reads.length = 0;
    expect(spec(await watched.get(ref('t-a')))).to.deep.equal({ id: 'a', set: { value: 'edited while down' } });
    expect(api.reads).to.deep.equal([]);
    expect(watched.stats()).to.deep.equal({ 'RunTask/not_live': 2, 'RunTask/hit': 2 });
  });

  it('a template object missing from the live cache is asked of the API server; a missing PV is not found at once', async () => {
    const { api, watched, pvs } = setup();
    stop = () => watched.stop();
    watched.start();
    expect(await watched.waitForSync(2000)).to.equal(true);
    api.put(runTask('t-new', 'created a moment ago'));
    expect(spec(await watched.get(ref('t-new')))).to.deep.equal({ id: 'a', set: { value: 'created a moment ago' } });
    expect((await rejection(watched.get(ref('t-gone')))).message).to.equal('RunTask t-gone not found');
    const pvMiss = await rejection(watched.get({ apiVersion: 'v1', kind: 'PersistentVolume', name: 'pvc-rest' }));
    expect(pvMiss.code).to.equal('not_found');
    expect(pvMiss.message).to.equal('PersistentVolume pvc-rest not found (watch cache)');
    pvs.put({ apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: 'pvc-1' }, spec: { storageClassName: 'cstor' } } as LibKubeObject);
    expect(spec(await watched.get({ apiVersion: 'v1', kind: 'PersistentVolume', name: 'pvc-1' }))).to.deep.equal({ storageClassName: 'cstor' });
    expect(api.reads).to.deep.equal(['RunTask t-new', 'RunTask t-gone']);
    expect(watched.stats()).to.deep.equal({ 'RunTask/miss_checked': 2, 'PersistentVolume/miss': 1, 'PersistentVolume/hit': 1 });
  });

  it('kinds not watched, and namespaced objects outside the watched namespace, are read from the API server', async () => {
    const { api, watched } = setup();
    stop = () => watched.stop();
    watched.start();
    await watched.waitForSync(2000);
    api.put({ apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'cstor' } });
    api.put({ ...runTask('t-x', 'elsewhere'), metadata: { name: 't-x', namespace: 'other' } });
    expect((await watched.get({ apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', name: 'cstor' })).metadata.name).to.equal('cstor');
    expect(spec(await watched.get({ ...ref('t-x'), namespace: 'other' }))).to.deep.equal({ id: 'a', set: { value: 'elsewhere' } });
    expect(watched.stats()).to.deep.equal({ 'StorageClass/not_watched': 1, 'RunTask/not_watched': 1 });
  });

  it('counts reads by kind and result, and reports each kind live or not', async () => {
    const { tasks, watched, registry } = setup();
    stop = () => watched.stop();
    tasks.put(runTask('t-a', 'x'));
    watched.start();
    await watched.waitForSync(2000);
    await watched.get(ref('t-a'));
    const text = await registry.metrics();
    expect(text).to.include('mapi_watch_cache_reads_total{kind="RunTask",result="hit"} 1');
    expect(text).to.include('mapi_watch_cache_live{kind="RunTask"} 1');
    expect(text).to.include('mapi_watch_cache_live{kind="PersistentVolume"} 1');
    await watched.stop();
    expect(await registry.metrics()).to.include('mapi_watch_cache_live{kind="RunTask"} 0');
  });
});
