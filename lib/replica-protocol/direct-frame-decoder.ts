// A frame decoder that owns the socket's read buffers (net.Socket's `onread` option), so bytes
// are read by the kernel straight to where they stay:
// - small frames land in a slab (256 KiB by default) and their payloads are views of it, never
//   copied; the slab is never written again once a view of it was handed out (a fresh slab takes
//   over when it runs low, carrying only the unfinished frame's few bytes), so a view stays valid
//   for as long as its holder keeps it;
// - a payload above `directThreshold` gets its own Buffer (from `allocPayload`) and the rest of it
//   is read into that Buffer in place: no 64 KiB chunk per read, no copy.
//   const d = new DirectFrameDecoder();
//   net.connect({ ..., onread: { buffer: () => d.nextBuffer(), callback: (n) => handle(d.commit(n)) } });
// Every header is checked as in FrameDecoder; after an error the decoder stays failed.
import { CstorError } from '../errors.ts';
import { decodeHeader, headerSize, type Frame, type FrameHeader } from './header.ts';

const emptyPayload = Buffer.alloc(0);

export interface DirectFrameDecoderOptions {
  /** Payloads above this many bytes are read in place into their own Buffer (default 64 KiB). */
  directThreshold?: number;
  /** Slab size for headers and small frames (default 256 KiB; at least 2 × (header + threshold)). */
  slabSize?: number;
  /**
   * The Buffer a large payload is read into (default Buffer.allocUnsafe(header.length)), e.g. a
   * pooled one, or the caller's own for a READ reply. Must be exactly header.length bytes.
   */
  allocPayload?: (header: FrameHeader) => Buffer;
}

export class DirectFrameDecoder {
  private readonly directThreshold: number;
  private readonly slabSize: number;
  private readonly allocPayload: (header: FrameHeader) => Buffer;
  private slab: Buffer;
  /** Unconsumed bytes of the slab: [start, end). */
  private start = 0;
  private end = 0;
  /** True once a view of the current slab was handed out: it must not be written again. */
  private shared = false;
  private header: FrameHeader | null = null;
  /** A large payload being read in place, and how much of it has arrived. */
  private payload: Buffer | null = null;
  private fill = 0;
  private lastWasPayload = false;
  /** After a large frame, read the next header alone (a likely large payload then goes in place). */
  private headerOnly = false;
  private failed: CstorError | null = null;

  constructor(options: DirectFrameDecoderOptions = {}) {
    this.directThreshold = options.directThreshold ?? 64 * 1024;
    this.slabSize = options.slabSize ?? 256 * 1024;
    this.allocPayload = options.allocPayload ?? ((h) => Buffer.allocUnsafe(h.length));
    if (this.slabSize < 2 * (headerSize + this.directThreshold)) {
      throw new CstorError('internal', 'DirectFrameDecoder: slab too small for its threshold');
    }
    this.slab = Buffer.allocUnsafeSlow(this.slabSize);
  }

  /** Where the next read should land (never empty). */
  nextBuffer(): Buffer {
    if (this.payload !== null) {
      this.lastWasPayload = true;
      return this.payload.subarray(this.fill);
    }
    this.lastWasPayload = false;
    if (this.start === this.end && !this.shared) {
      this.start = this.end = 0;
    } else if (this.slab.length - this.end < headerSize + this.directThreshold) {
      // Running low: move the unfinished frame (at most a header and a small payload) to the
      // front, or to a fresh slab when views of this one are still out there.
      const keep = this.end - this.start;
      const to = this.shared ? Buffer.allocUnsafeSlow(this.slabSize) : this.slab;
      this.slab.copy(to, 0, this.start, this.end);
      this.slab = to;
      this.start = 0;
      this.end = keep;
      this.shared = false;
    }
    if (this.headerOnly && this.header === null && this.end - this.start < headerSize) {
      return this.slab.subarray(this.end, this.start + headerSize);
    }
    return this.slab.subarray(this.end);
  }

  /** Accounts for `n` bytes read into the last nextBuffer(); returns the frames completed. */
  commit(n: number): Frame[] {
    if (this.failed) throw this.failed;
    const frames: Frame[] = [];
    if (this.lastWasPayload) {
      this.fill += n;
      if (this.fill === this.payload!.length) {
        frames.push({ header: this.header!, payload: this.payload! });
        this.header = null;
        this.payload = null;
        this.headerOnly = true;
      }
      return frames;
    }
    this.end += n;
    for (;;) {
      if (this.header === null) {
        if (this.end - this.start < headerSize) break;
        try {
          this.header = decodeHeader(this.slab, this.start);
        } catch (err) {
          this.failed = err instanceof CstorError ? err : new CstorError('protocol', String(err), { cause: err });
          throw this.failed;
        }
        this.start += headerSize;
      }
      const len = this.header.length;
      const avail = this.end - this.start;
      if (len > this.directThreshold) {
        // Large: its own Buffer, filled with what already arrived, the rest read in place.
        const payload = this.allocPayload(this.header);
        if (payload.length !== len) throw new CstorError('internal', `DirectFrameDecoder: allocPayload gave ${payload.length} bytes for a ${len}-byte payload`);
        const k = Math.min(avail, len);
        this.slab.copy(payload, 0, this.start, this.start + k);
        this.start += k;
        if (k === len) {
          frames.push({ header: this.header, payload });
          this.header = null;
          this.headerOnly = true;
          continue;
        }
        this.payload = payload;
        this.fill = k;
        break;
      }
      if (avail < len) break;
      frames.push({ header: this.header, payload: len === 0 ? emptyPayload : this.slab.subarray(this.start, this.start + len) });
      if (len > 0) this.shared = true;
      this.start += len;
      this.header = null;
      this.headerOnly = false;
    }
    return frames;
  }
}
