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
import { Reader, Writer } from '../binary.ts';
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
  return new Writer(headerSize)
    .u32le(protocolMagic)
    .u8(protocolVersion)
    .u8(h.opcode)
    .u16le(h.status)
    .u16le(h.flags)
    .u16le(0)
    .u32le(h.length)
    .u64le(h.seq)
    .u64le(h.ioSeq)
    .u64le(h.offset).buf;
}

/**
 * Decodes and checks a header: magic, version and the payload length limit. A too-long length is a
 * `too_large` error carrying the frame's seq in `details.seq`, so a server can answer it before closing.
 */
export function decodeHeader(buf: Buffer): FrameHeader {
  const r = new Reader(buf, 'replica header');
  const magic = r.u32le();
  if (magic !== protocolMagic) {
    throw new CstorError('protocol', `replica header: bad magic 0x${magic.toString(16).padStart(8, '0')} (want 0x${protocolMagic.toString(16)})`);
  }
  const version = r.u8();
  if (version !== protocolVersion) throw new CstorError('protocol', `replica header: unsupported version ${version} (want ${protocolVersion})`);
  const opcode = r.u8();
  const status = r.u16le();
  const flags = r.u16le();
  r.skip(2);
  const length = r.u32le();
  const seq = r.u64le();
  const ioSeq = r.u64le();
  const offset = r.u64le();
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
