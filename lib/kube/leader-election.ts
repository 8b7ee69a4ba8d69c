// Leader election on a coordination.k8s.io/v1 Lease, like client-go's leaderelection:
// - a candidate takes the lease when it does not exist, is released (no holder), or its holder
//   has not renewed it for leaseDuration, as measured on OUR clock from when we last saw the
//   record change (no trust in other machines' clocks);
// - the leader renews every retryPeriod; if it cannot renew for renewDeadline, it stops leading
//   (onStoppedLeading) before the lease can expire for others (renewDeadline < leaseDuration);
// - seeing another holder's live lease while leading stops leadership at once;
// - stop() releases the lease (holder cleared) so a successor need not wait out the duration.
// Writes use the Lease's resourceVersion, so two candidates racing for it get one winner (409).
// After losing leadership the elector keeps campaigning; onStartedLeading fires again if it wins.
import type { Logger } from '../logger.ts';
import { CstorError, describeError, hasErrorCode } from '../errors.ts';
import { realClock, sleep, type Clock } from './clock.ts';
import type { ResourceClient } from './resource-client.ts';
import { kubeMicroTime } from './time-format.ts';
import type { Lease, LeaseSpec } from './types/lease.ts';

export type LeaseClient = Pick<ResourceClient<Lease>, 'get' | 'create' | 'replace'>;

export interface LeaderElectionOptions {
  lease: { name: string; namespace: string };
  /** This candidate's identity (e.g. pod name + random suffix); must be unique among candidates. */
  identity: string;
  client: LeaseClient;
  logger: Logger;
  /** How long others wait before taking a lease that is not renewed (default 15 s). */
  leaseDurationMs?: number;
  /** How long the leader keeps trying to renew before giving up leadership (default 10 s). */
  renewDeadlineMs?: number;
  /** How often to try to acquire or renew (default 2 s; jittered by up to 20% while acquiring). */
  retryPeriodMs?: number;
  clock?: Clock;
  random?: () => number;
  onStartedLeading: () => void;
  /**
   * Called when leadership ends (renew failed, lease taken, or stop()). A returned promise is
   * awaited before the lease is released on stop() and before campaigning again.
   */
  onStoppedLeading: () => unknown;
  /** Called when the observed holder changes (including to ourselves). */
  onNewLeader?: (identity: string) => void;
}

type Attempt = 'leading' | 'held-by-other' | 'failed';

export class LeaderElector {
  private readonly o: Required<Omit<LeaderElectionOptions, 'onNewLeader' | 'random'>> & Pick<LeaderElectionOptions, 'onNewLeader'>;
  private readonly random: () => number;
  private readonly logger: Logger;
  private readonly stopController = new AbortController();
  private running: Promise<void> | undefined;
  private leading = false;
  private observedRecord = '';
  private observedTime = 0;
  private observedHolder = '';
  private lastLease: Lease | undefined;
  /** A renew attempt given up at the renew deadline and not yet finished. */
  private straggler: Promise<void> | undefined;

