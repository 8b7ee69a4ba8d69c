// Replica protocol opcodes (the header's `opcode` byte). A reply carries its request's opcode with
// the REPLY flag set. Values are stable: never renumber, only add.
export const opcodes = {
  open: 1,
  read: 2,
  write: 3,
  sync: 4,
  unmap: 5,
  status: 6,
  stats: 7,
  snapshotCreate: 8,
  snapshotDestroy: 9,
  snapshotList: 10,
  readLayer: 11,
  readHeadSince: 12,
  rebuildStart: 13,
  importLayerBegin: 14,
  importLayerWrite: 15,
  importLayerEnd: 16,
  writeIfNewer: 17,
  rebuildDone: 18,
  markHealthy: 19,
  // 20 is taken: KEEPALIVE, pool → target only, never a request (messages/keepalive.ts).
} as const;

export type OpcodeName = keyof typeof opcodes;
export type Opcode = (typeof opcodes)[OpcodeName];

const namesByOpcode = new Map<number, OpcodeName>(Object.entries(opcodes).map(([k, v]) => [v, k as OpcodeName]));

/** The opcode's name, or undefined for an unknown opcode. */
export function opcodeName(op: number): OpcodeName | undefined {
  return namesByOpcode.get(op);
}
