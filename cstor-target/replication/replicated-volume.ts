// One replicated volume: a BlockDevice over RF replicas with the rules of DESIGN.md §6 (quorum
// acks, io_seq, phases, reads from the least busy healthy replica, eviction of replicas that err,
// rebuild, quiesced snapshots). The rules themselves live in quorum.ts; the rebuild steps in
// rebuild.ts; docs/target.md explains why they are correct.
import { EventEmitter } from 'node:events';
import { checkRange, inRange, type BlockDevice } from '../../lib/block-device.ts';
import { asError, CstorError, describeError, hasErrorCode, toCstorError } from '../../lib/errors.ts';
import { silentLogger, type Logger } from '../../lib/logger.ts';
import type { ReplicaClient, ReplicaMode, SnapshotInfo } from '../../lib/replica-protocol/types.ts';
import type { CallbackReplicaClient } from '../../lib/replica-protocol/client.ts';
import { consistencyFactor, intersectingCount, isAcked, isReady, phaseOf, type VolumePhase } from './quorum.ts';
import { internalSnapshotPrefix, isInternalSnapshot, rebuildReplica, RebuildError, type RebuildContext } from './rebuild.ts';
import { Mutex, WriteGate } from './write-gate.ts';

/**
 * offline: no connection (a reconnect is scheduled). connecting: connect/open in progress.
 * waiting: connected, not in the write fan-out (awaiting election or its rebuild).
 * rebuilding: in the write fan-out, its older data being copied (counts as degraded).
 * healthy: complete copy, in the fan-out, serves reads.
 */
export type MemberState = 'offline' | 'connecting' | 'waiting' | 'rebuilding' | 'healthy';

export interface Member {
  readonly address: string;
  state: MemberState;
  client: ReplicaClient | null;
  /** Bumped on every connection, so late callbacks of an old connection are ignored. */
  epoch: number;
  /** The mode the replica reported when it connected (then as the engine changed it). */
  persistedMode: ReplicaMode | null;
  checkpointedIoSeq: number;
  inflightRead: number;
  inflightWrite: number;
  connectedAt: number;
  backoffMs: number;
  reconnectTimer: NodeJS.Timeout | null;
  lastError: string | null;
}

export interface ReplicaStatusView {
  replicaId: string;
  address: string;
  /** Healthy | Rebuilding | Degraded (connected, waiting) | Offline */
  mode: 'Healthy' | 'Rebuilding' | 'Degraded' | 'Offline';
  checkpointedIOSeq: string;
  inflightRead: string;
  inflightWrite: string;
  /** "1" when the replica counts toward the write quorum. */
  quorum: '0' | '1';
  /** Seconds since connected (0 when offline). */
  upTime: number;
  lastError?: string;
}

export interface VolumeStatus {
  name: string;
  capacity: number;
  blockSize: number;
  replicationFactor: number;
  consistencyFactor: number;
  phase: VolumePhase;
  ioSeq: number;
  /** The replica being rebuilt, and its source. */
  rebuilding: string | null;
  rebuildingFrom: string | null;
  replicaStatuses: ReplicaStatusView[];
}

export interface IoStats {
  reads: number;
  writes: number;
  unmaps: number;
  syncs: number;
  readBytes: number;
  writeBytes: number;
  readErrors: number;
  writeErrors: number;
  /** Sums of latencies in ms, for averages. */
  readLatencyMs: number;
  writeLatencyMs: number;
  snapshotsCreated: number;
  /** How long the last/longest quiesce held new writes (drain + the operation), and its drain part. */
  lastQuiesceMs: number;
  maxQuiesceMs: number;
  maxDrainMs: number;
  /**
   * Snapshot create, summed per phase (ms): the name check (list), the quiesce (drain and send
   * SNAP_CREATE: writes held), and the wait for the pools to make it durable (writes flowing).
   */
  snapshotListMs: number;
  snapshotFlushMs: number;
  snapshotQuiescedMs: number;
  rebuildsDone: number;
}

export interface ReplicatedVolumeOptions {
  volume: string;
  size: number;
  blockSize?: number;
  replicationFactor: number;
  replicas: readonly string[];
  connect: (address: string) => Promise<ReplicaClient>;
  logger?: Logger;
  targetId?: string;
  /** Longest time a quiesce waits for in-flight writes to drain (default 2000 ms). */
  quiesceTimeoutMs?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** Bytes per readLayer page during rebuild (default 1 MiB). */
  rebuildPageBytes?: number;
  /** Where replicas that missed a write or a snapshot are remembered across target restarts (none: not remembered). */
  suspects?: SuspectStore;
  /** Where the io_seq reservation is persisted (none: io_seq only jumps past the checkpoints on election). */
  ioSeq?: IoSeqStore;
  /** io_seqs reserved at a time (default 2^20); the next reservation is made when half is used. */
  ioSeqReserveChunk?: number;
  /**
   * Read stickiness (default 0: DESIGN.md §6 to the letter, each read to the healthy replica with
   * the fewest reads in flight). N > 0: reads keep going to the replica chosen last while it has at
   * most N more reads in flight than the least busy one. A queue of reads then goes to one pool in
   * one socket write instead of being dealt round-robin over all of them: on a 2-CPU machine RF=3
   * 4 KiB reads used half the syscalls and ~30 % more IOPS with N = 32 (docs/target.md). The
   * daemon takes it from $CSTOR_TARGET_READ_STICKINESS (cstor-target/main.ts).
   */
  readStickiness?: number;
}

/**
 * Replicas that answered a write or unmap with an error (not a lost connection): they may hold a
 * later write while missing that one, so their checkpoint cannot be trusted until they are rebuilt.
 * Also replicas away from (or failing) a snapshot create or destroy that succeeded: their
 * checkpoint is as fresh as the others' while their snapshots differ.
 */
export interface SuspectStore {
  load(): ReadonlySet<string>;
  /** Persists the mark; writes acknowledged after the failure wait for it. */
  mark(address: string): Promise<void>;
  clear(address: string): Promise<void>;
}

/**
 * The highest io_seq this volume's targets may have used, persisted by the target (its state
 * file). A target never sends an io_seq above what it reserved, and the next target starts above
 * it: so io_seq is never reused for other data, even for writes the last target sent and never
 * saw acknowledged, whatever the replicas' checkpoints say.
 */
export interface IoSeqStore {
  load(): number;
  /** Persists `upTo` as the new reservation; resolves once it is durable. */
  reserve(upTo: number): Promise<void>;
}

const snapshotNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

/**
 * How far io_seq jumps past the newest checkpoint when a target first chooses the healthy set of
 * a volume that was written before. The target that ran before may have sent writes above every
 * checkpoint the electing replicas report (in flight when it stopped, never acknowledged) to a
 * replica that is away now; reusing those io_seqs for other data would make that replica look as
 * fresh as the others when it comes back (same checkpoint, different data), and it would be
 * trusted without a rebuild. Writes in flight are bounded by the initiators' queue depths, far
 * below this; 2^53 leaves room for 2^29 restarts.
 */
const ioSeqRestartGap = 2 ** 24;

