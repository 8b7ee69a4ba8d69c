// The ReplicaClient over TCP: one connection, pipelined (many requests in flight), replies matched
// by sequence number. Longhorn's rule for timeouts: when the oldest request in flight has waited
// longer than timeoutMs, EVERY request in flight fails and the connection closes (a replica that
// stalls one request cannot be trusted with the others). Requests issued in one tick are written
// in one corked batch (one writev); TCP_NODELAY is on.
import net from 'node:net';
import { parseHostPort } from '../cli/args.ts';
import { CstorError, isCstorError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { MessageBody } from './codec.ts';
import { encodeFrame } from './frame.ts';
import { DirectFrameDecoder } from './direct-frame-decoder.ts';
import { isReply, type Frame } from './header.ts';
import { opcodeName, opcodes, type OpcodeName } from './opcodes.ts';
import { decodeErrorReply } from './messages/error-reply.ts';
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

interface Pending {
  opcode: number;
  deadline: number;
  resolve: (frame: Frame) => void;
  reject: (err: CstorError) => void;
}

/** Connects to a pool's replica port ("host:port"); resolves once the TCP connection is up. */
export async function connectReplica(address: string, options: ConnectReplicaOptions = {}): Promise<ReplicaClient> {
  const { host, port } = parseHostPort(address, 'replica address');
  const timeoutMs = options.timeoutMs ?? 30_000;
  // Replies are read straight into their payload buffers (DirectFrameDecoder), so large reads
  // are not split into 64 KiB chunks and copied back together.
  const decoder = new DirectFrameDecoder();
  let deliver: (n: number) => void = () => {};
  const socket = net.connect({
    host,
    port,
    noDelay: true,
    onread: { buffer: () => decoder.nextBuffer(), callback: (n: number) => (deliver(n), true) },
  });
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
  return client;
}

export class TcpReplicaClient implements ReplicaClient {
  private nextSeq = 1;
  private readonly pending = new Map<number, Pending>();
  private closedWith: CstorError | null = null;
  private closeFired = false;
  private readonly closeListeners: ((err?: Error) => void)[] = [];
  private closeError: Error | undefined;
  private corked = false;
  private readonly sweeper: NodeJS.Timeout;
  private readonly socketClosed: Promise<void>;

  constructor(
    readonly address: string,
    private readonly socket: net.Socket,
    private readonly decoder: DirectFrameDecoder,
    private readonly timeoutMs: number,
    private readonly logger?: Logger,
  ) {
    socket.setNoDelay(true);
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
    if (this.closedWith === null) {
      this.fail(new CstorError('aborted', `replica ${this.address}: client closed`), null);
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

  /** Encodes, sends and awaits one request; encoding errors reject without touching the connection. */
  private async call<T>(name: OpcodeName, encode: () => MessageBody, decode: (frame: Frame) => T): Promise<T> {
    const body = encode();
    const frame = await this.send(opcodes[name], body);
    return decode(frame);
  }

  private send(opcode: number, body: MessageBody): Promise<Frame> {
    if (this.closedWith !== null) {
      return Promise.reject(new CstorError('unavailable', `replica ${this.address}: connection is closed (${this.closedWith.message})`));
    }
    const seq = this.nextSeq++;
    const parts = encodeFrame({ opcode, seq, reply: false }, body);
    return new Promise<Frame>((resolve, reject) => {
      this.pending.set(seq, { opcode, deadline: Date.now() + this.timeoutMs, resolve, reject });
      if (!this.corked) {
        this.corked = true;
        this.socket.cork();
        setImmediate(() => {
          this.corked = false;
          this.socket.uncork();
        });
      }
      for (const p of parts) this.socket.write(p);
    });
  }

  /** Called by the socket's onread callback with the bytes read into decoder.nextBuffer(). */
  onBytes(n: number): void {
    if (this.closedWith !== null) return;
    let frames: Frame[];
    try {
      frames = this.decoder.commit(n);
    } catch (err) {
      this.fail(new CstorError('protocol', `replica ${this.address}: bad reply stream: ${(err as Error).message}`, { cause: err }));
      return;
    }
    for (const frame of frames) {
      const h = frame.header;
      const p = this.pending.get(h.seq);
      if (!isReply(h) || p === undefined || p.opcode !== h.opcode) {
        const why = !isReply(h) ? 'a request where a reply was due' : p === undefined ? `a reply to unknown seq ${h.seq}` : `opcode ${h.opcode} for a request of opcode ${p.opcode}`;
        this.fail(new CstorError('protocol', `replica ${this.address}: peer sent ${why}`));
        return;
      }
      this.pending.delete(h.seq);
      if (h.status !== 0) p.reject(decodeErrorReply(frame, `replica ${this.address} ${opcodeName(h.opcode) ?? h.opcode}`));
      else p.resolve(frame);
    }
  }

  private checkTimeouts(): void {
    const oldest = this.pending.entries().next();
    if (oldest.done) return;
    const [seq, p] = oldest.value;
    if (Date.now() < p.deadline) return;
    const n = this.pending.size;
    this.fail(
      new CstorError(
        'timeout',
        `replica ${this.address}: ${opcodeName(p.opcode) ?? p.opcode} (seq ${seq}) got no reply within ${this.timeoutMs} ms; failing all ${n} requests in flight and closing the connection`,
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
    for (const p of failed) p.reject(err);
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
