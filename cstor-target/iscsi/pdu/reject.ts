// Reject (opcode 0x3f, RFC 7143 §11.17).
//
//  byte  0      0x3f
//  byte  1      0x80
//  byte  2      Reason           byte 3 reserved
//  byte  4      TotalAHSLength (0)   bytes 5-7 DataSegmentLength (48)
//  bytes 8-15   reserved
//  bytes 16-19  0xffffffff
//  bytes 20-23  reserved
//  bytes 24-27  StatSN   bytes 28-31 ExpCmdSN   bytes 32-35 MaxCmdSN
//  bytes 36-39  DataSN/R2TSN or reserved
//  bytes 40-47  reserved
//  data: the complete header (BHS) of the rejected PDU
import { NO_TAG, Opcode, startBhs, type StatusNumbers } from './bhs.ts';

export const RejectReason = {
  dataDigestError: 0x02,
  snackReject: 0x03,
  protocolError: 0x04,
  commandNotSupported: 0x05,
  immediateCommandReject: 0x06,
  taskInProgress: 0x07,
  invalidDataAck: 0x08,
  invalidPduField: 0x09,
  outOfResources: 0x0a,
  waitingForLogout: 0x0c,
} as const;

export interface Reject extends StatusNumbers {
  readonly reason: number;
  readonly dataSN: number;
}

export function encodeReject(m: Reject): Buffer {
  return startBhs(Opcode.Reject, 0x80, m.reason, 0, 48)
    .skip(8)
    .u32be(NO_TAG)
    .skip(4)
    .u32be(m.statSN)
    .u32be(m.expCmdSN)
    .u32be(m.maxCmdSN)
    .u32be(m.dataSN).buf;
}
