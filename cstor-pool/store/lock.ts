// Async locks for the layer store. Mutex: one structural operation at a time per pool.
// RWLock: IO runs shared; structural changes of a replica (snapshot, fold, rebuild steps) run
// exclusive, and a waiting exclusive holder blocks new shared ones so it is not starved.

export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

interface Waiter {
  exclusive: boolean;
  resolve: () => void;
}

export class RWLock {
  private readers = 0;
  private writer = false;
  private readonly waiters: Waiter[] = [];

  async shared<T>(fn: () => Promise<T>): Promise<T> {
    if (this.writer || this.waiters.length > 0) {
      await new Promise<void>((resolve) => this.waiters.push({ exclusive: false, resolve }));
    } else {
      this.readers++;
    }
    try {
      return await fn();
    } finally {
      this.readers--;
      this.wake();
    }
  }

  /**
   * Takes the lock shared now, without a promise, when no writer holds it or waits for it; the
   * caller must then call releaseShared exactly once. false: not taken (use `shared`).
   */
  tryShared(): boolean {
    if (this.writer || this.waiters.length > 0) return false;
    this.readers++;
    return true;
  }

  /** Releases a hold taken by tryShared. */
  releaseShared(): void {
    this.readers--;
    this.wake();
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.writer || this.readers > 0 || this.waiters.length > 0) {
      await new Promise<void>((resolve) => this.waiters.push({ exclusive: true, resolve }));
    } else {
      this.writer = true;
    }
    try {
      return await fn();
    } finally {
      this.writer = false;
      this.wake();
    }
  }

  private wake(): void {
    if (this.writer) return;
    while (this.waiters.length > 0) {
      const next = this.waiters[0]!;
      if (next.exclusive) {
        if (this.readers > 0) return;
        this.waiters.shift();
        this.writer = true;
        next.resolve();
        return;
      }
      this.waiters.shift();
      this.readers++;
      next.resolve();
    }
  }
}
