// Background writeback of a replica's head: after every `bytes` of small writes (up to
// writebackSmallWriteBytes) to the head, one fdatasync of its data file runs in the background (one at a time
// per replica, holding no lock, so no write waits for it). It writes no bitmap page and no header, so it changes nothing a reader or a crash
// can see; it bounds the dirty data that the next sync() or snapshot has to flush, which is what a
// snapshot's durable step and an initiator's SYNCHRONIZE CACHE cost. Figures and the trade-off
// (it costs some 4 KiB random-write throughput): docs/pool-storage.md.

/** The default: 1 MiB (a snapshot during a 4 KiB random write stream then takes ~20 ms, not ~400). */
export const defaultWritebackBytes = 1024 * 1024;

/**
 * Writes of at most this many bytes count toward the threshold: scattered small blocks are what
 * makes a flush slow (a seek and an allocation each), while large writes flush at the disk's
 * bandwidth, and an fdatasync per threshold of a large sequential stream halved its throughput.
 */
export const writebackSmallWriteBytes = 64 * 1024;

let bytes = defaultWritebackBytes;

/** Sets the threshold for every replica of this process (cstor-pool/main.ts, tests, benches); 0: off. */
export function configureWriteback(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`writeback bytes must be a non-negative integer, not ${n}`);
  bytes = n;
}

/** Head bytes between background fdatasyncs (0: never). */
export function writebackBytes(): number {
  return bytes;
}
