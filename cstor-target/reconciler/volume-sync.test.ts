import { expect } from 'chai';
import { CstorError } from '../../lib/errors.ts';
import { FakeTargetWorld, me, ns } from './fakes.ts';
import { cvFinalizer } from './types.ts';
import { desiredVolume, isAssigned, resolveReplicas } from './desired.ts';
import { statusDiff } from './volume-status.ts';

const pools3 = ['pool-a', 'pool-b', 'pool-c'];
const addrs3 = '127.0.0.1:3230,127.0.0.1:3231,127.0.0.1:3232';
const key = (name: string): string => `${ns}/${name}`;

async function syncExpect(w: FakeTargetWorld, name: string, s = w.syncer()): Promise<CstorError | null> {
  try {
    await s.sync(key(name));
    return null;
  } catch (err) {
    return err as CstorError;
  }
}

describe('target reconciler: sync steps (table-driven, over fakes)', () => {
  interface Case {
    name: string;
    given: (w: FakeTargetWorld) => void;
    calls: string[];
    phase?: string | null;
    reason?: string;
    finalizer?: boolean;
    gone?: boolean;
    events?: string[];
    throws?: string;
  }
  const cases: Case[] = [
    {
      name: 'a new volume with its 3 replicas on Online pools: finalizer, then served, then Init from the engine',
      given: (w) => {
        w.addCv('pv1');
        w.addReplicas('pv1', pools3);
      },
      calls: ['cvs.mergePatch openebs/pv1', `engine.serve pv1 1000001536 rf3 bs4096 ${addrs3}`, 'cvs.patchStatus openebs/pv1'],
      phase: 'Init',
      reason: 'ReplicasConnecting',
      finalizer: true,
      events: ['Normal Serving'],
    },
    {
      name: '"5Gi" is 5 GiB; replicationFactor written as a string is accepted; replicas ordered by pool name',
      given: (w) => {
        w.addCv('pv1', { spec: { capacity: '5Gi', replicationFactor: '3' } });
        w.addReplicas('pv1', ['pool-c', 'pool-a', 'pool-b']);
      },
      calls: ['cvs.mergePatch openebs/pv1', 'engine.serve pv1 5368709120 rf3 bs4096 127.0.0.1:3231,127.0.0.1:3232,127.0.0.1:3230', 'cvs.patchStatus openebs/pv1'],
      phase: 'Init',
      finalizer: true,
    },
    {
      name: 'a volume of another target is left alone',
      given: (w) => {
        w.addCv('pv1', { spec: { targetIP: '10.9.9.9' } });
        w.addReplicas('pv1', pools3);
      },
      calls: [],
      phase: null,
      finalizer: false,
    },
    {
      name: 'a volume without targetIP is served (one target per cluster)',
      given: (w) => {
        w.addCv('pv1', { spec: { targetIP: null } as never });
        w.addReplicas('pv1', pools3);
      },
      calls: ['cvs.mergePatch openebs/pv1', `engine.serve pv1 1000001536 rf3 bs4096 ${addrs3}`, 'cvs.patchStatus openebs/pv1'],
      phase: 'Init',
      finalizer: true,
    },
    {
      name: 'a clone (annotation openebs.io/snapshot) is served like any volume',
      given: (w) => {
        w.addCv('clone1', { annotations: { 'openebs.io/snapshot': 'snap1' }, spec: { capacity: '1G' } });
        w.addReplicas('clone1', pools3);
      },
      calls: ['cvs.mergePatch openebs/clone1', `engine.serve clone1 1000001536 rf3 bs4096 ${addrs3}`, 'cvs.patchStatus openebs/clone1'],
      phase: 'Init',
      finalizer: true,
    },
    {
      name: 'only 2 of 3 CVRs: not served, Init / WaitingForReplicas',
      given: (w) => {
        w.addCv('pv1');
        w.addReplicas('pv1', ['pool-a', 'pool-b']);
      },
      calls: ['cvs.mergePatch openebs/pv1', 'cvs.patchStatus openebs/pv1'],
      phase: 'Init',
      reason: 'WaitingForReplicas',
      finalizer: true,
      events: ['Normal WaitingForReplicas'],
    },
    {
      name: 'a pool without status.address yet: not served',
      given: (w) => {
        w.addCv('pv1');
        w.addReplicas('pv1', pools3);
        w.setPool('pool-b', undefined);
      },
      calls: ['cvs.mergePatch openebs/pv1', 'cvs.patchStatus openebs/pv1'],
      phase: 'Init',
      reason: 'WaitingForReplicas',
      finalizer: true,
    },
    {
      name: 'an invalid spec: Error / InvalidSpec, a Warning, never served, not retried',
      given: (w) => {
        w.addCv('pv1', { spec: { capacity: 'lots', replicationFactor: 0 } });
        w.addReplicas('pv1', pools3);
      },
      calls: ['cvs.patchStatus openebs/pv1'],
      phase: 'Error',
      reason: 'InvalidSpec',
      finalizer: false,
      events: ['Warning InvalidSpec'],
    },
    {
      name: 'a wrong iqn is refused',
      given: (w) => {
        w.addCv('pv1', { spec: { iqn: 'iqn.2016-09.com.openebs.cstor:other' } });
        w.addReplicas('pv1', pools3);
      },
      calls: ['cvs.patchStatus openebs/pv1'],
      phase: 'Error',
      reason: 'InvalidSpec',
      events: ['Warning InvalidSpec'],
    },
    {
      name: 'deleting, served, our finalizer: stopped, then the finalizer goes (and the object with it)',
      given: (w) => {
        w.addCv('pv1', { finalizer: true, deleting: true });
        w.served.set('pv1', { name: 'pv1', capacity: 1000001536, replicationFactor: 3, replicas: addrs3.split(','), blockSize: 4096 });
      },
      calls: ['engine.stop pv1', 'cvs.mergePatch openebs/pv1'],
      gone: true,
      events: ['Normal Stopped'],
    },
    {
      name: 'deleting, not served here: only the finalizer goes',
      given: (w) => {
        w.addCv('pv1', { finalizer: true, deleting: true });
      },
      calls: ['cvs.mergePatch openebs/pv1'],
      gone: true,
    },
    {
      name: 'reassigned to another target while we hold the finalizer: stopped, finalizer removed',
      given: (w) => {
        w.addCv('pv1', { finalizer: true, spec: { targetIP: '10.9.9.9' } });
        w.served.set('pv1', { name: 'pv1', capacity: 1000001536, replicationFactor: 3, replicas: addrs3.split(','), blockSize: 4096 });
      },
      calls: ['engine.stop pv1', 'cvs.mergePatch openebs/pv1'],
      finalizer: false,
    },
    {
      name: 'a 409 on the finalizer patch: thrown (retried), nothing served',
      given: (w) => {
        w.addCv('pv1');
        w.addReplicas('pv1', pools3);
        w.failNext('cvs.mergePatch', new CstorError('conflict', 'the object has been modified'));
      },
      calls: ['cvs.mergePatch openebs/pv1'],
      phase: null,
      throws: 'conflict',
    },
    {
      name: 'the engine refuses to serve: ServeFailed recorded, thrown for backoff',
      given: (w) => {
        w.addCv('pv1', { finalizer: true });
        w.addReplicas('pv1', pools3);
        w.failNext('engine.serve', new CstorError('io', 'disk full'));
      },
      calls: [`engine.serve pv1 1000001536 rf3 bs4096 ${addrs3}`, 'cvs.patchStatus openebs/pv1'],
      phase: 'Init',
      reason: 'ServeFailed',
      events: ['Warning ServeFailed'],
      throws: 'io',
    },
    {
      name: 'the API server down on the status patch: thrown (retried)',
      given: (w) => {
        w.addCv('pv1', { finalizer: true });
        w.addReplicas('pv1', pools3);
        w.failNext('cvs.patchStatus', new CstorError('unavailable', 'connection refused', { retryable: true }));
      },
      calls: [`engine.serve pv1 1000001536 rf3 bs4096 ${addrs3}`, 'cvs.patchStatus openebs/pv1'],
      phase: null,
      throws: 'unavailable',
    },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const w = new FakeTargetWorld();
      c.given(w);
      const err = await syncExpect(w, c.name.startsWith('a clone') ? 'clone1' : 'pv1');
      if (c.throws) expect(err?.code, String(err)).to.equal(c.throws);
      else expect(err, String(err)).to.equal(null);
      expect(w.calls).to.deep.equal(c.calls);
      const cv = w.cv(c.name.startsWith('a clone') ? 'clone1' : 'pv1');
      if (c.gone) expect(cv).to.equal(undefined);
      if (c.phase !== undefined) expect(cv?.status?.phase ?? null).to.equal(c.phase);
      if (c.reason !== undefined) expect(cv?.status?.reason).to.equal(c.reason);
      if (c.finalizer !== undefined) expect((cv?.metadata.finalizers ?? []).includes(cvFinalizer)).to.equal(c.finalizer);
      if (c.events) expect(w.events.map((e) => `${e.type} ${e.reason}`)).to.deep.equal(c.events);
    });
  }

  it('status follows the engine: Healthy with 3 replicaStatuses of the CRD fields only, a Healthy Event once', async () => {
    const w = new FakeTargetWorld();
    w.addCv('pv1');
    w.addReplicas('pv1', pools3);
    const s = w.syncer();
    await s.sync(key('pv1'));
    w.setEngine('pv1', 'Healthy', 'Healthy', { lastError: 'old news' });
    await s.sync(key('pv1'));
    const st = w.cv('pv1')?.status;
    expect(st?.phase).to.equal('Healthy');
    expect(st?.reason).to.equal(undefined);
    expect(st?.message).to.equal(undefined);
    expect(st?.replicaStatuses).to.have.length(3);
    for (const r of st?.replicaStatuses ?? []) {
      expect(Object.keys(r).sort()).to.deep.equal(['address', 'checkpointedIOSeq', 'inflightRead', 'inflightWrite', 'mode', 'quorum', 'replicaId', 'upTime']);
      expect(r.mode).to.equal('Healthy');
    }
    expect(st?.replicaStatuses?.map((r) => r.address)).to.deep.equal(addrs3.split(','));
    expect(w.events.filter((e) => e.reason === 'Healthy')).to.have.length(1);
    // Nothing changed: no patch, no Event.
    const patches = w.calls.filter((c) => c.startsWith('cvs.patchStatus')).length;
    await s.sync(key('pv1'));
    expect(w.calls.filter((c) => c.startsWith('cvs.patchStatus')).length).to.equal(patches);
    expect(w.events.filter((e) => e.reason === 'Healthy')).to.have.length(1);
    // The engine's change events enqueue the key.
    w.watchers.get('pv1')?.();
    expect(w.enqueued).to.deep.equal([key('pv1')]);
  });

  it('volatile counters are written at most once per refresh period; a mode change at once', async () => {
    const w = new FakeTargetWorld();
    w.addCv('pv1');
    w.addReplicas('pv1', pools3);
    const s = w.syncer({ statusRefreshMs: 10_000 });
    await s.sync(key('pv1'));
    w.setEngine('pv1', 'Healthy', 'Healthy');
    await s.sync(key('pv1'));
    const count = (): number => w.calls.filter((c) => c.startsWith('cvs.patchStatus')).length;
    const base = count();
    w.setEngine('pv1', 'Healthy', 'Healthy', { upTime: 5, checkpointedIOSeq: '77' });
    await s.sync(key('pv1'));
    expect(count()).to.equal(base);
    await w.clock.advance(10_001);
    await s.sync(key('pv1'));
    expect(count()).to.equal(base + 1);
    expect(w.cv('pv1')?.status?.replicaStatuses?.[0]?.checkpointedIOSeq).to.equal('77');
    // One replica lost: Healthy still (2 of 3), but its mode is written at once, with the reason in the message.
    const st = w.statuses.get('pv1');
    if (!st?.replicaStatuses[1]) throw new Error('no status');
    st.replicaStatuses[1] = { ...st.replicaStatuses[1], mode: 'Offline', quorum: '0', lastError: 'connection refused' };
    st.phase = 'Degraded';
    await s.sync(key('pv1'));
    expect(count()).to.equal(base + 2);
    const cur = w.cv('pv1')?.status;
    expect(cur?.phase).to.equal('Degraded');
    expect(cur?.reason).to.equal('ReplicasDegraded');
    expect(cur?.message).to.contain('127.0.0.1:3231 Offline (connection refused)');
    expect(w.events.filter((e) => e.type === 'Warning').map((e) => e.reason)).to.deep.equal(['ReplicasDegraded']);
  });

  it('a pool back on a new port: the volume is served again with the new replica set', async () => {
    const w = new FakeTargetWorld();
    w.addCv('pv1');
    w.addReplicas('pv1', pools3);
    const s = w.syncer();
    await s.sync(key('pv1'));
    w.setPool('pool-b', '127.0.0.1:4000');
    w.calls.length = 0;
    await s.sync(key('pv1'));
    expect(w.calls.slice(0, 2)).to.deep.equal(['engine.stop pv1', 'engine.serve pv1 1000001536 rf3 bs4096 127.0.0.1:3230,127.0.0.1:4000,127.0.0.1:3232']);
    expect(w.events.map((e) => e.reason)).to.include('ReplicasChanged');
    // The same set in another order is not a change.
    const served = w.served.get('pv1');
    if (served) served.replicas.reverse();
    w.calls.length = 0;
    await s.sync(key('pv1'));
    expect(w.calls.filter((c) => c.startsWith('engine.'))).to.deep.equal([]);
  });

  it('a replica set that becomes incomplete never stops a served volume', async () => {
    const w = new FakeTargetWorld();
    w.addCv('pv1');
    w.addReplicas('pv1', pools3);
    const s = w.syncer();
    await s.sync(key('pv1'));
    w.pools.delete('pool-c');
    w.calls.length = 0;
    await s.sync(key('pv1'));
    expect(w.calls.filter((c) => c.startsWith('engine.'))).to.deep.equal([]);
    expect(w.served.has('pv1')).to.equal(true);
  });

  it('waiting: the Event and the status are written once per distinct message', async () => {
    const w = new FakeTargetWorld();
    w.addCv('pv1');
    w.addReplicas('pv1', ['pool-a']);
    const s = w.syncer();
    await s.sync(key('pv1'));
    await s.sync(key('pv1'));
    await s.sync(key('pv1'));
    expect(w.events.map((e) => e.reason)).to.deep.equal(['WaitingForReplicas']);
    expect(w.calls.filter((c) => c.startsWith('cvs.patchStatus'))).to.have.length(1);
    w.addReplicas('pv1', ['pool-b', 'pool-c']);
    await s.sync(key('pv1'));
    expect(w.served.get('pv1')?.replicas).to.have.length(3);
  });

  it('a repeated serve failure writes its Warning once; success clears the reason', async () => {
    const w = new FakeTargetWorld();
    w.addCv('pv1', { finalizer: true });
    w.addReplicas('pv1', pools3);
    w.failNext('engine.serve', new CstorError('io', 'disk full'), 2);
    const s = w.syncer();
    expect((await syncExpect(w, 'pv1', s))?.code).to.equal('io');
    expect((await syncExpect(w, 'pv1', s))?.code).to.equal('io');
    expect(w.events.filter((e) => e.type === 'Warning')).to.have.length(1);
    expect(await syncExpect(w, 'pv1', s)).to.equal(null);
    expect(w.cv('pv1')?.status?.reason).to.equal('ReplicasConnecting');
  });

  it('a CStorVolume gone from the cache without us: the volume this process served is stopped', async () => {
    const w = new FakeTargetWorld();
    w.addCv('pv1');
    w.addReplicas('pv1', pools3);
    const s = w.syncer();
    await s.sync(key('pv1'));
    w.cvs.delete(key('pv1'));
    await s.sync(key('pv1'));
    expect(w.calls).to.include('engine.stop pv1');
    expect(w.served.has('pv1')).to.equal(false);
    // A volume never served for Kubernetes (made through the mgmt API) is left alone.
    w.served.set('manual', { name: 'manual', capacity: 4096, replicationFactor: 1, replicas: ['127.0.0.1:1'], blockSize: 4096 });
    await s.sync(key('manual'));
    expect(w.served.has('manual')).to.equal(true);
  });

  it('markOffline reports every served volume Offline / TargetStopped', async () => {
    const w = new FakeTargetWorld();
    w.addCv('pv1');
    w.addReplicas('pv1', pools3);
    const s = w.syncer();
    await s.sync(key('pv1'));
    w.setEngine('pv1', 'Healthy', 'Healthy');
    await s.sync(key('pv1'));
    expect(await s.markOffline()).to.equal(1);
    const st = w.cv('pv1')?.status;
    expect(st?.phase).to.equal('Offline');
    expect(st?.reason).to.equal('TargetStopped');
    expect(st?.replicaStatuses?.every((r) => r.mode === 'Offline' && r.quorum === '0')).to.equal(true);
  });
});

