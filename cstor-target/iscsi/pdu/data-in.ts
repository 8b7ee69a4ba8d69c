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
  // Sent once per read (per segment): written field by field into a zeroed 48 bytes.
  const b = Buffer.alloc(BHS_LENGTH);
  b[0] = Opcode.DataIn;
  b[1] = (m.final ? 0x80 : 0) | (m.hasStatus ? 0x01 | m.residualFlag : 0);
  b[3] = m.hasStatus ? m.status : 0;
  b.writeUIntBE(m.dataLength, 5, 3);
  b.writeUInt32BE(m.itt, 16);
  b.writeUInt32BE(NO_TAG, 20);
  b.writeUInt32BE(m.hasStatus ? m.statSN : 0, 24);
  b.writeUInt32BE(m.expCmdSN, 28);
  b.writeUInt32BE(m.maxCmdSN, 32);
  b.writeUInt32BE(m.dataSN, 36);
  b.writeUInt32BE(m.bufferOffset, 40);
  b.writeUInt32BE(m.hasStatus ? m.residualCount : 0, 44);
  return b;
}
