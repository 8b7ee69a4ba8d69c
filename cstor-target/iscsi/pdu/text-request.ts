// Text Request (opcode 0x04, RFC 7143 §11.10).
//
//  byte  0      | . | I | 0x04 |
//  byte  1      | F | C | reserved (6) |
//  bytes 2-3    reserved
//  byte  4      TotalAHSLength   bytes 5-7 DataSegmentLength
//  bytes 8-15   LUN or reserved
//  bytes 16-19  Initiator Task Tag
//  bytes 20-23  Target Transfer Tag
//  bytes 24-27  CmdSN            bytes 28-31 ExpStatSN
//  bytes 32-47  reserved
//  data: text key=value pairs
import { Reader } from '../../../lib/binary.ts';
import type { RawPdu } from './bhs.ts';

export interface TextRequest {
  readonly immediate: boolean;
  readonly final: boolean;
  readonly cont: boolean;
  readonly itt: number;
  readonly ttt: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  readonly data: Buffer;
}

export function decodeTextRequest(pdu: RawPdu): TextRequest {
  const r = new Reader(pdu.bhs, 'iSCSI Text Request');
  const b0 = r.u8();
  const f = r.u8();
  r.skip(14);
  const itt = r.u32be();
  const ttt = r.u32be();
  const cmdSN = r.u32be();
  const expStatSN = r.u32be();
  return { immediate: (b0 & 0x40) !== 0, final: (f & 0x80) !== 0, cont: (f & 0x40) !== 0, itt, ttt, cmdSN, expStatSN, data: pdu.data };
}
