// The pool reconciler for real: kube-lite with deploy/crds applied, a real `cstor pool
// --kubeconfig` process, CVRs created as the CAS templates create them, data written and read
// back through the replica protocol, and restarts (kill -9 at failpoints, the pool down while
// CVRs are deleted, a clean stop).
import { expect } from 'chai';
import { connectReplica } from '../../lib/replica-protocol/client.ts';
import type { ReplicaClient } from '../../lib/replica-protocol/types.ts';
import { stopAll } from '../support/daemon.ts';
import { eventually } from '../kube-lite/support.ts';
import { cvrFinalizer } from '../../cstor-pool/reconciler/types.ts';
import { ns, poolName, PoolWorld } from './support.ts';

const size10M = 10_002_432; // "10M" = 10,000,000 bytes rounded up to 4 KiB blocks
const block = (fill: number): Buffer => Buffer.alloc(4096, fill);
/** Polls until truthy; generous (30 s) because restarts on a loaded machine take seconds. */
const soon = <T>(fn: () => Promise<T | undefined | false>, what: string, timeoutMs = 30_000): Promise<T> => eventually(fn, what, Math.max(timeoutMs, 30_000));

describe('pool reconciler: a real cstor pool on kube-lite', function () {
  this.timeout(120_000);
  const w = new PoolWorld();
  const clients: ReplicaClient[] = [];

  const open = async (volume: string): Promise<ReplicaClient> => {
    const c = await connectReplica(w.replicaAddress, { timeoutMs: 10_000 });
    clients.push(c);
    await c.open({ volume, size: size10M, blockSize: 4096, replicationFactor: 1, targetId: 'test' });
    return c;
  };

  before(async () => {
    await w.start();
    await w.startPool();
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    await stopAll();
    w.cleanup();
  });

  it('registers its CStorPool: Online, the replica address, mgmt address and capacity', async () => {
    const pool = await soon(async () => {
      const p = await w.pools.get({ name: poolName });
      return p.status?.phase === 'Online' ? p : undefined;
    }, 'CStorPool Online');
    expect(pool.status?.address).to.equal(w.replicaAddress);
    expect(pool.status?.mgmtAddress).to.equal(w.pool?.addresses.mgmt);
    const cap = pool.status?.capacity as { total: number; used: number; free: number };
    expect(cap.free).to.be.greaterThan(0);
    expect(cap.total).to.equal(cap.used + cap.free);
    expect(pool.status?.replicas).to.equal(0);
    expect(pool.status?.lastUpdateTime).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(pool.spec?.path).to.equal(w.poolDir);
  });

  it('a CVR → the replica in the pool (size rounded to 4 KiB), finalizer kept, status Init then Healthy', async () => {
    await w.createCvr('pv1', '10M');
    const cvr = await soon(async () => {
      const c = await w.cvr('pv1');
      return c?.status?.phase === 'Init' ? c : undefined;
    }, 'CVR pv1 Init');
    expect(cvr.metadata.finalizers).to.deep.equal([cvrFinalizer]);
    expect(cvr.status?.capacity).to.deep.equal({ total: '10M', used: 0 });
    const replicas = await w.replicas();
    expect(replicas.map((r) => [r.volume, r.size, r.mode])).to.deep.equal([['pv1', size10M, 'New']]);
    // The target takes the fresh replica into its volume: the CVR follows (status refresh).
    const c = await open('pv1');
    await c.markHealthy();
    await c.write(0, block(0xaa), 1);
    await c.sync();
    await soon(async () => (await w.cvr('pv1'))?.status?.phase === 'Healthy', 'CVR pv1 Healthy', 20_000);
    await soon(async () => Number((await w.cvr('pv1'))?.status?.capacity?.used) >= 4096, 'CVR pv1 used bytes', 20_000);
    const pool = await soon(async () => {
      const p = await w.pools.get({ name: poolName });
      return p.status?.replicas === 1 ? p : undefined;
    }, 'CStorPool replicas 1');
    expect(pool.status?.phase).to.equal('Online');
  });

  it('a clone CVR → a clone replica that reads the snapshot, not later writes', async () => {
    const src = clients[0]!;
    await src.snapshotCreate('snap1', 2);
    await src.write(0, block(0xbb), 3);
    await src.sync();
    await w.createCvr('cl1', '10M', { source: 'pv1', snapshot: 'snap1' });
    await soon(async () => (await w.cvr('cl1'))?.status?.phase === 'Init', 'clone CVR Init');
    const info = (await w.replicas()).find((r) => r.volume === 'cl1');
    expect(info?.cloneOf).to.equal('pv1@snap1');
    const clone = await open('cl1');
    expect((await clone.read(0, 4096)).equals(block(0xaa))).to.equal(true);
    expect((await src.read(0, 4096)).equals(block(0xbb))).to.equal(true);
  });

  it('a clone of a missing snapshot → status Error with the reason, a Warning Event; deleting it lets it go', async () => {
    await w.createCvr('cl2', '10M', { source: 'pv1', snapshot: 'no-such-snap' });
    const cvr = await soon(async () => {
      const c = await w.cvr('cl2');
      return c?.status?.phase === 'Error' ? c : undefined;
    }, 'CVR cl2 Error');
    expect(cvr.status?.reason).to.equal('CloneSourceMissing');
    expect(cvr.status?.message).to.match(/cannot clone replica cl2 from pv1@no-such-snap: the source snapshot is not in pool pool-a/);
    const events = await soon(async () => {
      const list = await w.events.list({ namespace: ns });
      const mine = list.items.filter((e) => e.involvedObject?.name === `cl2-${poolName}` && e.reason === 'CloneSourceMissing');
      return mine.length > 0 ? mine : undefined;
    }, 'Warning Event');
    expect(events).to.have.length(1);
    expect(events[0]?.type).to.equal('Warning');
    expect((await w.replicas()).map((r) => r.volume)).to.not.include('cl2');
    await w.cvrs.delete({ namespace: ns, name: `cl2-${poolName}` });
    await soon(async () => (await w.cvr('cl2')) === undefined, 'CVR cl2 gone');
  });

  it('deleting a CVR deletes the replica, then the CVR goes; its clone lives on', async () => {
    await w.cvrs.delete({ namespace: ns, name: `pv1-${poolName}` });
    await soon(async () => (await w.cvr('pv1')) === undefined, 'CVR pv1 gone');
    expect((await w.replicas()).map((r) => r.volume)).to.deep.equal(['cl1']);
    const clone = await open('cl1');
    expect((await clone.read(0, 4096)).equals(block(0xaa))).to.equal(true);
    expect(Object.keys(w.ownedFile())).to.deep.equal(['cl1']);
  });

  it('kill -9 between the replica create and the status update → restart converges with one replica', async () => {
    await w.pool?.kill();
    await w.startPool({ CSTOR_POOL_FAILPOINT: 'after-create' });
    await w.createCvr('pv3', '8Mi');
    await w.poolExited();
    expect(w.pool?.lines.some((l) => l.includes('failpoint reached'))).to.equal(true);
    expect((await w.cvr('pv3'))?.status?.phase).to.equal(undefined);
    await w.startPool();
    await soon(async () => (await w.cvr('pv3'))?.status?.phase === 'Init', 'CVR pv3 Init after restart');
    const replicas = await w.replicas();
    expect(replicas.filter((r) => r.volume === 'pv3').map((r) => r.size)).to.deep.equal([8 * 2 ** 20]);
    expect(replicas.map((r) => r.volume).sort()).to.deep.equal(['cl1', 'pv3']);
    const pool = await w.pools.get({ name: poolName });
    expect(pool.status?.address).to.equal(w.replicaAddress); // the new port
  });

  it('kill -9 after recording the replica as ours, before creating it → restart creates it once', async () => {
    await w.pool?.kill();
    await w.startPool({ CSTOR_POOL_FAILPOINT: 'after-intent' });
    await w.createCvr('pv6', '4Mi');
    await w.poolExited();
    expect(Object.keys(w.ownedFile())).to.include('pv6');
    await w.startPool();
    await soon(async () => (await w.cvr('pv6'))?.status?.phase === 'Init', 'CVR pv6 Init after restart');
    expect((await w.replicas()).filter((r) => r.volume === 'pv6').map((r) => r.size)).to.deep.equal([4 * 2 ** 20]);
    await w.cvrs.delete({ namespace: ns, name: `pv6-${poolName}` });
    await soon(async () => (await w.cvr('pv6')) === undefined, 'CVR pv6 gone');
    expect(Object.keys(w.ownedFile())).to.not.include('pv6');
  });

  it('kill -9 after the store delete, before the finalizer is removed → restart lets the CVR go', async () => {
    await w.pool?.kill();
    await w.startPool({ CSTOR_POOL_FAILPOINT: 'after-delete' });
    await soon(async () => (await w.cvr('pv3'))?.status?.phase === 'Init', 'pv3 seen');
    await w.cvrs.delete({ namespace: ns, name: `pv3-${poolName}` });
    await w.poolExited();
    expect((await w.cvr('pv3'))?.metadata.deletionTimestamp).to.be.a('string');
    await w.startPool();
    await soon(async () => (await w.cvr('pv3')) === undefined, 'CVR pv3 gone after restart');
    expect((await w.replicas()).map((r) => r.volume)).to.deep.equal(['cl1']);
  });

  it('CVRs deleted while the pool is down: the finalized one and the orphan are cleaned on start; a replica not ours stays', async () => {
    await w.createCvr('pv4', '4Mi');
    await w.createCvr('pv5', '4Mi');
    await soon(async () => (await w.cvr('pv4'))?.status?.phase === 'Init' && (await w.cvr('pv5'))?.status?.phase === 'Init', 'pv4, pv5 Init');
    const made = await fetch(`${w.mgmt}/v1/replicas`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ volume: 'manual1', size: 4 * 2 ** 20 }) });
    expect(made.status).to.equal(201);
    await w.pool?.kill();
    await w.cvrs.delete({ namespace: ns, name: `pv4-${poolName}` }); // held by the finalizer
    await w.cvrs.delete({ namespace: ns, name: `pv5-${poolName}` });
    await w.cvrs.mergePatch({ namespace: ns, name: `pv5-${poolName}` }, { metadata: { finalizers: null } }); // forced: gone for good
    expect(await w.cvr('pv5')).to.equal(undefined);
    expect((await w.cvr('pv4'))?.metadata.deletionTimestamp).to.be.a('string');
    await w.startPool();
    await soon(async () => (await w.cvr('pv4')) === undefined, 'CVR pv4 finalized after restart');
    await soon(async () => !(await w.replicas()).some((r) => r.volume === 'pv5'), 'orphan pv5 swept');
    expect((await w.replicas()).map((r) => r.volume).sort()).to.deep.equal(['cl1', 'manual1']);
    expect(Object.keys(w.ownedFile())).to.deep.equal(['cl1']);
  });

  it('a clean stop reports the pool and its replicas Offline; a restart brings them back', async () => {
    await soon(async () => (await w.cvr('cl1'))?.status?.phase === 'Init', 'cl1 Init');
    expect(await w.pool?.stop()).to.equal(0);
    const pool = await w.pools.get({ name: poolName });
    expect(pool.status?.phase).to.equal('Offline');
    expect((await w.cvr('cl1'))?.status?.phase).to.equal('Offline');
    await w.startPool();
    await soon(async () => (await w.pools.get({ name: poolName })).status?.phase === 'Online', 'pool Online again');
    await soon(async () => (await w.cvr('cl1'))?.status?.phase === 'Init', 'cl1 back to Init');
    const metrics = await (await fetch(`${w.mgmt}/metrics`)).text();
    expect(metrics).to.match(/cstor_pool_reconcile_operation_total_seconds_count\{[^}]*operation_name="pool_status"[^}]*\} [1-9]/);
  });
});
