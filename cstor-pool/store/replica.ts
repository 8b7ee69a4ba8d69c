// One replica: a chain of layers (oldest first) plus a writable head, with an in-memory index of
// which layer holds each block. See docs/pool-storage.md for the on-disk format and invariants.
import { checkRange } from '../../lib/block-device.ts';
import { CstorError, describeError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import type { ReplicaMode, ReplicaStats, RunPage, SnapshotInfo } from '../../lib/replica-protocol/types.ts';
import { bitsetWords, clearBit, countBits, getBit, lowestBit, setBit } from './bitset.ts';
import { fsyncDir } from '../../lib/fsync-dir.ts';
import { blocksPerMapPage, LayerFile, mapPageBytes, type LayerBits, type SealRecord } from './layer-file.ts';
import { Mutex, RWLock } from './lock.ts';
import { pageRuns, type Source } from './run-pages.ts';
import { isListed, type LayerRef, type ReplicaMeta } from './metadata.ts';
import { checkSnapshotName } from './names.ts';
import type { Replica, ReplicaInfo, StagedSnapshot } from './types.ts';
import { writebackBytes, writebackSmallWriteBytes } from './writeback.ts';

/** What a replica needs from its pool. */
export interface PreparedMeta {
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export interface ReplicaHost {
  readonly layersDir: string;
  readonly logger: Logger;
  /** Runs `fn` holding the pool's structural mutex. */
  structural<T>(fn: () => Promise<T>): Promise<T>;
  /** Persists the replica's chain (atomically) and updates the pool's reference counts. */
  saveMeta(meta: ReplicaMeta): Promise<void>;
  /**
   * Takes a chain made durable by a seal record (the chain file not rewritten) as the replica's
   * chain; returns the number of seals the chain file now lags by.
   */
  adoptSealed(meta: ReplicaMeta): number;
  /** Seals the replica's chain file lags by (0: it is current). */
  sealsPending(volume: string): number;
  /** saveMeta in two steps: the tmp file written and fsynced now, the rename by `commit`. */
  prepareMeta(meta: ReplicaMeta): Promise<PreparedMeta>;
  /** The chain as last saved. */
  metaOf(volume: string): ReplicaMeta;
  /** Number of replica chains referencing a layer. */
  refCount(layerId: string): number;
  /** Deletes the files of these layers if no chain references them any more. */
  releaseLayers(ids: string[]): Promise<void>;
  info(replica: StoreReplica): Promise<ReplicaInfo>;
  release(replica: StoreReplica): Promise<void>;
}

/** A sealed snapshot waiting to be made durable (step 2 of the two-step snapshot). */
interface SealJob {
  layer: LayerFile;
  pages: Map<number, { alloc: Buffer; zero: Buffer }>;
  dataDirty: boolean;
  /** The old head's highest io_seq (its header is raised to it before its pages are written). */
  maxSeq: number;
  seal: SealRecord;
  meta: ReplicaMeta;
  done: (() => void) | null;
}

/** Spare heads kept ready per open replica (see prepareSpareHead). */
const spareHeadCount = 2;

/** Seals after which the chain file is rewritten (it lags by them until then; see pool.ts). */
const sealCatchUp = 128;

/** Largest chain: the index stores layer ordinals in a Uint16Array (0 = reads zeros). */
const maxLayers = 65534;
const seqChunkBlocks = 4096;
/** Largest single data-file IO when copying or paging. */
const maxIoBytes = 1 << 20;

type HeadState = 'data' | 'zero' | 'drop';

interface PendingImport {
  layer: LayerFile;
  bits: LayerBits;
  ioSeq: number;
}

/**
 * Promise.all that settles only once every promise has: a read into a caller's Buffer must not
 * report failure while another of its preads may still write into that Buffer (the pool server
 * reuses it as soon as the read settles).
 */
async function settleAll(ps: Promise<void>[]): Promise<void> {
  if (ps.length === 1) return ps[0];
  const results = await Promise.allSettled(ps);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}

function checkSeq(ioSeq: number): void {
  if (!Number.isSafeInteger(ioSeq) || ioSeq < 0) throw new CstorError('invalid', `io_seq ${ioSeq} is not a non-negative safe integer`);
}

export class StoreReplica implements Replica {
  readonly volume: string;
  readonly size: number;
  readonly blockSize: number;
  readonly blocks: number;
  openCount = 0;
  private closed = false;
  private failed: CstorError | null = null;
  /** Settles when the snapshot being made durable now (step 2 of the two-step snapshot) is. */
  private persisting: Promise<void> | null = null;

  private meta: ReplicaMeta;
  private layers: LayerFile[] = [];
  private layerAlloc: number[] = [];
  private head!: LayerFile;
  private headBits!: LayerBits;
  private headAlloc = 0;
  /** Per block: 0 = reads zeros; k = layers[k-1]; layers.length+1 = head. */
  private index: Uint16Array;
  /** Per block: the sealed chain (without the head) reads data there. */
  private lowerHas: Uint32Array;
  private seqChunks: (Float64Array | undefined)[] = [];
  /** io_seq assumed for head blocks without a recorded one (the checkpoint, after a restart). */
  private headBaseSeq = 0;
  private dirtyPages = new Set<number>();
  /** Bitmap pages of the head with any change since it was created (bounds snapshot work). */
  private touchedPages = new Set<number>();
  private dataDirty = false;
  private maxSeq = 0;
  private lastLocalSeq = 0;
  private readonly inflight = new Map<number, number>();
  private ckpt = 0;
  private readonly lock = new RWLock();
  private readonly syncMutex = new Mutex();
  private readonly imports = new Map<string, PendingImport>();
  private readonly bitsCache = new Map<string, LayerBits>();
  /**
   * The bits of the layer a snapshot sealed and is making durable now (step 2): its bitmap pages
   * may not be on disk yet, so they are never reloaded from there (see layerBits).
   */
  private sealingBits: { id: string; bits: LayerBits } | null = null;
  private readonly counters = { reads: 0, writes: 0, readBytes: 0, writeBytes: 0 };

  private constructor(
    private readonly host: ReplicaHost,
    meta: ReplicaMeta,
  ) {
    this.meta = meta;
    this.volume = meta.volume;
    this.size = meta.size;
    this.blockSize = meta.blockSize;
    this.blocks = meta.size / meta.blockSize;
    this.index = new Uint16Array(this.blocks);
    this.lowerHas = new Uint32Array(bitsetWords(this.blocks));
  }

  static async load(host: ReplicaHost, meta: ReplicaMeta): Promise<StoreReplica> {
    const r = new StoreReplica(host, meta);
    try {
      for (const ref of meta.layers) {
        const layer = await LayerFile.open(host.layersDir, ref.id);
        r.layers.push(layer);
        r.checkLayer(layer);
      }
      r.head = await LayerFile.open(host.layersDir, meta.head);
      r.checkLayer(r.head);
      if (r.head.blocks !== r.blocks) throw new CstorError('io', `replica ${meta.volume}: head layer size mismatch`);
      r.headBits = await r.head.loadBits();
      r.headAlloc = countBits(r.headBits.alloc);
      const wordsPerPage = mapPageBytes / 4;
      for (let w = 0; w < r.headBits.alloc.length; w++) {
        if ((r.headBits.alloc[w]! | r.headBits.zero[w]!) !== 0) r.touchedPages.add(Math.floor(w / wordsPerPage));
      }
      r.ckpt = Math.max(meta.checkpointedIoSeq, r.head.checkpoint);
      r.maxSeq = r.ckpt;
      // Per-block io_seqs of the head are not persisted: after a restart every head block counts
      // as written at the highest io_seq the persisted bitmap may hold (an over-estimate, which
      // keeps readHeadSince complete; writeIfNewer only runs after rebuildStart's fresh head).
      r.headBaseSeq = Math.max(r.ckpt, r.head.maxSeq);
      r.lastLocalSeq = r.headBaseSeq;
      await r.computeIndex(true);
      r.prepareSpareHead();
    } catch (err) {
      for (const l of r.layers) await l.close();
      await r.head?.close();
      throw err;
    }
    return r;
  }

  private checkLayer(layer: LayerFile): void {
    if (layer.blockSize !== this.blockSize || layer.blocks > this.blocks) {
      throw new CstorError('io', `replica ${this.volume}: layer ${layer.id} does not fit (${layer.blockSize}x${layer.blocks})`);
    }
  }

  get mode(): ReplicaMode {
    return this.meta.mode;
  }
  get checkpointedIoSeq(): number {
    return this.ckpt;
  }
  get chain(): Readonly<ReplicaMeta> {
    return this.meta;
  }

  private checkOpen(): void {
    if (this.failed) throw this.failed;
    if (this.closed) throw new CstorError('aborted', `replica ${this.volume} is closed`);
  }

  /** Set when an IO error left memory ahead of the disk: every request errs until a reload. */
  get isFailed(): boolean {
    return this.failed !== null;
  }

  // ---- index ----

  private async layerBits(layer: LayerFile): Promise<LayerBits> {
    if (this.sealingBits?.id === layer.id) return this.sealingBits.bits;
    let bits = this.bitsCache.get(layer.id);
    if (!bits) {
      bits = await layer.loadBits();
      this.cacheBits(layer.id, bits);
    }
    return bits;
  }

  /** Keeps a sealed layer's bits in the cache (8 entries, oldest out: each is 2 bits per block). */
  private cacheBits(id: string, bits: LayerBits): void {
    this.bitsCache.delete(id);
    while (this.bitsCache.size >= 8) this.bitsCache.delete(this.bitsCache.keys().next().value as string);
    this.bitsCache.set(id, bits);
  }

  /** Rebuilds the index and lowerHas from every layer's bitmap (after a chain change). */
  private async computeIndex(countLayers = false): Promise<void> {
    const index = new Uint16Array(this.blocks);
    const lower = new Uint32Array(bitsetWords(this.blocks));
    const apply = (bits: LayerBits, words: number, ord: number, updateLower: boolean): void => {
      for (let w = 0; w < words; w++) {
        const a = bits.alloc[w]!;
        let m = a | bits.zero[w]!;
        while (m !== 0) {
          const bit = lowestBit(m);
          m &= m - 1;
          const b = w * 32 + bit;
          if (b >= this.blocks) break;
          if ((a >>> bit) & 1) {
            index[b] = ord;
            if (updateLower) setBit(lower, b);
          } else {
            index[b] = 0;
            if (updateLower) clearBit(lower, b);
          }
        }
      }
    };
    for (let k = 0; k < this.layers.length; k++) {
      const layer = this.layers[k]!;
      const bits = await this.layerBits(layer);
      if (countLayers) this.layerAlloc[k] = countBits(bits.alloc);
      apply(bits, bitsetWords(layer.blocks), k + 1, true);
    }
    apply(this.headBits, bitsetWords(this.blocks), this.layers.length + 1, false);
    this.index = index;
    this.lowerHas = lower;
  }

  private seqOf(b: number): number {
    const chunk = this.seqChunks[Math.floor(b / seqChunkBlocks)];
    const v = chunk ? chunk[b % seqChunkBlocks]! : 0;
    if (v > 0) return v;
    return getBit(this.headBits.alloc, b) || getBit(this.headBits.zero, b) ? this.headBaseSeq : 0;
  }

  private setSeq(b: number, seq: number): void {
    const c = Math.floor(b / seqChunkBlocks);
    let chunk = this.seqChunks[c];
    if (!chunk) {
      chunk = new Float64Array(seqChunkBlocks);
      this.seqChunks[c] = chunk;
    }
    chunk[b % seqChunkBlocks] = seq;
  }

  /** Records head state for blocks [b0, b0+n). */
  private markHead(b0: number, n: number, state: HeadState, seq: number): void {
    const { alloc, zero } = this.headBits;
    const headOrd = this.layers.length + 1;
    for (let b = b0; b < b0 + n; b++) {
      const wasAlloc = getBit(alloc, b);
      if (state === 'data') {
        if (!wasAlloc) {
          setBit(alloc, b);
          this.headAlloc++;
        }
        clearBit(zero, b);
        this.index[b] = headOrd;
      } else {
        if (wasAlloc) {
          clearBit(alloc, b);
          this.headAlloc--;
        }
        if (state === 'zero') setBit(zero, b);
        else clearBit(zero, b);
        this.index[b] = 0;
      }
      this.setSeq(b, seq);
    }
    const p0 = Math.floor(b0 / blocksPerMapPage);
    const p1 = Math.floor((b0 + n - 1) / blocksPerMapPage);
    for (let p = p0; p <= p1; p++) {
      this.dirtyPages.add(p);
      this.touchedPages.add(p);
    }
  }

  private beginSeq(seq: number): void {
    this.inflight.set(seq, (this.inflight.get(seq) ?? 0) + 1);
  }

  private endSeq(seq: number, done: boolean): void {
    const n = (this.inflight.get(seq) ?? 1) - 1;
    if (n <= 0) this.inflight.delete(seq);
    else this.inflight.set(seq, n);
    if (done && seq > this.maxSeq) this.maxSeq = seq;
  }

  /**
   * Replica.holdSeq: a write of `ioSeq` that has arrived but is not issued yet (the server's
   * ordering holds it behind an earlier request) counts as in flight, so no checkpoint (a sync, a
   * close, a snapshot's seal) claims it before it has landed. The release is idempotent.
   */
  holdSeq(ioSeq: number): () => void {
    this.beginSeq(ioSeq);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.endSeq(ioSeq, false);
    };
  }

  /** Highest io_seq such that no write at or below it is still in flight. */
  private checkpointCandidate(): number {
    let c = this.maxSeq;
    for (const s of this.inflight.keys()) c = Math.min(c, s - 1);
    return Math.max(c, this.ckpt);
  }

  // ---- BlockDevice ----

  async readAt(offset: number, length: number): Promise<Buffer> {
    this.checkOpen();
    checkRange(this, offset, length);
    const out = Buffer.allocUnsafe(length);
    await this.readInto(offset, out);
    return out;
  }

  /**
   * Reads `buf.length` bytes at `offset` into `buf`: each run of consecutive blocks held by one
   * layer is read by one pread straight into its place in `buf`, and only blocks no layer holds
   * are zero-filled; nothing is allocated per block or per run beyond the run list. `buf` must not
   * be touched until the promise settles (on an error its contents are undefined). The promise
   * settles only once no pread is left writing into `buf`, on success and failure alike.
   */
  readInto(offset: number, buf: Buffer): Promise<void> {
    try {
      this.checkOpen();
      this.checkReadInto(offset, buf);
    } catch (err) {
      return Promise.reject(err);
    }
    // Uncontended (no structural change holding or waiting for the lock): no lock promise at all.
    if (!this.lock.tryShared()) return this.lock.shared(() => this.readLocked(offset, buf));
    let p: Promise<void>;
    try {
      p = this.readLocked(offset, buf);
    } catch (err) {
      this.lock.releaseShared();
      return Promise.reject(err);
    }
    return p.then(
      () => this.lock.releaseShared(),
      (err: unknown) => {
        this.lock.releaseShared();
        throw err;
      },
    );
  }

  private checkReadInto(offset: number, buf: Buffer): void {
    if (!Buffer.isBuffer(buf)) throw new CstorError('invalid', `readInto: the destination must be a Buffer, got ${typeof buf}`);
    const bs = this.blockSize;
    const length = buf.length;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % bs !== 0) {
      throw new CstorError('invalid', `readInto: offset ${offset} is not a non-negative multiple of the block size ${bs} (replica ${this.volume})`);
    }
    if (length % bs !== 0) throw new CstorError('invalid', `readInto: buffer length ${length} is not a multiple of the block size ${bs} (replica ${this.volume})`);
    if (offset + length > this.size) {
      throw new CstorError('invalid', `readInto: ${length} bytes at offset ${offset} end at ${offset + length}, past the end of replica ${this.volume} (${this.size} bytes)`);
    }
  }

  /** The read itself, holding the shared lock (synchronous up to the preads it issues). */
  private readLocked(offset: number, buf: Buffer): Promise<void> {
    this.checkOpen();
    this.counters.reads++;
    this.counters.readBytes += buf.length;
    const bs = this.blockSize;
    const b0 = offset / bs;
    const n = buf.length / bs;
    if (n === 0) return Promise.resolve();
    // The common cases, one run (a 4 KiB read; a 1 MiB read of data written together): no run list.
    const index = this.index;
    const first = index[b0]!;
    let i = 1;
    while (i < n && index[b0 + i] === first) i++;
    if (i === n) {
      if (first === 0) {
        buf.fill(0);
        return Promise.resolve();
      }
      const layer = this.layerOf(first);
      // Inline when the policy admits it (LayerFile.readNow, inline-io.ts), else the thread pool.
      if (layer.readNow(buf, 0, buf.length, offset)) return Promise.resolve();
      return layer.read(buf, 0, buf.length, offset);
    }
    return this.readRuns(buf, b0, n);
  }

  private layerOf(ord: number): LayerFile {
    return ord <= this.layers.length ? this.layers[ord - 1]! : this.head;
  }

  /**
   * A read over several runs. Zero runs are filled and every data run is read in place at once;
   * when the read is fragmented (more than 4 runs) and one layer holds more than 2 of them, that
   * layer is read as one span first (one pread instead of many) and the other runs inside the
   * span are read over it, in place, once it has landed.
   */
  private async readRuns(out: Buffer, b0: number, n: number): Promise<void> {
    const bs = this.blockSize;
    const index = this.index;
    // Runs as flat triples [ord, i, j) in block units relative to b0.
    const runs: number[] = [];
    let i = 0;
    while (i < n) {
      const ord = index[b0 + i]!;
      let j = i + 1;
      while (j < n && index[b0 + j] === ord) j++;
      runs.push(ord, i, j);
      i = j;
    }
    const count = runs.length / 3;
    let spanOrd = 0;
    let si = 0;
    let sj = 0;
    if (count > 4) {
      const perOrd = new Map<number, number>();
      let best = 2;
      for (let k = 0; k < runs.length; k += 3) {
        const ord = runs[k]!;
        if (ord === 0) continue;
        const c = (perOrd.get(ord) ?? 0) + 1;
        perOrd.set(ord, c);
        if (c > best) {
          best = c;
          spanOrd = ord;
        }
      }
      if (spanOrd !== 0) {
        for (let k = 0; k < runs.length; k += 3) {
          if (runs[k] !== spanOrd) continue;
          if (sj === 0) si = runs[k + 1]!;
          sj = runs[k + 2]!;
        }
      }
    }
    const first: Promise<void>[] = [];
    const inside: number[] = [];
    if (spanOrd !== 0) first.push(this.readPart(this.layerOf(spanOrd), out, si * bs, (sj - si) * bs, (b0 + si) * bs));
    for (let k = 0; k < runs.length; k += 3) {
      const ord = runs[k]!;
      const ri = runs[k + 1]!;
      const rj = runs[k + 2]!;
      if (spanOrd !== 0 && ri >= si && rj <= sj) {
        if (ord !== spanOrd) inside.push(k);
        continue;
      }
      if (ord === 0) out.fill(0, ri * bs, rj * bs);
      else first.push(this.readPart(this.layerOf(ord), out, ri * bs, (rj - ri) * bs, (b0 + ri) * bs));
    }
    await settleAll(first);
    if (inside.length === 0) return;
    const patches: Promise<void>[] = [];
    for (const k of inside) {
      const ord = runs[k]!;
      const ri = runs[k + 1]!;
      const rj = runs[k + 2]!;
      if (ord === 0) out.fill(0, ri * bs, rj * bs);
      else patches.push(this.readPart(this.layerOf(ord), out, ri * bs, (rj - ri) * bs, (b0 + ri) * bs));
    }
    await settleAll(patches);
  }

  /**
   * One run of `readRuns`: inline when the policy admits it (LayerFile.readNow), else the thread
   * pool. Never throws: an error is a rejected promise like the others, so `settleAll` still waits
   * for every pread issued before it settles.
   */
  private readPart(layer: LayerFile, out: Buffer, offset: number, length: number, position: number): Promise<void> {
    try {
      if (layer.readNow(out, offset, length, position)) return Promise.resolve();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return layer.read(out, offset, length, position);
  }

  async writeAt(offset: number, data: Buffer): Promise<void> {
    const seq = Math.max(this.lastLocalSeq, this.maxSeq) + 1;
    this.lastLocalSeq = seq;
    await this.write(offset, data, seq);
  }

  async write(offset: number, data: Buffer, ioSeq: number): Promise<void> {
    this.checkOpen();
    checkRange(this, offset, data.length);
    checkSeq(ioSeq);
    if (data.length === 0) return;
    // Set when the head's file refused the write (an I/O failure, not a refused request).
    let headFailed = false;
    try {
      // Fast path: no structural change holds or awaits the lock and the head takes the write inline
      // (LayerFile.writeNow, inline-io.ts): all of it happens now, with no thread-pool round trip.
      // Nothing else runs in between, so the in-flight io_seq bookkeeping (begin/endSeq) has nothing
      // to record; the order of effects (data, then the index) is the one below.
      if (this.lock.tryShared()) {
        let inline: boolean;
        try {
          try {
            inline = this.head.writeNow(data, 0, data.length, offset);
          } catch (err) {
            headFailed = true;
            throw err;
          }
          if (inline) {
            this.dataDirty = true;
            this.noteWrite(data.length);
            this.markHead(offset / this.blockSize, data.length / this.blockSize, 'data', ioSeq);
            if (ioSeq > this.maxSeq) this.maxSeq = ioSeq;
            this.counters.writes++;
            this.counters.writeBytes += data.length;
          }
        } finally {
          this.lock.releaseShared();
        }
        if (inline) return;
      }
      await this.lock.shared(async () => {
        this.checkOpen();
        this.beginSeq(ioSeq);
        let ok = false;
        try {
          await this.head.write(data, 0, data.length, offset).catch((err: unknown) => {
            headFailed = true;
            throw err;
          });
          this.dataDirty = true;
          this.noteWrite(data.length);
          this.markHead(offset / this.blockSize, data.length / this.blockSize, 'data', ioSeq);
          ok = true;
        } finally {
          this.endSeq(ioSeq, ok);
        }
        this.counters.writes++;
        this.counters.writeBytes += data.length;
      });
    } catch (err) {
      if (headFailed) await this.writeFailed(ioSeq, err);
      throw err;
    }
  }

  /**
   * A write the head's file refused (EIO, ENOSPC on a full pool): later writes may land where this
   * one did not, and the checkpoint counts io_seqs, not holes, so this replica could pass for as
   * fresh as its peers without the write. Its mode is persisted as Rebuilding before the error is
   * answered: no target trusts it until it is rebuilt (the target's own suspect mark can be lost
   * with the target). If even that cannot be saved, the replica is failed until it is reloaded.
   */
  private async writeFailed(ioSeq: number, cause: unknown): Promise<void> {
    if (this.closed || this.failed || this.meta.mode !== 'Healthy') return;
    this.host.logger.error('write failed on disk: replica marked for rebuild', { volume: this.volume, ioSeq, error: describeError(cause) });
    try {
      await this.structural(async () => {
        if (this.meta.mode !== 'Healthy') return;
        await this.host.saveMeta({ ...this.meta, mode: 'Rebuilding', rebuildInsertAt: this.meta.layers.length });
        this.meta = this.host.metaOf(this.volume);
      });
    } catch (err) {
      this.failed ??= new CstorError('io', `replica ${this.volume}: write io_seq ${ioSeq} failed and the replica could not be marked for rebuild; it is failed until it is reloaded`, { cause: err });
    }
  }

  async unmap(offset: number, length: number): Promise<void> {
    const seq = Math.max(this.lastLocalSeq, this.maxSeq) + 1;
    this.lastLocalSeq = seq;
    await this.unmapSeq(offset, length, seq);
  }

  async unmapSeq(offset: number, length: number, ioSeq: number): Promise<void> {
    this.checkOpen();
    checkRange(this, offset, length);
    checkSeq(ioSeq);
    if (length === 0) return;
    await this.lock.shared(async () => {
      this.checkOpen();
      const b0 = offset / this.blockSize;
      const n = length / this.blockSize;
      const rebuilding = this.meta.mode === 'Rebuilding';
      // Runs of blocks whose sealed chain holds data get a zero marker; the rest are dropped.
      // While rebuilding, layers may still be imported beneath: always mark.
      let i = 0;
      while (i < n) {
        const keep = rebuilding || getBit(this.lowerHas, b0 + i);
        let j = i + 1;
        while (j < n && (rebuilding || getBit(this.lowerHas, b0 + j)) === keep) j++;
        this.markHead(b0 + i, j - i, keep ? 'zero' : 'drop', ioSeq);
        i = j;
      }
      this.maxSeq = Math.max(this.maxSeq, ioSeq);
    });
  }

  /**
   * Background writeback: once `writebackBytes` have been written to the head since the last one,
   * fsync the head's data file (data only: the bitmap pages and the checkpoint are written by
   * sync() alone, so this changes no on-disk state a reader can see, and no crash outcome). It
   * bounds the dirty data, so that a snapshot's durable step (and any sync) costs little. One at a
   * time; neither a write nor a snapshot's cut waits for it.
   */
  private writebackDirty = 0;
  private writebackRunning = false;

  private noteWrite(bytes: number): void {
    const threshold = writebackBytes();
    // Only small writes count (writeback.ts says why).
    if (threshold <= 0 || bytes > writebackSmallWriteBytes) return;
    this.writebackDirty += bytes;
    if (this.writebackRunning || this.writebackDirty < threshold) return;
    this.writebackRunning = true;
    this.writebackDirty = 0;
    // No lock: a snapshot's cut (exclusive) must not wait for this fdatasync. The layer is
    // captured; if it is sealed meanwhile, this still only flushes its data.
    const layer = this.head;
    void (this.closed ? Promise.resolve() : layer.syncData())
      .catch(() => undefined) // sync() reports the error, if it persists
      .finally(() => {
        this.writebackRunning = false;
      });
  }

  async sync(): Promise<void> {
    this.checkOpen();
    // The head is in the durable chain only once a snapshot persisting now is durable: wait for it
    // (and check again under the lock: a next snapshot may have cut in between).
    for (let guard = 0; guard < 1000; guard++) {
      const p = this.persisting;
      if (p) await p;
      const done = await this.lock.shared(async () => {
        this.checkOpen();
        if (this.persisting) return false;
        await this.syncMutex.run(() => this.syncInner());
        return true;
      });
      if (done) return;
    }
    throw new CstorError('unavailable', `replica ${this.volume}: sync kept waiting for snapshots`);
  }

  /** fsync data, then the bitmap pages captured before it, then the checkpoint header. */
  private async syncInner(): Promise<void> {
    const target = this.checkpointCandidate();
    const maxSeq = this.maxSeq;
    const pages = new Map<number, { alloc: Buffer; zero: Buffer }>();
    for (const p of this.dirtyPages) {
      const off = p * mapPageBytes;
      pages.set(p, {
        alloc: Buffer.from(Buffer.from(this.headBits.alloc.buffer, off, mapPageBytes)),
        zero: Buffer.from(Buffer.from(this.headBits.zero.buffer, off, mapPageBytes)),
      });
    }
    this.dirtyPages.clear();
    const dataDirty = this.dataDirty;
    this.dataDirty = false;
    try {
      // (The checkpoint moves only after the data and the pages.)
      await this.head.persistDirty(dataDirty, pages, maxSeq);
      if (target > this.head.checkpoint || maxSeq > this.head.maxSeq) await this.head.writeCheckpoint(target, maxSeq);
    } catch (err) {
      for (const p of pages.keys()) this.dirtyPages.add(p);
      if (dataDirty) this.dataDirty = true;
      throw new CstorError('io', `replica ${this.volume}: sync failed`, { cause: err });
    }
    if (target > this.ckpt) this.ckpt = target;
  }

  // ---- snapshots ----

  private findListed(name: string): number {
    return this.meta.layers.findIndex((l) => isListed(l) && l.snapshot.name === name);
  }

  snapshots(): SnapshotInfo[] {
    const out: SnapshotInfo[] = [];
    this.meta.layers.forEach((l, k) => {
      if (isListed(l)) out.push({ ...l.snapshot, usedBytes: (this.layerAlloc[k] ?? 0) * this.blockSize });
    });
    return out;
  }

  /** Runs `fn` with the pool mutex and this replica's exclusive lock. */
  private structural<T>(fn: () => Promise<T>): Promise<T> {
    this.checkOpen();
    return this.host.structural(() =>
      this.lock.exclusive(async () => {
        this.checkOpen();
        return fn();
      }),
    );
  }

  snapshotCreate(name: string, ioSeq: number): Promise<void> {
    return this.snapshotCreateStaged(name, ioSeq).durable;
  }

  /**
   * The two-step snapshot (docs/pool-storage.md, "Two-step snapshot"). `cut` settles once the
   * snapshot's point is fixed: under the exclusive lock, only long enough to switch the head in
   * memory to the spare head made ahead of time; IO goes on from there, into the new head.
   * `durable` settles once the snapshot is on disk: the old head's dirty data, then its bitmap
   * pages, then its seal record (one fdatasync each, no journal commit for a clean head), while the
   * pool's structural mutex stays held, so no other change of a chain runs in between. A sync
   * waits for `durable` (the new head is not in the durable chain before it). A crash before the
   * seal is durable leaves the old chain, with the old head as the head: it lacks only writes made
   * after the cut, none of which a sync acknowledged. If making it durable fails, the replica is
   * failed (every request errs) until the pool reloads it from disk.
   */
  snapshotCreateStaged(name: string, ioSeq: number): StagedSnapshot {
    let cutDone!: () => void;
    let cutFailed!: (err: unknown) => void;
    const cut = new Promise<void>((resolve, reject) => {
      cutDone = resolve;
      cutFailed = reject;
    });
    cut.catch(() => undefined);
    const durable = (async () => {
      checkSnapshotName(name);
      checkSeq(ioSeq);
      this.checkOpen();
      await this.host.structural(async () => {
        this.checkOpen();
        if (this.findListed(name) >= 0) return cutDone();
        if (this.layers.length + 1 >= maxLayers) throw new CstorError('too_large', `replica ${this.volume}: too many layers`);
        // The spare is normally ready; making one (if not) happens before IO is held.
        const newHead = await this.takeSpareHead();
        let job: SealJob;
        try {
          job = await this.lock.exclusive(async () => {
            this.checkOpen();
            return this.cutLocked(name, ioSeq, newHead);
          });
        } catch (err) {
          if (this.closed) await newHead.remove().catch(() => undefined);
          else this.returnSpareHead(newHead);
          throw err;
        }
        cutDone();
        await this.persistSeal(job);
      });
    })();
    durable.catch((err: unknown) => cutFailed(err));
    return { cut, durable };
  }

  /** Makes the empty layer `newHead` the head: no blocks, no recorded io_seqs, nothing dirty. */
  private startHead(newHead: LayerFile): void {
    this.head = newHead;
    this.headBits = { alloc: new Uint32Array(newHead.words), zero: new Uint32Array(newHead.words) };
    this.headAlloc = 0;
    this.seqChunks = [];
    this.headBaseSeq = 0;
    this.dirtyPages.clear();
    this.dataDirty = false;
  }

  /** Step 1 (exclusive lock held): seals the head in memory and makes `newHead` the head. */
  private cutLocked(name: string, ioSeq: number, newHead: LayerFile): SealJob {
    const old = this.head;
    const oldBits = this.headBits;
    // No write is in flight (exclusive lock): every io_seq up to the candidate is in the old head.
    const checkpoint = Math.max(this.ckpt, this.checkpointCandidate());
    const pages = new Map<number, { alloc: Buffer; zero: Buffer }>();
    for (const p of this.dirtyPages) {
      const off = p * mapPageBytes;
      // Views, not copies: a sealed layer's bits change only by a structural operation, and none
      // runs before this seal is durable (the pool mutex is held until then).
      pages.set(p, { alloc: Buffer.from(oldBits.alloc.buffer, off, mapPageBytes), zero: Buffer.from(oldBits.zero.buffer, off, mapPageBytes) });
    }
    const createdAt = Date.now();
    const job: SealJob = {
      layer: old,
      pages,
      dataDirty: this.dataDirty,
      maxSeq: this.maxSeq,
      seal: { name, ioSeq, createdAt, successor: newHead.id, checkpoint },
      meta: {
        ...this.meta,
        layers: [...this.meta.layers, { id: old.id, snapshot: { name, ioSeq, createdAt } }],
        head: newHead.id,
        checkpointedIoSeq: Math.max(this.meta.checkpointedIoSeq, checkpoint),
      },
      done: null,
    };
    // The sealed chain now reads what the old head held, where it held anything.
    const wordsPerPage = mapPageBytes / 4;
    for (const p of this.touchedPages) {
      const end = Math.min(this.lowerHas.length, (p + 1) * wordsPerPage);
      for (let w = p * wordsPerPage; w < end; w++) {
        this.lowerHas[w] = (this.lowerHas[w]! & ~oldBits.zero[w]!) | oldBits.alloc[w]!;
      }
    }
    // The index needs no change: the old head's ordinal (layers.length + 1) is the sealed layer's.
    this.meta = job.meta;
    this.touchedPages = new Set();
    this.layers.push(old);
    this.layerAlloc.push(this.headAlloc);
    this.cacheBits(old.id, oldBits);
    this.sealingBits = { id: old.id, bits: oldBits };
    this.startHead(newHead);
    this.persisting = new Promise<void>((resolve) => (job.done = resolve));
    return job;
  }

  /** Step 2 (pool mutex held, IO flowing): makes the seal durable; fails the replica if it cannot. */
  private async persistSeal(job: SealJob): Promise<void> {
    try {
      // (Until the seal is durable the old head is the durable chain's head: persisted as in syncInner.)
      await job.layer.persistDirty(job.dataDirty, job.pages, job.maxSeq);
      await job.layer.writeSeal(job.seal);
    } catch (err) {
      const e = new CstorError('io', `replica ${this.volume}: snapshot ${job.seal.name} could not be made durable; the replica is failed until it is reloaded`, { cause: err });
      this.failed = e;
      this.host.logger.error('snapshot persist failed: replica failed', { volume: this.volume, snapshot: job.seal.name, error: describeError(err) });
      throw e;
    } finally {
      this.persisting = null;
      this.sealingBits = null;
      job.done?.();
    }
    const pending = this.host.adoptSealed(job.meta);
    if (job.seal.checkpoint > this.ckpt) this.ckpt = job.seal.checkpoint;
    this.prepareSpareHead();
    this.host.logger.info('snapshot created', { volume: this.volume, snapshot: job.seal.name, ioSeq: job.seal.ioSeq });
    if (pending >= sealCatchUp) {
      // The chain file lags by `pending` seals: rewrite it, queued behind this operation.
      void this.host
        .structural(async () => {
          if (this.closed || this.failed || this.host.sealsPending(this.volume) === 0) return;
          await this.host.saveMeta(this.meta);
        })
        .catch((err: unknown) => this.host.logger.warn('chain file catch-up failed; retried later', { volume: this.volume, error: describeError(err) }));
    }
  }

  /**
   * The next heads, created (files, header, directory entry all durable) ahead of time so that a
   * snapshot costs no file creation (two journal commits) on its critical path. Two are kept, so
   * that back-to-back snapshots find one ready while the next is made. Until a chain names one,
   * it is an orphan that the open-time garbage collection removes (and close removes).
   */
  private spareHeads: Promise<LayerFile>[] = [];

  private prepareSpareHead(): void {
    while (this.spareHeads.length < spareHeadCount && !this.closed) {
      const spare = (async () => {
        const layer = await LayerFile.create({ dir: this.host.layersDir, blockSize: this.blockSize, blocks: this.blocks });
        await fsyncDir(this.host.layersDir);
        return layer;
      })();
      spare.catch(() => undefined);
      this.spareHeads.push(spare);
    }
  }

  private async takeSpareHead(): Promise<LayerFile> {
    this.prepareSpareHead();
    const spare = this.spareHeads.shift()!;
    try {
      return await spare;
    } catch (err) {
      throw new CstorError('io', `replica ${this.volume}: cannot create a new head layer`, { cause: err });
    } finally {
      this.prepareSpareHead();
    }
  }

  /** Gives back a spare taken for a snapshot that did not happen. */
  private returnSpareHead(layer: LayerFile): void {
    this.spareHeads.unshift(Promise.resolve(layer));
  }

  private async dropSpareHead(): Promise<void> {
    const spares = this.spareHeads;
    this.spareHeads = [];
    for (const spare of spares) await (await spare.catch(() => null))?.remove();
  }

  async snapshotDestroy(name: string): Promise<void> {
    checkSnapshotName(name);
    await this.structural(async () => {
      const idx = this.findListed(name);
      if (idx < 0) return;
      const ref = this.meta.layers[idx]!;
      if (this.host.refCount(ref.id) > 1) {
        const layers = this.meta.layers.map((l, k) => (k === idx ? { ...l, hidden: true } : l));
        await this.host.saveMeta({ ...this.meta, layers });
        this.meta = this.host.metaOf(this.volume);
        this.host.logger.info('snapshot hidden (a clone still uses it)', { volume: this.volume, snapshot: name });
      } else {
        await this.foldLocked(idx);
        this.host.logger.info('snapshot deleted', { volume: this.volume, snapshot: name });
      }
      await this.compactLocked();
    });
  }

  /**
   * Folds hidden layers that no other chain uses any more. Caller holds the pool mutex. Refused
   * (the caller retries on the next open) on a failed replica: its memory is ahead of the disk
   * (a snapshot never made durable), and a fold would commit that chain.
   */
  async compact(): Promise<void> {
    this.checkOpen();
    await this.lock.exclusive(async () => {
      this.checkOpen();
      await this.compactLocked();
    });
  }

  private async compactLocked(): Promise<void> {
    for (let guard = 0; guard < maxLayers; guard++) {
      const idx = this.meta.layers.findIndex((l) => l.hidden === true && this.host.refCount(l.id) === 1);
      if (idx < 0) return;
      const name = this.meta.layers[idx]!.snapshot.name;
      await this.foldLocked(idx);
      this.host.logger.info('hidden snapshot folded (its last clone is gone)', { volume: this.volume, snapshot: name });
    }
  }

  /**
   * Merges layer `idx` into its child (the next layer up, or the head) and drops it. Crash-safe:
   * the child only gains blocks it did not have, copied from the layer below it, so its view is
   * the same before and after; the chain changes in one metadata rename at the end.
   */
  private async foldLocked(idx: number): Promise<void> {
    const layer = this.layers[idx]!;
    const ref = this.meta.layers[idx]!;
    const childIsHead = idx === this.layers.length - 1;
    // (Not while Rebuilding: imports are placed by chain position there; keep the old behaviour.)
    if (!childIsHead && this.meta.mode !== 'Rebuilding' && (this.layerAlloc[idx + 1] ?? 0) < (this.layerAlloc[idx] ?? 0)) {
      // The sealed child holds less data than the layer going away: copy the child into it
      // instead (mergeUpLocked). That rewrites the layer in place, so it is first unlisted
      // durably: a crash from here on leaves a hidden layer, folded again on open.
      if (ref.hidden !== true) {
        await this.host.saveMeta({ ...this.meta, layers: this.meta.layers.map((l, k) => (k === idx ? { ...l, hidden: true } : l)) });
        this.meta = this.host.metaOf(this.volume);
      }
      await this.mergeUpLocked(idx);
      return;
    }
    const child = childIsHead ? this.head : this.layers[idx + 1]!;
    const src = await layer.loadBits();
    const dst = childIsHead ? this.headBits : await child.loadBits();
    const bs = this.blockSize;
    const headSeq = Math.max(0, ref.snapshot.ioSeq - 1);
    // First the list of blocks the child lacks, then their data, and only then the bits: an IO
    // error part-way leaves the child's bitmap (in memory and on disk) as it was.
    const moved: number[] = [];
    const words = bitsetWords(layer.blocks);
    for (let w = 0; w < words; w++) {
      let m = (src.alloc[w]! | src.zero[w]!) & ~(dst.alloc[w]! | dst.zero[w]!);
      while (m !== 0) {
        const bit = lowestBit(m);
        m &= m - 1;
        const b = w * 32 + bit;
        if (b < layer.blocks) moved.push(b);
      }
    }
    let k = 0;
    while (k < moved.length) {
      const b = moved[k]!;
      if (!getBit(src.alloc, b)) {
        k++;
        continue;
      }
      let n = 1;
      while (k + n < moved.length && moved[k + n] === b + n && getBit(src.alloc, b + n) && (n + 1) * bs <= maxIoBytes) n++;
      const buf = Buffer.allocUnsafe(n * bs);
      await layer.read(buf, 0, buf.length, b * bs);
      await child.write(buf, 0, buf.length, b * bs);
      k += n;
    }
    let added = 0;
    for (const b of moved) {
      if (getBit(src.alloc, b)) {
        setBit(dst.alloc, b);
        added++;
      } else {
        setBit(dst.zero, b);
      }
      if (childIsHead) {
        this.setSeq(b, headSeq);
        this.dirtyPages.add(Math.floor(b / blocksPerMapPage));
        this.touchedPages.add(Math.floor(b / blocksPerMapPage));
      }
    }
    if (childIsHead) {
      this.headAlloc += added;
      this.dataDirty = true;
      // (Nothing is in flight: every write below the snapshot's io_seq is in it, durably.)
      if (headSeq > this.maxSeq) this.maxSeq = headSeq;
      await this.syncInner();
    } else {
      await child.syncData();
      await child.writeBits(dst);
      this.layerAlloc[idx + 1] = (this.layerAlloc[idx + 1] ?? 0) + added;
    }
    this.bitsCache.delete(child.id);
    this.bitsCache.delete(layer.id);
    const insertAt = this.meta.rebuildInsertAt;
    await this.host.saveMeta({
      ...this.meta,
      layers: this.meta.layers.filter((_l, k) => k !== idx),
      rebuildInsertAt: insertAt !== null && idx < insertAt ? insertAt - 1 : insertAt,
    });
    this.meta = this.host.metaOf(this.volume);
    this.layers.splice(idx, 1);
    this.layerAlloc.splice(idx, 1);
    await layer.close();
    await this.host.releaseLayers([layer.id]);
    await this.computeIndex();
  }

  /**
   * Folds hidden layer `idx` by the other direction: copies its sealed child's blocks (data and
   * zero markers) into it, then one rename puts it in the child's place (with the child's
   * snapshot record) and drops the child. Crash-safe: the layer is hidden (no snapshot reads it
   * alone, and it is unshared, so no clone does), and only blocks the child covers change in it,
   * which no view of this chain reads from it; a crash before the rename leaves the old chain,
   * still reading the same, and the hidden layer is folded again on open. The child is unshared
   * too (every chain naming it names the layer beneath it).
   */
  private async mergeUpLocked(idx: number): Promise<void> {
    const parent = this.layers[idx]!;
    const child = this.layers[idx + 1]!;
    const childRef = this.meta.layers[idx + 1]!;
    const src = await child.loadBits();
    const dst = await parent.loadBits();
    const bs = this.blockSize;
    const blocks = Math.min(parent.blocks, child.blocks);
    // Data first, in runs of consecutive blocks (one pread + one pwrite per run).
    let b = 0;
    while (b < blocks) {
      const w = src.alloc[b >>> 5]!;
      if (w === 0 && (b & 31) === 0) {
        b += 32;
        continue;
      }
      if (!getBit(src.alloc, b)) {
        b++;
        continue;
      }
      let n = 1;
      while (b + n < blocks && getBit(src.alloc, b + n) && (n + 1) * bs <= maxIoBytes) n++;
      const buf = Buffer.allocUnsafe(n * bs);
      await child.read(buf, 0, buf.length, b * bs);
      await parent.write(buf, 0, buf.length, b * bs);
      b += n;
    }
    // Then the bits: where the child has a block (data or zero marker), the parent takes its state.
    const words = Math.min(bitsetWords(blocks), dst.alloc.length, src.alloc.length);
    for (let w = 0; w < words; w++) {
      const cover = src.alloc[w]! | src.zero[w]!;
      if (cover === 0) continue;
      dst.alloc[w] = (dst.alloc[w]! & ~cover) | src.alloc[w]!;
      dst.zero[w] = (dst.zero[w]! & ~cover) | src.zero[w]!;
    }
    await parent.syncData();
    await parent.writeBits(dst);
    const insertAt = this.meta.rebuildInsertAt;
    const merged: LayerRef = { ...childRef, id: parent.id };
    await this.host.saveMeta({
      ...this.meta,
      layers: [...this.meta.layers.slice(0, idx), merged, ...this.meta.layers.slice(idx + 2)],
      rebuildInsertAt: insertAt !== null && idx < insertAt ? insertAt - 1 : insertAt,
    });
    this.meta = this.host.metaOf(this.volume);
    this.layers.splice(idx + 1, 1);
    this.layerAlloc.splice(idx + 1, 1);
    this.layerAlloc[idx] = countBits(dst.alloc);
    this.bitsCache.delete(child.id);
    this.cacheBits(parent.id, dst);
    await child.close();
    await this.host.releaseLayers([child.id]);
    await this.computeIndex();
    this.host.logger.info('layer folded by merging its smaller child into it', { volume: this.volume, child: childRef.snapshot.name });
  }

  /** Reads a snapshot's view (the chain up to and including it). */
  async readSnapshotAt(name: string, offset: number, length: number): Promise<Buffer> {
    this.checkOpen();
    checkRange(this, offset, length);
    return this.lock.shared(async () => {
      const idx = this.findListed(name);
      if (idx < 0) throw new CstorError('not_found', `replica ${this.volume} has no snapshot ${name}`);
      const b0 = offset / this.blockSize;
      const n = length / this.blockSize;
      const index = new Uint16Array(n);
      for (let k = 0; k <= idx; k++) {
        const layer = this.layers[k]!;
        const bits = await this.layerBits(layer);
        for (let i = 0; i < n; i++) {
          const b = b0 + i;
          if (b >= layer.blocks) break;
          if (getBit(bits.alloc, b)) index[i] = k + 1;
          else if (getBit(bits.zero, b)) index[i] = 0;
        }
      }
      const out = Buffer.alloc(length);
      const reads: Promise<void>[] = [];
      for (let i = 0; i < n; i++) {
        const ord = index[i]!;
        if (ord > 0) reads.push(this.layers[ord - 1]!.read(out, i * this.blockSize, this.blockSize, (b0 + i) * this.blockSize));
      }
      await Promise.all(reads);
      return out;
    });
  }

  // ---- rebuild, source side ----

  async readLayer(name: string, cursor: number, maxBytes: number): Promise<RunPage> {
    this.checkOpen();
    checkSnapshotName(name);
    return this.lock.shared(async () => {
      const idx = this.findListed(name);
      if (idx < 0) throw new CstorError('not_found', `replica ${this.volume} has no snapshot ${name}`);
      // The snapshot's own layer plus any unlisted (hidden) layers between it and the previous
      // listed snapshot, so the listed snapshots alone compose the chain.
      const sources: Source[] = [];
      for (let k = idx; k >= 0; k--) {
        const ref = this.meta.layers[k]!;
        if (ref.base || (k < idx && isListed(ref))) break;
        sources.push({ layer: this.layers[k]!, bits: await this.layerBits(this.layers[k]!) });
      }
      return pageRuns({ sources, cursor, maxBytes, blocks: this.blocks, blockSize: this.blockSize });
    });
  }

  async readHeadSince(sinceIoSeq: number, cursor: number, maxBytes: number): Promise<RunPage> {
    this.checkOpen();
    checkSeq(sinceIoSeq);
    return this.lock.shared(async () => {
      const sources: Source[] = [{ layer: this.head, bits: this.headBits, seq: (b) => this.seqOf(b) }];
      for (let k = this.layers.length - 1; k >= 0; k--) {
        const ref = this.meta.layers[k]!;
        if (ref.base || isListed(ref)) break;
        const seq = Math.max(0, ref.snapshot.ioSeq - 1);
        sources.push({ layer: this.layers[k]!, bits: await this.layerBits(this.layers[k]!), seq: () => seq });
      }
      return pageRuns({ sources, cursor, maxBytes, blocks: this.blocks, blockSize: this.blockSize, accept: (seq) => seq > sinceIoSeq });
    });
  }

  // ---- rebuild, destination side ----

  async rebuildStart(keepThrough: string | null): Promise<void> {
    if (keepThrough !== null) checkSnapshotName(keepThrough);
    await this.structural(async () => {
      let keep: number;
      let ckpt = 0;
      if (keepThrough !== null) {
        keep = this.findListed(keepThrough);
        if (keep < 0) throw new CstorError('not_found', `replica ${this.volume} has no snapshot ${keepThrough}`);
        ckpt = Math.max(0, this.meta.layers[keep]!.snapshot.ioSeq - 1);
        keep++;
      } else {
        keep = 0;
        while (keep < this.meta.layers.length && this.meta.layers[keep]!.base) keep++;
      }
      const newHead = await LayerFile.create({ dir: this.host.layersDir, blockSize: this.blockSize, blocks: this.blocks, checkpoint: ckpt });
      try {
        await fsyncDir(this.host.layersDir);
        await this.host.saveMeta({
          ...this.meta,
          mode: 'Rebuilding',
          layers: this.meta.layers.slice(0, keep),
          head: newHead.id,
          checkpointedIoSeq: ckpt,
          rebuildInsertAt: keep,
        });
      } catch (err) {
        await newHead.remove();
        throw err;
      }
      this.meta = this.host.metaOf(this.volume);
      const dropped = [...this.layers.slice(keep), this.head];
      this.layers = this.layers.slice(0, keep);
      this.layerAlloc = this.layerAlloc.slice(0, keep);
      this.startHead(newHead);
      this.touchedPages = new Set();
      this.ckpt = ckpt;
      this.maxSeq = ckpt;
      // (`inflight` is left as it is: no write is in the store under the exclusive lock, so it
      // holds only io_seqs the server holds for writes queued behind this step; see holdSeq.)
      await this.discardImports();
      for (const l of dropped) {
        this.bitsCache.delete(l.id);
        await l.close();
      }
      await this.host.releaseLayers(dropped.map((l) => l.id));
      await this.computeIndex();
      this.host.logger.info('rebuild started', { volume: this.volume, keepThrough });
    });
  }

  private async discardImports(): Promise<void> {
    for (const imp of this.imports.values()) await imp.layer.remove();
    this.imports.clear();
  }

  async importLayerBegin(name: string, ioSeq: number): Promise<void> {
    checkSnapshotName(name);
    checkSeq(ioSeq);
    await this.structural(async () => {
      if (this.meta.mode !== 'Rebuilding') throw new CstorError('conflict', `replica ${this.volume} is ${this.meta.mode}, not Rebuilding`);
      if (this.findListed(name) >= 0) throw new CstorError('already_exists', `replica ${this.volume} already has snapshot ${name}`);
      const old = this.imports.get(name);
      if (old) {
        this.imports.delete(name);
        await old.layer.remove();
      }
      const layer = await LayerFile.create({ dir: this.host.layersDir, blockSize: this.blockSize, blocks: this.blocks });
      this.imports.set(name, { layer, bits: { alloc: new Uint32Array(layer.words), zero: new Uint32Array(layer.words) }, ioSeq });
    });
  }

  async importLayerWrite(name: string, offset: number, data: Buffer): Promise<void> {
    this.checkOpen();
    checkSnapshotName(name);
    checkRange(this, offset, data.length);
    await this.lock.shared(async () => {
      const imp = this.imports.get(name);
      if (!imp) throw new CstorError('not_found', `replica ${this.volume}: no import of ${name} in progress`);
      const bs = this.blockSize;
      const b0 = offset / bs;
      const n = data.length / bs;
      const zeroBlock = Buffer.alloc(bs);
      let i = 0;
      while (i < n) {
        const isZero = data.subarray(i * bs, (i + 1) * bs).equals(zeroBlock);
        let j = i + 1;
        while (j < n && data.subarray(j * bs, (j + 1) * bs).equals(zeroBlock) === isZero) j++;
        if (!isZero) await imp.layer.write(data, i * bs, (j - i) * bs, (b0 + i) * bs);
        for (let b = b0 + i; b < b0 + j; b++) {
          if (isZero) {
            clearBit(imp.bits.alloc, b);
            setBit(imp.bits.zero, b);
          } else {
            setBit(imp.bits.alloc, b);
            clearBit(imp.bits.zero, b);
          }
        }
        i = j;
      }
    });
  }

  async importLayerEnd(name: string): Promise<void> {
    checkSnapshotName(name);
    await this.structural(async () => {
      const imp = this.imports.get(name);
      if (!imp) throw new CstorError('not_found', `replica ${this.volume}: no import of ${name} in progress`);
      if (this.findListed(name) >= 0) throw new CstorError('already_exists', `replica ${this.volume} already has snapshot ${name}`);
      await imp.layer.syncData();
      await imp.layer.writeBits(imp.bits);
      await fsyncDir(this.host.layersDir);
      const at = Math.min(this.meta.rebuildInsertAt ?? this.meta.layers.length, this.meta.layers.length);
      const ref: LayerRef = { id: imp.layer.id, snapshot: { name, ioSeq: imp.ioSeq, createdAt: Date.now() } };
      await this.host.saveMeta({
        ...this.meta,
        layers: [...this.meta.layers.slice(0, at), ref, ...this.meta.layers.slice(at)],
        rebuildInsertAt: at + 1,
      });
      this.meta = this.host.metaOf(this.volume);
      this.imports.delete(name);
      this.layers.splice(at, 0, imp.layer);
      this.layerAlloc.splice(at, 0, countBits(imp.bits.alloc));
      this.cacheBits(imp.layer.id, imp.bits);
      await this.computeIndex();
    });
  }

  async writeIfNewer(offset: number, data: Buffer, ioSeq: number): Promise<void> {
    this.checkOpen();
    checkRange(this, offset, data.length);
    checkSeq(ioSeq);
    await this.lock.exclusive(async () => {
      this.checkOpen();
      const bs = this.blockSize;
      const b0 = offset / bs;
      const n = data.length / bs;
      let i = 0;
      while (i < n) {
        if (this.seqOf(b0 + i) >= ioSeq) {
          i++;
          continue;
        }
        let j = i + 1;
        while (j < n && this.seqOf(b0 + j) < ioSeq) j++;
        await this.head.write(data, i * bs, (j - i) * bs, (b0 + i) * bs);
        this.dataDirty = true;
        this.markHead(b0 + i, j - i, 'data', ioSeq);
        i = j;
      }
      if (ioSeq > this.maxSeq) this.maxSeq = ioSeq;
    });
  }

  async rebuildDone(): Promise<void> {
    await this.structural(async () => {
      if (this.meta.mode === 'Healthy') return;
      if (this.meta.mode !== 'Rebuilding') throw new CstorError('conflict', `replica ${this.volume} is ${this.meta.mode}, not Rebuilding`);
      await this.discardImports();
      await this.syncInner();
      await this.host.saveMeta({ ...this.meta, mode: 'Healthy', rebuildInsertAt: null, checkpointedIoSeq: this.ckpt });
      this.meta = this.host.metaOf(this.volume);
      this.host.logger.info('rebuild done', { volume: this.volume });
    });
  }

  async markHealthy(): Promise<void> {
    await this.structural(async () => {
      if (this.meta.mode === 'Healthy') return;
      if (this.meta.mode !== 'New') throw new CstorError('conflict', `replica ${this.volume} is ${this.meta.mode}; only a New replica can be marked Healthy`);
      await this.host.saveMeta({ ...this.meta, mode: 'Healthy' });
      this.meta = this.host.metaOf(this.volume);
    });
  }

  // ---- info ----

  /** Allocated bytes per layer id (chain and head), from memory. */
  usage(): Map<string, number> {
    const m = new Map<string, number>();
    this.layers.forEach((l, k) => m.set(l.id, (this.layerAlloc[k] ?? 0) * this.blockSize));
    m.set(this.head.id, this.headAlloc * this.blockSize);
    return m;
  }

  stats(): ReplicaStats {
    let used = this.headAlloc * this.blockSize;
    this.meta.layers.forEach((l, k) => {
      if (this.host.refCount(l.id) === 1) used += (this.layerAlloc[k] ?? 0) * this.blockSize;
    });
    return { ...this.counters, usedBytes: used, snapshots: this.snapshots().length };
  }

  info(): Promise<ReplicaInfo> {
    this.checkOpen();
    return this.host.info(this);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.host.release(this);
  }

  /** Unloads: syncs (unless deleted), closes every file. Called by the pool. */
  async unload(sync: boolean): Promise<void> {
    await this.lock.exclusive(async () => {
      if (this.closed) return;
      try {
        if (sync && !this.failed) {
          await this.syncInner();
          // A clean close leaves a current chain file (seal records are then only history).
          if (this.host.sealsPending(this.volume) > 0) await this.host.saveMeta(this.meta);
        }
      } finally {
        this.closed = true;
        await this.dropSpareHead();
        await this.discardImports();
        for (const l of this.layers) await l.close();
        await this.head.close();
        this.bitsCache.clear();
      }
    });
  }
}
