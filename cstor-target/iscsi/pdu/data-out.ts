// SCSI Data-Out (opcode 0x05, RFC 7143 §11.7).
//
//  byte  0      0x05
//  byte  1      | F | reserved (7) |
//  bytes 2-3    reserved
//  byte  4      TotalAHSLength   bytes 5-7 DataSegmentLength
//  bytes 8-15   LUN or reserved
//  bytes 16-19  Initiator Task Tag
//  bytes 20-23  Target Transfer Tag (from the R2T, or 0xffffffff for unsolicited data)
//  bytes 24-27  reserved         bytes 28-31 ExpStatSN
//  bytes 32-35  reserved
//  bytes 36-39  DataSN
//  bytes 40-43  Buffer Offset
//  bytes 44-47  reserved
//  data: the write data
import { Reader } from '../../../lib/binary.ts';
import type { RawPdu } from './bhs.ts';

export interface DataOut {
  readonly final: boolean;
  readonly itt: number;
  readonly ttt: number;
  readonly expStatSN: number;
  readonly dataSN: number;
  readonly bufferOffset: number;
  readonly data: Buffer;
}

export function decodeDataOut(pdu: RawPdu): DataOut {
  const r = new Reader(pdu.bhs, 'iSCSI Data-Out');
  r.skip(1);
  const f = r.u8();
  r.skip(14);
  const itt = r.u32be();
  const ttt = r.u32be();
  r.skip(4);
  const expStatSN = r.u32be();
  r.skip(4);
  const dataSN = r.u32be();
  const bufferOffset = r.u32be();
  return { final: (f & 0x80) !== 0, itt, ttt, expStatSN, dataSN, bufferOffset, data: pdu.data };
}
