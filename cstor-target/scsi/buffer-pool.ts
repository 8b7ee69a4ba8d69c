// Large IO buffers reused from one command to the next: a 1 MiB write's data-out (the iSCSI layer
// reads it from the socket straight into a leased buffer) and a 1 MiB read's data (the replica
// client reads the reply straight into one). Fresh 1 MiB Buffers per IO made V8 run a major GC
// every few dozen IOs (external memory pressure), which cost more than the IO itself.
//
// Rules: a Lease is given back (release) only by the one party that knows nothing references its
// buffer any more: the socket write that carried it completed, every replica replied to it, no
// socket read may still land in it. A lease that cannot be proven free is simply dropped and its
// buffer left to the GC, never given back: a lost lease costs an allocation, a wrong release would
// corrupt another command's data.
//   const lease = ioBuffers.acquire(1 << 20);  // undefined outside the pooled sizes
//   lease.buffer ...; lease.release();
import { CstorError } from '../../lib/errors.ts';

export interface BufferPoolOptions {
  /** Smallest size served (smaller requests get undefined); a power of two. Default 64 KiB. */
  readonly minSize?: number;
  /** Largest size served; a power of two. Default 16 MiB. */
  readonly maxSize?: number;
  /** Free buffers kept, in bytes over all size classes (the rest go to the GC). Default 64 MiB. */
  readonly maxFreeBytes?: number;
}

/** One use of a pooled buffer: `buffer` is exactly the size asked for (a view of the pooled slab). */
export class Lease {
  private released = false;

  constructor(
    readonly buffer: Buffer,
    private readonly slab: Buffer,
    private readonly pool: BufferPool,
  ) {}

  /** Gives the buffer back for reuse. Only once nothing can read or write it any more; a second call is ignored. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.pool.giveBack(this.slab);
  }
}

export class BufferPool {
  readonly minSize: number;
  readonly maxSize: number;
  private readonly maxFreeBytes: number;
  /** Free slabs per size class (index: log2(size) - log2(minSize)), used last in first out. */
  private readonly free: Buffer[][];
  private freeBytes = 0;
  /** Leases handed out, and how many of them found a free slab (for tests and the bench). */
  acquired = 0;
  reused = 0;

  constructor(options: BufferPoolOptions = {}) {
    this.minSize = options.minSize ?? 64 * 1024;
    this.maxSize = options.maxSize ?? 16 * 1024 * 1024;
    this.maxFreeBytes = options.maxFreeBytes ?? 64 * 1024 * 1024;
    const pow2 = (n: number): boolean => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
    if (!pow2(this.minSize) || !pow2(this.maxSize) || this.minSize > this.maxSize) {
      throw new CstorError('invalid', `buffer pool sizes must be powers of two with min ≤ max (got ${this.minSize}, ${this.maxSize})`);
    }
    this.free = Array.from({ length: Math.log2(this.maxSize / this.minSize) + 1 }, () => []);
  }

  /** A buffer of exactly `size` bytes (contents undefined), or undefined when `size` is not pooled. */
  acquire(size: number): Lease | undefined {
    if (!(size >= this.minSize && size <= this.maxSize)) return undefined;
    const cls = this.classOf(size);
    const list = this.free[cls]!;
    let slab = list.pop();
    if (slab !== undefined) {
      this.freeBytes -= slab.length;
      this.reused++;
    } else {
      slab = Buffer.allocUnsafeSlow(this.minSize << cls);
    }
    this.acquired++;
    return new Lease(size === slab.length ? slab : slab.subarray(0, size), slab, this);
  }

  /** Free bytes held for reuse. */
  get freeBytesHeld(): number {
    return this.freeBytes;
  }

  /** @internal Lease.release. */
  giveBack(slab: Buffer): void {
    if (this.freeBytes + slab.length > this.maxFreeBytes) return;
    this.free[this.classOf(slab.length)]!.push(slab);
    this.freeBytes += slab.length;
  }

  private classOf(size: number): number {
    let cls = 0;
    while (this.minSize << cls < size) cls++;
    return cls;
  }
}

/** The process's pool for IO data buffers (iSCSI data-out, replica read replies). */
export const ioBuffers = new BufferPool();
