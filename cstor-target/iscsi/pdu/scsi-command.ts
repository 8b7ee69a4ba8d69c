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
import { BHS_LENGTH, decodeLunAt, type RawPdu } from './bhs.ts';

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
  // Once per command: read field by field (the BHS is exactly 48 bytes; checked here).
  const b = pdu.bhs;
  if (b.length < BHS_LENGTH) throw new CstorError('protocol', `iSCSI SCSI Command truncated: BHS of ${b.length} bytes, need ${BHS_LENGTH}`);
  const b0 = b[0]!;
  const f = b[1]!;
  let cdb = b.subarray(32, 48);
  if (pdu.ahs.length > 0) {
    const ext = extendedCdb(pdu.ahs);
    if (ext) cdb = Buffer.concat([cdb, ext]);
  }
  return {
    immediate: (b0 & 0x40) !== 0,
    final: (f & 0x80) !== 0,
    read: (f & 0x40) !== 0,
    write: (f & 0x20) !== 0,
    attr: f & 7,
    lun: decodeLunAt(b, 8),
    itt: b.readUInt32BE(16),
    expectedLength: b.readUInt32BE(20),
    cmdSN: b.readUInt32BE(24),
    expStatSN: b.readUInt32BE(28),
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
