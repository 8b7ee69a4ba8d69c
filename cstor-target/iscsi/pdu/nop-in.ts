// NOP-In (opcode 0x20, RFC 7143 §11.19).
//
//  byte  0      0x20
//  byte  1      0x80
//  bytes 2-3    reserved
//  byte  4      TotalAHSLength   bytes 5-7 DataSegmentLength
//  bytes 8-15   LUN or reserved
//  bytes 16-19  Initiator Task Tag (0xffffffff for a target-initiated ping)
//  bytes 20-23  Target Transfer Tag (0xffffffff for a reply; ours when we ping and want an answer)
//  bytes 24-27  StatSN   bytes 28-31 ExpCmdSN   bytes 32-35 MaxCmdSN
//  bytes 36-47  reserved
//  data: the NOP-Out's ping data, echoed
import { Opcode, startBhs, type StatusNumbers } from './bhs.ts';

export interface NopIn extends StatusNumbers {
  readonly lunField: Buffer;
  readonly itt: number;
  readonly ttt: number;
  readonly dataLength: number;
}

export function encodeNopIn(m: NopIn): Buffer {
  return startBhs(Opcode.NopIn, 0x80, 0, 0, m.dataLength)
    .bytes(m.lunField)
    .u32be(m.itt)
    .u32be(m.ttt)
    .u32be(m.statSN)
    .u32be(m.expCmdSN)
    .u32be(m.maxCmdSN).buf;
}
