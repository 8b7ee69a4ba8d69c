// Cursor classes for binary protocols. Each method names its endianness; every read is
// bound-checked and throws a `protocol` CstorError instead of reading past the end.
import { CstorError } from './errors.ts';

export class Reader {
  private pos = 0;

  constructor(
    private readonly buf: Buffer,
    /** What is being parsed, for error messages ("iSCSI BHS", "replica header"). */
    private readonly what = 'frame',
  ) {}

  get offset(): number {
    return this.pos;
  }
  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number): number {
    if (n < 0 || this.pos + n > this.buf.length) {
      throw new CstorError('protocol', `${this.what} truncated: need ${n} bytes at offset ${this.pos}, have ${this.remaining}`);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  skip(n: number): this {
    this.need(n);
    return this;
  }
  u8(): number {
    return this.buf.readUInt8(this.need(1));
  }
  u16be(): number {
    return this.buf.readUInt16BE(this.need(2));
  }
  u16le(): number {
    return this.buf.readUInt16LE(this.need(2));
  }
  u24be(): number {
    return this.buf.readUIntBE(this.need(3), 3);
  }
  u32be(): number {
    return this.buf.readUInt32BE(this.need(4));
  }
  u32le(): number {
    return this.buf.readUInt32LE(this.need(4));
  }
  /** A u64 that must fit a JS safe integer (offsets, io_seq); larger values are a protocol error. */
  u64be(): number {
    return toSafe(this.buf.readBigUInt64BE(this.need(8)), this.what);
  }
  u64le(): number {
    return toSafe(this.buf.readBigUInt64LE(this.need(8)), this.what);
  }
  /** A view (not a copy) of the next n bytes. */
  bytes(n: number): Buffer {
    const at = this.need(n);
    return this.buf.subarray(at, at + n);
  }
  rest(): Buffer {
    return this.bytes(this.remaining);
  }
}

function toSafe(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CstorError('protocol', `${what}: 64-bit value ${v} is too large`);
  return Number(v);
}

/** A fixed-size writer: callers know a message's size up front (headers are fixed). */
export class Writer {
  private pos = 0;
  readonly buf: Buffer;

  constructor(size: number) {
    this.buf = Buffer.alloc(size);
  }

  get offset(): number {
    return this.pos;
  }

  private take(n: number): number {
    if (this.pos + n > this.buf.length) throw new CstorError('internal', `writer overflow: ${this.pos}+${n} > ${this.buf.length}`);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  skip(n: number): this {
    this.take(n);
    return this;
  }
  u8(v: number): this {
    this.buf.writeUInt8(v, this.take(1));
    return this;
  }
  u16be(v: number): this {
    this.buf.writeUInt16BE(v, this.take(2));
    return this;
  }
  u16le(v: number): this {
    this.buf.writeUInt16LE(v, this.take(2));
    return this;
  }
  u24be(v: number): this {
    this.buf.writeUIntBE(v, this.take(3), 3);
    return this;
  }
  u32be(v: number): this {
    this.buf.writeUInt32BE(v >>> 0, this.take(4));
    return this;
  }
  u32le(v: number): this {
    this.buf.writeUInt32LE(v >>> 0, this.take(4));
    return this;
  }
  u64be(v: number): this {
    this.buf.writeBigUInt64BE(BigInt(v), this.take(8));
    return this;
  }
  u64le(v: number): this {
    this.buf.writeBigUInt64LE(BigInt(v), this.take(8));
    return this;
  }
  bytes(b: Buffer): this {
    b.copy(this.buf, this.take(b.length));
    return this;
  }
}
