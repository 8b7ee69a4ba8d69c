// SCSI Response (opcode 0x21, RFC 7143 §11.4).
//
//  byte  0      0x21
//  byte  1      | 1 | . | . | o | u | O | U | . |   (o/u: bidi read over/underflow, O/U: residual)
//  byte  2      Response (0 = command completed at target)
//  byte  3      Status (SCSI status)
//  byte  4      TotalAHSLength   bytes 5-7 DataSegmentLength
//  bytes 8-15   reserved
//  bytes 16-19  Initiator Task Tag
//  bytes 20-23  SNACK Tag
//  bytes 24-27  StatSN   bytes 28-31 ExpCmdSN   bytes 32-35 MaxCmdSN
//  bytes 36-39  ExpDataSN
//  bytes 40-43  Bidirectional Read Residual Count
//  bytes 44-47  Residual Count
//  data: SenseLength (u16) | sense data   (only with CHECK CONDITION)
import { BHS_LENGTH, Opcode, type StatusNumbers } from './bhs.ts';

export const Residual = { none: 0, overflow: 0x04, underflow: 0x02 } as const;

export interface ScsiResponse extends StatusNumbers {
  readonly itt: number;
  readonly response: number;
  readonly status: number;
  /** Residual.overflow or Residual.underflow or none. */
  readonly residualFlag: number;
  readonly residualCount: number;
  readonly expDataSN: number;
  readonly dataLength: number;
}

export function encodeScsiResponse(m: ScsiResponse): Buffer {
  const b = Buffer.allocUnsafe(BHS_LENGTH);
  writeScsiResponse(b, 0, m);
  return b;
}

/** Writes the BHS of `m` into `b` at `at` (48 bytes, reserved ones zeroed): the connection writes into its send slab. */
export function writeScsiResponse(b: Buffer, at: number, m: ScsiResponse): void {
  // Sent once per command: written field by field (no cursor object, no Buffer of its own).
  b.fill(0, at, at + BHS_LENGTH);
  b[at] = Opcode.ScsiResponse;
  b[at + 1] = 0x80 | m.residualFlag;
  b[at + 2] = m.response;
  b[at + 3] = m.status;
  b.writeUIntBE(m.dataLength, at + 5, 3);
  b.writeUInt32BE(m.itt, at + 16);
  b.writeUInt32BE(m.statSN, at + 24);
  b.writeUInt32BE(m.expCmdSN, at + 28);
  b.writeUInt32BE(m.maxCmdSN, at + 32);
  b.writeUInt32BE(m.expDataSN, at + 36);
  b.writeUInt32BE(m.residualCount, at + 44);
}

/** The data segment of a SCSI Response carrying sense data: a 2-byte SenseLength then the sense bytes. */
export function encodeSenseSegment(sense: Buffer): Buffer {
  const out = Buffer.alloc(2 + sense.length);
  out.writeUInt16BE(sense.length, 0);
  sense.copy(out, 2);
  return out;
}
