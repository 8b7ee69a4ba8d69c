// Logout Response (opcode 0x26, RFC 7143 §11.15).
//
//  byte  0      0x26
//  byte  1      0x80
//  byte  2      Response (0 closed, 1 CID not found, 2 recovery not supported, 3 cleanup failed)
//  byte  3      reserved
//  byte  4      TotalAHSLength (0)   bytes 5-7 DataSegmentLength (0)
//  bytes 8-15   reserved
//  bytes 16-19  Initiator Task Tag
//  bytes 20-23  reserved
//  bytes 24-27  StatSN   bytes 28-31 ExpCmdSN   bytes 32-35 MaxCmdSN
//  bytes 36-39  reserved
//  bytes 40-41  Time2Wait        bytes 42-43 Time2Retain
//  bytes 44-47  reserved
import { Opcode, startBhs, type StatusNumbers } from './bhs.ts';

export interface LogoutResponse extends StatusNumbers {
  readonly itt: number;
  readonly response: number;
  readonly time2Wait: number;
  readonly time2Retain: number;
}

export function encodeLogoutResponse(m: LogoutResponse): Buffer {
  return startBhs(Opcode.LogoutResponse, 0x80, m.response, 0, 0)
    .skip(8)
    .u32be(m.itt)
    .skip(4)
    .u32be(m.statSN)
    .u32be(m.expCmdSN)
    .u32be(m.maxCmdSN)
    .skip(4)
    .u16be(m.time2Wait)
    .u16be(m.time2Retain).buf;
}
