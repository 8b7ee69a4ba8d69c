// Reuses the Buffers that large request payloads (1 MiB writes) are read into. Allocating one per
// request costs a fresh mapping of pages the kernel must fault in and zero, and, at a GiB/s, a
// major V8 GC every few dozen MiB (V8 collects when off-heap memory grows); with the pool, a
// steady stream of large writes allocates nothing.
// Contract: a Buffer is given back only once nothing holds it any more: the connection gives a
// WRITE's payload back when the store's write has settled (Replica.write does not keep `data`
// after it resolves).
export class PayloadPool {
  private readonly free = new Map<number, Buffer[]>();
  private pooledBytes = 0;

  constructor(
    /** Most bytes kept idle in the pool (default 64 MiB). */
    private readonly maxPooledBytes = 64 * 1024 * 1024,
  ) {}

  /** Bytes held idle now. */
  get idleBytes(): number {
    return this.pooledBytes;
  }

  /** A Buffer of exactly `length` bytes (contents undefined). */
  take(length: number): Buffer {
    const list = this.free.get(length);
    const b = list?.pop();
    if (b !== undefined) {
      this.pooledBytes -= length;
      return b;
    }
    return Buffer.allocUnsafeSlow(length);
  }

  /** Gives a Buffer back (it must not be used afterwards); dropped when the pool is full. */
  give(b: Buffer): void {
    if (this.pooledBytes + b.length > this.maxPooledBytes || b.byteOffset !== 0 || b.buffer.byteLength !== b.length) return;
    let list = this.free.get(b.length);
    if (list === undefined) {
      list = [];
      this.free.set(b.length, list);
    }
    list.push(b);
    this.pooledBytes += b.length;
  }
}
