// Splits a TCP byte stream into iSCSI PDUs (RFC 7143 §11.1): BHS, AHS, optional header digest,
// data segment padded to 4 bytes, optional data digest. Payloads that arrive inside one socket chunk
// are handed on as views (no copy). Lengths past the negotiated limit are refused before buffering.
import { CstorError } from '../../../lib/errors.ts';
import { crc32c } from '../crc32c.ts';
import { BHS_LENGTH, type RawPdu } from './bhs.ts';

export interface PduReaderOptions {
  headerDigest: boolean;
  dataDigest: boolean;
  /** Largest data segment accepted (our MaxRecvDataSegmentLength, or the login-phase limit). */
  maxDataSegmentLength: number;
  /**
   * Where a data segment that spans socket chunks should be assembled (e.g. straight into a write
   * command's buffer, saving a copy); undefined: a fresh buffer. Must return exactly `length` bytes.
   */
  placeData?: (bhs: Buffer, length: number) => Buffer | undefined;
}

export class PduReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** The BHS of the PDU being assembled, once its header is complete. */
  private pending: { bhs: Buffer; ahs: Buffer; dataLength: number } | undefined;

  constructor(readonly options: PduReaderOptions) {}

  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Adds a chunk and returns every PDU now complete. Throws a `protocol`/`too_large` error on bad framing. */
  push(chunk: Buffer): RawPdu[] {
    this.append(chunk);
    const out: RawPdu[] = [];
    for (;;) {
      const pdu = this.next();
      if (!pdu) return out;
      out.push(pdu);
    }
  }

  /** Adds a chunk; take the PDUs it completes with next(). */
  append(chunk: Buffer): void {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
  }

  /**
   * The next complete PDU, or undefined until more bytes come. Handling each PDU before asking for
   * the next lets placeData see the effect of the previous one (e.g. a Data-Out's offset).
   * Throws a `protocol`/`too_large` error on bad framing.
   */
  next(): RawPdu | undefined {
    if (!this.pending) {
      if (this.buffered < BHS_LENGTH) return undefined;
      // The lengths are read where they lie, even when the BHS spans chunks (no concatenation).
      const ahsLength = this.byteAt(4) * 4;
      const dataLength = (this.byteAt(5) << 16) | (this.byteAt(6) << 8) | this.byteAt(7);
      const hd = this.options.headerDigest ? 4 : 0;
      if (dataLength > this.options.maxDataSegmentLength) {
        throw new CstorError(
          'too_large',
          `iSCSI PDU (opcode 0x${(this.byteAt(0) & 0x3f).toString(16)}) data segment of ${dataLength} bytes exceeds MaxRecvDataSegmentLength ${this.options.maxDataSegmentLength}`,
        );
      }
      if (this.buffered < BHS_LENGTH + ahsLength + hd) return undefined;
      const header = this.take(BHS_LENGTH + ahsLength);
      if (hd) {
        const digest = this.take(4).readUInt32LE(0);
        if (digest !== crc32c(header)) throw new CstorError('protocol', 'iSCSI header digest mismatch');
      }
      this.pending = { bhs: header.subarray(0, BHS_LENGTH), ahs: header.subarray(BHS_LENGTH), dataLength };
    }
    const { bhs, ahs, dataLength } = this.pending;
    const padded = (dataLength + 3) & ~3;
    const dd = this.options.dataDigest && dataLength > 0 ? 4 : 0;
    if (this.buffered < padded + dd) return undefined;
    this.pending = undefined;
    const spans = dataLength > 0 && this.chunks[0]!.length < dataLength;
    const dest = spans ? this.options.placeData?.(bhs, dataLength) : undefined;
    if (dest && dest.length === dataLength) {
      this.takeInto(dest);
      const pad = padded > dataLength ? this.take(padded - dataLength) : Buffer.alloc(0);
      if (dd) {
        const digest = this.take(4).readUInt32LE(0);
        if (digest !== crc32c(dest, pad)) throw new CstorError('protocol', 'iSCSI data digest mismatch');
      }
      return { bhs, ahs, data: dest };
    }
    const seg = padded > 0 ? this.take(padded) : Buffer.alloc(0);
    const data = seg.subarray(0, dataLength);
    if (dd) {
      const digest = this.take(4).readUInt32LE(0);
      if (digest !== crc32c(seg)) throw new CstorError('protocol', 'iSCSI data digest mismatch');
    }
    return { bhs, ahs, data };
  }

  /** The byte at `i` of what is buffered (i < buffered). */
  private byteAt(i: number): number {
    for (const c of this.chunks) {
      if (i < c.length) return c[i]!;
      i -= c.length;
    }
    throw new CstorError('protocol', 'iSCSI PDU reader: read past the buffered bytes');
  }

  /** Removes dest.length bytes from the front, copying them into dest. */
  private takeInto(dest: Buffer): void {
    const n = dest.length;
    this.buffered -= n;
    let done = 0;
    while (done < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - done);
      c.copy(dest, done, 0, k);
      done += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
  }

  /** Removes n bytes from the front: a view when they sit in one chunk, else one copy. */
  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let done = 0;
    while (done < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - done);
      c.copy(out, done, 0, k);
      done += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return out;
  }
}

/** Frames a PDU for sending: header (BHS+AHS), header digest, data, padding, data digest. */
export function framePdu(header: Buffer, data: Buffer | undefined, digests: { header: boolean; data: boolean }): Buffer[] {
  const parts: Buffer[] = [header];
  if (digests.header) parts.push(u32le(crc32c(header)));
  if (data && data.length > 0) {
    parts.push(data);
    const pad = (4 - (data.length % 4)) % 4;
    const padBuf = pad ? Buffer.alloc(pad) : undefined;
    if (padBuf) parts.push(padBuf);
    if (digests.data) parts.push(u32le(padBuf ? crc32c(data, padBuf) : crc32c(data)));
  }
  return parts;
}

function u32le(v: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(v, 0);
  return b;
}
