import { expect } from 'chai';
import { Registry } from 'prom-client';
import { silentLogger } from '../logger.ts';
import { Controller, enqueueFrom } from './controller.ts';
import { FakeClock, flush } from './fake-clock.ts';
import { FakeListWatch } from './fake-list-watch.ts';
import { Informer } from './informer.ts';
import type { PersistentVolumeClaim } from './types/core.ts';
import type { VolumeSnapshot } from './types/volume-snapshot.ts';

describe('Controller wiring', () => {
  it('enqueues keys from several informers (mapped keys too) and reconciles from the cache', async () => {
    const clock = new FakeClock();
    const snaps = new FakeListWatch<VolumeSnapshot>();
    const claims = new FakeListWatch<PersistentVolumeClaim>();
    const common = { logger: silentLogger(), clock, resyncPeriodMs: 0, watchTimeoutSeconds: 300 };
    const snapInformer = new Informer<VolumeSnapshot>({ ...common, source: snaps, name: 'volumesnapshots', indexers: { claim: (s) => [`${s.metadata.namespace}/${s.spec.persistentVolumeClaimName}`] } });
    const claimInformer = new Informer<PersistentVolumeClaim>({ ...common, source: claims, name: 'pvcs' });
    snaps.put({ metadata: { name: 's1', namespace: 'ns' }, spec: { persistentVolumeClaimName: 'c1' } });
    claims.put({ metadata: { name: 'c1', namespace: 'ns' }, spec: {} });
    const reconciled: string[] = [];
    const registry = new Registry();
    const controller = new Controller({
      name: 'snapshots',
      logger: silentLogger(),
      clock,
      registry,
      workers: 2,
      sources: [
        enqueueFrom(snapInformer),
        // a claim change concerns the snapshots taken of it
        enqueueFrom(claimInformer, { keysFor: (c) => snapInformer.cache.byIndex('claim', `${c.metadata.namespace}/${c.metadata.name}`).map((s) => `${s.metadata.namespace}/${s.metadata.name}`) }),
      ],
      reconcile: async (key) => {
        const s = snapInformer.cache.get(key);
        reconciled.push(`${key}:${s ? s.metadata.resourceVersion : 'deleted'}`);
      },
    });
    const running = controller.run();
    await flush();
    expect(reconciled[0]).to.equal('ns/s1:1');
    claims.put({ metadata: { name: 'c1', namespace: 'ns' }, spec: { volumeName: 'pv1' } });
    await flush();
    expect(reconciled.at(-1)).to.equal('ns/s1:1');
    snaps.remove('ns/s1');
    await flush();
    expect(reconciled.at(-1)).to.equal('ns/s1:deleted');
    expect(await registry.metrics()).to.match(/workqueue_adds_total\{name="snapshots"\} [3-9]/);
    await controller.stop();
    await running;
    expect(snaps.openWatches + claims.openWatches).to.equal(0);
  });

  it('returns from run() when stopped before the caches synced', async () => {
    const clock = new FakeClock();
    const snaps = new FakeListWatch<VolumeSnapshot>();
    snaps.down = true;
    const informer = new Informer<VolumeSnapshot>({ source: snaps, name: 'volumesnapshots', logger: silentLogger(), clock, resyncPeriodMs: 0 });
    let calls = 0;
    const controller = new Controller({ name: 'c', logger: silentLogger(), clock, sources: [enqueueFrom(informer)], reconcile: async () => void calls++ });
    const running = controller.run();
    await clock.advance(1000);
    await controller.stop();
    await running;
    expect(calls).to.equal(0);
    expect(snaps.listCalls).to.be.greaterThan(1);
  });
});
