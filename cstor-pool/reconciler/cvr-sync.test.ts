// Table-driven units of the CVR sync steps over fakes: objects in → store calls, status
// patches, finalizers and Events out, with API and store errors injected.
import { expect } from 'chai';
import { CstorError, isCstorError } from '../../lib/errors.ts';
import { FakeWorld, ns, poolName } from './fakes.ts';
import { cvrFinalizer } from './types.ts';

interface Case {
  name: string;
  setup(w: FakeWorld): void;
  /** The volume whose CVR key is synced. */
  volume: string;
  /** Run sync this many times (default 1); a later run must not redo what an earlier did. */
  runs?: number;
  want: {
    /** Error code thrown by the LAST run (retry with backoff); undefined: no throw. */
    throws?: string;
    phase?: string | null;
    reason?: string;
    message?: RegExp;
    capacity?: { total: string; used: number };
    /** Replicas in the store afterwards, with their sizes. */
    replicas?: Record<string, number>;
    /** Calls made (exactly), across all runs. */
    calls?: string[];
    /** Event reasons recorded (exactly), in order. */
    events?: string[];
    finalizer?: boolean;
    /** The CVR is gone from the API afterwards. */
    gone?: boolean;
    owned?: string[];
    dropped?: string[];
  };
}

const key = (volume: string): string => `${ns}/${volume}-${poolName}`;
const GiB = 2 ** 30;

