// Exponential backoff: base * 2^attempt, capped, with optional jitter. Used by the work
// queue (per key) and the informer (per restart).

export interface BackoffOptions {
  /** Delay of the first retry. */
  baseMs: number;
  /** The cap. */
  maxMs: number;
  /** Adds up to this fraction of the delay at random (0 = none). */
  jitter?: number;
}

/** The delay before retry number `attempt` (0-based). */
export function backoffDelay(options: BackoffOptions, attempt: number, random: () => number = Math.random): number {
  const exp = Math.min(attempt, 52);
  const raw = Math.min(options.maxMs, options.baseMs * 2 ** exp);
  const jitter = options.jitter ? raw * options.jitter * random() : 0;
  return Math.min(options.maxMs, raw + jitter);
}

/** Per-key failure counts and their backoff delays (client-go's ItemExponentialFailureRateLimiter). */
export class KeyedBackoff {
  private readonly failures = new Map<string, number>();

  constructor(private readonly options: BackoffOptions) {}

  /** Records one more failure of `key` and returns how long to wait before retrying it. */
  next(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    return backoffDelay(this.options, n);
  }

  /** Failures recorded for `key` since it was last forgotten. */
  count(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }
}
