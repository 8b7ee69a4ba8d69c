// Login Response (opcode 0x23, RFC 7143 §11.13).
//
//  byte  0      0x23
//  byte  1      | T | C | . | . | CSG (2) | NSG (2) |
//  byte  2      Version-max      byte 3  Version-active
//  byte  4      TotalAHSLength   bytes 5-7 DataSegmentLength
//  bytes 8-13   ISID             bytes 14-15 TSIH
//  bytes 16-19  Initiator Task Tag
//  bytes 20-23  reserved
//  bytes 24-27  StatSN   bytes 28-31 ExpCmdSN   bytes 32-35 MaxCmdSN
//  byte  36     Status-Class     byte 37 Status-Detail
//  bytes 38-47  reserved
//  data: text key=value pairs
import { Opcode, startBhs, type StatusNumbers } from './bhs.ts';

export interface LoginResponse extends StatusNumbers {
  readonly transit: boolean;
  readonly cont: boolean;
  readonly csg: number;
  readonly nsg: number;
  readonly isid: Buffer;
  readonly tsih: number;
  readonly itt: number;
  readonly statusClass: number;
  readonly statusDetail: number;
  readonly dataLength: number;
}

export function encodeLoginResponse(m: LoginResponse): Buffer {
  const flags = (m.transit ? 0x80 : 0) | (m.cont ? 0x40 : 0) | ((m.csg & 3) << 2) | (m.nsg & 3);
  return startBhs(Opcode.LoginResponse, flags, 0, 0, m.dataLength)
    .bytes(m.isid)
    .u16be(m.tsih)
    .u32be(m.itt)
    .skip(4)
    .u32be(m.statSN)
    .u32be(m.expCmdSN)
    .u32be(m.maxCmdSN)
    .u8(m.statusClass)
    .u8(m.statusDetail).buf;
}

/** Login status class/detail pairs (RFC 7143 §11.13.5). */
export const LoginStatus = {
  success: [0, 0],
  authFailed: [2, 1],
  forbidden: [2, 2],
  targetNotFound: [2, 3],
  targetRemoved: [2, 4],
  unsupportedVersion: [2, 5],
  tooManyConnections: [2, 6],
  missingParameter: [2, 7],
  cannotIncludeInSession: [2, 8],
  sessionTypeUnsupported: [2, 9],
  sessionDoesNotExist: [2, 10],
  invalidDuringLogin: [2, 11],
  initiatorError: [2, 0],
  targetError: [3, 0],
  serviceUnavailable: [3, 1],
  outOfResources: [3, 2],
} as const satisfies Record<string, readonly [number, number]>;
