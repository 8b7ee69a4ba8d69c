// The send side of a replica-protocol connection (client requests and server replies alike).
// Frames queued in one turn of the event loop go out together, in one corked write (one writev):
// - each header is written into a slab, and a small payload (up to `copyBelow` bytes) is copied
//   right behind it, so a run of small frames is ONE contiguous buffer for the socket, however
//   many frames it holds;
// - a large payload is handed to the socket as it is (never copied).
// A slab region handed to the socket is never written again (the writer only moves forward and
// takes a fresh slab when one is full), so nothing is overwritten while the kernel still needs it.
// `send`'s optional `released` callback tells the caller when the writer and the socket no longer
// hold its payload (at once for a copied one, else once the socket's write has completed or been
// dropped), so the caller may reuse the payload's Buffer from then on.
import type { Socket } from 'node:net';
import { CstorError } from '../errors.ts';
import { headerSize, maxPayload, writeHeader, type FrameHeader } from './header.ts';

export interface FrameWriterOptions {
  /** Payloads up to this many bytes are copied behind their header (default 16 KiB). */
  copyBelow?: number;
  /** Slab size (default 64 KiB). */
  slabSize?: number;
}

export class FrameWriter {
  private readonly copyBelow: number;
  private readonly slabSize: number;
  private slab: Buffer;
  private pos = 0;
  /** Start of the slab bytes not yet queued for the socket. */
  private regionStart = 0;
  private readonly queue: Buffer[] = [];
  /** Per queued buffer: called once the socket has written (or dropped) it. */
  private readonly callbacks: ((() => void) | undefined)[] = [];
  private queuedBytes = 0;
  private scheduled = false;
  private readonly flushNow = (): void => this.flush();

  constructor(
    private readonly socket: Socket,
    options: FrameWriterOptions = {},
  ) {
    this.copyBelow = options.copyBelow ?? 16 * 1024;
    this.slabSize = Math.max(options.slabSize ?? 64 * 1024, headerSize + this.copyBelow);
    this.slab = Buffer.allocUnsafeSlow(this.slabSize);
  }

  /** Bytes queued and not yet taken by the socket, plus the socket's own buffer. */
  get pendingBytes(): number {
    return this.queuedBytes + this.socket.writableLength;
  }

  /**
   * Queues one frame: `h.length` is set from the payload. Throws `too_large` (nothing queued, and
   * `released` not called) when the payload exceeds the protocol's limit. `released`, if given, is
   * called exactly once when neither the writer nor the socket holds `payload` any more: before
   * `send` returns when the payload was copied behind its header, else once the socket's write of
   * it has completed, failed, or been dropped with a closed socket.
   */
  send(h: FrameHeader, payload: readonly Buffer[], released?: () => void): void {
    let length = 0;
    for (let i = 0; i < payload.length; i++) length += payload[i]!.length;
    if (length > maxPayload) throw new CstorError('too_large', `replica frame: payload of ${length} bytes exceeds the limit of ${maxPayload}`);
    h.length = length;
    const inline = length <= this.copyBelow;
    const need = headerSize + (inline ? length : 0);
    if (this.slab.length - this.pos < need) {
      this.closeRegion();
      this.slab = Buffer.allocUnsafeSlow(this.slabSize);
      this.pos = this.regionStart = 0;
    }
    writeHeader(this.slab, this.pos, h);
    this.pos += headerSize;
    if (inline) {
      for (let i = 0; i < payload.length; i++) {
        const p = payload[i]!;
        p.copy(this.slab, this.pos);
        this.pos += p.length;
      }
      if (released !== undefined) released();
    } else {
      this.closeRegion();
      for (let i = 0; i < payload.length; i++) {
        const p = payload[i]!;
        if (p.length > 0) this.push(p);
      }
      // The payload is not empty here (it is above copyBelow): its last piece carries the callback.
      if (released !== undefined) this.callbacks[this.callbacks.length - 1] = released;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushNow);
    }
  }

  /** Hands everything queued to the socket now (also runs by itself once per event-loop turn). */
  flush(): void {
    this.scheduled = false;
    this.closeRegion();
    const q = this.queue;
    if (q.length === 0) return;
    const cbs = this.callbacks;
    const s = this.socket;
    if (s.destroyed || s.writableEnded) {
      q.length = 0;
      this.queuedBytes = 0;
      const dropped = cbs.splice(0);
      for (let i = 0; i < dropped.length; i++) dropped[i]?.();
      return;
    }
    if (q.length === 1) {
      const cb = cbs[0];
      if (cb === undefined) s.write(q[0]!);
      else s.write(q[0]!, () => cb());
    } else {
      s.cork();
      for (let i = 0; i < q.length; i++) {
        const cb = cbs[i];
        if (cb === undefined) s.write(q[i]!);
        else s.write(q[i]!, () => cb());
      }
      s.uncork();
    }
    q.length = 0;
    cbs.length = 0;
    this.queuedBytes = 0;
  }

  private closeRegion(): void {
    if (this.pos > this.regionStart) {
      this.push(this.slab.subarray(this.regionStart, this.pos));
      this.regionStart = this.pos;
    }
  }

  private push(b: Buffer): void {
    this.queue.push(b);
    this.callbacks.push(undefined);
    this.queuedBytes += b.length;
  }
}
