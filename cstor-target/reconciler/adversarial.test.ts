// Adversarial scenarios for the target reconciler over the fakes: two targets and one shared
// finalizer name, deletes while the assigned target is down, spec edits while served, API
// errors in the middle of a stop, replica lists that shrink or grow while served.
import { expect } from 'chai';
import { CstorError } from '../../lib/errors.ts';
import { silentLogger } from '../../lib/logger.ts';
import { FakeTargetWorld, ns } from './fakes.ts';
import { cvFinalizer, cvrLabels } from './types.ts';
import { VolumeSyncer } from './volume-sync.ts';

const pools3 = ['pool-a', 'pool-b', 'pool-c'];
const addrs3 = ['127.0.0.1:3230', '127.0.0.1:3231', '127.0.0.1:3232'];
const key = (name: string): string => `${ns}/${name}`;
const other = '10.0.0.6';

/** A second target process: its own engine and Events, the same API objects and caches as `w`. */
function otherTarget(w: FakeTargetWorld): { syncer: VolumeSyncer; engine: FakeTargetWorld } {
  const own = new FakeTargetWorld();
  const syncer = new VolumeSyncer({
    advertise: other,
    caches: {
      volume: (k) => w.cvs.get(k),
      replicasOf: (pv) => w.cvrs.filter((c) => c.metadata.labels?.[cvrLabels.persistentVolume] === pv),
      pool: (name) => w.pools.get(name),
    },
    cvs: w.cvClient,
    engine: own.engine,
    events: own.eventSink,
    clock: w.clock,
    logger: silentLogger(),
    enqueue: () => {},
  });
  return { syncer, engine: own };
}

const finalizerPatches = (w: FakeTargetWorld): number => w.calls.filter((c) => c.startsWith('cvs.mergePatch')).length;