export class ReplicatedVolume extends EventEmitter implements BlockDevice {
  readonly name: string;
  readonly size: number;
  readonly blockSize: number;
  readonly replicationFactor: number;
  readonly consistencyFactor: number;
  readonly members: Member[];
  readonly stats: IoStats = {
    reads: 0,
    writes: 0,
    unmaps: 0,
    syncs: 0,
    readBytes: 0,
    writeBytes: 0,
    readErrors: 0,
    writeErrors: 0,
    readLatencyMs: 0,
    writeLatencyMs: 0,
    snapshotsCreated: 0,
    lastQuiesceMs: 0,
    maxQuiesceMs: 0,
    maxDrainMs: 0,
    snapshotListMs: 0,
    snapshotFlushMs: 0,
    snapshotQuiescedMs: 0,
    rebuildsDone: 0,
  };

  /** writeAt takes a `released` callback (LeasingBlockDevice, cstor-target/scsi/disk.ts). */
  readonly releasesWriteData = true;
  private readonly log: Logger;
  private readonly opts: Required<Omit<ReplicatedVolumeOptions, 'logger' | 'blockSize' | 'suspects' | 'ioSeq' | 'ioSeqReserveChunk'>>;
  private readonly gate = new WriteGate();
  /** Serializes snapshot create/destroy and rebuild joins ("wait while another snapshot runs"). */
  readonly snapLock = new Mutex();
  /** Held by a rebuild while it imports one layer, and by snapshot destroy. */
  readonly layerLock = new Mutex();
  private nextIoSeq = 1;
  /** Set once this target chose a healthy set from written replicas (io_seq jumped past the old target's). */
  private ioSeqJumped = false;
  private readonly ioSeqStore: IoSeqStore | null;
  /** No write is sent with an io_seq above this (Infinity without a store). */
  private ioSeqReserved = Infinity;
  /** Past this, the next reservation is made in the background. */
  private ioSeqRenewAt = Infinity;
  private ioSeqRenewing = false;
  private readonly ioSeqReserveChunk: number;
  /** The write gate is held because io_seq reached the reservation. */
  private ioSeqHeld = false;
  /** The replica the last read went to (readStickiness). */
  private lastReader: Member | undefined;
  private phaseNow: VolumePhase = 'Init';
  private everReady = false;
  private stopped = false;
  private initialPending: number;
  private loopRunning = false;
  private loopDirty = false;
  private rebuild: { d: Member; h: Member; aborted: boolean; complete: boolean; deferredDestroys: string[] } | null = null;
  /**
   * Replicas whose last rebuild failed while they stayed connected (say its join could not drain
   * the writes in flight): the next attempt waits, 0.5 s doubling to 30 s, since each holds new
   * writes for up to the quiesce timeout.
   */
  private readonly rebuildRetry = new Map<string, { at: number; backoffMs: number }>();
  private rebuildTimer: NodeJS.Timeout | null = null;
  private rebuildCounter = 0;
  private readonly suspects: Set<string>;
  private readonly suspectStore: SuspectStore | null;
  /** Settles once every suspect mark asked for so far is persisted. */
  private suspectsSaved: Promise<void> = Promise.resolve();
  /** Suspect marks asked for and not yet persisted (writes wait for suspectsSaved only then). */
  private suspectsUnsaved = 0;

