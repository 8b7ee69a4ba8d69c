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
import { BHS_LENGTH, Opcode, encodeLun, type StatusNumbers } from './bhs.ts';

export interface R2t extends StatusNumbers {
  readonly lun: number;
  readonly itt: number;
  readonly ttt: number;
  readonly r2tSN: number;
  readonly bufferOffset: number;
  readonly desiredLength: number;
}

export function encodeR2t(m: R2t): Buffer {
  const b = Buffer.alloc(BHS_LENGTH);
  b[0] = Opcode.R2t;
  b[1] = 0x80;
  encodeLun(m.lun).copy(b, 8);
  b.writeUInt32BE(m.itt, 16);
  b.writeUInt32BE(m.ttt, 20);
  b.writeUInt32BE(m.statSN, 24);
  b.writeUInt32BE(m.expCmdSN, 28);
  b.writeUInt32BE(m.maxCmdSN, 32);
  b.writeUInt32BE(m.r2tSN, 36);
  b.writeUInt32BE(m.bufferOffset, 40);
  b.writeUInt32BE(m.desiredLength, 44);
  return b;
}
