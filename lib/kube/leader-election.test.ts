import { expect } from 'chai';
import { CstorError } from '../errors.ts';
import { silentLogger } from '../logger.ts';
import { FakeClock, flush } from './fake-clock.ts';
import { LeaderElector, type LeaseClient } from './leader-election.ts';
import type { ObjectRef } from './resource-client.ts';
import type { Lease } from './types/lease.ts';

/** One Lease with resourceVersion checks; `down` makes every call fail. */
class FakeLeases implements LeaseClient {
  lease: Lease | undefined;
  rv = 0;
  down = false;
  writes = 0;

  async get(_ref: ObjectRef): Promise<Lease> {
    if (this.down) throw new CstorError('unavailable', 'down');
    if (!this.lease) throw new CstorError('not_found', 'leases "x" not found');
    return structuredClone(this.lease);
  }

  async create(obj: Lease): Promise<Lease> {
    if (this.down) throw new CstorError('unavailable', 'down');
    if (this.lease) throw new CstorError('already_exists', 'exists');
    this.writes++;
    this.lease = { ...structuredClone(obj), metadata: { ...obj.metadata, resourceVersion: String(++this.rv) } };
    return structuredClone(this.lease);
  }

  async replace(obj: Lease): Promise<Lease> {
    if (this.down) throw new CstorError('unavailable', 'down');
    if (!this.lease) throw new CstorError('not_found', 'gone');
    if (obj.metadata?.resourceVersion !== this.lease.metadata?.resourceVersion) throw new CstorError('conflict', 'stale');
    this.writes++;
    this.lease = { ...structuredClone(obj), metadata: { ...obj.metadata, resourceVersion: String(++this.rv) } };
    return structuredClone(this.lease);
  }
}

/** A fake clock, one fake Lease and a log of leadership changes, and candidates over them. */
function election() {
  const clock = new FakeClock();
  const leases = new FakeLeases();
  const log: string[] = [];
  const candidate = (id: string): LeaderElector =>
    new LeaderElector({
      lease: { name: 'ctrl', namespace: 'openebs' },
      identity: id,
      client: leases,
      logger: silentLogger(),
      clock,
      random: () => 0,
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      onStartedLeading: () => log.push(`${id} started`),
      onStoppedLeading: () => log.push(`${id} stopped`),
    });
  return { clock, leases, log, candidate };
}

