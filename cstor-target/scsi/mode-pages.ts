// MODE SENSE(6)/(10) data (SPC-4 §7.5, SBC-3 §6.4): the caching (0x08), control (0x0A) and
// informational exceptions (0x1C) pages; page 0x3F returns them all.
//
// Mode parameter header (6):  mode data length | medium type | device-specific (WP, DPOFUA) | block descriptor length
// Mode parameter header (10): mode data length (2) | medium type | device-specific | LONGLBA | reserved | block descriptor length (2)
// Short block descriptor (8): number of blocks (4) | reserved | block length (3)
import { invalidFieldInCdb } from './sense.ts';

export interface ModeState {
  writeCacheEnabled: boolean;
}

/** page code → page bytes, for page control 0 (current), 1 (changeable) or 2 (default). */
function pageBytes(page: number, pc: number, state: ModeState): Buffer | undefined {
  switch (page) {
    case 0x08: {
      const b = Buffer.alloc(20);
      b[0] = 0x08;
      b[1] = 0x12;
      if (pc === 1) b[2] = 0x04; // WCE changeable
      else if (pc === 2) b[2] = 0x04;
      else b[2] = state.writeCacheEnabled ? 0x04 : 0;
      return b;
    }
    case 0x0a: {
      const b = Buffer.alloc(12);
      b[0] = 0x0a;
      b[1] = 0x0a;
      if (pc !== 1) {
        b[2] = 0x00; // TST 0, D_SENSE 0
        b[3] = 0x10; // queue algorithm modifier 1: unrestricted reordering
        b.writeUInt16BE(0xffff, 8); // busy timeout period: unlimited
      }
      return b;
    }
    case 0x1c: {
      const b = Buffer.alloc(12);
      b[0] = 0x1c;
      b[1] = 0x0a;
      return b;
    }
    default:
      return undefined;
  }
}

export interface ModeSenseArgs {
  readonly ten: boolean;
  readonly cdb: Buffer;
  readonly blocks: number;
  readonly blockSize: number;
  readonly state: ModeState;
}

export function modeSense(a: ModeSenseArgs): Buffer {
  const dbd = (a.cdb[1]! & 0x08) !== 0;
  const llbaa = a.ten && (a.cdb[1]! & 0x10) !== 0;
  const pc = a.cdb[2]! >> 6;
  const page = a.cdb[2]! & 0x3f;
  const subpage = a.cdb[3]!;
  if (pc === 3) throw invalidFieldInCdb(2, 'saved values are not supported', 7);
  let pages: Buffer[];
  if (page === 0x3f) {
    if (subpage !== 0 && subpage !== 0xff) throw invalidFieldInCdb(3, `subpage ${subpage}`);
    pages = [0x08, 0x0a, 0x1c].map((p) => pageBytes(p, pc, a.state)!);
  } else {
    if (subpage !== 0) throw invalidFieldInCdb(3, `subpage ${subpage}`);
    const p = pageBytes(page, pc, a.state);
    if (!p) throw invalidFieldInCdb(2, `mode page 0x${page.toString(16)}`, 5);
    pages = [p];
  }
  let desc = Buffer.alloc(0);
  if (!dbd) {
    if (llbaa) {
      desc = Buffer.alloc(16);
      desc.writeBigUInt64BE(BigInt(a.blocks), 0);
      desc.writeUInt32BE(a.blockSize, 12);
    } else {
      desc = Buffer.alloc(8);
      desc.writeUInt32BE(Math.min(a.blocks, 0xffffffff), 0);
      desc.writeUIntBE(a.blockSize, 5, 3);
    }
  }
  const body = Buffer.concat([desc, ...pages]);
  const deviceSpecific = 0x10; // DPOFUA
  if (a.ten) {
    const h = Buffer.alloc(8);
    h.writeUInt16BE(6 + body.length, 0);
    h[3] = deviceSpecific;
    h[4] = llbaa && !dbd ? 1 : 0;
    h.writeUInt16BE(desc.length, 6);
    return Buffer.concat([h, body]);
  }
  const h = Buffer.alloc(4);
  h[0] = Math.min(255, 3 + body.length);
  h[2] = deviceSpecific;
  h[3] = desc.length;
  return Buffer.concat([h, body]);
}
