// The replica protocol as the target sees it: one ReplicaClient per (target, volume, pool)
// TCP connection. The wire format lives beside this file (one file per message); this is the
// contract the replication engine codes against, so it can be tested over a fake.
//
// io_seq: every write/unmap carries a strictly increasing io_seq chosen by the target. A replica
// checkpoints the highest io_seq it holds durably (after sync). io_seq values are JS safe integers
// (u64 on the wire).

/** A replica's own view of itself, persisted by the pool. */
export const replicaModes = ['New', 'Healthy', 'Rebuilding'] as const;
/**
 * New: created empty and never written (a fresh volume's replicas are all New, and may go straight
 * to Healthy together). Healthy: it held a complete copy when last written. Rebuilding: a rebuild
 * into it started and has not finished; it must be rebuilt again before it serves reads.
 */
export type ReplicaMode = (typeof replicaModes)[number];

export interface OpenRequest {
  volume: string;
  /** Expected size in bytes; the pool refuses a mismatch with the stored replica. */
  size: number;
  blockSize: number;
  replicationFactor: number;
  /** Identifies the target instance, for logs and stats. */
  targetId: string;
}

export interface ReplicaStatus {
  volume: string;
  mode: ReplicaMode;
  /** Highest io_seq durably held (all writes up to it that reached this replica are synced). */
  checkpointedIoSeq: number;
  size: number;
  blockSize: number;
  inflightRead: number;
  inflightWrite: number;
  /** Seconds since this connection was opened. */
  upTime: number;
}

export interface SnapshotInfo {
  name: string;
  /** The io_seq the snapshot was taken at (all writes below it are in it, none at or after). */
  ioSeq: number;
  /** Unix milliseconds. */
  createdAt: number;
  /** Bytes allocated in this snapshot's own layer. */
  usedBytes: number;
}

/** A run of consecutive allocated blocks. */
export interface BlockRun {
  offset: number;
  data: Buffer;
  /** For head runs: the io_seq of the newest write in the run. */
  ioSeq?: number;
}

export interface RunPage {
  runs: BlockRun[];
  /** Pass back to get the next page; null when done. */
  next: number | null;
}

export interface ReplicaStats {
  reads: number;
  writes: number;
  readBytes: number;
  writeBytes: number;
  usedBytes: number;
  snapshots: number;
}

export interface ReplicaClient {
  readonly address: string;
  open(req: OpenRequest): Promise<ReplicaStatus>;
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * Reads `into.length` bytes at `offset` into the caller's Buffer (the reply is read from the
   * socket straight into it: no allocation per read, which matters for large reads). The caller
   * must not touch `into` until the promise settles. Optional: clients that lack it are used
   * through read().
   */
  readInto?(offset: number, into: Buffer): Promise<void>;
  write(offset: number, data: Buffer, ioSeq: number): Promise<void>;
  unmap(offset: number, length: number, ioSeq: number): Promise<void>;
  /** Makes every acknowledged write durable; resolves with the checkpointed io_seq. */
  sync(): Promise<number>;
  status(): Promise<ReplicaStatus>;
  stats(): Promise<ReplicaStats>;

  /** Seals the head as snapshot `name` holding every write with io_seq < ioSeq. Idempotent by name. */
  snapshotCreate(name: string, ioSeq: number): Promise<void>;
  /** Removes a snapshot from the chain (folded into its child, or kept hidden while clones use it). Idempotent. */
  snapshotDestroy(name: string): Promise<void>;
  /** Snapshots, oldest first. */
  snapshotList(): Promise<SnapshotInfo[]>;

  // Rebuild, source side: a healthy replica streams what a degraded one lacks, page by page.
  /** Allocated blocks of snapshot `name`'s own layer. `cursor` 0 starts. */
  readLayer(name: string, cursor: number, maxBytes: number): Promise<RunPage>;
  /** Head blocks whose newest write has io_seq > sinceIoSeq. */
  readHeadSince(sinceIoSeq: number, cursor: number, maxBytes: number): Promise<RunPage>;

  // Rebuild, destination side.
  /**
   * Starts a rebuild: mode becomes Rebuilding (persisted); every layer above snapshot
   * `keepThrough` (null: every layer) and the head are discarded; a fresh empty head begins.
   * Live writes then go to that head as usual while older layers are imported beneath it.
   */
  rebuildStart(keepThrough: string | null): Promise<void>;
  /**
   * Imports snapshot `name` (taken at ioSeq) beneath the live head and beneath any snapshot
   * created since rebuildStart: `importLayerWrite` its blocks, then `importLayerEnd` seals it
   * atomically (a crash before that leaves no trace of it).
   */
  importLayerBegin(name: string, ioSeq: number): Promise<void>;
  importLayerWrite(name: string, offset: number, data: Buffer): Promise<void>;
  importLayerEnd(name: string): Promise<void>;
  /** Writes into the head only the blocks whose current io_seq is below `ioSeq` (live writes win). */
  writeIfNewer(offset: number, data: Buffer, ioSeq: number): Promise<void>;
  /** Ends a rebuild: mode becomes Healthy (persisted). */
  rebuildDone(): Promise<void>;
  /** Marks a New replica Healthy (a fresh volume's replicas, all empty, need no rebuild). */
  markHealthy(): Promise<void>;

  close(): Promise<void>;
  /** Called once when the connection is lost or closed; every request in flight has failed by then. */
  onClose(listener: (err?: Error) => void): void;
}
