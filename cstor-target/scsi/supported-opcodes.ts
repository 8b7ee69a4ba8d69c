// REPORT SUPPORTED OPERATION CODES (SPC-4 §6.35, MAINTENANCE IN service action 0x0C): the commands
// the disk implements, each with its CDB length and usage map.
//
// All-commands descriptor (8 bytes, + 12 with RCTD):
//   opcode | reserved | service action (2) | reserved | CTDP, SERVACTV | CDB length (2)
// One-command data: reserved | CTDP, SUPPORT (3 bits) | CDB size (2) | CDB usage data (+ 12 with RCTD)
// Command timeouts descriptor (12): length 0x000A (2) | reserved | command specific | nominal (4) | recommended (4)
import { invalidFieldInCdb } from './sense.ts';

interface CommandInfo {
  readonly opcode: number;
  readonly sa?: number;
}

/** Opcodes without service actions, and (opcode, service action) pairs, that ScsiDisk handles. */
const commands: readonly CommandInfo[] = [
  ...[0x00, 0x03, 0x08, 0x0a, 0x12, 0x15, 0x16, 0x17, 0x1a, 0x1b, 0x1e, 0x25, 0x28, 0x2a, 0x2e, 0x2f, 0x34, 0x35, 0x37, 0x41, 0x42, 0x55, 0x5a, 0x88, 0x89, 0x8a, 0x8e, 0x8f, 0x90, 0x91, 0x93, 0xa0, 0xa8, 0xaa, 0xae, 0xaf, 0xb7].map(
    (opcode) => ({ opcode }),
  ),
  { opcode: 0x5e, sa: 0x00 },
  { opcode: 0x5e, sa: 0x01 },
  { opcode: 0x5e, sa: 0x02 },
  { opcode: 0x5e, sa: 0x03 },
  ...[0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06].map((sa) => ({ opcode: 0x5f, sa })),
  { opcode: 0x9e, sa: 0x10 },
  { opcode: 0x9e, sa: 0x12 },
  { opcode: 0xa3, sa: 0x0c },
];

const withServiceActions: ReadonlySet<number> = new Set(commands.filter((c) => c.sa !== undefined).map((c) => c.opcode));

function cdbLength(opcode: number): number {
  switch (opcode >> 5) {
    case 0:
      return 6;
    case 1:
    case 2:
      return 10;
    case 4:
      return 16;
    case 5:
      return 12;
    default:
      return 10;
  }
}

/** Bits we look at: every bit of every field byte; the service action's bits where there is one. */
function usageMap(c: CommandInfo): Buffer {
  const n = cdbLength(c.opcode);
  const b = Buffer.alloc(n, 0xff);
  b[0] = c.opcode;
  if (c.sa !== undefined) b[1] = 0xe0 | c.sa; // service action in bits 4-0, other bits of byte 1 evaluated
  b[n - 1] = 0x07; // CONTROL: NACA and the obsolete bits are checked (NACA must be 0)
  return b;
}

function timeouts(): Buffer {
  const t = Buffer.alloc(12);
  t.writeUInt16BE(0x0a, 0);
  t.writeUInt32BE(0, 4); // nominal: not specified
  t.writeUInt32BE(30, 8); // recommended: 30 s
  return t;
}

export function reportSupportedOpcodes(cdb: Buffer): Buffer {
  const rctd = (cdb[2]! & 0x80) !== 0;
  const options = cdb[2]! & 0x07;
  const opcode = cdb[3]!;
  const sa = cdb.readUInt16BE(4);
  if (options === 0) {
    const descs = commands.map((c) => {
      const d = Buffer.alloc(8);
      d[0] = c.opcode;
      d.writeUInt16BE(c.sa ?? 0, 2);
      d[5] = (rctd ? 0x02 : 0) | (c.sa !== undefined ? 0x01 : 0);
      d.writeUInt16BE(cdbLength(c.opcode), 6);
      return rctd ? Buffer.concat([d, timeouts()]) : d;
    });
    const body = Buffer.concat(descs);
    const h = Buffer.alloc(4);
    h.writeUInt32BE(body.length, 0);
    return Buffer.concat([h, body]);
  }
  if (options > 3) throw invalidFieldInCdb(2, `reporting options ${options}`, 2);
  const hasSa = withServiceActions.has(opcode);
  if (options === 1 && hasSa) throw invalidFieldInCdb(3, `opcode 0x${opcode.toString(16)} has service actions`);
  if (options === 2 && !hasSa) throw invalidFieldInCdb(3, `opcode 0x${opcode.toString(16)} has no service actions`);
  const found = commands.find((c) => c.opcode === opcode && (hasSa ? c.sa === sa : true));
  const h = Buffer.alloc(4);
  if (!found) {
    h[1] = 0x01; // not supported
    return h;
  }
  const map = usageMap(found);
  h[1] = (rctd ? 0x80 : 0) | 0x03; // supported, per the standard
  h.writeUInt16BE(map.length, 2);
  return Buffer.concat([h, map, ...(rctd ? [timeouts()] : [])]);
}