describe('LeaderElector', () => {
  it('elects exactly one of two candidates, which keeps renewing', async () => {
    const { clock, leases, log, candidate } = election();
    const a = candidate('a');
    const b = candidate('b');
    a.start();
    b.start();
    await clock.advance(60_000);
    expect(log).to.deep.equal(['a started']);
    expect([a.isLeader, b.isLeader]).to.deep.equal([true, false]);
    expect(b.leader).to.equal('a');
    expect(leases.lease?.spec?.holderIdentity).to.equal('a');
    expect(leases.lease?.spec?.leaseDurationSeconds).to.equal(15);
    expect(leases.lease?.spec?.renewTime).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(leases.writes, 'renewed about every retry period').to.be.greaterThan(25);
    await a.stop();
    await b.stop();
  });

  it('hands over at once when the leader stops (it releases the lease)', async () => {
    const { clock, leases, log, candidate } = election();
    const a = candidate('a');
    const b = candidate('b');
    a.start();
    await flush();
    b.start();
    await clock.advance(10_000);
    await a.stop();
    expect(leases.lease?.spec?.holderIdentity).to.equal(null);
    await clock.advance(2_000);
    expect(log).to.deep.equal(['a started', 'a stopped', 'b started']);
    expect(leases.lease?.spec?.holderIdentity).to.equal('b');
    expect(leases.lease?.spec?.leaseTransitions).to.equal(1);
    await b.stop();
  });

  it('takes over from a dead leader only after the lease duration has passed unrenewed', async () => {
    const { clock, leases, log, candidate } = election();
    // the dead leader's lease, as it left it
    await leases.create({ metadata: { name: 'ctrl', namespace: 'openebs' }, spec: { holderIdentity: 'dead', leaseDurationSeconds: 15, leaseTransitions: 3 } });
    const b = candidate('b');
    b.start();
    await clock.advance(14_000);
    expect(log).to.deep.equal([]);
    await clock.advance(4_000);
    expect(log).to.deep.equal(['b started']);
    expect(leases.lease?.spec?.leaseTransitions).to.equal(4);
    await b.stop();
  });

  it('stops leading when it cannot renew within the renew deadline, and campaigns again', async () => {
    const { clock, leases, log, candidate } = election();
    const a = candidate('a');
    a.start();
    await clock.advance(1);
    expect(a.isLeader).to.equal(true);
    leases.down = true;
    await clock.advance(9_000);
    expect(a.isLeader, 'still inside the renew deadline').to.equal(true);
    await clock.advance(2_000);
    expect(a.isLeader).to.equal(false);
    expect(log).to.deep.equal(['a started', 'a stopped']);
    leases.down = false;
    await clock.advance(3_000);
    expect(log).to.deep.equal(['a started', 'a stopped', 'a started']);
    await a.stop();
  });

  it('stops leading at the renew deadline while a renew request hangs, before another candidate takes over', async () => {
    const { clock, leases, log } = election();
    // a's API calls can hang (a partitioned client); b reaches the same Lease normally.
    let hang = false;
    const hanging: LeaseClient = {
      get: (ref) => (hang ? new Promise<Lease>(() => {}) : leases.get(ref)),
      create: (obj) => leases.create(obj),
      replace: (obj) => (hang ? new Promise<Lease>(() => {}) : leases.replace(obj)),
    };
    const mk = (id: string, client: LeaseClient, others: () => LeaderElector[]): LeaderElector =>
      new LeaderElector({
        lease: { name: 'ctrl', namespace: 'openebs' },
        identity: id,
        client,
        logger: silentLogger(),
        clock,
        random: () => 0,
        leaseDurationMs: 15_000,
        renewDeadlineMs: 10_000,
        retryPeriodMs: 2_000,
        onStartedLeading: () => log.push(`${id} started${others().some((o) => o.isLeader) ? ' while another leads' : ''}`),
        onStoppedLeading: () => log.push(`${id} stopped`),
      });
    const a: LeaderElector = mk('a', hanging, () => [b]);
    const b: LeaderElector = mk('b', leases, () => [a]);
    a.start();
    await clock.advance(1);
    b.start();
    await clock.advance(5_000);
    expect(a.isLeader).to.equal(true);
    hang = true;
    await clock.advance(60_000);
    expect(log).to.deep.equal(['a started', 'a stopped', 'b started']);
    expect(a.isLeader).to.equal(false);
    expect(b.isLeader).to.equal(true);
    await b.stop();
    await a.stop();
  });

  it('awaits an async onStoppedLeading before campaigning again and before releasing on stop()', async () => {
    const { clock, leases, log } = election();
    let finishStop: () => void = () => {};
    const a = new LeaderElector({
      lease: { name: 'ctrl', namespace: 'openebs' },
      identity: 'a',
      client: leases,
      logger: silentLogger(),
      clock,
      random: () => 0,
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      onStartedLeading: () => log.push('a started'),
      onStoppedLeading: () => {
        log.push('a stopping');
        return new Promise<void>((resolve) => {
          finishStop = () => {
            log.push('a stopped');
            resolve();
          };
        });
      },
    });
    a.start();
    await clock.advance(1);
    leases.down = true;
    await clock.advance(12_000);
    expect(log).to.deep.equal(['a started', 'a stopping']);
    leases.down = false;
    await clock.advance(10_000);
    expect(log, 'no second start while the first stop winds down').to.deep.equal(['a started', 'a stopping']);
    finishStop();
    await clock.advance(3_000);
    expect(log).to.deep.equal(['a started', 'a stopping', 'a stopped', 'a started']);
    // stop(): the work stops first, then the lease is released.
    const stopping = a.stop();
    await flush();
    expect(leases.lease?.spec?.holderIdentity, 'not released while the work still runs').to.equal('a');
    finishStop();
    await stopping;
    expect(leases.lease?.spec?.holderIdentity).to.equal(null);
  });

  it("ignores the holder's clock: a skewed renewTime neither delays nor hastens a takeover", async () => {
    const { clock, leases, log, candidate } = election();
    // A holder whose clock runs a year ahead, gone silent: taken after leaseDuration on OUR clock.
    await leases.create({ metadata: { name: 'ctrl', namespace: 'openebs' }, spec: { holderIdentity: 'future', leaseDurationSeconds: 15, renewTime: '2099-01-01T00:00:00.000000Z' } });
    const b = candidate('b');
    b.start();
    await clock.advance(14_000);
    expect(log).to.deep.equal([]);
    await clock.advance(4_000);
    expect(log).to.deep.equal(['b started']);
    await b.stop();

    // A live holder whose clock runs a year behind (renewTime long past, but it keeps changing): never taken.
    const e2 = election();
    await e2.leases.create({ metadata: { name: 'ctrl', namespace: 'openebs' }, spec: { holderIdentity: 'past', leaseDurationSeconds: 15, renewTime: '2000-01-01T00:00:00.000000Z' } });
    const c = e2.candidate('c');
    c.start();
    for (let i = 0; i < 30; i++) {
      const l = e2.leases.lease!;
      await e2.leases.replace({ ...l, spec: { ...l.spec, renewTime: `2000-01-01T00:00:${String(i % 60).padStart(2, '0')}.000000Z` } });
      await e2.clock.advance(2_000);
    }
    expect(e2.log).to.deep.equal([]);
    expect(c.leader).to.equal('past');
    await c.stop();
  });

  it('refuses inconsistent timings', () => {
    expect(
      () =>
        new LeaderElector({
          lease: { name: 'l', namespace: 'n' },
          identity: 'x',
          client: new FakeLeases(),
          logger: silentLogger(),
          leaseDurationMs: 5_000,
          renewDeadlineMs: 6_000,
          retryPeriodMs: 6_000,
          onStartedLeading: () => {},
          onStoppedLeading: () => {},
        }),
    ).to.throw(/leaseDuration \(5000 ms\) must be longer than renewDeadline.*renewDeadline \(6000 ms\) must be longer/);
  });
});