describe('target reconciler: adversarial scenarios (fakes)', () => {
  it('a target neither assigned the volume nor serving it leaves the shared finalizer alone (no fight with the serving target)', async () => {
    const w = new FakeTargetWorld();
    w.addCv('pv1');
    w.addReplicas('pv1', pools3);
    const mine = w.syncer();
    const b = otherTarget(w);
    for (let i = 0; i < 3; i++) {
      await mine.sync(key('pv1'));
      await b.syncer.sync(key('pv1'));
    }
    expect(w.cv('pv1')?.metadata.finalizers).to.deep.equal([cvFinalizer]);
    expect(finalizerPatches(w), 'only the assigned target added it, once').to.equal(1);
    expect(b.engine.calls).to.deep.equal([]);
    expect(w.served.has('pv1')).to.equal(true);
  });

  it('deleted while its own target is down: another target does not let it go; the own target, back, stops serving it and then lets it go', async () => {
    const w = new FakeTargetWorld();
    w.addCv('pv1', { finalizer: true, deleting: true });
    w.addReplicas('pv1', pools3);
    w.served.set('pv1', { name: 'pv1', capacity: 1000001536, replicationFactor: 3, replicas: addrs3, blockSize: 4096 }); // from its state file
    const b = otherTarget(w);
    await b.syncer.sync(key('pv1'));
    expect(w.cv('pv1'), 'still held by the finalizer').to.not.equal(undefined);
    expect(w.calls).to.deep.equal([]);
    await w.syncer().sync(key('pv1'));
    expect(w.calls).to.deep.equal(['engine.stop pv1', 'cvs.mergePatch openebs/pv1']);
    expect(w.cv('pv1')).to.equal(undefined);
  });

  it('reassigned away while this target still serves it (e.g. from its state file after a restart): stopped, so two targets never serve it', async () => {
    const w = new FakeTargetWorld();
    w.addCv('pv1', { finalizer: true, spec: { targetIP: other } });
    w.addReplicas('pv1', pools3);
    w.served.set('pv1', { name: 'pv1', capacity: 1000001536, replicationFactor: 3, replicas: addrs3, blockSize: 4096 });
    await w.syncer().sync(key('pv1'));
    expect(w.served.has('pv1')).to.equal(false);
    expect(w.calls[0]).to.equal('engine.stop pv1');
  });

  it('spec.capacity edited while served: kept served at its size (never stopped), Warning ResizeNotSupported once, reason in status', async () => {
    const w = new FakeTargetWorld();
    w.addCv('pv1');
    w.addReplicas('pv1', pools3);
    const s = w.syncer();
    await s.sync(key('pv1'));
    w.setEngine('pv1', 'Healthy', 'Healthy');
    await s.sync(key('pv1'));
    expect(w.cv('pv1')?.status?.phase).to.equal('Healthy');
    const cv = w.cv('pv1')!;
    cv.spec = { ...cv.spec, capacity: '2G' };
    w.calls.length = 0;
    await s.sync(key('pv1'));
    await s.sync(key('pv1'));
    expect(w.calls.filter((c) => c.startsWith('engine.')), 'not stopped, not served again').to.deep.equal([]);
    expect(w.served.get('pv1')?.capacity).to.equal(1000001536);
    expect(w.events.filter((e) => e.reason === 'ResizeNotSupported')).to.have.length(1);
    expect(w.cv('pv1')?.status?.phase).to.equal('Healthy');
    expect(w.cv('pv1')?.status?.reason).to.equal('ResizeNotSupported');
    expect(w.cv('pv1')?.status?.message).to.match(/resizing is not supported/);
    // A replica set change still re-serves, at the served size.
    w.setPool('pool-b', '127.0.0.1:4000');
    await s.sync(key('pv1'));
    expect(w.served.get('pv1')).to.deep.include({ capacity: 1000001536, replicas: ['127.0.0.1:3230', '127.0.0.1:4000', '127.0.0.1:3232'] });
    // Edited back: the reason goes.
    w.cv('pv1')!.spec = { ...w.cv('pv1')!.spec, capacity: '1G' };
    w.setEngine('pv1', 'Healthy', 'Healthy');
    await s.sync(key('pv1'));
    expect(w.cv('pv1')?.status?.reason).to.equal(undefined);
  });

  it('the finalizer removal fails (HTTP 500) after the stop: retried; stopped once, then the object goes', async () => {
    const w = new FakeTargetWorld();
    w.addCv('pv1', { finalizer: true, deleting: true });
    w.served.set('pv1', { name: 'pv1', capacity: 1000001536, replicationFactor: 3, replicas: addrs3, blockSize: 4096 });
    w.failNext('cvs.mergePatch', new CstorError('unavailable', 'HTTP 500'));
    const s = w.syncer();
    let err: unknown;
    await s.sync(key('pv1')).catch((e: unknown) => (err = e));
    expect((err as CstorError).code).to.equal('unavailable');
    expect(w.cv('pv1')?.metadata.finalizers).to.deep.equal([cvFinalizer]);
    await s.sync(key('pv1'));
    expect(w.calls.filter((c) => c === 'engine.stop pv1')).to.have.length(1);
    expect(w.cv('pv1')).to.equal(undefined);
  });

  it('replicationFactor edited while served (3 → 1 with 3 CVRs, 3 → 5): the served set is kept, not restarted', async () => {
    const w = new FakeTargetWorld();
    w.addCv('pv1');
    w.addReplicas('pv1', pools3);
    const s = w.syncer();
    await s.sync(key('pv1'));
    for (const rf of [1, 5]) {
      w.cv('pv1')!.spec = { ...w.cv('pv1')!.spec, replicationFactor: rf };
      w.calls.length = 0;
      await s.sync(key('pv1'));
      expect(w.calls.filter((c) => c.startsWith('engine.'))).to.deep.equal([]);
      expect(w.served.get('pv1')?.replicas).to.deep.equal(addrs3);
    }
  });

  it('a CVR moved to another pool (pool-c → pool-d): served again with the new set once pool-d has an address; never with a half-known set', async () => {
    const w = new FakeTargetWorld();
    w.addCv('pv1');
    w.addReplicas('pv1', pools3);
    const s = w.syncer();
    await s.sync(key('pv1'));
    const cvr = w.cvrs.find((c) => c.metadata.name === 'pv1-pool-c')!;
    cvr.metadata.labels = { ...cvr.metadata.labels, [cvrLabels.pool]: 'pool-d' };
    w.calls.length = 0;
    await s.sync(key('pv1')); // pool-d not registered yet
    expect(w.calls.filter((c) => c.startsWith('engine.'))).to.deep.equal([]);
    w.setPool('pool-d', '127.0.0.1:5000');
    await s.sync(key('pv1'));
    expect(w.served.get('pv1')?.replicas).to.deep.equal(['127.0.0.1:3230', '127.0.0.1:3231', '127.0.0.1:5000']);
  });
});