  constructor(options: LeaderElectionOptions) {
    this.o = {
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      clock: realClock,
      ...options,
    };
    this.random = options.random ?? Math.random;
    const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = this.o;
    const problems: string[] = [];
    if (!options.identity) problems.push('identity is empty');
    if (leaseDurationMs <= renewDeadlineMs) problems.push(`leaseDuration (${leaseDurationMs} ms) must be longer than renewDeadline (${renewDeadlineMs} ms)`);
    if (renewDeadlineMs <= retryPeriodMs * 1.2) problems.push(`renewDeadline (${renewDeadlineMs} ms) must be longer than 1.2 × retryPeriod (${retryPeriodMs} ms)`);
    if (retryPeriodMs <= 0) problems.push('retryPeriod must be positive');
    if (problems.length) throw new CstorError('invalid', `leader election: ${problems.join('; ')}`);
    this.logger = options.logger.child({ lease: `${options.lease.namespace}/${options.lease.name}`, identity: options.identity });
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** The holder last observed ('' when none). */
  get leader(): string {
    return this.observedHolder;
  }

  start(): void {
    if (this.running) return;
    this.running = this.run().catch((err: unknown) => {
      this.logger.error('leader election loop crashed', { error: describeError(err) });
    });
  }

  /** Stops campaigning; a leader releases the lease and gets onStoppedLeading. */
  async stop(): Promise<void> {
    this.stopController.abort();
    await this.running;
  }

  private get stopped(): boolean {
    return this.stopController.signal.aborted;
  }

  private async run(): Promise<void> {
    const clock = this.o.clock;
    while (!this.stopped) {
      // A renew that outlived the renew deadline may still be in flight: let it finish before
      // campaigning again, so one elector never has two attempts racing on the lease.
      if (this.straggler) {
        const signal = this.stopController.signal;
        let onStop = (): void => {};
        await Promise.race([this.straggler, new Promise<void>((resolve) => signal.addEventListener('abort', (onStop = () => resolve()), { once: true }))]);
        signal.removeEventListener('abort', onStop);
        this.straggler = undefined;
      }
      // Campaign until we hold the lease.
      let acquired = false;
      let acquiredAt = 0;
      while (!this.stopped) {
        const started = clock.now();
        if ((await this.tryAcquireOrRenew()) === 'leading') {
          acquired = true;
          acquiredAt = started;
          break;
        }
        await sleep(clock, this.o.retryPeriodMs * (1 + 0.2 * this.random()), this.stopController.signal);
      }
      if (this.stopped) {
        if (acquired) await this.release(); // won just as we were stopped: hand it back
        break;
      }
      this.leading = true;
      this.logger.info('started leading');
      this.callback(this.o.onStartedLeading, 'onStartedLeading');

      // Renew until we cannot, or are stopped. The deadline counts from when the last successful
      // attempt STARTED (its write landed after that, so others saw it no earlier), and a renew
      // still hanging at the deadline does not keep us leading: others take the lease when it
      // has not changed for leaseDuration, whatever our request is doing.
      let lastRenew = acquiredAt;
      while (!this.stopped) {
        await sleep(clock, this.o.retryPeriodMs, this.stopController.signal);
        if (this.stopped) break;
        const started = clock.now();
        const result = await this.renewBefore(lastRenew + this.o.renewDeadlineMs - started);
        if (result === 'leading') {
          lastRenew = started;
          continue;
        }
        if (result === 'held-by-other') {
          this.logger.warn('lease taken by another holder', { holder: this.observedHolder });
          break;
        }
        if (this.stopped) break;
        if (result === 'deadline' || clock.now() - lastRenew >= this.o.renewDeadlineMs) {
          this.logger.warn('could not renew the lease within the renew deadline', { renewDeadlineMs: this.o.renewDeadlineMs });
          break;
        }
      }
      this.leading = false;
      this.logger.info('stopped leading');
      // The work stops before the lease is released (a successor starts only once we have stopped),
      // and before campaigning again (never a second onStartedLeading while the first still winds down).
      await this.stoppedLeading();
      if (this.stopped) await this.release();
    }
  }

  /** One renew attempt, given up (not cancelled) when `ms` pass or the elector is stopped first. */
  private async renewBefore(ms: number): Promise<Attempt | 'deadline'> {
    if (ms <= 0) return 'deadline';
    const attempt = this.tryAcquireOrRenew();
    const timer = new AbortController();
    const onStop = (): void => timer.abort();
    this.stopController.signal.addEventListener('abort', onStop, { once: true });
    try {
      const result = await Promise.race([attempt, sleep(this.o.clock, ms, timer.signal).then(() => 'deadline' as const)]);
      if (result === 'deadline') this.straggler = attempt.then(() => undefined);
      return result;
    } finally {
      timer.abort();
      this.stopController.signal.removeEventListener('abort', onStop);
    }
  }

  private async stoppedLeading(): Promise<void> {
    try {
      await this.o.onStoppedLeading();
    } catch (err) {
      this.logger.error('onStoppedLeading callback threw', { error: describeError(err) });
    }
  }

  private async tryAcquireOrRenew(): Promise<Attempt> {
    let now = this.o.clock.now();
    const me = this.o.identity;
    const ref = this.o.lease;
    let lease: Lease;
    try {
      lease = await this.o.client.get(ref);
    } catch (err) {
      if (!hasErrorCode(err, 'not_found')) {
        this.logger.warn('cannot read the lease', { error: describeError(err) });
        return 'failed';
      }
      now = this.o.clock.now();
      try {
        const created = await this.o.client.create({
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: ref.name, namespace: ref.namespace },
          spec: this.spec(now, now, 0),
        });
        this.observe(created, now);
        return 'leading';
      } catch (createErr) {
        if (!hasErrorCode(createErr, 'already_exists', 'conflict')) this.logger.warn('cannot create the lease', { error: describeError(createErr) });
        return 'failed';
      }
    }
    // Seen now, after the GET returned (not when it was sent): a record we saw change counts as
    // changed no earlier than we saw it, so a slow GET never makes the lease look older than it is.
    now = this.o.clock.now();
    this.observe(lease, now);
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const durationMs = (spec.leaseDurationSeconds ?? this.o.leaseDurationMs / 1000) * 1000;
    if (holder && holder !== me && this.observedTime + durationMs > now) return 'held-by-other';
    if (holder !== me && this.leading) return 'held-by-other';

    const transitions = spec.leaseTransitions ?? 0;
    const next: Lease = {
      ...lease,
      spec: holder === me ? this.spec(parseTime(spec.acquireTime) ?? now, now, transitions) : this.spec(now, now, transitions + 1),
    };
    try {
      const updated = await this.o.client.replace(next);
      this.observe(updated, now);
      return 'leading';
    } catch (err) {
      if (!hasErrorCode(err, 'conflict')) this.logger.warn('cannot update the lease', { error: describeError(err) });
      return 'failed';
    }
  }

