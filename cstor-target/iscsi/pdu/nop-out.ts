// NOP-Out (opcode 0x00, RFC 7143 §11.18).
//
//  byte  0      | . | I | 0x00 |
//  byte  1      0x80
//  bytes 2-3    reserved
//  byte  4      TotalAHSLength   bytes 5-7 DataSegmentLength
//  bytes 8-15   LUN or reserved
//  bytes 16-19  Initiator Task Tag (0xffffffff: an answer to our NOP-In, wants no reply)
//  bytes 20-23  Target Transfer Tag (echoes our NOP-In's TTT, or 0xffffffff)
//  bytes 24-27  CmdSN            bytes 28-31 ExpStatSN
//  bytes 32-47  reserved
//  data: ping data, echoed back in the NOP-In
import { Reader } from '../../../lib/binary.ts';
import type { RawPdu } from './bhs.ts';

export interface NopOut {
  readonly immediate: boolean;
  readonly lunField: Buffer;
  readonly itt: number;
  readonly ttt: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  readonly data: Buffer;
}

export function decodeNopOut(pdu: RawPdu): NopOut {
  const r = new Reader(pdu.bhs, 'iSCSI NOP-Out');
  const b0 = r.u8();
  r.skip(7);
  const lunField = r.bytes(8);
  const itt = r.u32be();
  const ttt = r.u32be();
  const cmdSN = r.u32be();
  const expStatSN = r.u32be();
  return { immediate: (b0 & 0x40) !== 0, lunField, itt, ttt, cmdSN, expStatSN, data: pdu.data };
}
