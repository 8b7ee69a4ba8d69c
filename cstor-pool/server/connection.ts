// One replica-protocol connection on the pool side. OPEN binds it to one volume; every later
// request goes to that volume's Replica through its IoOrdering (arrival order per overlapping
// range), many at once; replies go back as they complete (reads may overtake one another).
// Garbage never crashes the daemon: a bad header closes the connection (after an error reply when
// the frame's seq is known, e.g. an oversized length); a bad payload or an unknown opcode gets an
// error reply and the connection carries on.
// Data path: the socket reads into the decoder's own buffers (`onread`: small frames are views of a
// slab, large payloads are read in place, see DirectFrameDecoder) and replies go out through a
// FrameWriter (one write batch per event-loop turn). Nothing on the per-request path logs, and
// metrics are plain counters (metrics.ts).
import type net from 'node:net';
import { CstorError, isCstorError, toCstorError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { dns1123SubdomainProblems } from '../../lib/names.ts';
import type { MessageBody } from '../../lib/replica-protocol/codec.ts';
import { DirectFrameDecoder } from '../../lib/replica-protocol/direct-frame-decoder.ts';
import { FrameDecoder } from '../../lib/replica-protocol/frame-decoder.ts';
import { FrameWriter } from '../../lib/replica-protocol/frame-writer.ts';
import { frameFlags, isReply, type Frame, type FrameHeader } from '../../lib/replica-protocol/header.ts';
import { opcodeName, type OpcodeName } from '../../lib/replica-protocol/opcodes.ts';
import { encodeErrorReply } from '../../lib/replica-protocol/messages/error-reply.ts';
import { decodeImportLayerBeginRequest, encodeImportLayerBeginReply } from '../../lib/replica-protocol/messages/import-layer-begin.ts';
import { decodeImportLayerEndRequest, encodeImportLayerEndReply } from '../../lib/replica-protocol/messages/import-layer-end.ts';
import { decodeImportLayerWriteRequest, encodeImportLayerWriteReply } from '../../lib/replica-protocol/messages/import-layer-write.ts';
import { decodeMarkHealthyRequest, encodeMarkHealthyReply } from '../../lib/replica-protocol/messages/mark-healthy.ts';
import { decodeOpenRequest, encodeOpenReply } from '../../lib/replica-protocol/messages/open.ts';
import { decodeReadHeadSinceRequest, encodeReadHeadSinceReply } from '../../lib/replica-protocol/messages/read-head-since.ts';
import { decodeReadLayerRequest, encodeReadLayerReply } from '../../lib/replica-protocol/messages/read-layer.ts';
import { decodeReadRequest, encodeReadReply } from '../../lib/replica-protocol/messages/read.ts';
import { decodeRebuildDoneRequest, encodeRebuildDoneReply } from '../../lib/replica-protocol/messages/rebuild-done.ts';
import { decodeRebuildStartRequest, encodeRebuildStartReply } from '../../lib/replica-protocol/messages/rebuild-start.ts';
import { decodeStatusRequest, encodeStatusReply } from '../../lib/replica-protocol/messages/replica-status.ts';
import { decodeSnapshotCreateRequest, encodeSnapshotCreateReply } from '../../lib/replica-protocol/messages/snapshot-create.ts';
import { decodeSnapshotDestroyRequest, encodeSnapshotDestroyReply } from '../../lib/replica-protocol/messages/snapshot-destroy.ts';
import { decodeSnapshotListRequest, encodeSnapshotListReply } from '../../lib/replica-protocol/messages/snapshot-list.ts';
import { decodeStatsRequest, encodeStatsReply } from '../../lib/replica-protocol/messages/stats.ts';
import { decodeSyncRequest, encodeSyncReply } from '../../lib/replica-protocol/messages/sync.ts';
import { decodeUnmapRequest, encodeUnmapReply } from '../../lib/replica-protocol/messages/unmap.ts';
import { decodeWriteIfNewerRequest, encodeWriteIfNewerReply } from '../../lib/replica-protocol/messages/write-if-newer.ts';
import { decodeWriteRequest, encodeWriteReply } from '../../lib/replica-protocol/messages/write.ts';
import type { ReplicaStatus } from '../../lib/replica-protocol/types.ts';
import type { Pool } from '../store/types.ts';
import type { PoolMetrics } from './metrics.ts';
import type { PayloadPool } from './payload-pool.ts';
import type { VolumeHandle } from './volume-handle.ts';
import { startKeepalive } from './keepalive.ts';
import { encodeKeepalive, keepaliveOpcode } from '../../lib/replica-protocol/messages/keepalive.ts';
import { adoptWithReadBuffers } from '../../lib/adopt-socket.ts';

/** A rebuild page carries at most this much data (keeps its reply under the frame limit). */
export const maxPageBytes = 8 * 1024 * 1024;

export interface ConnectionContext {
  pool: Pool;
  logger: Logger;
  metrics: PoolMetrics;
  /** The shared handle of a volume (opened once per pool, shared by connections). */
  handleFor(volume: string): Promise<VolumeHandle>;
  /** Requests in flight past which the connection stops reading until some finish. */
  maxInFlight: number;
  /** Request payload bytes in flight past which the connection stops reading until some finish. */
  maxInFlightBytes: number;
  /** Reply bytes queued past which the connection stops reading until the socket drains. */
  maxQueuedReplyBytes: number;
  /** Reuses large WRITE payload buffers (shared by the server's connections); absent: allocate each. */
  payloads?: PayloadPool;
  /** false: read with 'data' events and FrameDecoder (the fallback path; for tests). Default true. */
  directReads?: boolean;
  /**
   * Closes every other connection serving `volume` (REBUILD_START: see `serve`); returns how many.
   * Absent: nothing is fenced.
   */
  fenceVolume?(volume: string, keep: ReplicaConnection): number;
}

/**
 * A reply body whose payload is a pooled Buffer (a READ's data): given back to the pool once the
 * FrameWriter says neither it nor the socket holds it (see `reply`).
 */
interface ServedBody extends MessageBody {
  pooled?: Buffer;
}

/** Payloads above this are read in place into their own Buffer (DirectFrameDecoder), pooled for WRITE. */
const directThreshold = 64 * 1024;

const readOps: ReadonlySet<OpcodeName> = new Set(['read', 'readLayer', 'readHeadSince']);
const writeOps: ReadonlySet<OpcodeName> = new Set(['write', 'unmap', 'writeIfNewer', 'importLayerWrite']);

type Kind = 'read' | 'write' | null;
/** Per opcode byte: its name (undefined: unknown) and whether it counts as a read or a write. */
const opByCode: readonly { name: OpcodeName | undefined; kind: Kind }[] = Array.from({ length: 256 }, (_, code) => {
  const name = opcodeName(code);
  return { name, kind: name && readOps.has(name) ? 'read' : name && writeOps.has(name) ? 'write' : null };
});

export class ReplicaConnection {
  readonly remote: string;
  private readonly socket: net.Socket;
  private readonly openedAt = Date.now();
  private readonly out: FrameWriter;
  /** Frames decoded while reading was paused: dispatched, in order, before reading resumes. */
  private readonly backlog: Frame[] = [];
  /** Set when payloads come from ctx.payloads (the direct read path): WRITE gives them back. */
  private readonly payloads: PayloadPool | null;
  private handle: VolumeHandle | null = null;
  private opening: Promise<void> | null = null;
  private inflight = 0;
  private inflightBytes = 0;
  inflightRead = 0;
  inflightWrite = 0;
  private paused = false;
  private closing = false;
  private log: Logger;

  /** `accepted` comes from a server created with pauseOnConnect (it has not read yet). */
  constructor(
    accepted: net.Socket,
    private readonly ctx: ConnectionContext,
  ) {
    this.remote = accepted.remoteAddress !== undefined ? `${accepted.remoteAddress}:${accepted.remotePort ?? '?'}` : 'unix';
    this.log = ctx.logger.child({ remote: this.remote });
    const pool = ctx.payloads;
    const decoder = new DirectFrameDecoder({ directThreshold, ...(pool ? { allocPayload: (h: FrameHeader) => pool.take(h.length) } : {}) });
    const onread = {
      buffer: () => decoder.nextBuffer(),
      callback: (n: number) => {
        this.onRead(decoder, n);
        return true;
      },
    };
    const adopted = ctx.directReads === false ? null : adoptWithReadBuffers(accepted, onread);
    let socket: net.Socket;
    if (adopted !== null) {
      socket = adopted;
      this.payloads = pool ?? null;
    } else {
      this.payloads = null;
      // Fallback: chunks from 'data', framed by FrameDecoder.
      socket = accepted;
      const chunked = new FrameDecoder();
      socket.on('data', (chunk: Buffer) => this.onChunk(chunked, chunk));
      socket.resume();
    }
    this.socket = socket;
    this.out = new FrameWriter(socket);
    if (socket.remoteAddress !== undefined) socket.setNoDelay(true);
    socket.on('drain', () => this.maybeResume());
    socket.on('error', (err) => this.log.debug('replica connection error', { error: err.message }));
    // Once the peer is gone, frames decoded but not dispatched (the backlog of a paused
    // connection) are dropped: run later, a write would land after whatever the target did since
    // (a new connection's writes, a rebuild) and overwrite newer data with older.
    socket.on('close', () => {
      this.closing = true;
      this.backlog.length = 0;
    });
    // Liveness for the target's timeout rule (keepalive.ts): a frame a second while busy.
    socket.on('close', startKeepalive({ busy: () => this.inflight > 0, send: () => this.reply(keepaliveOpcode, 0, encodeKeepalive(), 0) }));
  }

  /** The volume this connection serves, once OPEN succeeded. */
  get volume(): string | null {
    return this.handle?.replica.volume ?? null;
  }

  /** Closes the connection now; requests in flight finish but their replies are dropped (the backlog is not run). */
  destroy(): void {
    this.closing = true;
    this.backlog.length = 0;
    this.socket.destroy();
  }

  /** The socket closed (the adopted one, which is not the one the server accepted). */
  onClose(listener: () => void): void {
    this.socket.on('close', listener);
  }

  private onRead(decoder: DirectFrameDecoder, n: number): void {
    if (this.closing) return;
    let frames: Frame[];
    try {
      frames = decoder.commit(n);
    } catch (err) {
      this.refuseStream(toCstorError(err, 'protocol'));
      return;
    }
    this.accept(frames);
  }

  private onChunk(decoder: FrameDecoder, chunk: Buffer): void {
    if (this.closing) return;
    let frames: Frame[];
    try {
      frames = decoder.push(chunk);
    } catch (err) {
      this.refuseStream(toCstorError(err, 'protocol'));
      return;
    }
    this.accept(frames);
  }

  /** Dispatches frames in order; once reading pauses, the rest wait in the backlog. */
  private accept(frames: Frame[]): void {
    for (let i = 0; i < frames.length; i++) {
      if (this.paused) this.backlog.push(frames[i]!);
      else this.dispatch(frames[i]!);
    }
  }

  /** A broken stream: answer when the frame's seq is known (oversized length), then close. */
  private refuseStream(err: CstorError): void {
    this.ctx.metrics.protocolError(err.code === 'too_large' ? 'too_large' : 'bad_header');
    this.log.warn('closing replica connection: bad frame', { error: err.message, volume: this.volume ?? undefined });
    this.closing = true;
    const seq = err.details.seq;
    const opcode = err.details.opcode;
    if (typeof seq === 'number' && typeof opcode === 'number') {
      const body = encodeErrorReply(err);
      this.out.send({ opcode, seq, flags: frameFlags.reply, status: body.status, ioSeq: 0, offset: 0, length: 0 }, body.payload);
      this.out.flush();
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 2000).unref();
    } else {
      this.socket.destroy();
    }
  }

  private dispatch(frame: Frame): void {
    const h = frame.header;
    const { name, kind } = opByCode[h.opcode]!;
    const bytes = frame.payload.length;
    this.inflight++;
    this.inflightBytes += bytes;
    if (this.inflight >= this.ctx.maxInFlight || this.inflightBytes >= this.ctx.maxInFlightBytes) this.pause();
    if (kind === 'read') this.inflightRead++;
    if (kind === 'write') this.inflightWrite++;
    const done = this.ctx.metrics.start(name ?? 'unknown');
    // A WRITE's large payload goes back to the pool once the store's write has settled.
    const reusable = this.payloads !== null && name === 'write' && bytes > directThreshold ? frame.payload : null;
    let result: Promise<ServedBody>;
    try {
      if (name === undefined) throw new CstorError('invalid', `unknown opcode ${h.opcode}`);
      if (isReply(h)) throw new CstorError('protocol', `${name}: got a reply frame where a request was due`);
      result = this.route(name, frame);
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      (body) => {
        done(true);
        if (reusable !== null) this.payloads!.give(reusable);
        this.finish(kind, bytes);
        this.reply(h.opcode, h.seq, body, 0, body.pooled);
      },
      (err: unknown) => {
        done(false);
        if (reusable !== null) this.payloads!.give(reusable);
        this.finish(kind, bytes);
        const e = isCstorError(err) ? err : toCstorError(err, hasErrno(err) ? 'io' : 'internal', name ?? `opcode ${h.opcode}`);
        if (name === undefined || e.code === 'protocol') this.ctx.metrics.protocolError(name === undefined ? 'unknown_opcode' : 'bad_payload');
        if (e.code === 'internal' || e.code === 'io') {
          this.log.error('replica request failed', { volume: this.volume ?? undefined, op: name ?? h.opcode, error: e.message });
        }
        const body = encodeErrorReply(e);
        this.reply(h.opcode, h.seq, body, body.status);
      },
    );
  }

  private finish(kind: Kind, bytes: number): void {
    this.inflight--;
    this.inflightBytes -= bytes;
    if (kind === 'read') this.inflightRead--;
    if (kind === 'write') this.inflightWrite--;
    this.maybeResume();
  }

  /** Routes a request; requests pipelined behind OPEN wait for it, in arrival order. */
  private route(name: OpcodeName, frame: Frame): Promise<ServedBody> {
    if (name === 'open') return this.open(frame);
    if (this.handle === null) {
      if (this.opening === null) return Promise.reject(new CstorError('invalid', `${name}: send OPEN first; this connection serves no volume yet`));
      return this.opening.then(() => this.serve(name, frame));
    }
    return this.serve(name, frame);
  }

  private open(frame: Frame): Promise<MessageBody> {
    const req = decodeOpenRequest(frame);
    if (this.opening !== null) return Promise.reject(new CstorError('conflict', `OPEN: this connection already serves a volume; open another connection for ${req.volume}`));
    const problems = dns1123SubdomainProblems(req.volume);
    if (problems.length > 0) {
      const shown = JSON.stringify(req.volume.length > 80 ? `${req.volume.slice(0, 80)}...` : req.volume);
      return Promise.reject(new CstorError('invalid', `OPEN: volume name ${shown} is invalid: ${problems.join('; ')}`));
    }
    let status!: ReplicaStatus;
    this.opening = (async () => {
      const info = await this.ctx.pool.getReplica(req.volume);
      if (info === null) throw new CstorError('not_found', `OPEN: volume ${req.volume} has no replica in pool ${this.ctx.pool.name}`);
      if (info.size !== req.size) throw new CstorError('invalid', `OPEN: volume ${req.volume} is ${info.size} bytes in pool ${this.ctx.pool.name}, not ${req.size}`);
      if (info.blockSize !== req.blockSize) {
        throw new CstorError('invalid', `OPEN: volume ${req.volume} has block size ${info.blockSize} in pool ${this.ctx.pool.name}, not ${req.blockSize}`);
      }
      const handle = await this.ctx.handleFor(req.volume);
      if (this.closing) throw new CstorError('aborted', 'OPEN: connection closed');
      this.handle = handle;
      this.log = this.log.child({ volume: req.volume });
      status = this.status();
      this.log.info('replica opened', { targetId: req.targetId, replicationFactor: req.replicationFactor, mode: status.mode });
    })();
    const opening = this.opening;
    // A failed OPEN leaves the connection unbound: a later OPEN may retry, pipelined requests fail.
    opening.catch(() => {
      if (this.opening === opening) this.opening = null;
    });
    return opening.then(() => encodeOpenReply(status));
  }

  private status(): ReplicaStatus {
    const r = this.handle!.replica;
    return {
      volume: r.volume,
      mode: r.mode,
      checkpointedIoSeq: r.checkpointedIoSeq,
      size: r.size,
      blockSize: r.blockSize,
      inflightRead: this.inflightRead,
      inflightWrite: this.inflightWrite,
      upTime: Math.floor((Date.now() - this.openedAt) / 1000),
    };
  }

  private serve(name: OpcodeName, frame: Frame): Promise<ServedBody> {
    const h = this.handle;
    if (h === null) return Promise.reject(new CstorError('invalid', `${name}: send OPEN first; this connection serves no volume yet`));
    const r = h.replica;
    const o = h.ordering;
    const m = this.ctx.metrics;
    switch (name) {
      case 'open':
        return this.open(frame);
      case 'read': {
        const req = decodeReadRequest(frame);
        return o.run('read', req.offset, req.length, () => this.read(r, req.offset, req.length));
      }
      case 'write': {
        const req = decodeWriteRequest(frame);
        return o.run('write', req.offset, req.data.length, async () => {
          await r.write(req.offset, req.data, req.ioSeq);
          m.writeBytes(req.data.length);
          return encodeWriteReply();
        }, req.ioSeq);
      }
      case 'unmap': {
        const req = decodeUnmapRequest(frame);
        return o.run('write', req.offset, req.length, async () => {
          await r.unmapSeq(req.offset, req.length, req.ioSeq);
          return encodeUnmapReply();
        }, req.ioSeq);
      }
      case 'sync':
        decodeSyncRequest(frame);
        return o.run('flush', 0, 0, async () => {
          await r.sync();
          return encodeSyncReply(r.checkpointedIoSeq);
        });
      case 'status':
        decodeStatusRequest(frame);
        return Promise.resolve(encodeStatusReply(this.status()));
      case 'stats':
        decodeStatsRequest(frame);
        return Promise.resolve(encodeStatsReply(r.stats()));
      case 'snapshotCreate': {
        const req = decodeSnapshotCreateRequest(frame);
        const name = checkedName(req.name, 'SNAPSHOT_CREATE');
        return h.snapshotCreate(name, req.ioSeq).then(() => {
          this.log.info('snapshot created', { snapshot: req.name, ioSeq: req.ioSeq });
          return encodeSnapshotCreateReply();
        });
      }
      case 'snapshotDestroy': {
        const req = decodeSnapshotDestroyRequest(frame);
        return o.run('barrier', 0, 0, async () => {
          await r.snapshotDestroy(checkedName(req.name, 'SNAPSHOT_DESTROY'));
          this.log.info('snapshot destroyed', { snapshot: req.name });
          return encodeSnapshotDestroyReply();
        });
      }
      case 'snapshotList':
        decodeSnapshotListRequest(frame);
        return Promise.resolve(encodeSnapshotListReply(r.snapshots()));
      case 'readLayer': {
        const req = decodeReadLayerRequest(frame);
        const maxBytes = Math.min(Math.max(req.maxBytes, r.blockSize), maxPageBytes);
        // A sealed layer does not change under writes: order it against barriers only.
        return o.run('read', 0, 0, async () => {
          const page = await r.readLayer(checkedName(req.name, 'READ_LAYER'), req.cursor, maxBytes);
          m.readBytes(pageBytes(page.runs));
          return encodeReadLayerReply(page);
        });
      }
      case 'readHeadSince': {
        const req = decodeReadHeadSinceRequest(frame);
        const maxBytes = Math.min(Math.max(req.maxBytes, r.blockSize), maxPageBytes);
        return o.run('read', 0, r.size, async () => {
          const page = await r.readHeadSince(req.sinceIoSeq, req.cursor, maxBytes);
          m.readBytes(pageBytes(page.runs));
          return encodeReadHeadSinceReply(page);
        });
      }
      case 'rebuildStart': {
        const req = decodeRebuildStartRequest(frame);
        // The target starts this replica over: any other connection to it is one the target gave
        // up on. Requests it has not dispatched yet (a paused connection's backlog, which is not
        // dropped before the close is seen) would land after this barrier, in the new head, with
        // old data; so those connections are closed now, backlog and all. (Requests already in
        // the ordering run before the barrier, and the new head leaves them behind.)
        const fenced = this.ctx.fenceVolume?.(r.volume, this) ?? 0;
        if (fenced > 0) this.log.warn('rebuild start: closed other connections to the volume', { connections: fenced });
        return o.run('barrier', 0, 0, async () => {
          await r.rebuildStart(req.keepThrough === null ? null : checkedName(req.keepThrough, 'REBUILD_START'));
          this.log.info('rebuild started', { keepThrough: req.keepThrough });
          return encodeRebuildStartReply();
        });
      }
      case 'importLayerBegin': {
        const req = decodeImportLayerBeginRequest(frame);
        return o.run('barrier', 0, 0, async () => {
          await r.importLayerBegin(checkedName(req.name, 'IMPORT_LAYER_BEGIN'), req.ioSeq);
          return encodeImportLayerBeginReply();
        });
      }
      case 'importLayerWrite': {
        const req = decodeImportLayerWriteRequest(frame);
        return o.run('write', req.offset, req.data.length, async () => {
          await r.importLayerWrite(checkedName(req.name, 'IMPORT_LAYER_WRITE'), req.offset, req.data);
          m.writeBytes(req.data.length);
          return encodeImportLayerWriteReply();
        });
      }
      case 'importLayerEnd': {
        const req = decodeImportLayerEndRequest(frame);
        return o.run('barrier', 0, 0, async () => {
          await r.importLayerEnd(checkedName(req.name, 'IMPORT_LAYER_END'));
          this.log.info('snapshot layer imported', { snapshot: req.name });
          return encodeImportLayerEndReply();
        });
      }
      case 'writeIfNewer': {
        const req = decodeWriteIfNewerRequest(frame);
        return o.run('write', req.offset, req.data.length, async () => {
          await r.writeIfNewer(req.offset, req.data, req.ioSeq);
          m.writeBytes(req.data.length);
          return encodeWriteIfNewerReply();
        }, req.ioSeq);
      }
      case 'rebuildDone':
        decodeRebuildDoneRequest(frame);
        return o.run('barrier', 0, 0, async () => {
          await r.rebuildDone();
          this.log.info('rebuild done: replica Healthy');
          return encodeRebuildDoneReply();
        });
      case 'markHealthy':
        decodeMarkHealthyRequest(frame);
        return o.run('barrier', 0, 0, async () => {
          await r.markHealthy();
          this.log.info('replica marked Healthy');
          return encodeMarkHealthyReply();
        });
    }
  }

  /**
   * READ: the store reads straight into a Buffer from the pool (4 KiB and 1 MiB alike), which goes
   * back to the pool once the reply no longer needs it (`reply`), or at once if the read fails (the
   * store settles only when no pread is left writing into it).
   */
  private read(r: VolumeHandle['replica'], offset: number, length: number): Promise<ServedBody> {
    const pool = this.ctx.payloads;
    if (pool === undefined) {
      const buf = Buffer.allocUnsafe(length);
      return r.readInto(offset, buf).then(() => {
        this.ctx.metrics.readBytes(length);
        return encodeReadReply(buf);
      });
    }
    // Pooled by size class (powers of two from 4 KiB), so reads of assorted lengths share a few
    // lists instead of filling the pool with one-off sizes; the payload is a view of its length.
    const whole = pool.take(readSizeClass(length));
    const buf = length === whole.length ? whole : whole.subarray(0, length);
    return r.readInto(offset, buf).then(
      () => {
        this.ctx.metrics.readBytes(length);
        return { payload: [buf], pooled: whole };
      },
      (err: unknown) => {
        pool.give(whole);
        throw err;
      },
    );
  }

  /** Sends a reply; `pooled` (the payload's Buffer) goes back to the pool once it is sent or dropped. */
  private reply(opcode: number, seq: number, body: MessageBody, status: number, pooled?: Buffer): void {
    const pool = this.ctx.payloads;
    if (this.socket.destroyed || this.socket.writableEnded) {
      if (pooled !== undefined) pool?.give(pooled);
      return;
    }
    const h = { opcode, seq, flags: frameFlags.reply, status, ioSeq: body.ioSeq ?? 0, offset: body.offset ?? 0, length: 0 };
    try {
      this.out.send(h, body.payload, pooled !== undefined && pool !== undefined ? () => pool.give(pooled) : undefined);
    } catch (err) {
      const e = toCstorError(err, 'internal', 'encoding a reply');
      this.log.error('cannot encode a reply', { error: e.message });
      const eb = encodeErrorReply(e);
      this.out.send({ ...h, status: eb.status }, eb.payload);
    }
    if (this.socket.writableLength > this.ctx.maxQueuedReplyBytes) this.pause();
  }

  private pause(): void {
    if (!this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  private maybeResume(): void {
    if (
      this.paused &&
      !this.closing &&
      this.inflight < this.ctx.maxInFlight &&
      this.inflightBytes < this.ctx.maxInFlightBytes &&
      this.socket.writableLength <= this.ctx.maxQueuedReplyBytes
    ) {
      this.paused = false;
      // Frames already decoded go first; reading resumes only once they are all dispatched.
      while (!this.paused && this.backlog.length > 0) this.dispatch(this.backlog.shift()!);
      if (!this.paused) this.socket.resume();
    }
  }
}

/**
 * Snapshot names are ids like `<pv>_<snapshot>_<unixNanos>` (DESIGN.md §3), so they allow `_` and
 * capitals; the store validates them again, this refuses path tricks at the door.
 */
const snapshotNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

function checkedName(name: string, what: string): string {
  if (!snapshotNamePattern.test(name)) {
    throw new CstorError('invalid', `${what}: snapshot name ${JSON.stringify(name)} is invalid: use 1-253 of [A-Za-z0-9._-], starting with a letter or digit`);
  }
  return name;
}

/** The pooled Buffer size for a READ of `length` bytes: the next power of two, at least 4 KiB. */
export function readSizeClass(length: number): number {
  return length <= 4096 ? 4096 : 2 ** Math.ceil(Math.log2(length));
}

function pageBytes(runs: readonly { data: Buffer }[]): number {
  let n = 0;
  for (const r of runs) n += r.data.length;
  return n;
}

function hasErrno(err: unknown): boolean {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string';
}

