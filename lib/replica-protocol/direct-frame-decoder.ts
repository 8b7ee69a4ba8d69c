// A frame decoder that owns the socket's read buffers (net.connect's `onread` option), so large
// payloads are read by the kernel straight into their own Buffer: no 64 KiB chunk per read, no
// copy. Small frames land in a reused scratch buffer and are copied out (they must outlive it).
//   const d = new DirectFrameDecoder();
//   net.connect({ ..., onread: { buffer: () => d.nextBuffer(), callback: (n) => handle(d.commit(n)) } });
// Every header is checked as in FrameDecoder; after an error the decoder stays failed.
import { CstorError } from '../errors.ts';
import { decodeHeader, headerSize, type Frame, type FrameHeader } from './header.ts';

export class DirectFrameDecoder {
  private readonly scratch: Buffer;
  /** Unconsumed bytes of scratch: [start, end). */
  private start = 0;
  private end = 0;
  private header: FrameHeader | null = null;
  /** A large payload being read in place, and how much of it has arrived. */
  private payload: Buffer | null = null;
  private fill = 0;
  private lastWasPayload = false;
  private failed: CstorError | null = null;

  constructor(
    /** Payloads above this many bytes are read in place. */
    private readonly directThreshold = 64 * 1024,
    scratchSize = 256 * 1024,
  ) {
    if (scratchSize < 2 * (headerSize + directThreshold)) throw new CstorError('internal', 'DirectFrameDecoder: scratch too small for its threshold');
    this.scratch = Buffer.allocUnsafe(scratchSize);
  }

  /** Where the next read should land (never empty). */
  nextBuffer(): Buffer {
    if (this.payload !== null) {
      this.lastWasPayload = true;
      return this.payload.subarray(this.fill);
    }
    this.lastWasPayload = false;
    if (this.start === this.end) {
      this.start = this.end = 0;
    } else if (this.start > 0 && this.scratch.length - this.end < this.scratch.length / 4) {
      this.scratch.copy(this.scratch, 0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    return this.scratch.subarray(this.end);
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
      }
      return frames;
    }
    this.end += n;
    for (;;) {
      if (this.header === null) {
        if (this.end - this.start < headerSize) break;
        try {
          this.header = decodeHeader(this.scratch.subarray(this.start, this.start + headerSize));
        } catch (err) {
          this.failed = err instanceof CstorError ? err : new CstorError('protocol', String(err), { cause: err });
          throw this.failed;
        }
        this.start += headerSize;
      }
      const len = this.header.length;
      const avail = this.end - this.start;
      if (avail >= len) {
        const payload = Buffer.allocUnsafe(len);
        this.scratch.copy(payload, 0, this.start, this.start + len);
        this.start += len;
        frames.push({ header: this.header, payload });
        this.header = null;
        continue;
      }
      if (len > this.directThreshold) {
        this.payload = Buffer.allocUnsafe(len);
        this.scratch.copy(this.payload, 0, this.start, this.end);
        this.fill = avail;
        this.start = this.end = 0;
      }
      break;
    }
    return frames;
  }
}
