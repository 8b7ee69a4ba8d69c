// Splits a TCP byte stream into iSCSI PDUs (RFC 7143 §11.1): BHS, AHS, optional header digest,
// data segment padded to 4 bytes, optional data digest. Payloads that arrive inside one socket chunk
// are handed on as views (no copy). Lengths past the negotiated limit are refused before buffering.
// Two ways to feed it: append(chunk) with the socket's own chunks, or direct reads (net.Socket
// `onread`: the socket reads into readBuffer(), then commitRead(n)). With direct reads small PDUs
// land in a slab that is never written again once views of it are out (a fresh slab takes over),
// and a large data segment (a 256 KiB Data-Out) is read by the kernel straight into the buffer
// placeData gives for it (the write command's, usually pooled): no 64 KiB chunk per read, no copy.
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
  /**
   * Direct reads: the size of each slab small PDUs are read into (default 16 KiB, so a connection
   * that never logs in holds little; the connection raises it for the full feature phase).
   */
  slabSize?: number;
}

/** Direct reads: default slab size, and the least room a read is offered before a fresh slab takes over. */
const SLAB_SIZE = 16 * 1024;
const SLAB_MIN_READ = 64 * 1024;
/** Direct reads: data segments of at least this size are read in place when placeData gives a buffer. */
const DIRECT_MIN = 16 * 1024;
const EMPTY = Buffer.alloc(0);

export class PduReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** The BHS of the PDU being assembled, once its header is complete; `asked`: placeData was consulted. */
  private pending: { bhs: Buffer; ahs: Buffer; dataLength: number; asked: boolean } | undefined;
  /** Direct reads: the slab the socket reads small PDUs into, and where its free part starts. */
  private slab: Buffer | undefined;
  private slabEnd = 0;
  /** Direct reads: the pending PDU's data segment being read in place, and how much has arrived. */
  private direct: { dest: Buffer; fill: number } | undefined;
  private lastReadDirect = false;
  /** After a PDU read in place, read the next header alone (its large data may then go in place too). */
  private headerOnly = false;

  constructor(readonly options: PduReaderOptions) {}

  /** True while a data segment is being read in place into a placeData buffer. */
  get placing(): boolean {
    return this.direct !== undefined;
  }

  /** Direct reads: where the socket should read next (never empty). */
  readBuffer(): Buffer {
    const d = this.direct;
    if (d !== undefined && d.fill < d.dest.length) {
      this.lastReadDirect = true;
      return d.dest.subarray(d.fill);
    }
    this.lastReadDirect = false;
    let slab = this.slab;
    const size = this.options.slabSize ?? SLAB_SIZE;
    if (slab === undefined || slab.length - this.slabEnd < Math.min(SLAB_MIN_READ, size >> 2)) {
      slab = this.slab = Buffer.allocUnsafeSlow(size);
      this.slabEnd = 0;
    }
    if (d !== undefined) {
      // The data is in place; only its padding and digest are missing: read just those, then a header.
      const need = this.trailerBytes(this.pending!.dataLength) - this.buffered;
      if (need > 0) return slab.subarray(this.slabEnd, this.slabEnd + need);
    } else if (this.headerOnly && this.pending === undefined) {
      const need = this.headerBytesMissing();
      if (need > 0) return slab.subarray(this.slabEnd, this.slabEnd + need);
    }
    return slab.subarray(this.slabEnd);
  }

  /** Direct reads: accounts for `n` bytes the socket read into the last readBuffer(); take PDUs with next(). */
  commitRead(n: number): void {
    if (this.lastReadDirect) {
      this.direct!.fill += n;
      return;
    }
    if (n <= 0) return;
    const slab = this.slab!;
    const start = this.slabEnd;
    this.slabEnd += n;
    this.buffered += n;
    // Bytes that follow the last chunk in the same slab extend it (a header split across reads stays one view).
    const last = this.chunks.length > 0 ? this.chunks[this.chunks.length - 1]! : undefined;
    if (last !== undefined && last.buffer === slab.buffer && last.byteOffset + last.length === slab.byteOffset + start) {
      this.chunks[this.chunks.length - 1] = slab.subarray(last.byteOffset - slab.byteOffset, this.slabEnd);
    } else {
      this.chunks.push(slab.subarray(start, this.slabEnd));
    }
  }

  /** Bytes still missing before the next PDU's header (BHS, AHS, header digest) is complete. */
  private headerBytesMissing(): number {
    if (this.buffered < BHS_LENGTH) return BHS_LENGTH - this.buffered;
    const need = BHS_LENGTH + this.byteAt(4) * 4 + (this.options.headerDigest ? 4 : 0);
    return Math.max(0, need - this.buffered);
  }

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
    if (this.direct !== undefined) return this.finishDirect();
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
      this.pending = ahsLength === 0 ? { bhs: header, ahs: EMPTY, dataLength, asked: false } : { bhs: header.subarray(0, BHS_LENGTH), ahs: header.subarray(BHS_LENGTH), dataLength, asked: false };
    }
    const pending = this.pending;
    const { bhs, ahs, dataLength } = pending;
    const padded = (dataLength + 3) & ~3;
    const dd = this.options.dataDigest && dataLength > 0 ? 4 : 0;
    if (this.buffered < padded + dd) {
      // Direct reads: a large data segment still on its way is read in place where placeData says.
      if (this.slab !== undefined && dataLength >= DIRECT_MIN && !pending.asked && this.options.placeData) {
        pending.asked = true;
        const dest = this.options.placeData(bhs, dataLength);
        if (dest && dest.length === dataLength) {
          const k = Math.min(this.buffered, dataLength);
          if (k > 0) this.takeInto(dest.subarray(0, k));
          this.direct = { dest, fill: k };
          return this.finishDirect();
        }
      }
      return undefined;
    }
    this.pending = undefined;
    this.headerOnly = false;
    const spans = dataLength > 0 && this.chunks[0]!.length < dataLength && !pending.asked;
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
    const seg = padded > 0 ? this.take(padded) : EMPTY;
    const data = padded === dataLength ? seg : seg.subarray(0, dataLength);
    if (dd) {
      const digest = this.take(4).readUInt32LE(0);
      if (digest !== crc32c(seg)) throw new CstorError('protocol', 'iSCSI data digest mismatch');
    }
    return { bhs, ahs, data };
  }

  /** Padding and data digest bytes after a data segment of `dataLength` (> 0) bytes. */
  private trailerBytes(dataLength: number): number {
    return ((dataLength + 3) & ~3) - dataLength + (this.options.dataDigest ? 4 : 0);
  }

  /** The PDU whose data segment is being read in place, once that and its padding and digest are in. */
  private finishDirect(): RawPdu | undefined {
    const d = this.direct!;
    if (d.fill < d.dest.length) return undefined;
    const { bhs, ahs, dataLength } = this.pending!;
    const padLength = ((dataLength + 3) & ~3) - dataLength;
    const dd = this.options.dataDigest ? 4 : 0;
    if (this.buffered < padLength + dd) return undefined;
    this.direct = undefined;
    this.pending = undefined;
    this.headerOnly = true;
    const pad = padLength > 0 ? this.take(padLength) : EMPTY;
    if (dd) {
      const digest = this.take(4).readUInt32LE(0);
      if (digest !== crc32c(d.dest, pad)) throw new CstorError('protocol', 'iSCSI data digest mismatch');
    }
    return { bhs, ahs, data: d.dest };
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
