// The template cache (maya-apiserver/cas/watched-objects.ts, `cstor mapi --template-cache watch`)
// over a real kube-lite process: the engine and flows read CASTemplates, RunTasks, PVs and
// StorageClasses from watch-fed caches; an edit made through the API changes every run that starts
// once its watch event has arrived (kube-lite answers the edit BEFORE it writes the event to
// watches, so a run started at once may still see the old version: the cache's documented
// semantics); while the RunTask watch is down, reads go to the API server (an edit is seen at
// once), and the cache serves again once it is back.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { loadAll } from 'js-yaml';
import { CstorError } from '../../lib/errors.ts';
import { createKubeClients } from '../../lib/kube/kube-clients.ts';
import { loadKubeConfig } from '../../lib/kube/kubeconfig.ts';
import type { ListOptions, ListWatchSource, WatchHandle, WatchOptions } from '../../lib/kube/list-watch.ts';
import type { KubeList, KubeObject as LibKubeObject, WatchEvent } from '../../lib/kube/types/meta.ts';
import { silentLogger } from '../../lib/logger.ts';
import { CasEngine } from '../../maya-apiserver/cas/engine.ts';
import { FakeTargetMgmt } from '../../maya-apiserver/cas/fakes.ts';
import { installTemplates } from '../../maya-apiserver/cas/install.ts';
import type { KubeObject, ObjectRef } from '../../maya-apiserver/cas/ports.ts';
import { TransportKubeObjects } from '../../maya-apiserver/cas/transport-kube-objects.ts';
import { templateCacheKinds, WatchedObjects } from '../../maya-apiserver/cas/watched-objects.ts';
import { CasFlows } from '../../maya-apiserver/flows/cas-flows.ts';
import { eventually, startKubeLiteProc } from '../kube-lite/support.ts';
import { repoRoot, stopAll } from '../support/daemon.ts';
import { rejection as failure } from '../support/rejection.ts';

const ns = 'openebs';
const cas = 'openebs.io/v1alpha1';

/** A list-watch source the test can take down (lists and watches refused) and whose watches it can cut. */
class SwitchableSource implements ListWatchSource<LibKubeObject> {
  down = false;
  private readonly open = new Set<WatchHandle>();

  constructor(private readonly inner: ListWatchSource<LibKubeObject>) {}

  list(options: ListOptions): Promise<KubeList<LibKubeObject>> {
    if (this.down) return Promise.reject(new CstorError('unavailable', 'list refused (test)'));
    return this.inner.list(options);
  }

  async watch(options: WatchOptions, onEvent: (event: WatchEvent<LibKubeObject>) => void): Promise<WatchHandle> {
    if (this.down) throw new CstorError('unavailable', 'watch refused (test)');
    const handle = await this.inner.watch(options, onEvent);
    this.open.add(handle);
    handle.done.then(
      () => this.open.delete(handle),
      () => this.open.delete(handle),
    );
    return handle;
  }

  cut(): void {
    for (const h of this.open) h.abort();
  }
}

/** Waits until the cache holds this version of the object (its watch event has arrived). */
async function cached(watched: WatchedObjects, ref: ObjectRef, resourceVersion: unknown): Promise<void> {
  await eventually(async () => (await watched.get(ref)).metadata.resourceVersion === resourceVersion, `${ref.kind} ${ref.name} at resourceVersion ${String(resourceVersion)} in the cache`);
}

