// SCSI Data-In (opcode 0x25, RFC 7143 §11.7).
//
//  byte  0      0x25
//  byte  1      | F | A | 0 | 0 | 0 | O | U | S |
//  byte  2      reserved         byte 3  Status (valid when S)
//  byte  4      TotalAHSLength   bytes 5-7 DataSegmentLength
//  bytes 8-15   LUN (when A) or reserved
//  bytes 16-19  Initiator Task Tag
//  bytes 20-23  Target Transfer Tag (0xffffffff unless A)
//  bytes 24-27  StatSN (valid when S)   bytes 28-31 ExpCmdSN   bytes 32-35 MaxCmdSN
//  bytes 36-39  DataSN
//  bytes 40-43  Buffer Offset
//  bytes 44-47  Residual Count (valid when S)
//  data: the read data
import { BHS_LENGTH, NO_TAG, Opcode, type StatusNumbers } from './bhs.ts';

export interface DataIn extends StatusNumbers {
  readonly final: boolean;
  /** When true the PDU carries the command's status (S bit); statSN/status/residual are then valid. */
  readonly hasStatus: boolean;
  readonly status: number;
  readonly residualFlag: number;
  readonly residualCount: number;
  readonly itt: number;
  readonly dataSN: number;
  readonly bufferOffset: number;
  readonly dataLength: number;
}

export function encodeDataIn(m: DataIn): Buffer {
  const b = Buffer.allocUnsafe(BHS_LENGTH);
  writeDataIn(b, 0, m);
  return b;
}

/** Writes the BHS of `m` into `b` at `at` (48 bytes, reserved ones zeroed): the connection writes into its send slab. */
export function writeDataIn(b: Buffer, at: number, m: DataIn): void {
  // Sent once per read (per segment): written field by field, no Buffer of its own.
  b.fill(0, at, at + BHS_LENGTH);
  b[at] = Opcode.DataIn;
  b[at + 1] = (m.final ? 0x80 : 0) | (m.hasStatus ? 0x01 | m.residualFlag : 0);
  b[at + 3] = m.hasStatus ? m.status : 0;
  b.writeUIntBE(m.dataLength, at + 5, 3);
  b.writeUInt32BE(m.itt, at + 16);
  b.writeUInt32BE(NO_TAG, at + 20);
  b.writeUInt32BE(m.hasStatus ? m.statSN : 0, at + 24);
  b.writeUInt32BE(m.expCmdSN, at + 28);
  b.writeUInt32BE(m.maxCmdSN, at + 32);
  b.writeUInt32BE(m.dataSN, at + 36);
  b.writeUInt32BE(m.bufferOffset, at + 40);
  b.writeUInt32BE(m.hasStatus ? m.residualCount : 0, at + 44);
}
