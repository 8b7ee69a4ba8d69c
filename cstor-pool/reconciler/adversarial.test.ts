// Adversarial scenarios for the pool reconciler over the fakes: CVRs moved between pools, two
// CVRs naming one replica, deletes and re-creates while the daemon is down, stale caches and
// API errors. The rule under test: data that a CStorVolumeReplica may still want is never
// deleted, and data whose CVR is gone is deleted exactly once.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { CstorError } from '../../lib/errors.ts';
import { FakeWorld, ns, poolName } from './fakes.ts';
import { FileOwnedReplicas, MemoryOwnedReplicas } from './owned-replicas.ts';
import { CvrSyncer } from './cvr-sync.ts';
import { openPool } from '../store/pool.ts';
import { silentLogger } from '../../lib/logger.ts';
import { cvrFinalizer, cvrLabels } from './types.ts';

const key = (volume: string, pool = poolName): string => `${ns}/${volume}-${pool}`;
const GiB = 2 ** 30;
const deletes = (w: FakeWorld): string[] => w.calls.filter((c) => c.startsWith('store.deleteReplica'));

describe('pool reconciler: adversarial scenarios (fakes)', () => {
  it('two CVRs of this pool name one replica (one moved here): deleting the recorded owner keeps the data for the other; deleting the other deletes it once', async () => {
    const w = new FakeWorld();
    w.addCvr('pv1'); // pv1-pool-a
    const moved = w.addCvr('pv1', { pool: 'pool-b' }); // pv1-pool-b ...
    moved.metadata.labels = { ...moved.metadata.labels, [cvrLabels.pool]: poolName }; // ... moved to pool-a
    const s = w.syncer();
    await s.sync(key('pv1'));
    await s.sync(key('pv1', 'pool-b'));
    expect(w.calls.filter((c) => c.startsWith('store.createReplica'))).to.deep.equal(['store.createReplica pv1']);
    expect(w.owned.get('pv1')?.cvr).to.equal(key('pv1'));
    w.replicas.get('pv1')!.usedBytes = 4096; // data written

    w.cvr('pv1')!.metadata.deletionTimestamp = '2026-01-02T03:05:00Z';
    await s.sync(key('pv1'));
    expect(w.cvr('pv1'), 'the deleted CVR goes').to.equal(undefined);
    expect(deletes(w), 'the replica the other CVR names is kept').to.deep.equal([]);
    expect(w.replicas.get('pv1')?.usedBytes).to.equal(4096);
    expect(w.owned.get('pv1')?.cvr, 'the record follows the remaining CVR').to.equal(key('pv1', 'pool-b'));
    expect(await s.sweepOrphans()).to.deep.equal([]);
    await s.sync(key('pv1', 'pool-b'));
    expect(w.calls.filter((c) => c.startsWith('store.createReplica')).length, 'not recreated').to.equal(1);

    w.cvrs.get(key('pv1', 'pool-b'))!.metadata.deletionTimestamp = '2026-01-02T03:06:00Z';
    await s.sync(key('pv1', 'pool-b'));
    await s.sync(key('pv1', 'pool-b'));
    expect(await s.sweepOrphans()).to.deep.equal([]);
    expect(deletes(w)).to.deep.equal(['store.deleteReplica pv1']);
    expect(w.replicas.has('pv1')).to.equal(false);
    expect(w.owned.entries.size).to.equal(0);
  });

  it('a CVR moved to another pool: its data here is kept while the CVR exists, then swept once when it is gone', async () => {
    const w = new FakeWorld();
    w.addCvr('pv1');
    const s = w.syncer();
    await s.sync(key('pv1'));
    const cvr = w.cvr('pv1')!;
    cvr.metadata.labels = { ...cvr.metadata.labels, [cvrLabels.pool]: 'pool-b' }; // leaves this pool's informer
    await s.sync(key('pv1'));
    expect(await s.sweepOrphans(), 'the moved CVR may still want this copy').to.deep.equal([]);
    expect(w.replicas.has('pv1')).to.equal(true);
    w.cvrs.delete(key('pv1')); // deleted (pool-b released it)
    expect(await s.sweepOrphans()).to.deep.equal(['pv1']);
    expect(await s.sweepOrphans()).to.deep.equal([]);
    expect(deletes(w)).to.deep.equal(['store.deleteReplica pv1']);
  });

  it('the pool restarted with another --name: the CVRs naming the old name still exist, so none of its recorded replicas is swept', async () => {
    const w = new FakeWorld();
    for (const v of ['pv1', 'pv2']) {
      w.addCvr(v, { pool: 'pool-old' });
      w.addReplica(v);
      await w.owned.add(v, { cvr: key(v, 'pool-old'), uid: 'u', createdAt: 0 });
    }
    expect(await w.syncer().sweepOrphans()).to.deep.equal([]); // this syncer is pool-a
    expect([...w.replicas.keys()].sort()).to.deep.equal(['pv1', 'pv2']);
  });

  it('the pool restarted with another --namespace (sees no CVR at all): no recorded replica of the other namespace is swept', async () => {
    const w = new FakeWorld();
    w.addReplica('pv1');
    await w.owned.add('pv1', { cvr: 'cstor/pv1-pool-a', uid: 'u', createdAt: 0 }); // recorded when --namespace was cstor
    w.addReplica('pv2');
    await w.owned.add('pv2', { cvr: key('pv2'), uid: 'u2', createdAt: 0 }); // a real orphan of this namespace
    expect(await w.syncer().sweepOrphans()).to.deep.equal(['pv2']);
    expect(w.replicas.has('pv1')).to.equal(true);
  });

  it('a CVR that met a replica it did not make (ReplicaMismatch: another size) is deleted: that replica is left alone', async () => {
    const w = new FakeWorld();
    w.addReplica('pv1', { size: 2 * GiB, usedBytes: 8192 }); // made through the mgmt API, never recorded
    w.addCvr('pv1', { capacity: '1Gi' });
    const s = w.syncer();
    await s.sync(key('pv1'));
    expect(w.cvr('pv1')?.status?.reason).to.equal('ReplicaMismatch');
    w.cvr('pv1')!.metadata.deletionTimestamp = '2026-01-02T03:05:00Z';
    await s.sync(key('pv1'));
    expect(w.cvr('pv1'), 'the CVR goes').to.equal(undefined);
    expect(deletes(w)).to.deep.equal([]);
    expect(w.replicas.get('pv1')?.size).to.equal(2 * GiB);
  });

  it('a CVR deleted while the pool is down (finalizer holds it): at restart the replica is deleted exactly once', async () => {
    const w = new FakeWorld();
    w.addCvr('pv1', { deleting: true });
    w.addReplica('pv1');
    await w.owned.add('pv1', { cvr: key('pv1'), uid: 'uid-1', createdAt: 0 });
    const s = w.syncer(); // a new process
    expect(await s.sweepOrphans()).to.deep.equal([]); // the sweep does not race the finalizer
    await s.sync(key('pv1'));
    await s.sync(key('pv1'));
    expect(await s.sweepOrphans()).to.deep.equal([]);
    expect(deletes(w)).to.deep.equal(['store.deleteReplica pv1']);
    expect(w.cvr('pv1')).to.equal(undefined);
  });

  it('finalizer forced off and a CVR of the same name re-created while the pool is down: the data is adopted, not deleted nor recreated', async () => {
    const w = new FakeWorld();
    w.addReplica('pv1', { usedBytes: 8192 });
    await w.owned.add('pv1', { cvr: key('pv1'), uid: 'old-uid', createdAt: 0 });
    w.addCvr('pv1'); // new uid
    const s = w.syncer();
    expect(await s.sweepOrphans()).to.deep.equal([]);
    await s.sync(key('pv1'));
    expect(w.calls.filter((c) => c.startsWith('store.'))).to.deep.equal([]);
    expect(w.replicas.get('pv1')?.usedBytes).to.equal(8192);
    expect(w.cvr('pv1')?.status?.phase).to.equal('Healthy');
  });

  it('a CVR edited to lose its volume label: InvalidSpec, its data kept by sync and sweep; deleted later, the recorded replica goes once', async () => {
    const w = new FakeWorld();
    w.addCvr('pv1');
    const s = w.syncer();
    await s.sync(key('pv1'));
    const cvr = w.cvr('pv1')!;
    const labels = { ...cvr.metadata.labels };
    delete labels[cvrLabels.persistentVolume];
    cvr.metadata.labels = labels;
    await s.sync(key('pv1'));
    expect(w.cvr('pv1')?.status?.reason).to.equal('InvalidSpec');
    expect(await s.sweepOrphans()).to.deep.equal([]);
    expect(w.replicas.has('pv1')).to.equal(true);
    w.cvr('pv1')!.metadata.deletionTimestamp = '2026-01-02T03:05:00Z';
    await s.sync(key('pv1'));
    expect(deletes(w)).to.deep.equal(['store.deleteReplica pv1']);
    expect(w.cvr('pv1')).to.equal(undefined);
  });

  it('the finalizer patch fails with 500 after the delete: retried (the delete repeats idempotently), the CVR goes', async () => {
    const w = new FakeWorld();
    w.addCvr('pv1', { deleting: true });
    w.addReplica('pv1');
    w.failNext('cvrs.mergePatch', new CstorError('unavailable', 'HTTP 500'));
    const s = w.syncer();
    let err: unknown;
    await s.sync(key('pv1')).catch((e: unknown) => (err = e));
    expect((err as CstorError).code).to.equal('unavailable');
    expect(w.cvr('pv1')?.metadata.finalizers).to.deep.equal([cvrFinalizer]);
    await s.sync(key('pv1'));
    expect(w.cvr('pv1')).to.equal(undefined);
    // deleteReplica is idempotent: a second call on a missing replica does nothing
    expect(w.replicas.has('pv1')).to.equal(false);
  });

  it('a sweep whose live list fails or times out deletes nothing, and a later sweep does', async () => {
    const w = new FakeWorld();
    w.addReplica('orphan');
    await w.owned.add('orphan', { cvr: key('orphan'), uid: 'u', createdAt: 0 });
    w.failNext('cvrs.list', new CstorError('timeout', 'request timed out'));
    const s = w.syncer();
    await s.sweepOrphans().catch(() => {});
    expect(w.replicas.has('orphan')).to.equal(true);
    expect(await s.sweepOrphans()).to.deep.equal(['orphan']);
  });

  it('a replica the CVR says is Healthy but that is gone from disk: recreated in Rebuilding mode (a target never takes it, with other New ones, for a fresh volume), a Warning', async () => {
    const w = new FakeWorld();
    w.addCvr('pv1', { status: { phase: 'Healthy', capacity: { total: '1Gi', used: 4096 } } });
    await w.owned.add('pv1', { cvr: key('pv1'), uid: 'uid-1', createdAt: 0 });
    const s = w.syncer();
    await s.sync(key('pv1'));
    expect(w.replicas.get('pv1')?.mode).to.equal('Rebuilding');
    expect(w.replicas.get('pv1')?.size).to.equal(GiB);
    expect(w.cvr('pv1')?.status?.phase).to.equal('Rebuilding');
    expect(w.events.map((e) => e.reason)).to.include('ReplicaRecreated');
    // Rebuilt by its target: the mark goes, and nothing is redone.
    w.replicas.get('pv1')!.mode = 'Healthy';
    await s.sync(key('pv1'));
    expect(w.owned.get('pv1')?.rebuild).to.equal(undefined);
    expect(w.calls.filter((c) => c.startsWith('replica.rebuildStart'))).to.have.length(1);
    expect(w.cvr('pv1')?.status?.phase).to.equal('Healthy');
  });

  it('kill -9 between the re-create and the Rebuilding mark: the next sync finds the record and marks it (no second create)', async () => {
    const w = new FakeWorld();
    w.addCvr('pv1', { status: { phase: 'Offline', reason: 'PoolStopped', capacity: { total: '1Gi', used: 4096 } } });
    w.addReplica('pv1', { mode: 'New' }); // created, not yet marked
    await w.owned.add('pv1', { cvr: key('pv1'), uid: 'uid-1', createdAt: 0, rebuild: true });
    await w.syncer().sync(key('pv1'));
    expect(w.calls.filter((c) => c.startsWith('store.') || c.startsWith('replica.'))).to.deep.equal(['store.openReplica pv1', 'replica.rebuildStart pv1 null']);
    expect(w.replicas.get('pv1')?.mode).to.equal('Rebuilding');
  });

  it('a never-served replica (Init, then Offline after a clean stop, no space used) that vanished is recreated New: a fresh volume is not blocked', async () => {
    const w = new FakeWorld();
    w.addCvr('pv1', { status: { phase: 'Offline', reason: 'PoolStopped', capacity: { total: '1Gi', used: 0 } } });
    await w.syncer().sync(key('pv1'));
    expect(w.replicas.get('pv1')?.mode).to.equal('New');
    expect(w.cvr('pv1')?.status?.phase).to.equal('Init');
    // ... and a New replica of a CVR that is Offline after a clean stop is left New at restart.
    const w2 = new FakeWorld();
    w2.addCvr('pv2', { status: { phase: 'Offline', reason: 'PoolStopped', capacity: { total: '1Gi', used: 0 } } });
    w2.addReplica('pv2', { mode: 'New' });
    await w2.owned.add('pv2', { cvr: key('pv2'), uid: 'uid-1', createdAt: 0 });
    await w2.syncer().sync(key('pv2'));
    expect(w2.replicas.get('pv2')?.mode).to.equal('New');
  });

  it('the Rebuilding mark fails (disk): CreateFailed, retried; the retry marks it without creating again', async () => {
    const w = new FakeWorld();
    w.addCvr('pv1', { status: { phase: 'Healthy', capacity: { total: '1Gi', used: 4096 } } });
    w.failNext('store.openReplica', new CstorError('io', 'EIO'));
    const s = w.syncer();
    let err: unknown;
    await s.sync(key('pv1')).catch((e: unknown) => (err = e));
    expect((err as CstorError).code).to.equal('io');
    expect(w.cvr('pv1')?.status?.reason).to.equal('CreateFailed');
    expect(w.replicas.get('pv1')?.mode).to.equal('New');
    await s.sync(key('pv1'));
    expect(w.replicas.get('pv1')?.mode).to.equal('Rebuilding');
    expect(w.calls.filter((c) => c.startsWith('store.createReplica'))).to.have.length(1);
  });

  it('with the real store: a re-created replica is Rebuilding on disk (a reopened pool still says so), its size kept', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cstor-recreate-'));
    let pool = await openPool({ dir, name: poolName });
    try {
      const w = new FakeWorld();
      w.addCvr('pv1', { capacity: '10M', status: { phase: 'Healthy', capacity: { total: '10M', used: 8192 } } });
      const owned = new MemoryOwnedReplicas();
      const syncer = new CvrSyncer({
        poolName,
        namespace: ns,
        cache: { get: (k) => w.cvrs.get(k), list: () => [...w.cvrs.values()] },
        cvrs: w.cvrClient,
        store: pool,
        owned,
        events: w.eventSink,
        dropVolume: () => {},
        clock: w.clock,
        logger: silentLogger(),
      });
      await syncer.sync(key('pv1'));
      expect(w.cvr('pv1')?.status?.phase).to.equal('Rebuilding');
      await pool.close();
      pool = await openPool({ dir, name: poolName });
      const info = await pool.getReplica('pv1');
      expect(info?.mode).to.equal('Rebuilding');
      expect(info?.size).to.equal(10_002_432);
    } finally {
      await pool.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('the owned record keeps the rebuild mark across a restart (owned.json)', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cstor-owned-'));
    try {
      const a = await FileOwnedReplicas.open(dir);
      await a.add('pv1', { cvr: key('pv1'), uid: 'u', createdAt: 1, rebuild: true });
      await a.add('pv2', { cvr: key('pv2'), uid: 'u2', createdAt: 1 });
      const b = await FileOwnedReplicas.open(dir);
      expect(b.get('pv1')).to.deep.equal({ cvr: key('pv1'), uid: 'u', createdAt: 1, rebuild: true });
      expect(b.get('pv2')).to.deep.equal({ cvr: key('pv2'), uid: 'u2', createdAt: 1 });
      await b.add('pv1', { cvr: key('pv1'), uid: 'u', createdAt: 1 }); // the mark cleared
      expect((await FileOwnedReplicas.open(dir)).get('pv1')?.rebuild).to.equal(undefined);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
