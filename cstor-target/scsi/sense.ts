// SCSI status codes and sense data (SPC-4 §4.5). We return fixed-format sense (response code 0x70)
// unless the initiator asks REQUEST SENSE for descriptor format.
//
// Fixed format sense data (18 bytes):
//  byte  0      | VALID | response code 0x70 |
//  byte  1      obsolete
//  byte  2      | FILEMARK | EOM | ILI | . | sense key (4) |
//  bytes 3-6    INFORMATION (big-endian)
//  byte  7      additional sense length (10)
//  bytes 8-11   command-specific information
//  byte  12     ASC    byte 13 ASCQ
//  byte  14     FRU code
//  bytes 15-17  | SKSV | sense-key specific (e.g. field pointer: C/D, BPV, bit, byte) |
import { CstorError } from '../../lib/errors.ts';

export const ScsiStatus = {
  good: 0x00,
  checkCondition: 0x02,
  conditionMet: 0x04,
  busy: 0x08,
  reservationConflict: 0x18,
  taskSetFull: 0x28,
  taskAborted: 0x40,
} as const;

export const SenseKey = {
  noSense: 0x0,
  recoveredError: 0x1,
  notReady: 0x2,
  mediumError: 0x3,
  hardwareError: 0x4,
  illegalRequest: 0x5,
  unitAttention: 0x6,
  dataProtect: 0x7,
  abortedCommand: 0xb,
  miscompare: 0xe,
} as const;

/** [ASC, ASCQ] pairs used by the disk. */
export const Asc = {
  noAdditional: [0x00, 0x00],
  invalidOpcode: [0x20, 0x00],
  lbaOutOfRange: [0x21, 0x00],
  invalidFieldInCdb: [0x24, 0x00],
  lunNotSupported: [0x25, 0x00],
  invalidFieldInParameterList: [0x26, 0x00],
  parameterListLengthError: [0x1a, 0x00],
  miscompareDuringVerify: [0x1d, 0x00],
  savingParametersNotSupported: [0x39, 0x00],
  writeError: [0x0c, 0x00],
  unrecoveredReadError: [0x11, 0x00],
  internalTargetFailure: [0x44, 0x00],
  insufficientRegistrationResources: [0x55, 0x04],
  powerOnReset: [0x29, 0x00],
  busDeviceReset: [0x29, 0x03],
  commandsClearedByAnotherInitiator: [0x2f, 0x00],
} as const satisfies Record<string, readonly [number, number]>;

export interface SenseOptions {
  /** INFORMATION field, with VALID set (e.g. the miscompare offset). */
  information?: number;
  /** Sense-key specific field pointer: byte (and bit) of the CDB (cd=true) or parameter list that is wrong. */
  field?: { cd: boolean; byte: number; bit?: number };
}

export function fixedSense(key: number, asc: readonly [number, number], opts: SenseOptions = {}): Buffer {
  const s = Buffer.alloc(18);
  s[0] = 0x70 | (opts.information !== undefined ? 0x80 : 0);
  s[2] = key & 0x0f;
  if (opts.information !== undefined) s.writeUInt32BE(opts.information >>> 0, 3);
  s[7] = 10;
  s[12] = asc[0];
  s[13] = asc[1];
  if (opts.field) {
    s[15] = 0x80 | (opts.field.cd ? 0x40 : 0) | (opts.field.bit !== undefined ? 0x08 | (opts.field.bit & 7) : 0);
    s.writeUInt16BE(opts.field.byte, 16);
  }
  return s;
}

/** Descriptor-format sense (response code 0x72) with no descriptors: REQUEST SENSE with DESC=1. */
export function descriptorSense(key: number, asc: readonly [number, number]): Buffer {
  const s = Buffer.alloc(8);
  s[0] = 0x72;
  s[1] = key & 0x0f;
  s[2] = asc[0];
  s[3] = asc[1];
  return s;
}

/** Thrown by command handlers to end a command with CHECK CONDITION and this sense. */
export class ScsiSenseError extends CstorError {
  readonly sense: Buffer;
  constructor(key: number, asc: readonly [number, number], message: string, opts: SenseOptions = {}) {
    super('invalid', message);
    this.name = 'ScsiSenseError';
    this.sense = fixedSense(key, asc, opts);
  }
}

export function invalidFieldInCdb(byte: number, what: string, bit?: number): ScsiSenseError {
  return new ScsiSenseError(SenseKey.illegalRequest, Asc.invalidFieldInCdb, `invalid field in CDB: ${what}`, { field: { cd: true, byte, ...(bit !== undefined ? { bit } : {}) } });
}

export function invalidFieldInParameterList(byte: number, what: string): ScsiSenseError {
  return new ScsiSenseError(SenseKey.illegalRequest, Asc.invalidFieldInParameterList, `invalid field in parameter list: ${what}`, { field: { cd: false, byte } });
}

export function lbaOutOfRange(lba: number, blocks: number): ScsiSenseError {
  return new ScsiSenseError(SenseKey.illegalRequest, Asc.lbaOutOfRange, `LBA ${lba} + ${blocks} blocks is out of range`);
}
