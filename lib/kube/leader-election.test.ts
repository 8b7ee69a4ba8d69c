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
