// The lib/kube informer and work queue against a real kube-lite that is killed (-9) and
// restarted mid-watch: no event lost, the cache and the reconciled view end equal to the server.
import { expect } from 'chai';
import { silentLogger } from '../../lib/logger.ts';
import { Informer } from '../../lib/kube/informer.ts';
import { objectKey } from '../../lib/kube/keys.ts';
import type { ResourceClient } from '../../lib/kube/resource-client.ts';
import { resources } from '../../lib/kube/resources.ts';
import { runWorkers } from '../../lib/kube/run-workers.ts';
import type { KubeObject } from '../../lib/kube/types/meta.ts';
import { WorkQueue } from '../../lib/kube/work-queue.ts';
import { stopAll } from '../support/daemon.ts';
import { KubeLiteHarness, waitFor } from './kube-lite-harness.ts';

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

const ns = 'default';
const label = 'lib-kube-test=informer';

async function serverState(client: ResourceClient<ConfigMap>): Promise<Map<string, string>> {
  const list = await client.list({ namespace: ns, labelSelector: label });
  return new Map(list.items.map((o) => [objectKey(o), o.data?.v ?? '']));
}

function mapOf(objs: ConfigMap[]): Map<string, string> {
  return new Map(objs.map((o) => [objectKey(o), o.data?.v ?? '']));
}

function show(m: Map<string, string>): string {
  return JSON.stringify([...m].sort());
}

function cm(name: string, v: string): ConfigMap {
  return { metadata: { name, namespace: ns, labels: { 'lib-kube-test': 'informer' } }, data: { v } };
}

describe('lib/kube informer + work queue against kube-lite (restarts)', function () {
  this.timeout(120_000);
  const kl = new KubeLiteHarness();
  let informer: Informer<ConfigMap> | undefined;
  let queue: WorkQueue | undefined;

  after(async () => {
    queue?.shutDown();
    await informer?.stop();
    await stopAll();
    kl.cleanup();
  });

  it('misses nothing across kill -9 and restarts on the same port, with writes during and after', async () => {
    await kl.start();
    const client = kl.client<ConfigMap>(resources.configMaps);
    for (let i = 0; i < 10; i++) await client.create(cm(`cm-${i}`, 'v0'));
    // one object outside the label selector: must never appear
    await client.create({ metadata: { name: 'unlabelled', namespace: ns }, data: { v: 'x' } });

    informer = new Informer<ConfigMap>({
      source: client,
      name: 'configmaps',
      logger: silentLogger(),
      namespace: ns,
      labelSelector: label,
      backoff: { baseMs: 100, maxMs: 1000 },
      resyncPeriodMs: 0,
      indexers: { value: (o) => [o.data?.v ?? ''] },
    });
    const deletes: string[] = [];
    queue = new WorkQueue({ name: 'configmaps' });
    const q = queue;
    informer.addHandlers({
      onAdd: (o) => q.add(objectKey(o)),
      onUpdate: (_old, o) => q.add(objectKey(o)),
      onDelete: (o) => {
        deletes.push(objectKey(o));
        q.add(objectKey(o));
      },
    });
    // The "controller": reconcile reads the cache and mirrors it into `view`.
    const view = new Map<string, string>();
    const inf = informer;
    const workers = runWorkers(
      queue,
      async (key) => {
        const o = inf.cache.get(key);
        if (o) view.set(key, o.data?.v ?? '');
        else view.delete(key);
      },
      { workers: 3, logger: silentLogger() },
    );
    informer.start();
    await informer.waitForSync();
    expect(informer.cache.size).to.equal(10);

    const converged = async (what: string): Promise<void> => {
      let server = new Map<string, string>();
      await waitFor(
        async () => {
          server = await serverState(client);
          return show(mapOf(inf.cache.list())) === show(server) && show(view) === show(server) && q.length === 0;
        },
        what,
        30_000,
        () => `server ${show(server)}\ncache ${show(mapOf(inf.cache.list()))}\nview ${show(view)}`,
      );
    };

    // Live changes.
    for (let i = 0; i < 10; i += 2) await client.mergePatch({ name: `cm-${i}`, namespace: ns }, { data: { v: 'v1' } });
    await client.delete({ name: 'cm-9', namespace: ns });
    await converged('live changes');

    // Round 1: kill -9 mid-watch; restart on the same data dir and port; write right after.
    await kl.kill();
    await kl.start();
    await client.delete({ name: 'cm-1', namespace: ns });
    await client.mergePatch({ name: 'cm-2', namespace: ns }, { data: { v: 'v2' } });
    await client.create(cm('cm-new-1', 'v0'));
    await converged('after restart 1');
    expect(deletes).to.include.members([`${ns}/cm-9`, `${ns}/cm-1`]);

    // Round 2: while the informer cannot reach its server, a kube-lite on ANOTHER port (same
    // data) takes many writes, more than the watch history keeps; then the original port comes
    // back with a short history, so the informer's resourceVersion is expired (410) and it must
    // relist and diff deletes.
    await kl.kill();
    const side = await kl.startElsewhere(['--history-size', '3']);
    const sideClient = kl.freshClient<ConfigMap>(resources.configMaps);
    await sideClient.delete({ name: 'cm-3', namespace: ns });
    await sideClient.delete({ name: 'cm-4', namespace: ns });
    await sideClient.mergePatch({ name: 'cm-5', namespace: ns }, { data: { v: 'v3' } });
    for (let i = 0; i < 6; i++) await sideClient.create(cm(`cm-side-${i}`, 'v0'));
    // an object created and deleted while the informer was away: never seen, nothing to report
    await sideClient.create(cm('cm-ephemeral', 'v0'));
    await sideClient.delete({ name: 'cm-ephemeral', namespace: ns });
    await side.kill();
    await kl.start(['--history-size', '3']);
    await client.create(cm('cm-new-2', 'v0'));
    await converged('after the 410 relist');
    expect(deletes).to.include.members([`${ns}/cm-3`, `${ns}/cm-4`]);
    expect(deletes).to.not.include(`${ns}/cm-ephemeral`);
    expect(informer.cache.byIndex('value', 'v3').map(objectKey)).to.deep.equal([`${ns}/cm-5`]);
    expect(informer.cache.get(`${ns}/unlabelled`)).to.equal(undefined);
    expect(informer.counters.lists, 'relisted after 410').to.be.greaterThan(1);

    // Round 3: stop gracefully, write nothing, come back: the watch resumes.
    await kl.stop();
    await kl.start();
    await client.mergePatch({ name: 'cm-0', namespace: ns }, { data: { v: 'v9' } });
    await converged('after a graceful restart');

    queue.shutDown();
    await workers;
  });
});
