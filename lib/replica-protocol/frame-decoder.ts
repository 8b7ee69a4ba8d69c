// Splits a TCP byte stream into frames. Chunks are queued as they arrive (no copying); a frame's
// payload is a view into one chunk when it lies inside it, else one concatenation of exactly its
// bytes, so the work is linear in the bytes received whatever the chunking. Every header is
// checked (magic, version, length limit) before its payload is awaited; after an error the
// decoder refuses everything (the connection must be closed).
import { CstorError } from '../errors.ts';
import { decodeHeader, headerSize, type Frame, type FrameHeader } from './header.ts';

export class FrameDecoder {
  private readonly chunks: Buffer[] = [];
  /** Read position inside chunks[0]. */
  private head = 0;
  private buffered = 0;
  private pending: FrameHeader | null = null;
  private failed: CstorError | null = null;

  /** Bytes received and not yet returned as frames. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Adds a chunk and returns every frame it completes. Throws on a bad header (and stays failed). */
  push(chunk: Buffer): Frame[] {
    if (this.failed) throw this.failed;
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const frames: Frame[] = [];
    for (;;) {
      if (this.pending === null) {
        if (this.buffered < headerSize) break;
        try {
          this.pending = decodeHeader(this.take(headerSize));
        } catch (err) {
          this.failed = err instanceof CstorError ? err : new CstorError('protocol', String(err), { cause: err });
          throw this.failed;
        }
      }
      if (this.buffered < this.pending.length) break;
      frames.push({ header: this.pending, payload: this.take(this.pending.length) });
      this.pending = null;
    }
    return frames;
  }

  /** Takes n buffered bytes: a view when they lie in one chunk, else one copy. */
  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    this.buffered -= n;
    const first = this.chunks[0]!;
    if (first.length - this.head >= n) {
      const out = first.subarray(this.head, this.head + n);
      this.head += n;
      if (this.head === first.length) {
        this.chunks.shift();
        this.head = 0;
      }
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length - this.head, n - filled);
      c.copy(out, filled, this.head, this.head + k);
      filled += k;
      this.head += k;
      if (this.head === c.length) {
        this.chunks.shift();
        this.head = 0;
      }
    }
    return out;
  }
}
