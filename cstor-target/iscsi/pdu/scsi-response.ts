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
  // Sent once per command: written field by field into a zeroed 48 bytes (no cursor object).
  const b = Buffer.alloc(BHS_LENGTH);
  b[0] = Opcode.ScsiResponse;
  b[1] = 0x80 | m.residualFlag;
  b[2] = m.response;
  b[3] = m.status;
  b.writeUIntBE(m.dataLength, 5, 3);
  b.writeUInt32BE(m.itt, 16);
  b.writeUInt32BE(m.statSN, 24);
  b.writeUInt32BE(m.expCmdSN, 28);
  b.writeUInt32BE(m.maxCmdSN, 32);
  b.writeUInt32BE(m.expDataSN, 36);
  b.writeUInt32BE(m.residualCount, 44);
  return b;
}

/** The data segment of a SCSI Response carrying sense data: a 2-byte SenseLength then the sense bytes. */
export function encodeSenseSegment(sense: Buffer): Buffer {
  const out = Buffer.alloc(2 + sense.length);
  out.writeUInt16BE(sense.length, 0);
  sense.copy(out, 2);
  return out;
}
