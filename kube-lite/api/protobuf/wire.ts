// The protobuf wire format, read side only: what kube-lite needs to decode the bodies kubectl's
// generators send (application/vnd.kubernetes.protobuf).
//
// Grammar (https://protobuf.dev/programming-guides/encoding/):
//   message := field*
//   field   := tag value            tag = varint (fieldNumber << 3 | wireType)
//   wireType 0 VARINT: varint (≤ 10 bytes, little-endian base 128)
//            1 I64:    8 bytes
//            2 LEN:    varint length, then that many bytes (strings, bytes, messages, maps, packed)
//            5 I32:    4 bytes
//            3/4 SGROUP/EGROUP: deprecated groups; Kubernetes never sends them, refused here.
// Every read is bound-checked; a problem throws a CstorError with code `protocol` naming the
// offset, never a RangeError.
import { CstorError } from '../../../lib/errors.ts';

export const WireType = { varint: 0, i64: 1, len: 2, sgroup: 3, egroup: 4, i32: 5 } as const;
export type WireTypeValue = (typeof WireType)[keyof typeof WireType];

export interface WireField {
  /** The field number (1 … 2^29-1). */
  number: number;
  wireType: WireTypeValue;
  /** VARINT: the 64-bit value as an unsigned bigint. */
  varint?: bigint;
  /** LEN: a view of the payload; I64/I32: the raw little-endian bytes. */
  bytes?: Buffer;
  /** Offset of the tag in the buffer being read (for error messages). */
  offset: number;
}

const maxFieldNumber = 2 ** 29 - 1;

export function protocolError(message: string): CstorError {
  return new CstorError('protocol', message);
}

/** A cursor over one protobuf message's bytes. */
export class ProtoReader {
  private pos = 0;

  constructor(
    private readonly buf: Buffer,
    /** What is being read ("Secret.metadata"), for error messages. */
    private readonly what: string,
  ) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  get offset(): number {
    return this.pos;
  }

  /** A varint of at most 10 bytes, as an unsigned 64-bit bigint. */
  varint(): bigint {
    const start = this.pos;
    let result = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw protocolError(`${this.what}: truncated varint at offset ${start}`);
      const b = this.buf[this.pos++]!;
      result |= BigInt(b & 0x7f) << BigInt(7 * i);
      if ((b & 0x80) === 0) {
        if (i === 9 && b > 1) throw protocolError(`${this.what}: varint at offset ${start} overflows 64 bits`);
        return result;
      }
    }
    throw protocolError(`${this.what}: varint at offset ${start} is longer than 10 bytes`);
  }

  private take(n: number, what: string): Buffer {
    if (n > this.buf.length - this.pos) {
      throw protocolError(`${this.what}: truncated ${what} at offset ${this.pos}: need ${n} bytes, have ${this.buf.length - this.pos}`);
    }
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** The next field, or undefined at the end of the message. */
  next(): WireField | undefined {
    if (this.done) return undefined;
    const offset = this.pos;
    const tag = this.varint();
    const number = Number(tag >> 3n);
    const wireType = Number(tag & 7n);
    if (number < 1 || number > maxFieldNumber) throw protocolError(`${this.what}: invalid field number ${tag >> 3n} at offset ${offset}`);
    switch (wireType) {
      case WireType.varint:
        return { number, wireType, varint: this.varint(), offset };
      case WireType.i64:
        return { number, wireType, bytes: this.take(8, `fixed64 field ${number}`), offset };
      case WireType.len: {
        const lenStart = this.pos;
        const len = this.varint();
        if (len > BigInt(this.buf.length - this.pos)) {
          throw protocolError(`${this.what}: field ${number} at offset ${offset} declares ${len} bytes at offset ${lenStart}, only ${this.buf.length - this.pos} remain`);
        }
        return { number, wireType, bytes: this.take(Number(len), `field ${number}`), offset };
      }
      case WireType.i32:
        return { number, wireType, bytes: this.take(4, `fixed32 field ${number}`), offset };
      case WireType.sgroup:
      case WireType.egroup:
        throw protocolError(`${this.what}: field ${number} at offset ${offset} uses the deprecated group wire type ${wireType}`);
      default:
        throw protocolError(`${this.what}: field ${number} at offset ${offset} has invalid wire type ${wireType}`);
    }
  }
}

const wireTypeNames: Record<number, string> = { 0: 'varint', 1: 'fixed64', 2: 'length-delimited', 5: 'fixed32' };

export function wireTypeName(t: number): string {
  return wireTypeNames[t] ?? `wire type ${t}`;
}
