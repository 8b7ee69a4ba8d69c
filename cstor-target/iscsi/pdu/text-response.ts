// Text Response (opcode 0x24, RFC 7143 §11.11).
//
//  byte  0      0x24
//  byte  1      | F | C | reserved (6) |
//  bytes 2-3    reserved
//  byte  4      TotalAHSLength   bytes 5-7 DataSegmentLength
//  bytes 8-15   LUN or reserved
//  bytes 16-19  Initiator Task Tag
//  bytes 20-23  Target Transfer Tag (0xffffffff when final)
//  bytes 24-27  StatSN   bytes 28-31 ExpCmdSN   bytes 32-35 MaxCmdSN
//  bytes 36-47  reserved
//  data: text key=value pairs
import { Opcode, startBhs, type StatusNumbers } from './bhs.ts';

export interface TextResponse extends StatusNumbers {
  readonly final: boolean;
  readonly cont: boolean;
  readonly itt: number;
  readonly ttt: number;
  readonly dataLength: number;
}

export function encodeTextResponse(m: TextResponse): Buffer {
  return startBhs(Opcode.TextResponse, (m.final ? 0x80 : 0) | (m.cont ? 0x40 : 0), 0, 0, m.dataLength)
    .skip(8)
    .u32be(m.itt)
    .u32be(m.ttt)
    .u32be(m.statSN)
    .u32be(m.expCmdSN)
    .u32be(m.maxCmdSN).buf;
}
