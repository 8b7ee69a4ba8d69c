// When the store's hot path (a replica's READ and WRITE) does its file IO synchronously on the event
// loop instead of in libuv's thread pool. A thread-pool pread/pwrite costs two thread wake-ups per
// IO (the loop wakes a worker through a futex, the worker wakes the loop through an eventfd) and the
// completions come back one loop turn at a time; on a page-cache hit the syscall itself takes a few
// µs, less than the wake-ups. Inline, a whole batch of requests decoded from one socket read runs in
// one turn and its replies leave in one socket write. Figures: docs/pool-daemon.md ("Per-IO cost").
//
// The risk is a syscall that blocks (a cold read waiting for the disk, a write throttled by the
// kernel's dirty-page limits): it stalls every connection of the pool for that long. So the rule is
// adaptive, per direction (reads and writes apart):
// - only IOs of at most `maxBytes` go inline;
// - each inline call is timed; a second call slower than `stallMs` within 64 calls switches that
//   direction to the thread pool at once (a lone one is as likely the process being preempted on
//   a busy host), and so does a run of calls slower than `slowUs` (+ the time copying their bytes
//   takes at 1 GB/s) once they are more than 1/8 of the recent calls (an average over ~64 calls, so
//   an odd call delayed by preemption does not count, while reads that go to the disk, ~100 µs
//   and up, do);
// - after `backoffMs` on the thread pool, inline IO is tried again.
// So in the worst case the loop is stalled by two slow calls per `backoffMs` per direction.

export interface InlineIoOptions {
  /** Largest IO done inline, bytes (0: never inline). */
  maxBytes: number;
  /** A call slower than this (plus its bytes at 1 GB/s) counts as slow, µs. */
  slowUs: number;
  /** Two calls slower than this (plus their bytes at 1 GB/s) close together switch to the thread pool, ms. */
  stallMs: number;
  /** Time on the thread pool after a switch before inline IO is tried again, ms. */
  backoffMs: number;
}

export const defaultInlineIo: Readonly<InlineIoOptions> = Object.freeze({ maxBytes: 1024 * 1024, slowUs: 100, stallMs: 10, backoffMs: 1000 });

/** Weight of one call in the slow-call average (about the last 64 calls count). */
const decay = 1 / 64;
/** Share of slow calls in the average past which the direction switches to the thread pool. */
const slowShare = 1 / 8;
/** Two calls slower than stallMs within this many calls switch to the thread pool. */
const stallWindow = 64;

export class InlineIoPolicy {
  private options: InlineIoOptions;
  private slowAvg = 0;
  /** `calls` at the last call slower than stallMs. */
  private lastStall = -Infinity;
  /** performance.now() until which IO goes to the thread pool. */
  private offUntil = 0;
  /** Inline calls so far (metrics). */
  calls = 0;
  /** Switches to the thread pool so far (metrics, tests). */
  fallbacks = 0;

  constructor(
    readonly direction: 'read' | 'write',
    options: InlineIoOptions = defaultInlineIo,
  ) {
    this.options = { ...options };
  }

  configure(options: Partial<InlineIoOptions>): void {
    this.options = { ...this.options, ...options };
    this.slowAvg = 0;
    this.offUntil = 0;
    this.lastStall = -Infinity;
  }

  get settings(): Readonly<InlineIoOptions> {
    return this.options;
  }

  /** Whether an IO of `bytes` should run inline now; `now` is performance.now(). */
  admits(bytes: number, now: number): boolean {
    if (bytes > this.options.maxBytes) return false;
    if (this.offUntil === 0) return true;
    if (now < this.offUntil) return false;
    this.offUntil = 0;
    this.slowAvg = 0;
    this.lastStall = -Infinity;
    return true;
  }

  /** Records an inline call of `bytes` that took `elapsedMs`; `now` is when it ended. */
  record(bytes: number, elapsedMs: number, now: number): void {
    const o = this.options;
    this.calls++;
    // Both limits allow the call its copying time, bytes at 1 GB/s (1 MiB: ~1 ms).
    const copyUs = bytes / 1000;
    const slow = elapsedMs * 1000 > o.slowUs + copyUs;
    this.slowAvg = this.slowAvg * (1 - decay) + (slow ? decay : 0);
    // A stall counts when it is the second within `stallWindow` calls: a lone one is as likely
    // the process being preempted on a busy host as the syscall blocking.
    let stalled = false;
    if (elapsedMs * 1000 > o.stallMs * 1000 + copyUs) {
      stalled = this.calls - this.lastStall <= stallWindow;
      this.lastStall = this.calls;
    }
    if (stalled || this.slowAvg > slowShare) {
      this.offUntil = now + o.backoffMs;
      this.slowAvg = 0;
      this.fallbacks++;
    }
  }
}

/** The process's policies (one pool per process): set from `cstor pool`'s flags. */
export const inlineReads = new InlineIoPolicy('read');
export const inlineWrites = new InlineIoPolicy('write');

/** Sets both directions (cstor-pool/main.ts, tests, benches). */
export function configureInlineIo(options: Partial<InlineIoOptions>): void {
  inlineReads.configure(options);
  inlineWrites.configure(options);
}
