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
import { NO_TAG, Opcode, startBhs, type StatusNumbers } from './bhs.ts';

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
  const flags = (m.final ? 0x80 : 0) | (m.hasStatus ? 0x01 | m.residualFlag : 0);
  return startBhs(Opcode.DataIn, flags, 0, m.hasStatus ? m.status : 0, m.dataLength)
    .skip(8)
    .u32be(m.itt)
    .u32be(NO_TAG)
    .u32be(m.hasStatus ? m.statSN : 0)
    .u32be(m.expCmdSN)
    .u32be(m.maxCmdSN)
    .u32be(m.dataSN)
    .u32be(m.bufferOffset)
    .u32be(m.hasStatus ? m.residualCount : 0).buf;
}
