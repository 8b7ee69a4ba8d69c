// Task Management Function Response (opcode 0x22, RFC 7143 §11.6).
//
//  byte  0      0x22
//  byte  1      0x80
//  byte  2      Response         byte 3 reserved
//  byte  4      TotalAHSLength (0)   bytes 5-7 DataSegmentLength (0)
//  bytes 8-15   reserved
//  bytes 16-19  Initiator Task Tag
//  bytes 20-23  reserved
//  bytes 24-27  StatSN   bytes 28-31 ExpCmdSN   bytes 32-35 MaxCmdSN
//  bytes 36-47  reserved
import { Opcode, startBhs, type StatusNumbers } from './bhs.ts';

export const TmfResponse = {
  complete: 0,
  taskDoesNotExist: 1,
  lunDoesNotExist: 2,
  taskStillAllegiant: 3,
  reassignmentNotSupported: 4,
  notSupported: 5,
  authorizationFailed: 6,
  rejected: 255,
} as const;

export interface TaskMgmtResponse extends StatusNumbers {
  readonly itt: number;
  readonly response: number;
}

export function encodeTaskMgmtResponse(m: TaskMgmtResponse): Buffer {
  return startBhs(Opcode.TaskMgmtResponse, 0x80, m.response, 0, 0)
    .skip(8)
    .u32be(m.itt)
    .skip(4)
    .u32be(m.statSN)
    .u32be(m.expCmdSN)
    .u32be(m.maxCmdSN).buf;
}
