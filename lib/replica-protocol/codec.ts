// Small shared pieces of the message codecs: length-prefixed strings and end-of-payload checks.
//   string := u16le byteLength, byteLength bytes of UTF-8
import type { Reader, Writer } from '../binary.ts';
import { CstorError } from '../errors.ts';
import type { Frame } from './header.ts';

/** Largest encoded string (volume and snapshot names are far shorter). */
export const maxStringBytes = 1024;

/** UTF-8 bytes of a string field, refused when longer than maxStringBytes. */
export function stringBytes(s: string, field: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length > maxStringBytes) throw new CstorError('too_large', `${field}: ${b.length} bytes exceeds ${maxStringBytes}`);
  return b;
}

export function writeString(w: Writer, b: Buffer): Writer {
  return w.u16le(b.length).bytes(b);
}

export function readString(r: Reader, field: string): string {
  const n = r.u16le();
  if (n > maxStringBytes) throw new CstorError('protocol', `${field}: string length ${n} exceeds ${maxStringBytes}`);
  return r.bytes(n).toString('utf8');
}

/** Throws unless the reader consumed the whole payload (trailing bytes are a protocol error). */
export function expectEnd(r: Reader, what: string): void {
  if (r.remaining !== 0) throw new CstorError('protocol', `${what}: ${r.remaining} unexpected trailing bytes`);
}

/** Throws unless the payload is empty. */
export function expectEmpty(frame: Frame, what: string): void {
  if (frame.payload.length !== 0) throw new CstorError('protocol', `${what}: expected an empty payload, got ${frame.payload.length} bytes`);
}

/**
 * What a message encoder produces: the header fields it owns and the payload (as parts, so large
 * data is never copied into a combined buffer). The sender fills in opcode, seq and flags.
 */
export interface MessageBody {
  ioSeq?: number;
  offset?: number;
  payload: Buffer[];
}

export const emptyBody: MessageBody = Object.freeze({ payload: [] }) as MessageBody;

export function payloadLength(body: MessageBody): number {
  let n = 0;
  for (const p of body.payload) n += p.length;
  return n;
}

/** Throws `invalid` unless v fits a u64 field as a safe non-negative integer. */
export function checkU64(v: number, field: string): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new CstorError('invalid', `${field}: ${v} is not a non-negative safe integer`);
  return v;
}

/** Throws `invalid` unless v fits a u32 field. */
export function checkU32(v: number, field: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new CstorError('invalid', `${field}: ${v} is not a u32`);
  return v;
}
