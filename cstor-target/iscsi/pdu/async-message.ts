// Asynchronous Message (opcode 0x32, RFC 7143 §11.9); we send only event 1 ("logout requested").
//
//  byte  0      0x32
//  byte  1      0x80
//  bytes 2-3    reserved
//  byte  4      TotalAHSLength (0)   bytes 5-7 DataSegmentLength
//  bytes 8-15   LUN or reserved
//  bytes 16-19  0xffffffff
//  bytes 20-23  reserved
//  bytes 24-27  StatSN   bytes 28-31 ExpCmdSN   bytes 32-35 MaxCmdSN
//  byte  36     AsyncEvent       byte 37 AsyncVCode
//  bytes 38-39  Parameter1       bytes 40-41 Parameter2    bytes 42-43 Parameter3
//  bytes 44-47  reserved
import { NO_TAG, Opcode, startBhs, type StatusNumbers } from './bhs.ts';

export const AsyncEvent = { scsiEvent: 0, logoutRequest: 1, dropConnection: 2, dropAllConnections: 3, renegotiate: 4 } as const;

export interface AsyncMessage extends StatusNumbers {
  readonly event: number;
  readonly parameter1: number;
  readonly parameter2: number;
  readonly parameter3: number;
}

export function encodeAsyncMessage(m: AsyncMessage): Buffer {
  return startBhs(Opcode.AsyncMessage, 0x80, 0, 0, 0)
    .skip(8)
    .u32be(NO_TAG)
    .skip(4)
    .u32be(m.statSN)
    .u32be(m.expCmdSN)
    .u32be(m.maxCmdSN)
    .u8(m.event)
    .u8(0)
    .u16be(m.parameter1)
    .u16be(m.parameter2)
    .u16be(m.parameter3).buf;
}
