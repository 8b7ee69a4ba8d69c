// Leader election on coordination.k8s.io/v1 Leases against a real kube-lite: two candidates,
// exactly one leads; a stopped leader hands over at once; a leader killed with -9 is replaced
// only after its lease expires.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { expect } from 'chai';
import { silentLogger } from '../../lib/logger.ts';
import { LeaderElector } from '../../lib/kube/leader-election.ts';
import { resources } from '../../lib/kube/resources.ts';
import type { Lease } from '../../lib/kube/types/lease.ts';
import { repoRoot, stopAll } from '../support/daemon.ts';
import { KubeLiteHarness, waitFor } from './kube-lite-harness.ts';
import { leaseTimings } from './lease-timings.ts';

describe('lib/kube leader election against kube-lite', function () {
  this.timeout(60_000);
  const kl = new KubeLiteHarness();
  const children: ChildProcess[] = [];
  const electors: LeaderElector[] = [];

  before(async () => {
    await kl.start();
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(electors.map((e) => e.stop()));
    await stopAll();
    kl.cleanup();
  });

  function inProcess(identity: string, log: string[]): LeaderElector {
    const e = new LeaderElector({
      lease: { name: 'lib-kube-test', namespace: 'default' },
      identity,
      client: kl.client<Lease>(resources.leases),
      logger: silentLogger(),
      ...leaseTimings,
      onStartedLeading: () => log.push(`started ${identity}`),
      onStoppedLeading: () => log.push(`stopped ${identity}`),
    });
    electors.push(e);
    return e;
  }

  function child(identity: string, log: string[]): ChildProcess {
    const proc = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'test/lib-kube/lease-candidate.ts'), kl.kubeconfigPath, identity], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    readline.createInterface({ input: proc.stdout! }).on('line', (l) => log.push(l));
    children.push(proc);
    return proc;
  }

  it('elects exactly one of two candidates; a stopped leader hands over at once', async () => {
    const log: string[] = [];
    const a = inProcess('a', log);
    const b = inProcess('b', log);
    a.start();
    b.start();
    await waitFor(() => a.isLeader || b.isLeader, 'a leader');
    // several renew periods with both campaigning: still exactly one
    await new Promise((r) => setTimeout(r, 4 * leaseTimings.retryPeriodMs));
    expect([a.isLeader, b.isLeader].filter(Boolean)).to.have.length(1);
    const [leader, follower] = a.isLeader ? [a, b] : [b, a];
    const lease = await kl.client<Lease>(resources.leases).get({ name: 'lib-kube-test', namespace: 'default' });
    expect(lease.spec?.holderIdentity).to.equal(leader === a ? 'a' : 'b');
    expect(follower.leader).to.equal(lease.spec?.holderIdentity);

    const stoppedAt = Date.now();
    await leader.stop();
    await waitFor(() => follower.isLeader, 'the follower to take over');
    expect(Date.now() - stoppedAt, 'released, so no wait for expiry').to.be.lessThan(leaseTimings.leaseDurationMs);
    expect(log.filter((l) => l.startsWith('started'))).to.have.length(2);
    await follower.stop();
  });

  it('replaces a leader killed with -9 only after its lease expires', async () => {
    const log: string[] = [];
    const proc = child('victim', log);
    await waitFor(() => log.includes('started victim'), 'the child to lead', 30_000, () => log.join('\n'));
    const log2: string[] = [];
    const heir = inProcess('heir', log2);
    heir.start();
    await new Promise((r) => setTimeout(r, 2 * leaseTimings.retryPeriodMs));
    expect(heir.isLeader, 'the victim is alive and renewing').to.equal(false);
    proc.kill('SIGKILL');
    await new Promise<void>((resolve) => (proc.exitCode !== null || proc.signalCode !== null ? resolve() : proc.once('exit', () => resolve())));
    const leases = kl.client<Lease>(resources.leases);
    const last = await leases.get({ name: 'lib-kube-test', namespace: 'default' });
    expect(last.spec?.holderIdentity).to.equal('victim');
    const lastRenew = Date.parse(last.spec?.renewTime ?? '');
    await waitFor(() => heir.isLeader, 'the heir to take over', 20_000);
    // Not before the victim's lease expired (same machine, same clock; 50 ms of timestamp slack).
    expect(Date.now() - lastRenew).to.be.at.least(leaseTimings.leaseDurationMs - 50);
    expect(log2).to.deep.equal(['started heir']);
    const lease = await kl.client<Lease>(resources.leases).get({ name: 'lib-kube-test', namespace: 'default' });
    expect(lease.spec?.holderIdentity).to.equal('heir');
    expect(lease.spec?.leaseTransitions).to.be.at.least(1);
    await heir.stop();
  });
});
