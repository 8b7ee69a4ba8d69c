// Logout Request (opcode 0x06, RFC 7143 §11.14).
//
//  byte  0      | . | I | 0x06 |
//  byte  1      | 1 | Reason Code (7) |   0 close session, 1 close connection, 2 remove for recovery
//  bytes 2-3    reserved
//  byte  4      TotalAHSLength (0)   bytes 5-7 DataSegmentLength (0)
//  bytes 8-15   reserved
//  bytes 16-19  Initiator Task Tag
//  bytes 20-21  CID (or reserved)    bytes 22-23 reserved
//  bytes 24-27  CmdSN            bytes 28-31 ExpStatSN
//  bytes 32-47  reserved
import { Reader } from '../../../lib/binary.ts';
import type { RawPdu } from './bhs.ts';

export interface LogoutRequest {
  readonly immediate: boolean;
  readonly reason: number;
  readonly itt: number;
  readonly cid: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
}

export function decodeLogoutRequest(pdu: RawPdu): LogoutRequest {
  const r = new Reader(pdu.bhs, 'iSCSI Logout Request');
  const b0 = r.u8();
  const f = r.u8();
  r.skip(14);
  const itt = r.u32be();
  const cid = r.u16be();
  r.skip(2);
  const cmdSN = r.u32be();
  const expStatSN = r.u32be();
  return { immediate: (b0 & 0x40) !== 0, reason: f & 0x7f, itt, cid, cmdSN, expStatSN };
}