const cases: Case[] = [
  {
    name: 'a new CVR → replica created with the size rounded up to the block, status Init with capacity',
    setup: (w) => void w.addCvr('pv1', { capacity: '5G' }),
    volume: 'pv1',
    want: {
      phase: 'Init',
      capacity: { total: '5G', used: 0 },
      replicas: { pv1: 5_000_003_584 },
      calls: ['store.createReplica pv1', 'cvrs.patchStatus openebs/pv1-pool-a'],
      events: ['Created'],
      finalizer: true,
      owned: ['pv1'],
    },
  },
  {
    name: 'synced twice → one create, one status patch (idempotent)',
    setup: (w) => void w.addCvr('pv1', { capacity: '1Gi' }),
    volume: 'pv1',
    runs: 2,
    want: {
      phase: 'Init',
      replicas: { pv1: GiB },
      calls: ['store.createReplica pv1', 'cvrs.patchStatus openebs/pv1-pool-a'],
      events: ['Created'],
    },
  },
  {
    name: 'a CVR without the finalizer → finalizer added first, then the replica',
    setup: (w) => void w.addCvr('pv1', { finalizer: false }),
    volume: 'pv1',
    want: {
      phase: 'Init',
      finalizer: true,
      calls: ['cvrs.mergePatch openebs/pv1-pool-a', 'store.createReplica pv1', 'cvrs.patchStatus openebs/pv1-pool-a'],
    },
  },
  {
    name: 'adding the finalizer hits a 409 (stale cache) → retried, nothing created yet',
    setup: (w) => {
      w.addCvr('pv1', { finalizer: false });
      w.failNext('cvrs.mergePatch', new CstorError('conflict', 'the object has been modified'));
    },
    volume: 'pv1',
    want: { throws: 'conflict', replicas: {}, calls: ['cvrs.mergePatch openebs/pv1-pool-a'], phase: null },
  },
  {
    name: 'the replica exists (crash after create, before status) → no second create, status from its mode',
    setup: (w) => {
      w.addCvr('pv1');
      w.addReplica('pv1', { size: GiB, mode: 'Healthy', usedBytes: 8192 });
    },
    volume: 'pv1',
    want: { phase: 'Healthy', capacity: { total: '1Gi', used: 8192 }, calls: ['cvrs.patchStatus openebs/pv1-pool-a'], events: [], replicas: { pv1: GiB } },
  },
  {
    name: 'a Healthy CVR whose replica vanished from the store → recreated empty in Rebuilding mode (never New: not a fresh volume), Warning ReplicaRecreated',
    setup: (w) => void w.addCvr('pv1', { status: { phase: 'Healthy', capacity: { total: '1Gi', used: 4096 } } }),
    volume: 'pv1',
    want: {
      phase: 'Rebuilding',
      replicas: { pv1: GiB },
      events: ['ReplicaRecreated', 'Created'],
      calls: ['store.createReplica pv1', 'store.openReplica pv1', 'replica.rebuildStart pv1 null', 'cvrs.patchStatus openebs/pv1-pool-a'],
      dropped: ['pv1'],
    },
  },
  {
    name: 'status already true → no patch at all',
    setup: (w) => {
      w.addCvr('pv1', { status: { phase: 'Rebuilding', capacity: { total: '1Gi', used: 0 } } });
      w.addReplica('pv1', { size: GiB, mode: 'Rebuilding' });
    },
    volume: 'pv1',
    want: { phase: 'Rebuilding', calls: [] },
  },
  {
    name: 'a stale Error reason is cleared once the replica is fine',
    setup: (w) => {
      w.addCvr('pv1', { status: { phase: 'Error', reason: 'CreateFailed', message: 'disk full' } });
      w.addReplica('pv1', { size: GiB, mode: 'New' });
    },
    volume: 'pv1',
    want: { phase: 'Init', reason: '', calls: ['cvrs.patchStatus openebs/pv1-pool-a'] },
  },
  {
    name: 'a clone CVR → replica cloned from <source>@<snapshot>',
    setup: (w) => {
      w.addReplica('src', { size: GiB, snapshots: ['snap1'] });
      w.addCvr('cl1', { clone: { source: 'src', snapshot: 'snap1' } });
    },
    volume: 'cl1',
    want: {
      phase: 'Init',
      replicas: { src: GiB, cl1: GiB },
      calls: ['store.createReplica cl1<-src@snap1', 'cvrs.patchStatus openebs/cl1-pool-a'],
      events: ['Cloned'],
    },
  },
  {
    name: 'a clone whose snapshot is missing → Error + one Warning, retried with backoff (twice: still one Event)',
    setup: (w) => {
      w.addReplica('src', { size: GiB, snapshots: [] });
      w.addCvr('cl1', { clone: { source: 'src', snapshot: 'nope' } });
    },
    volume: 'cl1',
    runs: 2,
    want: {
      throws: 'not_found',
      phase: 'Error',
      reason: 'CloneSourceMissing',
      message: /cannot clone replica cl1 from src@nope: the source snapshot is not in pool pool-a/,
      events: ['CloneSourceMissing'],
      replicas: { src: GiB },
      calls: ['store.createReplica cl1<-src@nope', 'cvrs.patchStatus openebs/cl1-pool-a', 'store.createReplica cl1<-src@nope'],
    },
  },
  {
    name: 'a clone labelled cloned without its annotations → InvalidSpec, not retried',
    setup: (w) => {
      const c = w.addCvr('cl1', { clone: { source: 'src', snapshot: 's' } });
      c.metadata.annotations = {};
    },
    volume: 'cl1',
    want: { phase: 'Error', reason: 'InvalidSpec', message: /needs the annotation openebs.io\/source-volume.*openebs.io\/snapshot/, calls: ['cvrs.patchStatus openebs/cl1-pool-a'], events: ['InvalidSpec'] },
  },
  {
    name: 'a bad capacity and no volume label → InvalidSpec naming both problems',
    setup: (w) => void w.addCvr('pv1', { capacity: '5GB', labels: { 'openebs.io/persistent-volume': null } }),
    volume: 'pv1',
    want: { phase: 'Error', reason: 'InvalidSpec', message: /label openebs.io\/persistent-volume .*missing; spec.capacity: capacity "5GB" is not a quantity/, replicas: {} },
  },
  {
    name: 'the replica exists with another size → ReplicaMismatch, data left alone',
    setup: (w) => {
      w.addCvr('pv1', { capacity: '2Gi' });
      w.addReplica('pv1', { size: GiB });
    },
    volume: 'pv1',
    want: { phase: 'Error', reason: 'ReplicaMismatch', message: /holds 1073741824 bytes; spec.capacity 2Gi asks for 2147483648/, replicas: { pv1: GiB }, calls: ['cvrs.patchStatus openebs/pv1-pool-a'] },
  },
  {
    name: 'the store fails to create (disk) → CreateFailed, retried',
    setup: (w) => {
      w.addCvr('pv1');
      w.failNext('store.createReplica', new CstorError('io', 'ENOSPC: no space left on device'));
    },
    volume: 'pv1',
    want: { throws: 'io', phase: 'Error', reason: 'CreateFailed', message: /ENOSPC/, events: ['CreateFailed'], owned: ['pv1'] },
  },
  {
    name: 'the status patch fails (API down) → thrown for a retry; the replica exists, the next run only patches',
    setup: (w) => {
      w.addCvr('pv1');
      w.failNext('cvrs.patchStatus', new CstorError('unavailable', 'connect ECONNREFUSED'));
    },
    volume: 'pv1',
    want: { throws: 'unavailable', replicas: { pv1: GiB }, phase: null },
  },
  {
    name: 'deleting → replica deleted (connections dropped), then finalizer removed and the CVR gone',
    setup: (w) => {
      w.addCvr('pv1', { deleting: true });
      w.addReplica('pv1');
      void w.owned.add('pv1', { cvr: key('pv1'), uid: 'uid-1', createdAt: 0 });
    },
    volume: 'pv1',
    want: { gone: true, replicas: {}, dropped: ['pv1'], owned: [], calls: ['store.deleteReplica pv1', 'cvrs.mergePatch openebs/pv1-pool-a'] },
  },
  {
    name: 'deleting, replica already gone (crash after delete) → only the finalizer',
    setup: (w) => void w.addCvr('pv1', { deleting: true }),
    volume: 'pv1',
    want: { gone: true, calls: ['store.deleteReplica pv1', 'cvrs.mergePatch openebs/pv1-pool-a'] },
  },
  {
    name: 'deleting, the store delete fails → finalizer kept, Warning, retried',
    setup: (w) => {
      w.addCvr('pv1', { deleting: true });
      w.addReplica('pv1');
      w.failNext('store.deleteReplica', new CstorError('io', 'EIO'));
    },
    volume: 'pv1',
    want: { throws: 'io', finalizer: true, events: ['DeleteFailed'], replicas: { pv1: GiB } },
  },
  {
    name: 'deleting, the finalizer patch conflicts → replica deleted, finalizer retried',
    setup: (w) => {
      w.addCvr('pv1', { deleting: true });
      w.addReplica('pv1');
      w.failNext('cvrs.mergePatch', new CstorError('conflict', 'modified'));
    },
    volume: 'pv1',
    want: { throws: 'conflict', finalizer: true, replicas: {} },
  },
  {
    name: 'deleting without our finalizer → nothing touched',
    setup: (w) => {
      w.addCvr('pv1', { deleting: true, finalizer: false });
      w.addReplica('pv1');
    },
    volume: 'pv1',
    want: { calls: [], replicas: { pv1: GiB } },
  },
  {
    name: 'a deleting CVR whose volume another CVR owns → data left, finalizer removed',
    setup: (w) => {
      w.addCvr('pv1', { deleting: true });
      w.addReplica('pv1');
      void w.owned.add('pv1', { cvr: 'openebs/other', uid: 'x', createdAt: 0 });
    },
    volume: 'pv1',
    want: { gone: true, replicas: { pv1: GiB }, calls: ['cvrs.mergePatch openebs/pv1-pool-a'] },
  },
  {
    name: 'a CVR of another pool → ignored',
    setup: (w) => {
      const c = w.addCvr('pv1');
      c.metadata.labels = { ...c.metadata.labels, 'cstorpool.openebs.io/name': 'pool-b' };
    },
    volume: 'pv1',
    want: { calls: [], replicas: {} },
  },
  {
    name: 'a key no longer in the cache → nothing',
    setup: () => {},
    volume: 'pv9',
    want: { calls: [] },
  },
];

