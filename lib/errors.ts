// One error base for the whole project: classify by `code`, never by message text.

/** Stable error codes. Add a code here (with its HTTP status below) rather than matching messages. */
export const errorCodes = [
  'invalid', // bad input: a name, a field, a frame, a flag
  'not_found', // the named object does not exist
  'already_exists', // create of a name that is taken
  'conflict', // stale version, or a state that forbids the operation
  'not_ready', // e.g. a snapshot of a volume that is not Healthy
  'gone', // a watch or cursor past the retained window
  'unauthorized', // missing or wrong credentials
  'too_large', // a length or size past a limit
  'protocol', // a peer broke the wire protocol
  'io', // a disk or device error
  'timeout', // a deadline passed
  'unavailable', // a peer is down or unreachable; retry later
  'aborted', // cancelled by shutdown or by the caller
  'internal', // a bug: an invariant broke
] as const;

export type ErrorCode = (typeof errorCodes)[number];

const retryableByDefault: ReadonlySet<ErrorCode> = new Set(['unavailable', 'timeout', 'conflict', 'not_ready']);

export interface CstorErrorOptions {
  cause?: unknown;
  retryable?: boolean;
  /** Structured context for logs and API bodies (e.g. `{task: 'cvr-create'}`). */
  details?: Readonly<Record<string, unknown>>;
}

export class CstorError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: CstorErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CstorError';
    this.code = code;
    this.retryable = options.retryable ?? retryableByDefault.has(code);
    this.details = options.details ?? {};
  }
}

export function isCstorError(err: unknown): err is CstorError {
  return err instanceof CstorError;
}

/** True when `err` is a CstorError with one of the given codes. */
export function hasErrorCode(err: unknown, ...codes: ErrorCode[]): err is CstorError {
  return err instanceof CstorError && codes.includes(err.code);
}

/** `err` itself when it is an Error (its class kept: callers may test it), else an internal CstorError naming it. */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new CstorError('internal', String(err));
}

/** Wraps anything thrown into a CstorError, keeping it as the cause. */
export function toCstorError(err: unknown, fallback: ErrorCode = 'internal', context?: string): CstorError {
  if (err instanceof CstorError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new CstorError(fallback, context ? `${context}: ${message}` : message, { cause: err });
}

const httpStatusByCode: Readonly<Record<ErrorCode, number>> = {
  invalid: 400,
  not_found: 404,
  already_exists: 409,
  conflict: 409,
  not_ready: 409,
  gone: 410,
  unauthorized: 401,
  too_large: 413,
  protocol: 502,
  io: 500,
  timeout: 504,
  unavailable: 503,
  aborted: 503,
  internal: 500,
};

/** The HTTP status a REST API answers for an error code (one table, used by every API's error middleware). */
export function httpStatusFor(code: ErrorCode): number {
  return httpStatusByCode[code];
}

/** A message with its causes, for logs: "a: b: c". */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur !== undefined && cur !== null && depth < 5; depth++) {
    parts.push(cur instanceof Error ? cur.message : String(cur));
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return parts.join(': caused by: ');
}
