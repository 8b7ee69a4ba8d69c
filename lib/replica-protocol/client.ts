// The ReplicaClient over TCP: one connection, pipelined (many requests in flight), replies matched
// by sequence number. Longhorn's rule for timeouts (liveness.ts): when the oldest request in flight
// has waited timeoutMs and nothing at all came for timeoutMs (no reply, no pool keepalive), or it
// has waited the hard limit, EVERY request in flight fails and the connection closes (a replica
// that stalls one request cannot be trusted with the others). Requests issued in one turn of the event
// loop go out in one write batch (FrameWriter: small frames packed into one buffer, large payloads
// never copied); replies are read in place (DirectFrameDecoder); TCP_NODELAY is on.
// Addresses: "host:port" (TCP, the wire contract) or "unix:/path/to.sock" (a UNIX domain socket,
// for a pool on the same host: same frames, fewer kernel cycles; see docs/pool-daemon.md).
import net from 'node:net';
import { asError, CstorError, isCstorError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { parseReplicaAddress } from './address.ts';
import type { MessageBody } from './codec.ts';
import { FrameWriter } from './frame-writer.ts';
import { DirectFrameDecoder } from './direct-frame-decoder.ts';
import { isReply, maxIoBytes, type Frame, type FrameHeader } from './header.ts';
import { opcodeName, opcodes, type OpcodeName } from './opcodes.ts';
import { decodeErrorReply } from './messages/error-reply.ts';
import { isKeepalive } from './messages/keepalive.ts';
import { replicaTimeoutVerdict } from './liveness.ts';
import { decodeImportLayerBeginReply, encodeImportLayerBeginRequest } from './messages/import-layer-begin.ts';
import { decodeImportLayerEndReply, encodeImportLayerEndRequest } from './messages/import-layer-end.ts';
import { decodeImportLayerWriteReply, encodeImportLayerWriteRequest } from './messages/import-layer-write.ts';
import { decodeMarkHealthyReply, encodeMarkHealthyRequest } from './messages/mark-healthy.ts';
import { decodeOpenReply, encodeOpenRequest } from './messages/open.ts';
import { decodeReadHeadSinceReply, encodeReadHeadSinceRequest } from './messages/read-head-since.ts';
import { decodeReadLayerReply, encodeReadLayerRequest } from './messages/read-layer.ts';
import { decodeReadReply, encodeReadRequest } from './messages/read.ts';
import { decodeRebuildDoneReply, encodeRebuildDoneRequest } from './messages/rebuild-done.ts';
import { decodeRebuildStartReply, encodeRebuildStartRequest } from './messages/rebuild-start.ts';
import { decodeStatusReply, encodeStatusRequest } from './messages/replica-status.ts';
import { decodeSnapshotCreateReply, encodeSnapshotCreateRequest } from './messages/snapshot-create.ts';
import { decodeSnapshotDestroyReply, encodeSnapshotDestroyRequest } from './messages/snapshot-destroy.ts';
import { decodeSnapshotListReply, encodeSnapshotListRequest } from './messages/snapshot-list.ts';
import { decodeStatsReply, encodeStatsRequest } from './messages/stats.ts';
import { decodeSyncReply, encodeSyncRequest } from './messages/sync.ts';
import { decodeUnmapReply, encodeUnmapRequest } from './messages/unmap.ts';
import { decodeWriteIfNewerReply, encodeWriteIfNewerRequest } from './messages/write-if-newer.ts';
import { decodeWriteReply, encodeWriteRequest } from './messages/write.ts';
import type { OpenRequest, ReplicaClient, ReplicaStats, ReplicaStatus, RunPage, SnapshotInfo } from './types.ts';

export interface ConnectReplicaOptions {
  /** Per-request deadline, and the connect deadline (default 30 s). */
  timeoutMs?: number;
  logger?: Logger;
}

/** One request in flight: settled through a promise (`resolve`/`reject`) or a callback (`cb`). */
class Pending {
  /** readInto: set once a reply header took `into` for its payload (a duplicate reply gets its own Buffer). */
  intoTaken = false;

  constructor(
    readonly opcode: number,
    /** READ via readInto: the caller's Buffer, which the reply's payload is read into. */
    readonly into: Buffer | null,
    /** performance.now() + timeoutMs when sent. */
    readonly deadline: number,
    readonly decode: (frame: Frame) => unknown,
    readonly resolve: ((value: unknown) => void) | null,
    readonly reject: ((err: unknown) => void) | null,
    readonly cb: ((err: Error | null, value: unknown) => void) | null,
  ) {}

  /** A failure: the promise rejects, or the callback runs in a microtask (never inside the caller's stack or the read loop). */
  fail(err: unknown, logger: Logger | undefined): void {
    if (this.cb === null) {
      this.reject!(err);
      return;
    }
    const cb = this.cb;
    const e = asError(err);
    queueMicrotask(() => callSafely(logger, () => cb(e, undefined)));
  }
}

/**
 * The callback form of the block IO requests (the target's hot path: no promise, no microtask hop
 * per request). The callback runs once: on success inside the socket's read callback, right as
 * the reply is decoded; on failure in a microtask. A callback must not throw (what it throws is
 * logged and dropped).
 */
export interface CallbackReplicaClient {
  writeCb(offset: number, data: Buffer, ioSeq: number, cb: (err: Error | null) => void): void;
  readCb(offset: number, length: number, cb: (err: Error | null, data: Buffer | undefined) => void): void;
}

/** Runs a caller's callback; what it throws is logged and dropped (never an uncaught exception). */
function callSafely(logger: Logger | undefined, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    logger?.error('replica reply callback threw', { error: isCstorError(err) ? err.message : String(err) });
  }
}