describe('template cache on kube-lite', function () {
  this.timeout(60_000);
  let kube: TransportKubeObjects;
  let watched: WatchedObjects;
  let flows: CasFlows;
  let taskSource: SwitchableSource;
  let target: FakeTargetMgmt;
  const cvRef = { apiVersion: cas, kind: 'CStorVolume', namespace: ns, name: 'pvc-tc' };
  const healthyTask = { apiVersion: cas, kind: 'RunTask', namespace: ns, name: 'cstor-snapshot-create-healthy' };
  const snap = (name: string): unknown => ({ metadata: { name }, spec: { volumeName: 'pvc-tc' } });

  before(async () => {
    const kl = await startKubeLiteProc();
    const clients = createKubeClients(loadKubeConfig({ kubeconfigPath: kl.kubeconfig, env: {} }).kubeConfig);
    kube = new TransportKubeObjects(clients.transport);
    await kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    const crdDir = path.join(repoRoot, 'deploy', 'crds');
    for (const file of readdirSync(crdDir).filter((f) => f.endsWith('.yaml'))) {
      for (const doc of loadAll(readFileSync(path.join(crdDir, file), 'utf8'))) await kube.create(doc as KubeObject);
    }
    await eventually(async () => (await kube.list({ apiVersion: cas, kind: 'RunTask', namespace: ns })) && true, 'RunTask CRD established');
    await eventually(async () => (await kube.list({ apiVersion: cas, kind: 'CStorVolume', namespace: ns })) && true, 'CStorVolume CRD established');
    await installTemplates({ kube, logger: silentLogger(), namespace: ns });
    target = new FakeTargetMgmt();
    target.addVolume('pvc-tc', 'Degraded');
    await kube.create({ ...cvRef, metadata: { name: 'pvc-tc', namespace: ns }, spec: { targetMgmtAddress: '127.0.0.1:9500', capacity: '1G' } });
    await kube.patchStatus(cvRef, { status: { phase: 'Degraded' } });

    const kinds = templateCacheKinds(clients, ns).map((k) => (k.kind === 'RunTask' ? { ...k, source: (taskSource = new SwitchableSource(k.source)) } : k));
    watched = new WatchedObjects({ kinds, fallback: kube, logger: silentLogger(), backoff: { baseMs: 20, maxMs: 100 } });
    watched.start();
    expect(await watched.waitForSync(10_000)).to.equal(true);
    const engine = new CasEngine({ kube, http: target, logger: silentLogger(), namespace: ns, templates: watched });
    flows = new CasFlows({ engine, kube, logger: silentLogger(), reader: watched });
  });

  after(async () => {
    await watched?.stop();
    await stopAll();
  });

  it('an edit of a RunTask or CASTemplate through the API changes the runs after its watch event, with reads served by the cache', async () => {
    const reads: Record<string, number> = {};
    const counted = async <T>(run: () => Promise<T>): Promise<T> => {
      const before = watched.stats();
      const out = await run();
      for (const [k, v] of Object.entries(watched.stats())) reads[k] = (reads[k] ?? 0) + v - (before[k] ?? 0);
      return out;
    };
    for (let i = 0; i < 5; i++) {
      const edited = await kube.patch(healthyTask, { spec: { assert: { message: `snapshots paused (${i}) on {{ request.spec.volumeName }}` } } });
      await cached(watched, healthyTask, edited.metadata.resourceVersion);
      const err = await counted(() => failure(flows.createSnapshot(snap(`s-${i}`))));
      expect(err.message).to.equal(`task healthy (3 of 4) failed: snapshots paused (${i}) on pvc-tc`);
    }
    await kube.patchStatus(cvRef, { status: { phase: 'Healthy' } });
    target.addVolume('pvc-tc', 'Healthy');
    const templateRef = { apiVersion: cas, kind: 'CASTemplate', name: 'cstor-snapshot-create-default' };
    for (let i = 0; i < 5; i++) {
      const edited = await kube.patch(templateRef, { spec: { output: { spec: { casType: `cstor-edit-${i}` } } } });
      await cached(watched, templateRef, edited.metadata.resourceVersion);
      expect(await counted(() => flows.createSnapshot(snap(`ok-${i}`)))).to.have.nested.property('spec.casType', `cstor-edit-${i}`);
    }
    // Every read of the ten runs came from the cache; a volume made without a PV costs no API read.
    expect(reads).to.deep.equal({ 'RunTask/hit': 40, 'CASTemplate/hit': 10, 'PersistentVolume/miss': 10 });
    await kube.patchStatus(cvRef, { status: { phase: 'Degraded' } });
    target.addVolume('pvc-tc', 'Degraded');
  });

  it('while the RunTask watch is down, runs read RunTasks from the API server; once it is back, the cache serves again', async () => {
    taskSource.down = true;
    taskSource.cut();
    await eventually(() => !watched.isLive(cas, 'RunTask'), 'RunTask cache not live');
    await kube.patch(healthyTask, { spec: { assert: { message: 'edited while the watch is down ({{ request.spec.volumeName }})' } } });
    const before = watched.stats()['RunTask/not_live'] ?? 0;
    const err = await failure(flows.createSnapshot(snap('down-1')));
    expect(err.message).to.equal('task healthy (3 of 4) failed: edited while the watch is down (pvc-tc)');
    expect((watched.stats()['RunTask/not_live'] ?? 0) - before).to.equal(4);

    taskSource.down = false;
    await eventually(() => watched.isLive(cas, 'RunTask'), 'RunTask cache live again');
    const edited = await kube.patch(healthyTask, { spec: { assert: { message: 'edited once it is back ({{ request.spec.volumeName }})' } } });
    await cached(watched, healthyTask, edited.metadata.resourceVersion);
    const hits = watched.stats()['RunTask/hit'] ?? 0;
    const again = await failure(flows.createSnapshot(snap('back-1')));
    expect(again.message).to.equal('task healthy (3 of 4) failed: edited once it is back (pvc-tc)');
    expect((watched.stats()['RunTask/hit'] ?? 0) - hits).to.equal(4);
  });

  it('a PV and StorageClass made through the API pick the template of the next run', async () => {
    await kube.patchStatus(cvRef, { status: { phase: 'Healthy' } });
    target.addVolume('pvc-tc', 'Healthy');
    const copy = await kube.get({ apiVersion: cas, kind: 'CASTemplate', name: 'cstor-snapshot-create-default' });
    await kube.create({ apiVersion: cas, kind: 'CASTemplate', metadata: { name: 'tc-custom' }, spec: { ...(copy['spec'] as object), output: { custom: '{{ request.metadata.name }}' } } });
    await kube.create({
      apiVersion: 'storage.k8s.io/v1',
      kind: 'StorageClass',
      metadata: { name: 'tc-class', annotations: { 'cas.openebs.io/create-snapshot-template': 'tc-custom' } },
      provisioner: 'openebs.io/provisioner-iscsi',
    });
    await kube.create({
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: 'pvc-tc' },
      spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], storageClassName: 'tc-class', iscsi: { targetPortal: '127.0.0.1:3260', iqn: 'iqn.2016-09.com.openebs.cstor:pvc-tc', lun: 0 } },
    });
    // (kube-lite's PV controller updates the PV's status at once: wait for the object, not a version.)
    await eventually(async () => (await watched.get({ apiVersion: 'v1', kind: 'PersistentVolume', name: 'pvc-tc' }).catch(() => null)) !== null, 'the PV in the cache');
    await eventually(async () => (await watched.get({ apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', name: 'tc-class' }).catch(() => null)) !== null, 'the class in the cache');
    const before = watched.stats();
    expect(await flows.createSnapshot(snap('by-class'))).to.deep.equal({ custom: 'by-class' });
    const delta = (k: string): number => (watched.stats()[k] ?? 0) - (before[k] ?? 0);
    expect(delta('PersistentVolume/hit')).to.equal(1);
    expect(delta('StorageClass/hit')).to.equal(1);
  });
});
