// Runs one controller's reconcile pass: triggered by store events (coalesced: one pass at a time,
// one more if triggered meanwhile), retried with backoff after an error, and re-run after the
// delay a pass asks for.
import { describeError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';

/** A pass returns a delay in ms to run again (e.g. waiting for finalizers), or nothing. */
export type Pass = () => Promise<number | void>;

export class PassRunner {
  private running = false;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private failures = 0;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly name: string,
    private readonly pass: Pass,
    private readonly logger: Logger,
  ) {}

  trigger(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.running = true;
    setImmediate(() => void this.run());
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Resolves when no pass is running (for a clean shutdown). */
  idle(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async run(): Promise<void> {
    let delay: number | void = undefined;
    try {
      this.again = false;
      delay = await this.pass();
      this.failures = 0;
    } catch (err) {
      this.failures++;
      delay = Math.min(30_000, 250 * 2 ** Math.min(this.failures, 7));
      this.logger.warn('controller pass failed; retrying', { controller: this.name, error: describeError(err), retryInMs: delay });
    } finally {
      this.running = false;
      for (const w of this.idleWaiters.splice(0)) w();
    }
    if (this.stopped) return;
    if (this.again) this.trigger();
    else if (typeof delay === 'number') this.timer = setTimeout(() => this.trigger(), delay).unref();
  }
}

/**
 * A controller whose work is one pass over the store, run by a PassRunner: start() runs a first
 * pass, trigger() (from the subclass's store-event listener) another, stop() ends it once the
 * running pass is over.
 */
export abstract class PassController {
  private readonly runner: PassRunner;

  constructor(name: string, logger: Logger) {
    this.runner = new PassRunner(name, () => this.pass(), logger);
  }

  protected abstract pass(): Promise<number | void>;

  protected trigger(): void {
    this.runner.trigger();
  }

  start(): void {
    this.runner.trigger();
  }

  stop(): Promise<void> {
    this.runner.stop();
    return this.runner.idle();
  }
}
