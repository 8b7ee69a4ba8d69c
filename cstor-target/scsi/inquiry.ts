// INQUIRY data (SPC-4 §6.6): the standard page and the VPD pages a thin-provisioned disk reports.
import { createHash } from 'node:crypto';

export interface DiskIdentity {
  /** Unit serial number (VPD 0x80), ASCII. */
  readonly serial: string;
  /** T10 vendor identification, 8 ASCII chars. */
  readonly vendor: string;
  /** Product identification, 16 ASCII chars. */
  readonly product: string;
  /** Product revision, 4 ASCII chars. */
  readonly revision: string;
}

export interface BlockLimits {
  readonly maxTransferBlocks: number;
  readonly optimalTransferBlocks: number;
  readonly maxUnmapBlocks: number;
  readonly maxUnmapDescriptors: number;
  readonly maxWriteSameBlocks: number;
  readonly maxCompareAndWriteBlocks: number;
  /** Report LBPRZ (unmapped blocks read as zeros) in VPD 0xB2 and READ CAPACITY 16. */
  readonly lbprz: boolean;
}

export const SUPPORTED_VPD_PAGES = [0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2] as const;

function ascii(s: string, n: number): Buffer {
  return Buffer.from(s.padEnd(n, ' ').slice(0, n), 'ascii');
}

/** Standard INQUIRY data, 96 bytes; a LUN that does not exist answers qualifier 3, type 0x1f. */
export function standardInquiry(id: DiskIdentity, present: boolean): Buffer {
  const b = Buffer.alloc(96);
  b[0] = present ? 0x00 : 0x7f; // qualifier 0 / direct access, or 011b / 1Fh: no LU here
  b[1] = 0x00; // not removable
  b[2] = 0x06; // SPC-4
  b[3] = 0x12; // HiSup, response data format 2
  b[4] = b.length - 5;
  b[5] = 0x00;
  b[6] = 0x00;
  b[7] = 0x02; // CmdQue
  ascii(id.vendor, 8).copy(b, 8);
  ascii(id.product, 16).copy(b, 16);
  ascii(id.revision, 4).copy(b, 32);
  // Version descriptors at 58: SAM-5, iSCSI, SPC-4, SBC-3.
  const descriptors = [0x00a0, 0x0960, 0x0460, 0x04c0];
  descriptors.forEach((d, i) => b.writeUInt16BE(d, 58 + i * 2));
  return b;
}

/** The 8-byte NAA 5 ("IEEE Registered") identifier, derived from the serial so it is stable. */
export function naaIdentifier(serial: string): Buffer {
  const h = createHash('sha1').update(serial).digest();
  const b = Buffer.alloc(8);
  // NAA 5 | OUI 0x6ce3ed (locally chosen) | 36-bit vendor specific id from the hash.
  b[0] = 0x56;
  b[1] = 0xce;
  b[2] = 0x3e;
  b[3] = 0xd0 | (h[0]! & 0x0f);
  h.copy(b, 4, 1, 5);
  return b;
}

export function vpdPage(page: number, id: DiskIdentity, limits: BlockLimits): Buffer | undefined {
  switch (page) {
    case 0x00: {
      const b = Buffer.alloc(4 + SUPPORTED_VPD_PAGES.length);
      b[1] = 0x00;
      b.writeUInt16BE(SUPPORTED_VPD_PAGES.length, 2);
      SUPPORTED_VPD_PAGES.forEach((p, i) => (b[4 + i] = p));
      return b;
    }
    case 0x80: {
      const s = Buffer.from(id.serial, 'ascii');
      const b = Buffer.alloc(4 + s.length);
      b[1] = 0x80;
      b.writeUInt16BE(s.length, 2);
      s.copy(b, 4);
      return b;
    }
    case 0x83:
      return deviceIdentification(id);
    case 0xb0: {
      const b = Buffer.alloc(64);
      b[1] = 0xb0;
      b.writeUInt16BE(0x3c, 2);
      b[4] = 0x01; // WSNZ: WRITE SAME with 0 blocks is refused
      b[5] = Math.min(255, limits.maxCompareAndWriteBlocks);
      b.writeUInt16BE(1, 6); // optimal transfer length granularity
      b.writeUInt32BE(limits.maxTransferBlocks, 8);
      b.writeUInt32BE(limits.optimalTransferBlocks, 12);
      b.writeUInt32BE(limits.maxTransferBlocks, 16); // max prefetch length
      b.writeUInt32BE(limits.maxUnmapBlocks, 20);
      b.writeUInt32BE(limits.maxUnmapDescriptors, 24);
      b.writeUInt32BE(1, 28); // optimal unmap granularity
      b.writeUInt32BE(0, 32); // UGAVALID 0
      b.writeBigUInt64BE(BigInt(limits.maxWriteSameBlocks), 36);
      return b;
    }
    case 0xb1: {
      const b = Buffer.alloc(64);
      b[1] = 0xb1;
      b.writeUInt16BE(0x3c, 2);
      b.writeUInt16BE(1, 4); // non-rotating medium
      return b;
    }
    case 0xb2: {
      const b = Buffer.alloc(8);
      b[1] = 0xb2;
      b.writeUInt16BE(4, 2);
      b[4] = 0; // threshold exponent
      b[5] = 0x80 | 0x40 | 0x20 | (limits.lbprz ? 0x04 : 0); // LBPU, LBPWS, LBPWS10, LBPRZ
      b[6] = 0x02; // provisioning type: thin
      return b;
    }
    default:
      return undefined;
  }
}

function designator(codeSet: number, piv_assoc_type: number, value: Buffer, proto = 0): Buffer {
  const b = Buffer.alloc(4 + value.length);
  b[0] = (proto << 4) | codeSet;
  b[1] = piv_assoc_type;
  b[3] = value.length;
  value.copy(b, 4);
  return b;
}

function deviceIdentification(id: DiskIdentity): Buffer {
  const naa = designator(0x1, 0x03, naaIdentifier(id.serial)); // binary, LU, NAA
  const t10 = designator(0x2, 0x01, Buffer.concat([ascii(id.vendor, 8), Buffer.from(id.serial, 'ascii')])); // ASCII, LU, T10
  const rtp = Buffer.alloc(4);
  rtp.writeUInt16BE(1, 2);
  const relPort = designator(0x1, 0x80 | 0x10 | 0x04, rtp, 0x5); // PIV, target port, relative target port, iSCSI
  const tpg = Buffer.alloc(4);
  tpg.writeUInt16BE(1, 2);
  const portGroup = designator(0x1, 0x80 | 0x10 | 0x05, tpg, 0x5); // target port group
  const body = Buffer.concat([naa, t10, relPort, portGroup]);
  const head = Buffer.alloc(4);
  head[1] = 0x83;
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([head, body]);
}
