// Login Request (opcode 0x03, RFC 7143 §11.12).
//
//  byte  0      | . | 1 | 0x03 |
//  byte  1      | T | C | . | . | CSG (2) | NSG (2) |
//  byte  2      Version-max      byte 3  Version-min
//  byte  4      TotalAHSLength   bytes 5-7 DataSegmentLength
//  bytes 8-13   ISID             bytes 14-15 TSIH
//  bytes 16-19  Initiator Task Tag
//  bytes 20-21  CID              bytes 22-23 reserved
//  bytes 24-27  CmdSN            bytes 28-31 ExpStatSN
//  bytes 32-47  reserved
//  data: text key=value pairs, NUL separated
import { Reader } from '../../../lib/binary.ts';
import type { RawPdu } from './bhs.ts';

export interface LoginRequest {
  readonly transit: boolean;
  readonly cont: boolean;
  readonly csg: number;
  readonly nsg: number;
  readonly versionMax: number;
  readonly versionMin: number;
  readonly isid: Buffer;
  readonly tsih: number;
  readonly itt: number;
  readonly cid: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  readonly data: Buffer;
}

export function decodeLoginRequest(pdu: RawPdu): LoginRequest {
  const r = new Reader(pdu.bhs, 'iSCSI Login Request');
  r.skip(1);
  const f = r.u8();
  const versionMax = r.u8();
  const versionMin = r.u8();
  r.skip(4);
  const isid = Buffer.from(r.bytes(6));
  const tsih = r.u16be();
  const itt = r.u32be();
  const cid = r.u16be();
  r.skip(2);
  const cmdSN = r.u32be();
  const expStatSN = r.u32be();
  return {
    transit: (f & 0x80) !== 0,
    cont: (f & 0x40) !== 0,
    csg: (f >> 2) & 3,
    nsg: f & 3,
    versionMax,
    versionMin,
    isid,
    tsih,
    itt,
    cid,
    cmdSN,
    expStatSN,
    data: pdu.data,
  };
}
