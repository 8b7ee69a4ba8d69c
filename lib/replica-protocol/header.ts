// The replica protocol's fixed frame header (DESIGN.md §6). Every frame, request or reply, is this
// 40-byte little-endian header followed by `length` payload bytes.
//
//   offset size field
//   0      4    magic    u32le 0x50525343 (the bytes "CSRP")
//   4      1    version  u8    1
//   5      1    opcode   u8    see opcodes.ts
//   6      2    status   u16le 0 ok; else a status code (status-codes.ts); requests carry 0
//   8      2    flags    u16le bit 0: REPLY; other bits reserved, sent as 0
//   10     2    reserved u16le 0
//   12     4    length   u32le payload bytes following the header (<= maxPayload)
//   16     8    seq      u64le request sequence number; a reply carries its request's
//   24     8    io_seq   u64le write ordering number (write, unmap, snapshot create, ...), else 0
//   32     8    offset   u64le byte offset for block operations, else 0
import { CstorError } from '../errors.ts';

export const headerSize = 40;
export const protocolMagic = 0x50525343;
export const protocolVersion = 1;
/** Largest block IO in one request (read length, write data). */
export const maxIoBytes = 16 * 1024 * 1024;
/** Largest payload of any frame: one max IO plus room for a message's own fields. */
export const maxPayload = maxIoBytes + 64 * 1024;

export const frameFlags = { reply: 1 } as const;

export interface FrameHeader {
  opcode: number;
  status: number;
  flags: number;
  seq: number;
  ioSeq: number;
  offset: number;
  /** Payload length in bytes. */
  length: number;
}

export interface Frame {
  header: FrameHeader;
  payload: Buffer;
}

export function encodeHeader(h: FrameHeader): Buffer {
  const buf = Buffer.allocUnsafe(headerSize);
  writeHeader(buf, 0, h);
  return buf;
}

/**
 * Writes a header into `buf` at `at` (the hot path: no cursor object, no BigInt). Field values
 * are the caller's: opcode u8, status/flags u16, length u32, seq/io_seq/offset safe integers.
 */
export function writeHeader(buf: Buffer, at: number, h: FrameHeader): void {
  buf.writeUInt32LE(protocolMagic, at);
  buf[at + 4] = protocolVersion;
  buf[at + 5] = h.opcode;
  buf.writeUInt16LE(h.status, at + 6);
  buf.writeUInt16LE(h.flags, at + 8);
  buf.writeUInt16LE(0, at + 10);
  buf.writeUInt32LE(h.length, at + 12);
  writeU64(buf, at + 16, h.seq);
  writeU64(buf, at + 24, h.ioSeq);
  writeU64(buf, at + 32, h.offset);
}

const two32 = 2 ** 32;
/** The high 32 bits of a safe integer are at most 2^21 - 1. */
const maxSafeHigh = 0x1fffff;

function writeU64(buf: Buffer, at: number, v: number): void {
  const hi = Math.floor(v / two32);
  buf.writeUInt32LE(v - hi * two32, at);
  buf.writeUInt32LE(hi, at + 4);
}

function readU64(buf: Buffer, at: number, field: string): number {
  const hi = buf.readUInt32LE(at + 4);
  if (hi > maxSafeHigh) {
    const v = buf.readBigUInt64LE(at);
    throw new CstorError('protocol', `replica header: ${field}: 64-bit value ${v} is too large`);
  }
  return hi * two32 + buf.readUInt32LE(at);
}

/**
 * Decodes and checks a header: magic, version and the payload length limit. A too-long length is a
 * `too_large` error carrying the frame's seq in `details.seq`, so a server can answer it before closing.
 * `at` is where the header starts in `buf` (the decoders pass their read buffer, not a copy).
 */
export function decodeHeader(buf: Buffer, at = 0): FrameHeader {
  if (buf.length - at < headerSize) {
    throw new CstorError('protocol', `replica header truncated: need ${headerSize} bytes at offset 0, have ${Math.max(0, buf.length - at)}`);
  }
  const magic = buf.readUInt32LE(at);
  if (magic !== protocolMagic) {
    throw new CstorError('protocol', `replica header: bad magic 0x${magic.toString(16).padStart(8, '0')} (want 0x${protocolMagic.toString(16)})`);
  }
  const version = buf[at + 4]!;
  if (version !== protocolVersion) throw new CstorError('protocol', `replica header: unsupported version ${version} (want ${protocolVersion})`);
  const opcode = buf[at + 5]!;
  const status = buf.readUInt16LE(at + 6);
  const flags = buf.readUInt16LE(at + 8);
  const length = buf.readUInt32LE(at + 12);
  const seq = readU64(buf, at + 16, 'seq');
  const ioSeq = readU64(buf, at + 24, 'io_seq');
  const offset = readU64(buf, at + 32, 'offset');
  if (length > maxPayload) {
    throw new CstorError('too_large', `replica frame: payload length ${length} exceeds the limit of ${maxPayload} bytes`, {
      details: { seq, opcode },
    });
  }
  return { opcode, status, flags, seq, ioSeq, offset, length };
}

export function isReply(h: FrameHeader): boolean {
  return (h.flags & frameFlags.reply) !== 0;
}
