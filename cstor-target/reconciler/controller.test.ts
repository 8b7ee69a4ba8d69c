import { expect } from 'chai';
import { silentLogger } from '../../lib/logger.ts';
import { FakeListWatch } from '../../lib/kube/fake-list-watch.ts';
import type { CoreEvent } from '../../lib/kube/types/core.ts';
import { TargetReconciler, cvUpdateMatters, cvrUpdateMatters, poolUpdateMatters } from './controller.ts';
import { FakeTargetWorld, me, ns } from './fakes.ts';
import type { CvClient } from './volume-sync.ts';
import type { CStorPool, CStorVolume, CStorVolumeReplica } from './types.ts';

async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function merge(target: unknown, patch: unknown): unknown {
  if (!patch || typeof patch !== 'object' || Array.isArray(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = merge(out[k], v);
  }
  return out;
}

describe('target reconciler: wiring (informers → keys → sync), over fake list-watch sources', () => {
  it('CVR and CStorPool events reach the volume key; engine change events update status; status writes do not re-enqueue', async () => {
    const w = new FakeTargetWorld();
    const cvSource = new FakeListWatch<CStorVolume>();
    const cvrSource = new FakeListWatch<CStorVolumeReplica>();
    const poolSource = new FakeListWatch<CStorPool>();
    const patch = async (ref: { name: string; namespace?: string }, p: object): Promise<CStorVolume> => {
      const cur = cvSource.state().get(`${ref.namespace}/${ref.name}`);
      if (!cur) throw new Error('gone');
      return cvSource.put(merge(cur, p) as CStorVolume);
    };
    const cvs: CvClient & FakeListWatch<CStorVolume> = Object.assign(cvSource, {
      mergePatch: (ref: { name: string; namespace?: string }, p: object) => patch(ref, p),
      patchStatus: (ref: { name: string; namespace?: string }, status: object) => patch(ref, { status }),
    }) as CvClient & FakeListWatch<CStorVolume>;
    const events: CoreEvent[] = [];
    const r = new TargetReconciler({
      namespace: ns,
      advertise: me,
      cvs,
      cvrs: cvrSource,
      pools: poolSource,
      events: { create: async (e) => (events.push(e), e), mergePatch: async () => ({}) as CoreEvent },
      engine: w.engine,
      logger: silentLogger(),
      statusIntervalMs: 3_600_000, // no refresh timer: events alone must do it
    });
    // The volume first, its replicas after: the CVR events must bring the key back.
    w.addCv('pv1');
    cvSource.put(w.cv('pv1') as CStorVolume);
    r.start();
    try {
      await until(() => cvSource.state().get(`${ns}/pv1`)?.status?.reason === 'WaitingForReplicas', 'waiting status');
      w.addReplicas('pv1', ['pool-a', 'pool-b', 'pool-c']);
      for (const c of w.cvrs) cvrSource.put(c);
      // The CVR events alone bring the key back: now it waits for the pools.
      await until(() => cvSource.state().get(`${ns}/pv1`)?.status?.message?.includes('CStorPool pool-a') === true, 'waiting for the pools');
      expect(w.served.has('pv1')).to.equal(false);
      for (const p of w.pools.values()) poolSource.put(p);
      await until(() => w.served.get('pv1')?.replicas.length === 3, 'served after the pools appeared');
      // A pool on a new address: the pool event alone re-serves the volume.
      const b = w.pools.get('pool-b') as CStorPool;
      poolSource.put({ ...b, status: { ...b.status, address: '127.0.0.1:4000' } });
      await until(() => w.served.get('pv1')?.replicas.includes('127.0.0.1:4000') === true, 're-served on the new address');
      // The engine's change event alone brings the Healthy status.
      w.setEngine('pv1', 'Healthy', 'Healthy');
      w.watchers.get('pv1')?.();
      await until(() => cvSource.state().get(`${ns}/pv1`)?.status?.phase === 'Healthy', 'Healthy status');
      const serves = w.calls.filter((c) => c.startsWith('engine.serve')).length;
      const patches = w.calls.length;
      await new Promise((res) => setTimeout(res, 100));
      expect(w.calls.length).to.equal(patches);
      expect(serves).to.equal(2);
    } finally {
      await r.stop();
    }
  });

  it('update filters: our status writes and unrelated changes do not matter', () => {
    const cv = (rv: string, o: Partial<CStorVolume> = {}): CStorVolume => ({ metadata: { name: 'v', namespace: ns, resourceVersion: rv }, spec: { capacity: '1G' }, ...o });
    expect(cvUpdateMatters(cv('1'), cv('2', { status: { phase: 'Healthy' } }))).to.equal(false);
    expect(cvUpdateMatters(cv('1'), cv('1'))).to.equal(true);
    expect(cvUpdateMatters(cv('1'), cv('2', { spec: { capacity: '2G' } }))).to.equal(true);
    expect(cvUpdateMatters(cv('1'), cv('2', { metadata: { name: 'v', namespace: ns, resourceVersion: '2', deletionTimestamp: 'now' } }))).to.equal(true);
    const cvr = (rv: string, labels: Record<string, string>, phase?: string): CStorVolumeReplica => ({ metadata: { name: 'r', resourceVersion: rv, labels }, ...(phase ? { status: { phase: phase as 'Init' } } : {}) });
    expect(cvrUpdateMatters(cvr('1', { a: 'b' }), cvr('2', { a: 'b' }, 'Init'))).to.equal(false);
    expect(cvrUpdateMatters(cvr('1', { a: 'b' }), cvr('2', { a: 'c' }))).to.equal(true);
    const pool = (rv: string, address: string, replicas = 0): CStorPool => ({ metadata: { name: 'p', resourceVersion: rv }, status: { address, replicas } });
    expect(poolUpdateMatters(pool('1', 'h:1'), pool('2', 'h:1', 5))).to.equal(false);
    expect(poolUpdateMatters(pool('1', 'h:1'), pool('2', 'h:2'))).to.equal(true);
  });
});
