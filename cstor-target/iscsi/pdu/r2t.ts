// Ready To Transfer (opcode 0x31, RFC 7143 §11.8).
//
//  byte  0      0x31
//  byte  1      0x80
//  bytes 2-3    reserved
//  byte  4      TotalAHSLength (0)   bytes 5-7 DataSegmentLength (0)
//  bytes 8-15   LUN
//  bytes 16-19  Initiator Task Tag
//  bytes 20-23  Target Transfer Tag
//  bytes 24-27  StatSN   bytes 28-31 ExpCmdSN   bytes 32-35 MaxCmdSN
//  bytes 36-39  R2TSN
//  bytes 40-43  Buffer Offset
//  bytes 44-47  Desired Data Transfer Length
import { Opcode, encodeLun, startBhs, type StatusNumbers } from './bhs.ts';

export interface R2t extends StatusNumbers {
  readonly lun: number;
  readonly itt: number;
  readonly ttt: number;
  readonly r2tSN: number;
  readonly bufferOffset: number;
  readonly desiredLength: number;
}

export function encodeR2t(m: R2t): Buffer {
  return startBhs(Opcode.R2t, 0x80, 0, 0, 0)
    .bytes(encodeLun(m.lun))
    .u32be(m.itt)
    .u32be(m.ttt)
    .u32be(m.statSN)
    .u32be(m.expCmdSN)
    .u32be(m.maxCmdSN)
    .u32be(m.r2tSN)
    .u32be(m.bufferOffset)
    .u32be(m.desiredLength).buf;
}
