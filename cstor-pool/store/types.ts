// The pool's storage API: what the replica protocol server and the mgmt API call.
// A Pool is one directory; it holds one Replica per volume, each a copy-on-write chain of
// layers (DESIGN.md §6). Replica implements BlockDevice over its chain.
import type { BlockDevice } from '../../lib/block-device.ts';
import type { ReplicaMode, ReplicaStats, RunPage, SnapshotInfo } from '../../lib/replica-protocol/types.ts';

export interface ReplicaInfo {
  volume: string;
  size: number;
  blockSize: number;
  mode: ReplicaMode;
  checkpointedIoSeq: number;
  snapshots: SnapshotInfo[];
  /** `<volume>@<snapshot>` this replica was cloned from, if any. */
  cloneOf: string | null;
  /** Replicas cloned from this one's snapshots, as `<clone volume>` names. */
  clones: string[];
  /** Bytes allocated in layers this replica owns alone (head + unshared snapshots). */
  usedBytes: number;
}

export interface PoolSpace {
  /** Bytes allocated across every layer file in the pool (shared layers counted once). */
  usedBytes: number;
  /** Free bytes on the filesystem holding the pool directory. */
  freeBytes: number;
}

export interface CreateReplicaOptions {
  volume: string;
  size: number;
  blockSize?: number;
  /** Clone source as { volume, snapshot } in this pool. */
  cloneOf?: { volume: string; snapshot: string };
}

export interface Pool {
  readonly dir: string;
  readonly name: string;
  /** Creates a replica (idempotent when one with the same size and source exists). */
  createReplica(options: CreateReplicaOptions): Promise<ReplicaInfo>;
  /** Opens an existing replica (one open handle per volume; opening twice returns the same one). */
  openReplica(volume: string): Promise<Replica>;
  /** Deletes a replica; its layers shared with clones live on. Idempotent. */
  deleteReplica(volume: string): Promise<void>;
  listReplicas(): Promise<ReplicaInfo[]>;
  getReplica(volume: string): Promise<ReplicaInfo | null>;
  space(): Promise<PoolSpace>;
  close(): Promise<void>;
}

/** A snapshot create in its two steps (see StoreReplica.snapshotCreateStaged). */
export interface StagedSnapshot {
  /** Settles once the snapshot's point is fixed and IO may go on (writes after it are not in it). */
  cut: Promise<void>;
  /** Settles once the snapshot is durable (rejects if it failed; `cut` then rejects too if not settled). */
  durable: Promise<void>;
}

export interface Replica extends BlockDevice {
  readonly volume: string;
  readonly mode: ReplicaMode;
  readonly checkpointedIoSeq: number;
  /**
   * Writes with the io_seq carried by the protocol (BlockDevice.writeAt uses the next local one).
   * The store must not keep `data` once the promise settles: the pool server reuses the buffer.
   */
  write(offset: number, data: Buffer, ioSeq: number): Promise<void>;
  unmapSeq(offset: number, length: number, ioSeq: number): Promise<void>;
  /**
   * A write of `ioSeq` has arrived and will be issued (it waits behind an earlier request): until
   * the returned release is called, no checkpoint claims `ioSeq` or anything above it. Added by
   * the layer store; the pool server holds the io_seq of a write its ordering makes wait.
   */
  holdSeq?(ioSeq: number): () => void;
  /**
   * Reads `buf.length` bytes at `offset` straight into `buf` (readAt without allocating its
   * result). Offset and length must be block-aligned and inside the replica. Added by the layer
   * store; the pool server reads into pooled reply buffers with it.
   */
  readInto(offset: number, buf: Buffer): Promise<void>;
  snapshotCreate(name: string, ioSeq: number): Promise<void>;
  /** snapshotCreate in two steps, so a caller can let IO go on after the cut. Added by the layer store. */
  snapshotCreateStaged?(name: string, ioSeq: number): StagedSnapshot;
  /** True when an IO error failed the replica: its pool reloads it from disk on the next open. */
  readonly isFailed?: boolean;
  snapshotDestroy(name: string): Promise<void>;
  snapshots(): SnapshotInfo[];
  readLayer(name: string, cursor: number, maxBytes: number): Promise<RunPage>;
  readHeadSince(sinceIoSeq: number, cursor: number, maxBytes: number): Promise<RunPage>;
  rebuildStart(keepThrough: string | null): Promise<void>;
  importLayerBegin(name: string, ioSeq: number): Promise<void>;
  importLayerWrite(name: string, offset: number, data: Buffer): Promise<void>;
  importLayerEnd(name: string): Promise<void>;
  writeIfNewer(offset: number, data: Buffer, ioSeq: number): Promise<void>;
  rebuildDone(): Promise<void>;
  /** Marks a New replica Healthy (the target does this for a fresh volume's replicas). */
  markHealthy(): Promise<void>;
  info(): Promise<ReplicaInfo>;
  /** Reads snapshot `name`'s point-in-time view (the chain up to it). Added by the layer store. */
  readSnapshotAt(name: string, offset: number, length: number): Promise<Buffer>;
  /** IO counters since the replica was loaded, and space used. Added by the layer store. */
  stats(): ReplicaStats;
  /** Syncs and releases this handle (the pool unloads the replica when its last handle closes). */
  close(): Promise<void>;
}