describe('pool reconciler: CVR sync steps (fakes)', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const w = new FakeWorld();
      c.setup(w);
      const syncer = w.syncer();
      let thrown: unknown;
      for (let i = 0; i < (c.runs ?? 1); i++) {
        thrown = undefined;
        try {
          await syncer.sync(key(c.volume));
        } catch (err) {
          thrown = err;
        }
      }
      const want = c.want;
      if (want.throws) {
        expect(isCstorError(thrown), String(thrown)).to.equal(true);
        expect((thrown as CstorError).code).to.equal(want.throws);
        expect((thrown as CstorError).retryable).to.equal(true);
      } else if (thrown) {
        throw thrown;
      }
      const cvr = w.cvr(c.volume);
      if (want.gone) expect(cvr, 'CVR should be gone').to.equal(undefined);
      if (want.phase !== undefined) expect(cvr?.status?.phase ?? null).to.equal(want.phase);
      if (want.reason !== undefined) expect(cvr?.status?.reason ?? '').to.equal(want.reason);
      if (want.message) expect(cvr?.status?.message ?? '').to.match(want.message);
      if (want.capacity) expect(cvr?.status?.capacity).to.deep.equal(want.capacity);
      if (want.phase && w.calls.some((x) => x.startsWith('cvrs.patchStatus'))) expect(cvr?.status?.lastUpdateTime).to.equal('2026-01-02T03:04:05Z');
      if (want.replicas) expect(Object.fromEntries([...w.replicas].map(([v, r]) => [v, r.size]))).to.deep.equal(want.replicas);
      if (want.calls) expect(w.calls).to.deep.equal(want.calls);
      if (want.events) expect(w.events.map((e) => e.reason)).to.deep.equal(want.events);
      if (want.finalizer !== undefined) expect(cvr?.metadata.finalizers?.includes(cvrFinalizer) ?? false).to.equal(want.finalizer);
      if (want.owned) expect([...w.owned.entries.keys()]).to.deep.equal(want.owned);
      if (want.dropped) expect(w.dropped).to.deep.equal(want.dropped);
      for (const e of w.events) expect(e.message.length).to.be.greaterThan(10);
    });
  }

  it('a problem that repeats is recorded once; a new message is recorded again', async () => {
    const w = new FakeWorld();
    w.addCvr('pv1');
    w.failNext('store.createReplica', new CstorError('io', 'EIO one'), 3);
    const s = w.syncer();
    for (let i = 0; i < 3; i++) await s.sync(key('pv1')).catch(() => {});
    w.failNext('store.createReplica', new CstorError('io', 'EIO two'));
    await s.sync(key('pv1')).catch(() => {});
    expect(w.events.map((e) => e.message)).to.deep.equal([
      'cannot create replica pv1 in pool pool-a: EIO one',
      'cannot create replica pv1 in pool pool-a: EIO two',
    ]);
    await s.sync(key('pv1'));
    expect(w.cvr('pv1')?.status?.phase).to.equal('Init');
    expect(w.cvr('pv1')?.status?.reason).to.equal(undefined);
  });

  it('a clone waits for its snapshot: Error while missing, Init once it appears', async () => {
    const w = new FakeWorld();
    w.addReplica('src', { snapshots: [] });
    w.addCvr('cl1', { clone: { source: 'src', snapshot: 's1' } });
    const s = w.syncer();
    await s.sync(key('cl1')).catch(() => {});
    expect(w.cvr('cl1')?.status?.phase).to.equal('Error');
    w.addReplica('src', { snapshots: ['s1'] });
    await s.sync(key('cl1'));
    expect(w.cvr('cl1')?.status?.phase).to.equal('Init');
    expect(w.replicas.get('cl1')?.cloneOf).to.equal('src@s1');
  });

  it('phases follow the store mode: New → Init, Healthy → Healthy, Rebuilding → Rebuilding', async () => {
    const w = new FakeWorld();
    w.addCvr('pv1');
    const s = w.syncer();
    await s.sync(key('pv1'));
    expect(w.cvr('pv1')?.status?.phase).to.equal('Init');
    for (const [mode, phase] of [['Healthy', 'Healthy'], ['Rebuilding', 'Rebuilding'], ['Healthy', 'Healthy']] as const) {
      w.replicas.get('pv1')!.mode = mode;
      w.replicas.get('pv1')!.usedBytes += 4096;
      await s.sync(key('pv1'));
      expect(w.cvr('pv1')?.status?.phase).to.equal(phase);
    }
    expect(w.cvr('pv1')?.status?.capacity).to.deep.equal({ total: '1Gi', used: 12288 });
  });

  describe('orphan sweep', () => {
    it('deletes only recorded replicas with no CVR, after a live list confirms it', async () => {
      const w = new FakeWorld();
      w.addCvr('kept');
      w.addReplica('kept');
      w.addReplica('orphan');
      w.addReplica('not-ours'); // made through the mgmt API: never recorded
      await w.owned.add('kept', { cvr: key('kept'), uid: 'u1', createdAt: 0 });
      await w.owned.add('orphan', { cvr: key('orphan'), uid: 'u2', createdAt: 0 });
      await w.owned.add('never-made', { cvr: key('never-made'), uid: 'u3', createdAt: 0 });
      const deleted = await w.syncer().sweepOrphans();
      expect(deleted).to.deep.equal(['orphan']);
      expect([...w.replicas.keys()].sort()).to.deep.equal(['kept', 'not-ours']);
      expect([...w.owned.entries.keys()]).to.deep.equal(['kept']);
      expect(w.calls).to.include('cvrs.list '); // the whole namespace: a moved CVR keeps its data (adversarial.test.ts)
      expect(w.dropped).to.deep.equal(['orphan']);
      expect(w.events.map((e) => `${e.object} ${e.reason}`)).to.deep.equal(['CStorPool/pool-a OrphanDeleted']);
    });

    it('keeps a replica whose CVR the cache has not seen yet but the API server has', async () => {
      const w = new FakeWorld();
      w.addReplica('pv1');
      await w.owned.add('pv1', { cvr: key('pv1'), uid: 'u1', createdAt: 0 });
      const syncer = w.syncer();
      // The cache is empty (lagging); the API answers the list with the CVR.
      const lagging = new FakeWorld();
      lagging.addCvr('pv1');
      w.cvrClient.list = lagging.cvrClient.list;
      (syncer as unknown as { d: { cache: { list(): unknown[] } } }).d.cache.list = () => [];
      expect(await syncer.sweepOrphans()).to.deep.equal([]);
      expect(w.replicas.has('pv1')).to.equal(true);
    });

    it('a failed list deletes nothing', async () => {
      const w = new FakeWorld();
      w.addReplica('orphan');
      await w.owned.add('orphan', { cvr: key('orphan'), uid: 'u', createdAt: 0 });
      w.failNext('cvrs.list', new CstorError('unavailable', 'down'));
      let err: unknown;
      await w.syncer().sweepOrphans().catch((e: unknown) => (err = e));
      expect(isCstorError(err) && err.code).to.equal('unavailable');
      expect(w.replicas.has('orphan')).to.equal(true);
    });
  });

  it('markOffline sets Offline on the CVRs that have a phase (not Error ones, not deleting ones)', async () => {
    const w = new FakeWorld();
    w.addCvr('a', { status: { phase: 'Healthy', capacity: { total: '1Gi', used: 4096 } } });
    w.addCvr('b', { status: { phase: 'Error', reason: 'InvalidSpec', message: 'x' } });
    w.addCvr('c', { deleting: true, status: { phase: 'Healthy' } });
    w.addCvr('d');
    expect(await w.syncer().markOffline()).to.equal(1);
    expect(w.cvr('a')?.status).to.deep.include({ phase: 'Offline', reason: 'PoolStopped', capacity: { total: '1Gi', used: 4096 } });
    expect(w.cvr('b')?.status?.phase).to.equal('Error');
  });
});
