// Quiesce for snapshots and rebuild joins: hold new writes at a gate and wait, without polling,
// until every replica-level write already sent has settled. Reads never pass through it.

export class WriteGate {
  private holds = 0;
  private openWaiters: (() => void)[] = [];
  private pending = 0;
  private drainWaiters: (() => void)[] = [];

  get isHeld(): boolean {
    return this.holds > 0;
  }

  /** Replica-level write requests sent and not yet settled. */
  get pendingOps(): number {
    return this.pending;
  }

  /** Resolves at once when the gate is open, else when the last hold is released. */
  waitOpen(): Promise<void> | undefined {
    if (this.holds === 0) return undefined;
    return new Promise((resolve) => this.openWaiters.push(resolve));
  }

  hold(): void {
    this.holds++;
  }

  release(): void {
    if (this.holds === 0) return;
    this.holds--;
    if (this.holds > 0) return;
    const waiters = this.openWaiters;
    this.openWaiters = [];
    for (const w of waiters) w();
  }

  opStarted(): void {
    this.pending++;
  }

  opSettled(): void {
    this.pending--;
    if (this.pending > 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves true once nothing is pending, or false after `timeoutMs`. */
  drained(timeoutMs: number): Promise<boolean> {
    if (this.pending === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.drainWaiters = this.drainWaiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      this.drainWaiters.push(waiter);
    });
  }
}

/** A FIFO async mutex. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
