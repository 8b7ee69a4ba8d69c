// Task Management Function Request (opcode 0x02, RFC 7143 §11.5).
//
//  byte  0      | . | I | 0x02 |
//  byte  1      | 1 | Function (7) |
//  bytes 2-3    reserved
//  byte  4      TotalAHSLength (0)   bytes 5-7 DataSegmentLength (0)
//  bytes 8-15   LUN
//  bytes 16-19  Initiator Task Tag
//  bytes 20-23  Referenced Task Tag
//  bytes 24-27  CmdSN            bytes 28-31 ExpStatSN
//  bytes 32-35  RefCmdSN         bytes 36-39 ExpDataSN
//  bytes 40-47  reserved
import { Reader } from '../../../lib/binary.ts';
import { decodeLun, type RawPdu } from './bhs.ts';

export const TmfFunction = {
  abortTask: 1,
  abortTaskSet: 2,
  clearAca: 3,
  clearTaskSet: 4,
  lunReset: 5,
  targetWarmReset: 6,
  targetColdReset: 7,
  taskReassign: 8,
} as const;

export interface TaskMgmtRequest {
  readonly immediate: boolean;
  readonly func: number;
  readonly lun: number;
  readonly itt: number;
  readonly refTaskTag: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  readonly refCmdSN: number;
}

export function decodeTaskMgmtRequest(pdu: RawPdu): TaskMgmtRequest {
  const r = new Reader(pdu.bhs, 'iSCSI Task Management Request');
  const b0 = r.u8();
  const f = r.u8();
  r.skip(6);
  const lun = decodeLun(r.bytes(8));
  const itt = r.u32be();
  const refTaskTag = r.u32be();
  const cmdSN = r.u32be();
  const expStatSN = r.u32be();
  const refCmdSN = r.u32be();
  return { immediate: (b0 & 0x40) !== 0, func: f & 0x7f, lun, itt, refTaskTag, cmdSN, expStatSN, refCmdSN };
}
