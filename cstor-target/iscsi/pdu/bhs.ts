// The Basic Header Segment every iSCSI PDU starts with (RFC 7143 §11.2.1), and the raw PDU shape
// the reader hands to the per-message decoders in this folder.
//
//  byte  0      | . | I | opcode (6 bits)                       |
//  byte  1      | F | opcode-specific flags (7 bits)            |
//  bytes 2-3    opcode-specific
//  byte  4      TotalAHSLength (in 4-byte words)
//  bytes 5-7    DataSegmentLength (bytes, not counting padding), big-endian
//  bytes 8-15   LUN or opcode-specific
//  bytes 16-19  Initiator Task Tag
//  bytes 20-47  opcode-specific
//  then: AHS (TotalAHSLength*4 bytes), HeaderDigest?, data segment padded to 4, DataDigest?
import { Reader, Writer } from '../../../lib/binary.ts';

export const BHS_LENGTH = 48;

export const Opcode = {
  NopOut: 0x00,
  ScsiCommand: 0x01,
  TaskMgmtRequest: 0x02,
  LoginRequest: 0x03,
  TextRequest: 0x04,
  DataOut: 0x05,
  LogoutRequest: 0x06,
  SnackRequest: 0x10,
  NopIn: 0x20,
  ScsiResponse: 0x21,
  TaskMgmtResponse: 0x22,
  LoginResponse: 0x23,
  TextResponse: 0x24,
  DataIn: 0x25,
  LogoutResponse: 0x26,
  R2t: 0x31,
  AsyncMessage: 0x32,
  Reject: 0x3f,
} as const;
export type OpcodeValue = (typeof Opcode)[keyof typeof Opcode];

/** The reserved tag value "no task" / "no transfer". */
export const NO_TAG = 0xffffffff;

/** A PDU as read off the wire: its 48-byte BHS, its AHS (maybe empty) and its data segment (no padding). */
export interface RawPdu {
  readonly bhs: Buffer;
  readonly ahs: Buffer;
  readonly data: Buffer;
}

export interface BhsCommon {
  readonly immediate: boolean;
  readonly opcode: number;
  readonly final: boolean;
  readonly totalAhsLength: number;
  readonly dataSegmentLength: number;
  readonly itt: number;
}

export function decodeBhsCommon(bhs: Buffer): BhsCommon {
  const r = new Reader(bhs, 'iSCSI BHS');
  const b0 = r.u8();
  const b1 = r.u8();
  r.skip(2);
  const totalAhsLength = r.u8();
  const dataSegmentLength = r.u24be();
  r.skip(8);
  const itt = r.u32be();
  r.skip(28);
  return { immediate: (b0 & 0x40) !== 0, opcode: b0 & 0x3f, final: (b1 & 0x80) !== 0, totalAhsLength, dataSegmentLength, itt };
}

/** The target's three sequence numbers that most responses carry at bytes 24-35. */
export interface StatusNumbers {
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
}

/** Starts a target-to-initiator BHS: byte 0 opcode, byte 1 flags, bytes 2-3, AHS length 0, DataSegmentLength. */
export function startBhs(opcode: number, flags: number, b2: number, b3: number, dataLength: number): Writer {
  return new Writer(BHS_LENGTH).u8(opcode).u8(flags).u8(b2).u8(b3).u8(0).u24be(dataLength);
}

/** LUN field encoding (SAM-5 single-level, peripheral/flat addressing) for LUN numbers < 16384. */
export function encodeLun(lun: number): Buffer {
  const b = Buffer.alloc(8);
  if (lun < 256) b[1] = lun;
  else b.writeUInt16BE(0x4000 | (lun & 0x3fff), 0);
  return b;
}

/** Decodes the first level of an 8-byte LUN field: peripheral (00b) or flat (01b) addressing. */
export function decodeLun(lun: Buffer): number {
  return decodeLunAt(lun, 0);
}

/** decodeLun of the 8-byte LUN field at `offset` of `buf` (no view made). */
export function decodeLunAt(buf: Buffer, offset: number): number {
  const hi = buf.readUInt16BE(offset);
  const method = hi >> 14;
  if (method === 0 || method === 1) return hi & 0x3fff;
  return 0xffff; // other addressing methods: no such LUN here
}