  constructor(options: ReplicatedVolumeOptions) {
    super();
    const problems: string[] = [];
    const rf = options.replicationFactor;
    if (!Number.isInteger(rf) || rf < 1 || rf > 16) problems.push(`replicationFactor ${rf} must be an integer in 1..16`);
    if (options.replicas.length !== rf) problems.push(`${options.replicas.length} replica addresses given for replicationFactor ${rf}`);
    if (new Set(options.replicas).size !== options.replicas.length) problems.push('replica addresses repeat');
    const bs = options.blockSize ?? 512;
    if (bs !== 512 && bs !== 4096) problems.push(`blockSize ${bs} must be 512 or 4096`);
    if (!Number.isSafeInteger(options.size) || options.size <= 0 || options.size % bs !== 0) {
      problems.push(`capacity ${options.size} must be a positive multiple of the block size ${bs}`);
    }
    if (problems.length > 0) throw new CstorError('invalid', `volume ${options.volume}: ${problems.join('; ')}`);
    this.name = options.volume;
    this.size = options.size;
    this.blockSize = bs;
    this.replicationFactor = rf;
    this.consistencyFactor = consistencyFactor(rf);
    this.log = (options.logger ?? silentLogger()).child({ volume: options.volume });
    this.opts = {
      volume: options.volume,
      size: options.size,
      replicationFactor: rf,
      replicas: options.replicas,
      connect: options.connect,
      targetId: options.targetId ?? `target-${process.pid}`,
      quiesceTimeoutMs: options.quiesceTimeoutMs ?? 2000,
      reconnectMinMs: options.reconnectMinMs ?? 200,
      reconnectMaxMs: options.reconnectMaxMs ?? 5000,
      rebuildPageBytes: options.rebuildPageBytes ?? 1 << 20,
      readStickiness: options.readStickiness ?? 0,
    };
    this.members = options.replicas.map((address) => ({
      address,
      state: 'offline',
      client: null,
      epoch: 0,
      persistedMode: null,
      checkpointedIoSeq: 0,
      inflightRead: 0,
      inflightWrite: 0,
      connectedAt: 0,
      backoffMs: this.opts.reconnectMinMs,
      reconnectTimer: null,
      lastError: null,
    }));
    this.initialPending = this.members.length;
    this.suspectStore = options.suspects ?? null;
    this.suspects = new Set(this.suspectStore?.load() ?? []);
    this.ioSeqStore = options.ioSeq ?? null;
    this.ioSeqReserveChunk = Math.max(2, options.ioSeqReserveChunk ?? 2 ** 20);
    if (this.ioSeqStore) {
      // Start above everything the targets before this one may have sent.
      const reserved = this.ioSeqStore.load();
      this.ioSeqReserved = this.ioSeqRenewAt = reserved;
      this.nextIoSeq = reserved + 1;
    }
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  /** Starts connecting to every replica; returns at once (watch `phase`, or `waitFor`). */
  start(): void {
    this.ioSeqCheck();
    for (const m of this.members) void this.connectMember(m, true);
  }

  /** Stops serving: drains writes (bounded), syncs the fan-out, closes every connection. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.gate.hold();
    await this.gate.drained(this.opts.quiesceTimeoutMs);
    this.stopped = true;
    if (this.rebuildTimer) clearTimeout(this.rebuildTimer);
    if (this.rebuild) this.rebuild.aborted = true;
    const fanout = this.fanout();
    await Promise.allSettled(fanout.map((m) => m.client!.sync()));
    for (const m of this.members) {
      if (m.reconnectTimer) clearTimeout(m.reconnectTimer);
      m.reconnectTimer = null;
      const c = m.client;
      m.client = null;
      m.state = 'offline';
      if (c) await c.close().catch(() => {});
    }
    this.gate.release();
    this.setPhase();
    this.removeAllListeners();
  }

  get phase(): VolumePhase {
    return this.phaseNow;
  }

  /** Resolves true once every write sent to a replica has settled there (not only acknowledged). */
  settledWrites(timeoutMs: number): Promise<boolean> {
    return this.gate.drained(timeoutMs);
  }

  /** True while new writes are held (a snapshot or a rebuild join is running). */
  get isQuiesced(): boolean {
    return this.gate.isHeld;
  }

  get isReady(): boolean {
    return isReady(this.replicationFactor, this.count('healthy'), this.count('rebuilding'));
  }

  /** Resolves once `pred` holds (checked now and on every state change), or rejects after timeoutMs. */
  waitFor(pred: (v: this) => boolean, timeoutMs: number, what = 'condition'): Promise<void> {
    if (pred(this)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!pred(this)) return;
        clearTimeout(timer);
        this.off('change', check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.off('change', check);
        reject(new CstorError('timeout', `volume ${this.name}: ${what} not reached in ${timeoutMs} ms (phase ${this.phaseNow})`));
      }, timeoutMs);
      this.on('change', check);
    });
  }

  // ---- BlockDevice ---------------------------------------------------------------------------

  /**
   * The hot path (no async wrapper): one replica read, its promise chained once. A failure falls
   * back to readRetry, which evicts that replica and tries the next least busy healthy one.
   */
  readAt(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    const started = performance.now();
    const m = this.pickReader();
    if (!m) return this.readRetry(offset, length, started);
    return this.readFrom(m, offset, length, started);
  }

  /** readAt from the replica already picked. */
  private readFrom(m: Member, offset: number, length: number, started: number): Promise<Buffer> {
    m.inflightRead++;
    const epoch = m.epoch;
    return m.client!.read(offset, length).then(
      (data) => {
        m.inflightRead--;
        // Evicted since the read was sent: the reply may predate a write it failed (see readCb).
        if (m.epoch !== epoch) return this.readRetry(offset, length, started);
        if (data.length !== length) {
          this.evict(m, new CstorError('protocol', `read of ${length} bytes returned ${data.length}`), 'read failed');
          return this.readRetry(offset, length, started);
        }
        this.stats.reads++;
        this.stats.readBytes += length;
        this.stats.readLatencyMs += performance.now() - started;
        return data;
      },
      (err: unknown) => {
        m.inflightRead--;
        this.evict(m, err, 'read failed');
        return this.readRetry(offset, length, started);
      },
    );
  }

  /**
   * readAt into the caller's buffer: the replica client reads the reply's payload from its socket
   * straight into `into` (no Buffer per read). On success `into` is free again; after a rejection
   * the caller must not reuse it (a replica connection that was closing, not destroyed, might still
   * deliver bytes into it), only drop it.
   */
  readInto(offset: number, into: Buffer): Promise<void> {
    const length = into.length;
    checkRange(this, offset, length);
    const started = performance.now();
    const m = this.pickReader();
    if (!m) return this.readRetry(offset, length, started).then((data) => void data.copy(into));
    m.inflightRead++;
    const epoch = m.epoch;
    const c = m.client!;
    const sent = c.readInto ? c.readInto(offset, into) : c.read(offset, length).then(intoCopier(into));
    return sent.then(
      () => {
        m.inflightRead--;
        if (m.epoch !== epoch) return this.readRetry(offset, length, started).then((data) => void data.copy(into));
        this.stats.reads++;
        this.stats.readBytes += length;
        this.stats.readLatencyMs += performance.now() - started;
      },
      (err: unknown) => {
        m.inflightRead--;
        this.evict(m, err, 'read failed');
        return this.readRetry(offset, length, started).then((data) => void data.copy(into));
      },
    );
  }

  private async readRetry(offset: number, length: number, started: number): Promise<Buffer> {
    for (let attempt = 0; attempt < this.members.length; attempt++) {
      const m = this.pickReader();
      if (!m) break;
      m.inflightRead++;
      const epoch = m.epoch;
      try {
        const data = await m.client!.read(offset, length);
        if (m.epoch !== epoch) continue; // evicted meanwhile: not trusted (see readFrom)
        if (data.length !== length) throw new CstorError('protocol', `read of ${length} bytes returned ${data.length}`);
        this.stats.reads++;
        this.stats.readBytes += length;
        this.stats.readLatencyMs += performance.now() - started;
        return data;
      } catch (err) {
        this.evict(m, err, 'read failed');
      } finally {
        m.inflightRead--;
      }
    }
    this.stats.readErrors++;
    throw new CstorError('unavailable', `volume ${this.name}: no healthy replica to read from (phase ${this.phaseNow})`);
  }

  /**
   * Writes to every replica in the fan-out; resolves once a quorum acknowledged. `released`, if
   * given, is called once no replica request references `data` any more: when EVERY replica
   * replied OK (a replica can only reply after it received the whole frame, so the socket is done
   * with it). It is never called when that cannot be known (a replica failed: its socket may still
   * hold the data; the write was refused); the caller then drops the buffer instead of reusing it.
   */
  writeAt(offset: number, data: Buffer, released?: () => void): Promise<void> {
    checkRange(this, offset, data.length);
    return this.replicatedWrite(false, offset, data.length, data, released);
  }

  unmap(offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    return this.replicatedWrite(true, offset, length, null);
  }

  /**
   * writeAt with a callback instead of a promise (the iSCSI hot path, see ScsiDisk.executeCb):
   * `done(null)` exactly when writeAt would resolve, `done(err)` when it would reject (always
   * after writeCb returned). Same rules, same `released`.
   */
  writeCb(offset: number, data: Buffer, released: (() => void) | undefined, done: (err: Error | null) => void): void {
    if (this.gate.isHeld || !inRange(this, offset, data.length)) {
      // A quiesce in progress, or a range writeAt refuses (it has the exact error).
      let p: Promise<void>;
      try {
        p = this.writeAt(offset, data, released);
      } catch (err) {
        p = Promise.reject(err);
      }
      p.then(() => done(null), (err: unknown) => done(asError(err)));
      return;
    }
    this.sendWrite(false, offset, data.length, data, released, done);
  }

  /**
   * readAt with a callback (the iSCSI hot path): the least busy healthy replica's reply goes
   * straight to `done`; anything else (no replica, a failure, a client without readCb) takes
   * readAt's path, retries included. `done` runs once, never before readCb returned.
   */
  readCb(offset: number, length: number, done: (err: Error | null, data: Buffer | undefined) => void): void {
    if (!inRange(this, offset, length)) {
      // A range readAt refuses (it has the exact error).
      let p: Promise<Buffer>;
      try {
        p = this.readAt(offset, length);
      } catch (err) {
        p = Promise.reject(err);
      }
      p.then((data) => done(null, data), (err: unknown) => done(asError(err), undefined));
      return;
    }
    const started = performance.now();
    const m = this.pickReader();
    const c = m?.client as (ReplicaClient & Partial<CallbackReplicaClient>) | null | undefined;
    if (m === undefined || !c || c.readCb === undefined) {
      const p = m === undefined ? this.readRetry(offset, length, started) : this.readFrom(m, offset, length, started);
      p.then((data) => done(null, data), (err: unknown) => done(asError(err), undefined));
      return;
    }
    m.inflightRead++;
    const epoch = m.epoch;
    // A write in flight on this replica may fail after its quorum ack, and the pool then runs this
    // read (ordered behind it) on the old data. Its error reply comes first on the connection, but
    // the client runs error callbacks in a microtask and successes at once: so the reply is only
    // trusted after that microtask, once the failure had its chance to evict the replica.
    const writesBefore = m.inflightWrite > 0;
    c.readCb(offset, length, (err, data) => {
      m.inflightRead--;
      if (err === null && data !== undefined && data.length === length) {
        const deliver = (): void => {
          if (m.epoch !== epoch) {
            this.readRetry(offset, length, started).then((d) => done(null, d), (e: unknown) => done(asError(e), undefined));
            return;
          }
          this.stats.reads++;
          this.stats.readBytes += length;
          this.stats.readLatencyMs += performance.now() - started;
          done(null, data);
        };
        if (writesBefore) queueMicrotask(deliver);
        else deliver();
        return;
      }
      this.evict(m, err ?? new CstorError('protocol', `read of ${length} bytes returned ${data?.length ?? 0}`), 'read failed');
      this.readRetry(offset, length, started).then((d) => done(null, d), (e: unknown) => done(asError(e), undefined));
    });
  }

  /** Makes acknowledged writes durable on a quorum of replicas (SYNCHRONIZE CACHE / FUA). */
  async sync(): Promise<void> {
    const targets = this.fanout();
    this.stats.syncs++;
    await this.quorumCall('sync', targets, async (m) => {
      m.checkpointedIoSeq = await m.client!.sync();
    });
  }

  /** Waits at the write gate (a quiesce) only when it is held; otherwise sends at once. */
  private replicatedWrite(unmap: boolean, offset: number, length: number, data: Buffer | null, released?: () => void): Promise<void> {
    const wait = this.gate.waitOpen();
    if (wait) return wait.then(() => this.sendWrite(unmap, offset, length, data, released));
    return this.sendWrite(unmap, offset, length, data, released);
  }

  /**
   * One write (or unmap) to every replica in the fan-out with the next io_seq: the same Buffer
   * goes to each replica's socket, one PendingWrite record counts the OKs (no Promise.all, no
   * per-replica async frames), and the caller's promise settles as soon as the OKs make a quorum
   * (isAcked) or a quorum can no longer be reached. Replicas still running after that go on in
   * the background, tracked by the write gate.
   */
  private sendWrite(unmap: boolean, offset: number, length: number, data: Buffer | null, released?: () => void): Promise<void>;
  private sendWrite(unmap: boolean, offset: number, length: number, data: Buffer | null, released: (() => void) | undefined, cb: (err: Error | null) => void): void;
  private sendWrite(unmap: boolean, offset: number, length: number, data: Buffer | null, released?: () => void, cb?: (err: Error | null) => void): Promise<void> | void {
    const started = performance.now();
    let healthy = 0;
    let rebuilding = 0;
    for (const m of this.members) {
      if (m.state === 'healthy') healthy++;
      else if (m.state === 'rebuilding') rebuilding++;
    }
    if (this.stopped || !isReady(this.replicationFactor, healthy, rebuilding)) {
      this.stats.writeErrors++;
      const err = new CstorError('unavailable', `volume ${this.name} is ${this.phaseNow}: ${unmap ? 'unmap' : 'write'} refused`);
      if (cb === undefined) return Promise.reject(err);
      queueMicrotask(() => cb(err));
      return;
    }
    if (this.nextIoSeq > this.ioSeqReserved) {
      // The reservation ran out (ioSeqCheck holds the gate until the next one is durable).
      this.ioSeqCheck();
      const open = this.gate.waitOpen() ?? Promise.resolve();
      if (cb === undefined) return open.then(() => this.sendWrite(unmap, offset, length, data, released));
      void open.then(() => this.sendWrite(unmap, offset, length, data, released, cb));
      return;
    }
    const ioSeq = this.nextIoSeq++;
    if (ioSeq >= this.ioSeqRenewAt) this.ioSeqCheck();
    const w = new PendingWrite(this, unmap, length, started);
    if (released !== undefined) w.released = released;
    let done: Promise<void> | undefined;
    if (cb !== undefined) w.cb = cb;
    else {
      done = new Promise<void>((resolve, reject) => {
        w.resolve = resolve;
        w.reject = reject;
      });
    }
    for (const m of this.members) {
      if ((m.state !== 'healthy' && m.state !== 'rebuilding') || !m.client) continue;
      w.targets++;
      w.pending++;
      const wasHealthy = m.state === 'healthy';
      if (wasHealthy) w.healthyPending++;
      m.inflightWrite++;
      this.gate.opStarted();
      const c = m.client as ReplicaClient & Partial<CallbackReplicaClient>;
      if (!unmap && c.writeCb !== undefined) {
        // No promise per replica: the reply calls back into the write's record.
        c.writeCb(offset, data!, ioSeq, (err) => (err === null ? w.ok(m, wasHealthy) : w.failed(m, wasHealthy, err)));
        continue;
      }
      const sent = unmap ? c.unmap(offset, length, ioSeq) : c.write(offset, data!, ioSeq);
      sent.then(
        () => w.ok(m, wasHealthy),
        (err: unknown) => w.failed(m, wasHealthy, err),
      );
    }
    if (cb !== undefined) {
      // The callback form never settles inside the call: a write the counts alone settle (no quorum
      // possible before any reply) is answered in a microtask, as writeAt's promise would be.
      const rf = this.replicationFactor;
      if (!w.settled && (isAcked(rf, w.healthyOk, w.totalOk) || !isAcked(rf, w.healthyOk + w.healthyPending, w.totalOk + w.pending))) queueMicrotask(() => w.check());
      return;
    }
    w.check();
    return done;
  }

  /** @internal PendingWrite's hooks into the volume: a replica's write settled (ok or not). */
  writeSettled(m: Member): void {
    m.inflightWrite--;
    this.gate.opSettled();
  }

  /** @internal A replica failed a write: suspect unless the connection was lost; evicted. */
  writeFailed(m: Member, unmap: boolean, err: unknown): void {
    if (!hasErrorCode(err, 'unavailable', 'timeout', 'aborted')) this.markSuspect(m.address);
    this.evict(m, err, `${unmap ? 'unmap' : 'write'} failed`);
  }

  /** @internal The OKs make a quorum: the caller's promise resolves (after any suspect mark is persisted). */
  writeAcked(w: PendingWrite): void {
    // A replica that failed an earlier write must be known as such (persisted) before this ack.
    if (this.suspectsUnsaved > 0) {
      void this.suspectsSaved.then(() => this.finishWrite(w));
      return;
    }
    this.finishWrite(w);
  }

  private finishWrite(w: PendingWrite): void {
    if (w.unmap) this.stats.unmaps++;
    else {
      this.stats.writes++;
      this.stats.writeBytes += w.length;
    }
    this.stats.writeLatencyMs += performance.now() - w.started;
    const cb = w.cb;
    if (cb === null) {
      w.resolve();
      return;
    }
    // Dropped at once: the record lives on until the last replica replied, the caller's state need not.
    w.cb = null;
    cb(null);
  }

  /** @internal A quorum can no longer be reached. */
  writeRejected(w: PendingWrite): void {
    this.stats.writeErrors++;
    const err = new CstorError(
      'unavailable',
      `volume ${this.name}: ${w.unmap ? 'unmap' : 'write'} not acknowledged by a quorum (${w.totalOk} of ${w.targets} replicas ok, ${w.healthyOk} healthy; CF ${this.consistencyFactor})${w.failures ? `: ${w.failures.join('; ')}` : ''}`,
    );
    const cb = w.cb;
    if (cb === null) {
      w.reject(err);
      return;
    }
    w.cb = null;
    cb(err);
  }

  /**
   * Sends `op` to every target at once; resolves when the OKs make a quorum (isAcked), rejects as
   * soon as a quorum can no longer be reached. A target that errs is evicted. Calls still running
   * after the ack go on in the background (and are tracked by the write gate).
   */
  private quorumCall(what: string, targets: Member[], op: (m: Member) => Promise<void>): Promise<void> {
    const rf = this.replicationFactor;
    return new Promise((resolve, reject) => {
      let healthyOk = 0;
      let totalOk = 0;
      let healthyPending = targets.filter((m) => m.state === 'healthy').length;
      let pending = targets.length;
      let settled = false;
      const failures: string[] = [];
      const check = (): void => {
        if (settled) return;
        if (isAcked(rf, healthyOk, totalOk)) {
          settled = true;
          resolve();
        } else if (!isAcked(rf, healthyOk + healthyPending, totalOk + pending)) {
          settled = true;
          reject(
            new CstorError(
              'unavailable',
              `volume ${this.name}: ${what} not acknowledged by a quorum (${totalOk} of ${targets.length} replicas ok, ${healthyOk} healthy; CF ${this.consistencyFactor})${failures.length ? `: ${failures.join('; ')}` : ''}`,
            ),
          );
        }
      };
      for (const m of targets) {
        const wasHealthy = m.state === 'healthy';
        op(m).then(
          () => {
            pending--;
            totalOk++;
            if (wasHealthy) {
              healthyPending--;
              healthyOk++;
            }
            check();
          },
          (err: unknown) => {
            pending--;
            if (wasHealthy) healthyPending--;
            failures.push(`${m.address}: ${describeError(err)}`);
            if ((what === 'write' || what === 'unmap') && !hasErrorCode(err, 'unavailable', 'timeout', 'aborted')) this.markSuspect(m.address);
            this.evict(m, err, `${what} failed`);
            check();
          },
        );
      }
      check();
    });
  }

  // ---- snapshots -----------------------------------------------------------------------------

  /** Creates a quiesced snapshot on every replica in the fan-out (DESIGN.md §6). */
  async snapshotCreate(name: string): Promise<SnapshotInfo> {
    this.checkSnapshotName(name);
    const checkQuorum = (): void => {
      const healthy = this.count('healthy');
      if (healthy < this.consistencyFactor) {
        throw new CstorError(
          'not_ready',
          `snapshot ${name} of ${this.name} refused: ${healthy} of ${this.replicationFactor} replicas healthy, ${this.consistencyFactor} needed`,
        );
      }
    };
    return this.snapLock.run(async () => {
      checkQuorum();
      const t0 = performance.now();
      const existing = await this.findSnapshot(name);
      if (existing) return existing;
      const t1 = performance.now();
      // Quiesce only to fix the snapshot's point: hold new writes, drain the ones in flight, send
      // SNAP_CREATE to every replica, and let writes go again at once. Each pool orders the
      // request after every write it got before it and before every later one (a staged barrier:
      // later requests wait only for its cut, the in-memory head switch) and answers once the
      // snapshot is durable, which the pools do while IO flows (docs/target.md, "Snapshots").
      const sent = await this.quiesced(`snapshot ${name}`, () => {
        checkQuorum(); // replicas may have left while the drain ran
        const seq = this.nextIoSeq;
        const targets = this.fanout();
        const wasHealthy = targets.map((m) => m.state === 'healthy');
        const replies = targets.map((m) => m.client!.snapshotCreate(name, seq));
        for (const r of replies) r.catch(() => undefined);
        return Promise.resolve({ seq, targets, wasHealthy, replies });
      });
      const t2 = performance.now();
      // Success once CF healthy replicas have it durably (DESIGN.md §6): a slower replica's reply
      // is not waited for; if it fails later, it is evicted like any other and its rebuild gives
      // it the snapshot back.
      let healthyOk = 0;
      let settled = 0;
      const failed: string[] = [];
      const failedMembers: Member[] = [];
      let succeeded = false;
      await new Promise<void>((resolve) => {
        const n = sent.replies.length;
        if (n === 0) resolve();
        sent.replies.forEach((reply, i) => {
          const m = sent.targets[i]!;
          reply
            .then(
              () => {
                if (sent.wasHealthy[i]) healthyOk++;
              },
              (err: unknown) => {
                failed.push(`${m.address}: ${describeError(err)}`);
                failedMembers.push(m);
                // Answered already: like a replica away from the set, it must not be trusted without it.
                if (succeeded) this.markSuspect(m.address, `missed snapshot ${name}`);
                this.evict(m, err, `snapshot ${name} failed`);
              },
            )
            .finally(() => {
              settled++;
              if (healthyOk >= this.consistencyFactor || settled === n) resolve();
            });
        });
      });
      const ioSeq = healthyOk < this.consistencyFactor ? { ok: false as const, failed, healthyOk } : { ok: true as const, seq: sent.seq };
      this.stats.snapshotListMs += t1 - t0;
      this.stats.snapshotFlushMs += performance.now() - t2;
      this.stats.snapshotQuiescedMs += t2 - t1;
      if (!ioSeq.ok) {
        // Undo: the snapshot must not survive on the replicas where it was created. One that
        // cannot destroy it is evicted: kept in the set, it would answer a retry's list with this
        // cut ("exists": success on one replica) or keep it on a retry (creation is idempotent by
        // name), unlike the others. Its rebuild drops it (not on the source: the prefix differs).
        const undo = this.connected().map((m) => ({ m, epoch: m.epoch }));
        const undone = await Promise.allSettled(undo.map(({ m }) => m.client!.snapshotDestroy(name)));
        undone.forEach((r, i) => {
          const { m, epoch } = undo[i]!;
          if (r.status === 'rejected' && m.epoch === epoch) this.evict(m, r.reason, `snapshot ${name} undo failed`);
        });
        throw new CstorError(
          'unavailable',
          `snapshot ${name} of ${this.name} failed: created on ${ioSeq.healthyOk} healthy replicas, ${this.consistencyFactor} needed (${ioSeq.failed.join('; ')}); removed again`,
        );
      }
      // Replicas without the snapshot (away, or failed it) have checkpoints as fresh as the others':
      // after a target restart the election would trust them and the snapshot would be lost.
      succeeded = true;
      for (const m of this.members) if (!sent.targets.includes(m) || failedMembers.includes(m)) this.markSuspect(m.address, `missed snapshot ${name}`);
      if (this.suspectsUnsaved > 0) await this.suspectsSaved;
      this.stats.snapshotsCreated++;
      this.log.info('snapshot created', { snapshot: name, ioSeq: ioSeq.seq });
      return (await this.findSnapshot(name)) ?? { name, ioSeq: ioSeq.seq, createdAt: Date.now(), usedBytes: 0 };
    });
  }

  /** Destroys a user snapshot on the replicas in the fan-out (deferred on a replica being rebuilt). Idempotent. */
  async snapshotDestroy(name: string): Promise<void> {
    this.checkSnapshotName(name);
    await this.snapLock.run(() =>
      this.layerLock.run(async () => {
        if (this.count('healthy') === 0) {
          throw new CstorError('unavailable', `snapshot ${name} of ${this.name} cannot be destroyed: no healthy replica`);
        }
        const rb = this.rebuild;
        const deferTo = rb && !rb.complete ? rb.d : null;
        if (deferTo) rb!.deferredDestroys.push(name);
        const targets = this.fanout().filter((m) => m !== deferTo);
        const results = await Promise.allSettled(targets.map((m) => m.client!.snapshotDestroy(name)));
        let ok = 0;
        const failed: Member[] = [];
        results.forEach((r, i) => {
          if (r.status === 'fulfilled') ok++;
          else {
            failed.push(targets[i]!);
            this.evict(targets[i]!, r.reason, `snapshot ${name} destroy failed`);
          }
        });
        if (ok === 0) throw new CstorError('unavailable', `snapshot ${name} of ${this.name}: destroy failed on every replica`);
        // Replicas that still hold it (away, or failed the destroy) must not be trusted as they are
        // after a restart: the snapshot would come back. (D being rebuilt applies it before rebuildDone.)
        for (const m of this.members) if (m !== deferTo && (!targets.includes(m) || failed.includes(m))) this.markSuspect(m.address, `missed the destroy of snapshot ${name}`);
        if (this.suspectsUnsaved > 0) await this.suspectsSaved;
        this.log.info('snapshot destroyed', { snapshot: name });
      }),
    );
  }

  /** User snapshots (internal rebuild snapshots hidden), oldest first, from a healthy replica. */
  async snapshotList(): Promise<SnapshotInfo[]> {
    for (let attempt = 0; attempt <= this.members.length; attempt++) {
      const m = this.pickReader();
      if (!m) break;
      try {
        return (await m.client!.snapshotList()).filter((s) => !isInternalSnapshot(s.name));
      } catch (err) {
        this.evict(m, err, 'snapshot list failed');
      }
    }
    throw new CstorError('unavailable', `volume ${this.name}: no healthy replica to list snapshots from (phase ${this.phaseNow})`);
  }

  private async findSnapshot(name: string): Promise<SnapshotInfo | undefined> {
    return (await this.snapshotList()).find((s) => s.name === name);
  }

  private checkSnapshotName(name: string): void {
    if (!snapshotNamePattern.test(name)) {
      throw new CstorError('invalid', `snapshot name "${name}" must be 1-253 characters of letters, digits, '.', '_' or '-'`);
    }
    if (isInternalSnapshot(name)) throw new CstorError('invalid', `snapshot name "${name}" is reserved for rebuilds`);
  }

  /**
   * Runs `fn` with new writes held and every write already sent settled on every replica. If the
   * drain misses the bound, replicas still holding writes are evicted when at least CF healthy
   * ones have drained; otherwise the operation fails with nothing done. Always unquiesces.
   */
  async quiesced<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const started = performance.now();
    this.gate.hold();
    this.emit('change');
    try {
      if (!(await this.gate.drained(this.opts.quiesceTimeoutMs))) {
        const slow = this.fanout().filter((m) => m.inflightWrite > 0);
        const drainedHealthy = this.fanout().filter((m) => m.state === 'healthy' && m.inflightWrite === 0).length;
        if (drainedHealthy < this.consistencyFactor) {
          throw new CstorError(
            'timeout',
            `${what} of ${this.name}: in-flight writes did not drain in ${this.opts.quiesceTimeoutMs} ms (slow: ${slow.map((m) => m.address).join(', ')})`,
          );
        }
        for (const m of slow) this.evict(m, new CstorError('timeout', 'writes did not drain'), `${what}: quiesce`);
        if (!(await this.gate.drained(this.opts.quiesceTimeoutMs))) {
          throw new CstorError('timeout', `${what} of ${this.name}: in-flight writes did not drain`);
        }
      }
      this.stats.maxDrainMs = Math.max(this.stats.maxDrainMs, performance.now() - started);
      return await fn();
    } finally {
      this.gate.release();
      const ms = performance.now() - started;
      this.stats.lastQuiesceMs = ms;
      this.stats.maxQuiesceMs = Math.max(this.stats.maxQuiesceMs, ms);
    }
  }

  // ---- status --------------------------------------------------------------------------------

  status(): VolumeStatus {
    const now = Date.now();
    return {
      name: this.name,
      capacity: this.size,
      blockSize: this.blockSize,
      replicationFactor: this.replicationFactor,
      consistencyFactor: this.consistencyFactor,
      phase: this.phaseNow,
      ioSeq: this.nextIoSeq - 1,
      rebuilding: this.rebuild?.d.address ?? null,
      rebuildingFrom: this.rebuild?.h.address ?? null,
      replicaStatuses: this.members.map((m) => {
        const inFanout = m.state === 'healthy' || m.state === 'rebuilding';
        const view: ReplicaStatusView = {
          replicaId: m.address,
          address: m.address,
          mode: m.state === 'healthy' ? 'Healthy' : m.state === 'rebuilding' ? 'Rebuilding' : m.state === 'waiting' ? 'Degraded' : 'Offline',
          checkpointedIOSeq: String(m.checkpointedIoSeq),
          inflightRead: String(m.inflightRead),
          inflightWrite: String(m.inflightWrite),
          quorum: inFanout ? '1' : '0',
          upTime: m.client && m.state !== 'connecting' ? Math.floor((now - m.connectedAt) / 1000) : 0,
        };
        if (m.lastError) view.lastError = m.lastError;
        return view;
      }),
    };
  }

  count(state: MemberState): number {
    return this.members.filter((m) => m.state === state).length;
  }

  // ---- membership ----------------------------------------------------------------------------

  private fanout(): Member[] {
    return this.members.filter((m) => (m.state === 'healthy' || m.state === 'rebuilding') && m.client);
  }

  private connected(): Member[] {
    return this.members.filter((m) => m.client && m.state !== 'connecting');
  }

  private pickReader(): Member | undefined {
    let best: Member | undefined;
    for (const m of this.members) {
      if (m.state !== 'healthy' || !m.client) continue;
      if (!best || m.inflightRead < best.inflightRead) best = m;
    }
    const sticky = this.opts.readStickiness;
    if (sticky > 0 && best !== undefined) {
      const last = this.lastReader;
      if (last !== undefined && last.state === 'healthy' && last.client && last.inflightRead <= best.inflightRead + sticky) return last;
      this.lastReader = best;
    }
    return best;
  }

  private setPhase(): void {
    const h = this.count('healthy');
    const d = this.count('rebuilding');
    if (isReady(this.replicationFactor, h, d)) this.everReady = true;
    const next = this.stopped ? 'Offline' : phaseOf(this.replicationFactor, h, d, this.everReady);
    if (next !== this.phaseNow) {
      this.log.info('volume phase changed', { from: this.phaseNow, to: next, healthy: h, degraded: d });
      this.phaseNow = next;
      this.emit('phase', next);
    }
    this.emit('change');
  }

  private async connectMember(m: Member, initial = false): Promise<void> {
    if (this.stopped) return;
    m.reconnectTimer = null;
    m.state = 'connecting';
    const epoch = ++m.epoch;
    let client: ReplicaClient | null = null;
    try {
      client = await this.opts.connect(m.address);
      client.onClose((err) => {
        if (m.epoch === epoch && m.client === client) this.evict(m, err ?? new CstorError('unavailable', 'connection closed'), 'connection lost');
      });
      m.client = client;
      const st = await client.open({
        volume: this.name,
        size: this.size,
        blockSize: this.blockSize,
        replicationFactor: this.replicationFactor,
        targetId: this.opts.targetId,
      });
      const checkpoint = await client.sync();
      if (this.stopped || m.epoch !== epoch) {
        await client.close().catch(() => {});
        return;
      }
      m.persistedMode = st.mode;
      m.checkpointedIoSeq = checkpoint;
      m.connectedAt = Date.now();
      m.backoffMs = this.opts.reconnectMinMs;
      m.state = 'waiting';
      m.lastError = null;
      this.nextIoSeq = Math.max(this.nextIoSeq, checkpoint + 1);
      this.ioSeqCheck();
      this.log.info('replica connected', { replica: m.address, mode: st.mode, checkpointedIoSeq: checkpoint });
    } catch (err) {
      if (m.epoch === epoch) this.evict(m, err, 'connect failed');
    } finally {
      if (initial) this.initialPending--;
      this.setPhase();
      this.schedule();
    }
  }

  /**
   * Keeps io_seq within the persisted reservation: the next one is made when half of the current
   * one is used, and new writes are held at the gate only if io_seq reached the end before it was
   * durable (or when the target starts, and when election moves io_seq up).
   */
  private ioSeqCheck(): void {
    const store = this.ioSeqStore;
    if (store === null) return;
    if (this.nextIoSeq > this.ioSeqReserved && !this.ioSeqHeld) {
      this.ioSeqHeld = true;
      this.gate.hold();
    }
    if (this.ioSeqRenewing || this.stopped || this.nextIoSeq < this.ioSeqRenewAt) return;
    this.ioSeqRenewing = true;
    const upTo = this.nextIoSeq + this.ioSeqReserveChunk;
    store.reserve(upTo).then(
      () => {
        this.ioSeqRenewing = false;
        if (upTo > this.ioSeqReserved) {
          this.ioSeqReserved = upTo;
          this.ioSeqRenewAt = upTo - Math.floor(this.ioSeqReserveChunk / 2);
        }
        if (this.ioSeqHeld && this.nextIoSeq <= this.ioSeqReserved) {
          this.ioSeqHeld = false;
          this.gate.release();
        }
        this.ioSeqCheck(); // io_seq may have moved up meanwhile (election)
      },
      (err: unknown) => {
        this.ioSeqRenewing = false;
        this.log.error('cannot persist the io_seq reservation: writes past it wait until it is', { reservedUpTo: this.ioSeqReserved, error: describeError(err) });
        if (!this.stopped) setTimeout(() => this.ioSeqCheck(), 1000).unref();
      },
    );
  }

  private markSuspect(address: string, why = 'missed a write'): void {
    if (this.suspects.has(address)) return;
    this.suspects.add(address);
    this.log.warn(`replica ${why}: it is rebuilt before it is trusted again`, { replica: address });
    const store = this.suspectStore;
    if (!store) return;
    this.suspectsUnsaved++;
    this.suspectsSaved = this.suspectsSaved.then(() =>
      store
        .mark(address)
        .catch((err: unknown) => {
          this.log.error('cannot persist a suspect mark', { replica: address, error: describeError(err) });
        })
        .finally(() => {
          this.suspectsUnsaved--;
        }),
    );
  }

  /** Takes a replica out of the set: it stays out until reconnected and rebuilt. */
  evict(m: Member, err: unknown, why: string): void {
    if (m.state === 'offline' && !m.client) return;
    const was = m.state;
    const client = m.client;
    m.client = null;
    m.state = 'offline';
    m.epoch++;
    m.lastError = `${why}: ${describeError(err)}`;
    if (client) void client.close().catch(() => {});
    if (this.rebuild && (this.rebuild.d === m || this.rebuild.h === m)) this.rebuild.aborted = true;
    if (was !== 'connecting' || m.backoffMs === this.opts.reconnectMinMs) {
      this.log.warn('replica out of the set', { replica: m.address, was, reason: m.lastError });
    }
    this.setPhase();
    if (!this.stopped && !m.reconnectTimer) {
      const delay = m.backoffMs;
      m.backoffMs = Math.min(m.backoffMs * 2, this.opts.reconnectMaxMs);
      m.reconnectTimer = setTimeout(() => void this.connectMember(m), delay);
    }
  }

  // ---- control loop: election and rebuild scheduling ----------------------------------------

  private schedule(): void {
    this.loopDirty = true;
    if (this.loopRunning || this.stopped) return;
    this.loopRunning = true;
    void (async () => {
      try {
        for (let i = 0; i < 100 && this.loopDirty && !this.stopped; i++) {
          this.loopDirty = false;
          await this.step();
        }
      } catch (err) {
        this.log.error('control loop failed', { error: describeError(err) });
      } finally {
        this.loopRunning = false;
      }
    })();
  }

  private async step(): Promise<void> {
    if (this.count('healthy') === 0) {
      await this.elect();
      if (this.count('healthy') === 0) return;
      await this.cleanupInternalSnapshots();
    }
    if (!this.rebuild && this.count('healthy') > 0) {
      const now = Date.now();
      const waiting = this.members.filter((m) => m.state === 'waiting');
      const d = waiting.find((m) => (this.rebuildRetry.get(m.address)?.at ?? 0) <= now);
      if (d) this.startRebuild(d);
      else if (waiting.length > 0) {
        const next = Math.min(...waiting.map((m) => this.rebuildRetry.get(m.address)!.at));
        if (this.rebuildTimer) clearTimeout(this.rebuildTimer);
        this.rebuildTimer = setTimeout(() => {
          this.rebuildTimer = null;
          this.schedule();
        }, next - now);
        this.rebuildTimer.unref();
      }
    }
  }

  /**
   * Chooses the healthy set when there is none (docs/target.md, "Choosing the healthy set").
   * Needs at least RF-CF+1 connected replicas, so the set intersects every write quorum.
   */
  private async elect(): Promise<void> {
    if (this.initialPending > 0) return;
    const waiting = this.members.filter((m) => m.state === 'waiting');
    const rebuilding = this.members.filter((m) => m.state === 'rebuilding');
    if (waiting.length + rebuilding.length < intersectingCount(this.replicationFactor)) return;
    if (rebuilding.length === 0 && waiting.every((m) => m.persistedMode === 'New')) {
      this.log.info('fresh volume: marking its replicas healthy', { replicas: waiting.map((m) => m.address) });
      await Promise.all(
        waiting.map(async (m) => {
          try {
            await m.client!.markHealthy();
            if (m.state !== 'waiting') return;
            m.persistedMode = 'Healthy';
            m.state = 'healthy';
          } catch (err) {
            this.evict(m, err, 'markHealthy failed');
          }
        }),
      );
      this.setPhase();
      return;
    }
    // Replicas in the fan-out hold every write so far, whatever their checkpoint says.
    const newest = Math.max(...waiting.map((m) => m.checkpointedIoSeq), rebuilding.length > 0 ? this.nextIoSeq - 1 : 0);
    const chosen = waiting.filter((m) => m.persistedMode === 'Healthy' && m.checkpointedIoSeq === newest && !this.suspects.has(m.address));
    for (const m of chosen) {
      m.state = 'healthy';
      this.log.info('replica chosen healthy', { replica: m.address, checkpointedIoSeq: m.checkpointedIoSeq });
    }
    if (chosen.length > 0 && !this.ioSeqJumped) {
      this.ioSeqJumped = true;
      this.nextIoSeq = Math.max(this.nextIoSeq, newest + 1 + ioSeqRestartGap);
      this.ioSeqCheck();
    }
    if (chosen.length === 0) {
      this.log.warn('no replica can be trusted as healthy yet', {
        connected: waiting.map((m) => `${m.address}:${m.persistedMode}@${m.checkpointedIoSeq}`),
      });
    }
    this.setPhase();
  }

  /** Internal rebuild snapshots left by a crash are destroyed once no rebuild can be using them. */
  private async cleanupInternalSnapshots(): Promise<void> {
    if (this.rebuild) return;
    for (const m of this.members.filter((x) => x.state === 'healthy')) {
      try {
        const stale = (await m.client!.snapshotList()).filter((s) => isInternalSnapshot(s.name));
        for (const s of stale) {
          await m.client!.snapshotDestroy(s.name);
          this.log.info('stale rebuild snapshot removed', { replica: m.address, snapshot: s.name });
        }
      } catch (err) {
        this.evict(m, err, 'cleanup of rebuild snapshots failed');
      }
    }
  }

  private startRebuild(d: Member): void {
    const h = this.pickReader();
    if (!h) return;
    const rb = { d, h, aborted: false, complete: false, deferredDestroys: [] as string[] };
    this.rebuild = rb;
    this.setPhase();
    const ctx: RebuildContext = {
      volume: this.name,
      log: this.log,
      pageBytes: this.opts.rebuildPageBytes,
      internalName: () => `${internalSnapshotPrefix}${Date.now().toString(36)}-${++this.rebuildCounter}`,
      isAborted: () => rb.aborted || this.stopped,
      snapLock: this.snapLock,
      layerLock: this.layerLock,
      quiesced: (what, fn) => this.quiesced(what, fn),
      nextIoSeq: () => this.nextIoSeq,
      join: () => {
        d.state = 'rebuilding';
        d.persistedMode = 'Rebuilding';
        this.setPhase();
      },
      complete: () => {
        rb.complete = true;
      },
      done: () => {
        if (d.state !== 'rebuilding') return;
        if (this.suspects.delete(d.address)) {
          void this.suspectStore?.clear(d.address).catch((err: unknown) => this.log.warn('cannot clear a suspect mark', { replica: d.address, error: describeError(err) }));
        }
        d.state = 'healthy';
        d.persistedMode = 'Healthy';
        this.rebuildRetry.delete(d.address);
        this.stats.rebuildsDone++;
        this.log.info('replica rebuilt', { replica: d.address, from: h.address });
        this.setPhase();
      },
      deferredDestroys: () => rb.deferredDestroys.splice(0),
      evict: (m, err) => {
        const member = this.members.find((x) => x.address === m.address);
        if (member) this.evict(member, err, 'clean-up after rebuild failed');
      },
    };
    void rebuildReplica(ctx, d, h)
      .catch((err: unknown) => {
        const e = toCstorError(err, 'internal', 'rebuild failed');
        this.log.warn('rebuild failed', { replica: d.address, from: h.address, error: describeError(e) });
        if (err instanceof RebuildError && err.side === 'source') this.evict(h, e, 'rebuild source failed');
        // D is Rebuilding on its pool (never trusted): once it joined the fan-out, only a full
        // restart of its rebuild makes it whole, so it is reconnected and rebuilt again.
        if (d.state === 'rebuilding' || (err instanceof RebuildError && err.side === 'destination')) this.evict(d, e, 'rebuild failed');
        if (d.state === 'waiting') {
          const backoffMs = Math.min(2 * (this.rebuildRetry.get(d.address)?.backoffMs ?? 250), 30_000);
          this.rebuildRetry.set(d.address, { at: Date.now() + backoffMs, backoffMs });
        }
      })
      .finally(() => {
        if (this.rebuild === rb) this.rebuild = null;
        this.setPhase();
        this.schedule();
      });
  }
}