describe('target reconciler: pure parts', () => {
  it('assignment by spec.targetIP', () => {
    const cv = (targetIP?: string) => ({ metadata: { name: 'v' }, spec: targetIP === undefined ? {} : { targetIP } });
    expect(isAssigned(cv(me), me)).to.equal(true);
    expect(isAssigned(cv('10.1.1.1'), me)).to.equal(false);
    expect(isAssigned(cv(''), me)).to.equal(true);
    expect(isAssigned(cv(), me)).to.equal(true);
  });

  const sizes: [string | number, number][] = [
    ['5G', 5_000_003_584],
    ['5Gi', 5 * 2 ** 30],
    ['1G', 1_000_001_536],
    ['10M', 10_002_432],
    ['1.5Gi', 1.5 * 2 ** 30],
    ['4096', 4096],
    [1_048_576, 1_048_576],
  ];
  for (const [capacity, bytes] of sizes) {
    it(`capacity ${JSON.stringify(capacity)} → ${bytes} bytes (the pool's rounding, 4 KiB blocks)`, () => {
      const d = desiredVolume({ metadata: { name: 'v' }, spec: { capacity, replicationFactor: 3 } }, 4096);
      expect('problems' in d ? d.problems : d.capacity).to.equal(bytes);
    });
  }

  it('names every problem of a bad spec', () => {
    const d = desiredVolume({ metadata: { name: 'Bad_Name' }, spec: { capacity: '-5G', replicationFactor: 12 } }, 4096);
    expect('problems' in d).to.equal(true);
    const text = 'problems' in d ? d.problems.join(' | ') : '';
    expect(text).to.contain('Bad_Name').and.contain('spec.capacity').and.contain('spec.replicationFactor');
  });

  it('replicas: deleting CVRs do not count; too many CVRs wait; shared addresses wait', () => {
    const cvr = (name: string, pool: string, deleting = false) => ({ metadata: { name, labels: { 'cstorpool.openebs.io/name': pool, 'openebs.io/persistent-volume': 'v' }, ...(deleting ? { deletionTimestamp: 'x' } : {}) } });
    const pool = (address: string) => ({ metadata: { name: 'p' }, status: { address } });
    const pools: Record<string, ReturnType<typeof pool>> = { a: pool('h:1'), b: pool('h:2'), c: pool('h:2') };
    const byName = (n: string) => pools[n];
    expect(resolveReplicas('v', 1, [cvr('v-a', 'a'), cvr('v-b', 'b', true)], byName)).to.deep.equal({ addresses: ['h:1'] });
    expect(resolveReplicas('v', 1, [cvr('v-a', 'a'), cvr('v-b', 'b')], byName)).to.have.property('waiting').that.contains('for replicationFactor 1');
    expect(resolveReplicas('v', 2, [cvr('v-b', 'b'), cvr('v-c', 'c')], byName)).to.have.property('waiting').that.contains('share a pool address');
    expect(resolveReplicas('v', 2, [cvr('v-a', 'a'), cvr('v-x', 'x')], byName)).to.have.property('waiting').that.contains('CStorPool x');
  });

  it('status diff: significant vs volatile', () => {
    const r = { replicaId: 'a', address: 'a', mode: 'Healthy', checkpointedIOSeq: '1', inflightRead: '0', inflightWrite: '0', quorum: '1', upTime: 1 };
    expect(statusDiff({ phase: 'Healthy', replicaStatuses: [r] }, { phase: 'Healthy', replicaStatuses: [{ ...r }] })).to.equal('same');
    expect(statusDiff({ phase: 'Healthy', replicaStatuses: [r] }, { phase: 'Healthy', replicaStatuses: [{ ...r, upTime: 9 }] })).to.equal('volatile');
    expect(statusDiff({ phase: 'Healthy', replicaStatuses: [{ ...r, quorum: 1 }] }, { phase: 'Healthy', replicaStatuses: [r] })).to.equal('same');
    expect(statusDiff({ phase: 'Healthy', replicaStatuses: [r] }, { phase: 'Degraded', replicaStatuses: [r] })).to.equal('significant');
    expect(statusDiff(undefined, { phase: 'Init', replicaStatuses: [] })).to.equal('significant');
  });
});
