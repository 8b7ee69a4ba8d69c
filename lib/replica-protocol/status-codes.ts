// Reply status codes (the header's `status`): 0 is success; every other value is one CstorError
// code, so an error crosses the wire with its class intact. Values are stable: only add.
import type { CstorError, ErrorCode } from '../errors.ts';

export const statusOk = 0;

export const statusByCode: Readonly<Record<ErrorCode, number>> = {
  invalid: 1,
  not_found: 2,
  already_exists: 3,
  conflict: 4,
  not_ready: 5,
  gone: 6,
  unauthorized: 7,
  too_large: 8,
  protocol: 9,
  io: 10,
  timeout: 11,
  unavailable: 12,
  aborted: 13,
  internal: 14,
};

const codeByStatus = new Map<number, ErrorCode>(Object.entries(statusByCode).map(([k, v]) => [v, k as ErrorCode]));

export function statusFor(err: CstorError): number {
  return statusByCode[err.code];
}

/** The error code for a non-zero status; an unknown status is a `protocol` error. */
export function codeForStatus(status: number): ErrorCode {
  return codeByStatus.get(status) ?? 'protocol';
}