/** A read() continuation that copies the reply into the caller's buffer (clients without readInto). */
function intoCopier(into: Buffer): (data: Buffer) => void {
  return (data) => {
    if (data.length !== into.length) throw new CstorError('protocol', `read of ${into.length} bytes returned ${data.length}`);
    data.copy(into);
  };
}

/**
 * One replicated write in flight: the OK counts of DESIGN.md §6's write rule, and the caller's
 * promise. One object per write (not per replica): the volume's callbacks update it in place.
 */
class PendingWrite {
  targets = 0;
  pending = 0;
  healthyPending = 0;
  totalOk = 0;
  healthyOk = 0;
  settled = false;
  failures: string[] | null = null;
  resolve!: () => void;
  reject!: (err: Error) => void;
  /** The callback form (writeCb) instead of resolve/reject. */
  cb: ((err: Error | null) => void) | null = null;
  /** Called once every replica replied OK (see ReplicatedVolume.writeAt). */
  released: (() => void) | undefined;

  constructor(
    private readonly vol: ReplicatedVolume,
    readonly unmap: boolean,
    readonly length: number,
    readonly started: number,
  ) {}

  ok(m: Member, wasHealthy: boolean): void {
    this.vol.writeSettled(m);
    this.pending--;
    this.totalOk++;
    if (wasHealthy) {
      this.healthyPending--;
      this.healthyOk++;
    }
    this.check();
    if (this.pending === 0 && this.failures === null && this.released !== undefined) {
      const released = this.released;
      this.released = undefined;
      released();
    }
  }

  failed(m: Member, wasHealthy: boolean, err: unknown): void {
    this.vol.writeSettled(m);
    this.pending--;
    if (wasHealthy) this.healthyPending--;
    (this.failures ??= []).push(`${m.address}: ${describeError(err)}`);
    this.vol.writeFailed(m, this.unmap, err);
    this.check();
  }

  check(): void {
    if (this.settled) return;
    const rf = this.vol.replicationFactor;
    if (isAcked(rf, this.healthyOk, this.totalOk)) {
      this.settled = true;
      this.vol.writeAcked(this);
    } else if (!isAcked(rf, this.healthyOk + this.healthyPending, this.totalOk + this.pending)) {
      this.settled = true;
      this.vol.writeRejected(this);
    }
  }
}