const writeOpcode = opcodes.write;
const readOpcode = opcodes.read;

/**
 * Connects to a pool's replica port ("host:port", or "unix:PATH" for a pool's UNIX socket on this
 * host); resolves once the connection is up.
 */
export async function connectReplica(address: string, options: ConnectReplicaOptions = {}): Promise<ReplicaClient> {
  const where = parseReplicaAddress(address);
  const timeoutMs = options.timeoutMs ?? 30_000;
  // 0, a negative or NaN timeout would fail every request at once, or never.
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new CstorError('invalid', `replica ${address}: timeoutMs must be a positive number of milliseconds, got ${timeoutMs}`);
  // Replies are read straight into their payload buffers (DirectFrameDecoder), so large reads
  // are not split into 64 KiB chunks and copied back together.
  let intoFor: (h: FrameHeader) => Buffer | null = () => null;
  const decoder = new DirectFrameDecoder({
    allocPayload: (h) => {
      const into = intoFor(h);
      return into !== null && into.length === h.length ? into : Buffer.allocUnsafe(h.length);
    },
  });
  let deliver: (n: number) => void = () => {};
  const onread = { buffer: () => decoder.nextBuffer(), callback: (n: number) => (deliver(n), true) };
  const socket = 'path' in where ? net.connect({ path: where.path, onread }) : net.connect({ host: where.host, port: where.port, noDelay: true, onread });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new CstorError('timeout', `replica ${address}: connect timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve();
    });
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(new CstorError('unavailable', `replica ${address}: cannot connect: ${err.message}`, { cause: err }));
    };
    socket.once('error', onError);
  });
  const client = new TcpReplicaClient(address, socket, decoder, timeoutMs, options.logger);
  deliver = (n) => client.onBytes(n);
  intoFor = (h) => client.replyBuffer(h);
  return client;
}

export class TcpReplicaClient implements ReplicaClient, CallbackReplicaClient {
  private nextSeq = 1;
  private readonly pending = new Map<number, Pending>();
  private closedWith: CstorError | null = null;
  private closeFired = false;
  private readonly closeListeners: ((err?: Error) => void)[] = [];
  private closeError: Error | undefined;
  private readonly out: FrameWriter;
  private readonly sweeper: NodeJS.Timeout;
  /**
   * When the peer last sent anything (bytes of a reply or a keepalive), on the monotonic clock
   * (performance.now(): a wall-clock step must neither fail a live replica nor keep a dead one).
   */
  private lastHeard = performance.now();
  private readonly socketClosed: Promise<void>;
  /** Reused for every hot-path frame (FrameWriter copies it into its slab at once). */
  private readonly scratch: FrameHeader = { opcode: 0, status: 0, flags: 0, seq: 0, ioSeq: 0, offset: 0, length: 0 };

  constructor(
    readonly address: string,
    private readonly socket: net.Socket,
    private readonly decoder: DirectFrameDecoder,
    private readonly timeoutMs: number,
    private readonly logger?: Logger,
  ) {
    socket.setNoDelay(true);
    this.out = new FrameWriter(socket);
    socket.on('error', (err) => {
      this.fail(new CstorError('unavailable', `replica ${address}: connection error: ${err.message}`, { cause: err }));
    });
    this.socketClosed = new Promise((resolve) => {
      socket.on('close', () => {
        this.fail(new CstorError('unavailable', `replica ${address}: connection closed`));
        resolve();
      });
    });
    this.sweeper = setInterval(() => this.checkTimeouts(), Math.max(5, Math.min(1000, Math.floor(timeoutMs / 4))));
    this.sweeper.unref();
  }

  /** True once the connection failed or was closed (every request in flight has been rejected). */
  get closed(): boolean {
    return this.closedWith !== null;
  }

  /** Requests in flight. */
  get inFlight(): number {
    return this.pending.size;
  }

  onClose(listener: (err?: Error) => void): void {
    if (this.closeFired) {
      queueMicrotask(() => listener(this.closeError));
      return;
    }
    this.closeListeners.push(listener);
  }

  async close(): Promise<void> {
    // A readInto in flight: its reply may be arriving straight into the caller's buffer, and the
    // socket has already chosen that buffer for its next read. A graceful end would keep reading
    // into it after the request was rejected (and the caller told the buffer is free): destroy.
    let intoInFlight = false;
    for (const p of this.pending.values()) if (p.into !== null) intoInFlight = true;
    if (this.closedWith === null) {
      this.fail(new CstorError('aborted', `replica ${this.address}: client closed`), null);
      if (intoInFlight) {
        this.socket.destroy();
        await this.socketClosed;
        return;
      }
      this.socket.end();
      const timer = setTimeout(() => this.socket.destroy(), 1000);
      timer.unref();
      await this.socketClosed;
      clearTimeout(timer);
    } else {
      this.socket.destroy();
      await this.socketClosed;
    }
  }

  open(req: OpenRequest): Promise<ReplicaStatus> {
    return this.call('open', () => encodeOpenRequest(req), decodeOpenReply);
  }
  read(offset: number, length: number): Promise<Buffer> {
    return this.call('read', () => encodeReadRequest({ offset, length }), (f) => decodeReadReply(f, length));
  }
  readInto(offset: number, into: Buffer): Promise<void> {
    const length = into.length;
    return this.call(
      'read',
      () => encodeReadRequest({ offset, length }),
      (f) => {
        const data = decodeReadReply(f, length);
        // Small replies (and a payload that was not read in place) are copied.
        if (data.buffer !== into.buffer || data.byteOffset !== into.byteOffset) data.copy(into);
      },
      into,
    );
  }
  writeCb(offset: number, data: Buffer, ioSeq: number, cb: (err: Error | null) => void): void {
    if (this.closedWith !== null || !Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(ioSeq) || ioSeq < 0 || data.length > maxIoBytes) {
      // The rare cases: the promise path has the exact error.
      this.write(offset, data, ioSeq).then(
        () => callSafely(this.logger, () => cb(null)),
        (err: unknown) => callSafely(this.logger, () => cb(asError(err))),
      );
      return;
    }
    this.sendCb(writeOpcode, ioSeq, offset, [data], null, decodeWriteReply, cb as (err: Error | null, value: unknown) => void);
  }
  readCb(offset: number, length: number, cb: (err: Error | null, data: Buffer | undefined) => void): void {
    if (this.closedWith !== null || !Number.isSafeInteger(offset) || offset < 0 || !Number.isInteger(length) || length < 0 || length > maxIoBytes) {
      this.read(offset, length).then(
        (data) => callSafely(this.logger, () => cb(null, data)),
        (err: unknown) => callSafely(this.logger, () => cb(asError(err), undefined)),
      );
      return;
    }
    const req = Buffer.allocUnsafe(4);
    req.writeUInt32LE(length, 0);
    this.sendCb(readOpcode, 0, offset, [req], null, (f) => decodeReadReply(f, length), cb as (err: Error | null, value: unknown) => void);
  }
  write(offset: number, data: Buffer, ioSeq: number): Promise<void> {
    return this.call('write', () => encodeWriteRequest({ offset, data, ioSeq }), decodeWriteReply);
  }
  unmap(offset: number, length: number, ioSeq: number): Promise<void> {
    return this.call('unmap', () => encodeUnmapRequest({ offset, length, ioSeq }), decodeUnmapReply);
  }
  sync(): Promise<number> {
    return this.call('sync', encodeSyncRequest, decodeSyncReply);
  }
  status(): Promise<ReplicaStatus> {
    return this.call('status', encodeStatusRequest, decodeStatusReply);
  }
  stats(): Promise<ReplicaStats> {
    return this.call('stats', encodeStatsRequest, decodeStatsReply);
  }
  snapshotCreate(name: string, ioSeq: number): Promise<void> {
    return this.call('snapshotCreate', () => encodeSnapshotCreateRequest({ name, ioSeq }), decodeSnapshotCreateReply);
  }
  snapshotDestroy(name: string): Promise<void> {
    return this.call('snapshotDestroy', () => encodeSnapshotDestroyRequest(name), decodeSnapshotDestroyReply);
  }
  snapshotList(): Promise<SnapshotInfo[]> {
    return this.call('snapshotList', encodeSnapshotListRequest, decodeSnapshotListReply);
  }
  readLayer(name: string, cursor: number, maxBytes: number): Promise<RunPage> {
    return this.call('readLayer', () => encodeReadLayerRequest({ name, cursor, maxBytes }), decodeReadLayerReply);
  }
  readHeadSince(sinceIoSeq: number, cursor: number, maxBytes: number): Promise<RunPage> {
    return this.call('readHeadSince', () => encodeReadHeadSinceRequest({ sinceIoSeq, cursor, maxBytes }), decodeReadHeadSinceReply);
  }
  rebuildStart(keepThrough: string | null): Promise<void> {
    return this.call('rebuildStart', () => encodeRebuildStartRequest(keepThrough), decodeRebuildStartReply);
  }
  importLayerBegin(name: string, ioSeq: number): Promise<void> {
    return this.call('importLayerBegin', () => encodeImportLayerBeginRequest({ name, ioSeq }), decodeImportLayerBeginReply);
  }
  importLayerWrite(name: string, offset: number, data: Buffer): Promise<void> {
    return this.call('importLayerWrite', () => encodeImportLayerWriteRequest({ name, offset, data }), decodeImportLayerWriteReply);
  }
  importLayerEnd(name: string): Promise<void> {
    return this.call('importLayerEnd', () => encodeImportLayerEndRequest(name), decodeImportLayerEndReply);
  }
  writeIfNewer(offset: number, data: Buffer, ioSeq: number): Promise<void> {
    return this.call('writeIfNewer', () => encodeWriteIfNewerRequest({ offset, data, ioSeq }), decodeWriteIfNewerReply);
  }
  rebuildDone(): Promise<void> {
    return this.call('rebuildDone', encodeRebuildDoneRequest, decodeRebuildDoneReply);
  }
  markHealthy(): Promise<void> {
    return this.call('markHealthy', encodeMarkHealthyRequest, decodeMarkHealthyReply);
  }

  /**
   * Encodes, sends and awaits one request; encoding errors reject without touching the
   * connection. No async wrapper: the reply's decoder runs when the reply arrives and settles the
   * one promise the caller holds.
   */
  private call<T>(name: OpcodeName, encode: () => MessageBody, decode: (frame: Frame) => T, into: Buffer | null = null): Promise<T> {
    if (this.closedWith !== null) {
      return Promise.reject(new CstorError('unavailable', `replica ${this.address}: connection is closed (${this.closedWith.message})`));
    }
    let body: MessageBody;
    try {
      body = encode();
    } catch (err) {
      return Promise.reject(err);
    }
    const opcode = opcodes[name];
    const seq = this.nextSeq;
    try {
      this.out.send({ opcode, status: 0, flags: 0, seq, ioSeq: body.ioSeq ?? 0, offset: body.offset ?? 0, length: 0 }, body.payload);
    } catch (err) {
      return Promise.reject(err);
    }
    this.nextSeq++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(seq, new Pending(opcode, into, performance.now() + this.timeoutMs, decode, resolve as (v: unknown) => void, reject, null));
    });
  }

  /** call() for the callback forms, their fields already checked: no encode closure, no header object, no promise. */
  private sendCb(opcode: number, ioSeq: number, offset: number, payload: Buffer[], into: Buffer | null, decode: (frame: Frame) => unknown, cb: (err: Error | null, value: unknown) => void): void {
    const seq = this.nextSeq;
    const h = this.scratch;
    h.opcode = opcode;
    h.seq = seq;
    h.ioSeq = ioSeq;
    h.offset = offset;
    try {
      this.out.send(h, payload);
    } catch (err) {
      new Pending(opcode, into, 0, decode, null, null, cb).fail(err, this.logger);
      return;
    }
    this.nextSeq++;
    this.pending.set(seq, new Pending(opcode, into, performance.now() + this.timeoutMs, decode, null, null, cb));
  }

  /** The caller's Buffer for the payload of reply `h` (readInto), if it is one. */
  replyBuffer(h: FrameHeader): Buffer | null {
    if (h.status !== 0 || !isReply(h)) return null;
    const p = this.pending.get(h.seq);
    // The decoder asks for every large payload of a read before the replies are delivered, so a
    // repeated reply for the same seq in the same read must not get `into` a second time.
    if (p === undefined || p.opcode !== h.opcode || p.into === null || p.intoTaken) return null;
    p.intoTaken = true;
    return p.into;
  }

  /** Called by the socket's onread callback with the bytes read into decoder.nextBuffer(). */
  onBytes(n: number): void {
    if (this.closedWith !== null) return;
    // Any bytes count as hearing from the peer: a large reply still arriving is a live peer.
    this.lastHeard = performance.now();
    let frames: Frame[];
    try {
      frames = this.decoder.commit(n);
    } catch (err) {
      this.fail(new CstorError('protocol', `replica ${this.address}: bad reply stream: ${(err as Error).message}`, { cause: err }));
      return;
    }
    for (const frame of frames) {
      const h = frame.header;
      if (isKeepalive(h)) continue;
      const p = this.pending.get(h.seq);
      if (!isReply(h) || p === undefined || p.opcode !== h.opcode) {
        const why = !isReply(h) ? 'a request where a reply was due' : p === undefined ? `a reply to unknown seq ${h.seq}` : `opcode ${h.opcode} for a request of opcode ${p.opcode}`;
        this.fail(new CstorError('protocol', `replica ${this.address}: peer sent ${why}`));
        return;
      }
      this.pending.delete(h.seq);
      if (h.status !== 0) {
        p.fail(decodeErrorReply(frame, `replica ${this.address} ${opcodeName(h.opcode) ?? h.opcode}`), this.logger);
        continue;
      }
      let value: unknown;
      try {
        value = p.decode(frame);
      } catch (err) {
        p.fail(err, this.logger);
        continue;
      }
      if (p.cb === null) {
        p.resolve!(value);
        continue;
      }
      try {
        p.cb(null, value);
      } catch (err) {
        this.logger?.error('replica reply callback threw', { replica: this.address, error: isCstorError(err) ? err.message : String(err) });
      }
      // A callback may have closed this connection: the rest of the frames are not ours to deliver.
      if (this.closedWith !== null) return;
    }
  }

  /**
   * The timeout rule (liveness.ts): the replica is dead when its oldest request has waited
   * timeoutMs and nothing at all (reply or keepalive) came for timeoutMs; or when that request has
   * waited the hard limit, however alive the replica looks.
   */
  private checkTimeouts(): void {
    const oldest = this.pending.entries().next();
    if (oldest.done) return;
    const [seq, p] = oldest.value;
    const verdict = replicaTimeoutVerdict({ now: performance.now(), sentAt: p.deadline - this.timeoutMs, lastHeard: this.lastHeard, timeoutMs: this.timeoutMs });
    if (verdict === null) return;
    const n = this.pending.size;
    this.fail(
      new CstorError(
        'timeout',
        `replica ${this.address}: ${opcodeName(p.opcode) ?? p.opcode} (seq ${seq}) got no reply within ${verdict.withinMs} ms; failing all ${n} requests in flight and closing the connection (${verdict.why})`,
      ),
    );
  }

  /** Fails every request in flight, closes the socket, and fires onClose once. */
  private fail(err: CstorError, closeReason: Error | null = err): void {
    if (this.closedWith === null) {
      this.closedWith = err;
      this.closeError = closeReason ?? undefined;
      clearInterval(this.sweeper);
      if (err.code !== 'aborted') this.logger?.warn('replica connection failed', { replica: this.address, error: err.message, inFlight: this.pending.size });
      if (err.code !== 'aborted') this.socket.destroy();
    }
    const failed = [...this.pending.values()];
    this.pending.clear();
    for (const p of failed) p.fail(err, this.logger);
    if (!this.closeFired && (this.socket.destroyed || err.code === 'aborted')) {
      this.closeFired = true;
      const listeners = this.closeListeners.splice(0);
      for (const l of listeners) {
        try {
          l(this.closeError);
        } catch (e) {
          this.logger?.error('replica onClose listener threw', { replica: this.address, error: isCstorError(e) ? e.message : String(e) });
        }
      }
    }
  }
}