  private spec(acquiredMs: number, renewedMs: number, transitions: number): LeaseSpec {
    return {
      holderIdentity: this.o.identity,
      leaseDurationSeconds: Math.ceil(this.o.leaseDurationMs / 1000),
      acquireTime: kubeMicroTime(acquiredMs),
      renewTime: kubeMicroTime(renewedMs),
      leaseTransitions: transitions,
    };
  }

  private observe(lease: Lease, now: number): void {
    this.lastLease = lease;
    const spec = lease.spec ?? {};
    const record = JSON.stringify([spec.holderIdentity ?? '', spec.renewTime ?? '', spec.acquireTime ?? '', spec.leaseTransitions ?? 0]);
    if (record !== this.observedRecord) {
      this.observedRecord = record;
      this.observedTime = now;
    }
    const holder = spec.holderIdentity ?? '';
    if (holder !== this.observedHolder) {
      this.observedHolder = holder;
      if (holder && this.o.onNewLeader) this.callback(() => this.o.onNewLeader?.(holder), 'onNewLeader');
    }
  }

  /** Clears the holder so a successor can take over at once (client-go's ReleaseOnCancel). */
  private async release(): Promise<void> {
    const lease = this.lastLease;
    if (!lease || lease.spec?.holderIdentity !== this.o.identity) return;
    const now = this.o.clock.now();
    try {
      await this.o.client.replace({
        ...lease,
        spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: kubeMicroTime(now), acquireTime: kubeMicroTime(now) },
      });
      this.logger.info('released the lease');
    } catch (err) {
      this.logger.warn('cannot release the lease; others will take it when it expires', { error: describeError(err) });
    }
  }

  private callback(fn: () => void, name: string): void {
    try {
      fn();
    } catch (err) {
      this.logger.error(`${name} callback threw`, { error: describeError(err) });
    }
  }
}

function parseTime(s: string | null | undefined): number | undefined {
  if (!s) return undefined;
  const ms = Date.parse(s);
  return Number.isNaN(ms) ? undefined : ms;
}

export interface RunWhenLeadingOptions {
  /** The Lease to campaign for; undefined: no election, `start` runs at once. */
  election: Pick<LeaderElectionOptions, 'lease' | 'identity' | 'client' | 'leaseDurationMs'> | undefined;
  logger: Logger;
  start: () => void;
  stop: () => Promise<void>;
}

/**
 * Runs `start` while this process leads (renew deadline 2/3 and retry period 1/5 of the lease
 * duration, 15 s by default) and `stop` when it stops leading; without an election, `start` at
 * once. Returns the elector, to stop (releasing the lease) at shutdown.
 */
export function runWhenLeading(o: RunWhenLeadingOptions): LeaderElector | undefined {
  if (!o.election) {
    o.start();
    return undefined;
  }
  const leaseDurationMs = o.election.leaseDurationMs ?? 15_000;
  const elector = new LeaderElector({
    ...o.election,
    logger: o.logger,
    leaseDurationMs,
    renewDeadlineMs: Math.round((leaseDurationMs * 2) / 3),
    retryPeriodMs: Math.round(leaseDurationMs / 5),
    onStartedLeading: o.start,
    onStoppedLeading: () => o.stop(),
    onNewLeader: (leader) => o.logger.info('leader observed', { leader }),
  });
  elector.start();
  return elector;
}
