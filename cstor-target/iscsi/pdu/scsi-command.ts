// SCSI Command (opcode 0x01, RFC 7143 §11.3).
//
//  byte  0      | . | I | 0x01 |
//  byte  1      | F | R | W | . | . | ATTR (3) |
//  bytes 2-3    reserved
//  byte  4      TotalAHSLength   bytes 5-7 DataSegmentLength
//  bytes 8-15   LUN
//  bytes 16-19  Initiator Task Tag
//  bytes 20-23  Expected Data Transfer Length
//  bytes 24-27  CmdSN            bytes 28-31 ExpStatSN
//  bytes 32-47  SCDB (the first 16 bytes of the CDB)
//  AHS type 1 (Extended CDB): AHSLength (2) | type 1 | reserved | the CDB's bytes past 16
//  data: immediate data (writes)
import { Reader } from '../../../lib/binary.ts';
import { CstorError } from '../../../lib/errors.ts';
import { decodeLun, type RawPdu } from './bhs.ts';

export interface ScsiCommand {
  readonly immediate: boolean;
  readonly final: boolean;
  readonly read: boolean;
  readonly write: boolean;
  readonly attr: number;
  readonly lun: number;
  readonly itt: number;
  readonly expectedLength: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  readonly cdb: Buffer;
  readonly data: Buffer;
}

export function decodeScsiCommand(pdu: RawPdu): ScsiCommand {
  const r = new Reader(pdu.bhs, 'iSCSI SCSI Command');
  const b0 = r.u8();
  const f = r.u8();
  r.skip(6);
  const lun = decodeLun(r.bytes(8));
  const itt = r.u32be();
  const expectedLength = r.u32be();
  const cmdSN = r.u32be();
  const expStatSN = r.u32be();
  let cdb = r.bytes(16);
  const ext = extendedCdb(pdu.ahs);
  if (ext) cdb = Buffer.concat([cdb, ext]);
  return {
    immediate: (b0 & 0x40) !== 0,
    final: (f & 0x80) !== 0,
    read: (f & 0x40) !== 0,
    write: (f & 0x20) !== 0,
    attr: f & 7,
    lun,
    itt,
    expectedLength,
    cmdSN,
    expStatSN,
    cdb,
    data: pdu.data,
  };
}

/** Walks the AHS list (each: length u16, type u8, specific u8, padded to 4) for an Extended CDB. */
function extendedCdb(ahs: Buffer): Buffer | undefined {
  const r = new Reader(ahs, 'iSCSI AHS');
  for (let i = 0; i < 64 && r.remaining > 0; i++) {
    const len = r.u16be();
    const type = r.u8();
    r.skip(1);
    if (len === 0) throw new CstorError('protocol', 'iSCSI AHS with length 0');
    const body = r.bytes(len - 1);
    r.skip((4 - ((len + 3) % 4)) % 4);
    if (type === 1) return body;
  }
  return undefined;
}
