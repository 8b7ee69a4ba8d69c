// Kubernetes API failures as CstorErrors: the HTTP status picks the code, and the Status body's
// reason, message and causes are kept (in the message and in `details`), so callers classify
// by code and logs still say what the API server said.
import { CstorError, type ErrorCode } from '../errors.ts';
import type { Status } from './types/meta.ts';

export interface KubeErrorDetails {
  httpStatus: number;
  reason?: string;
  causes?: { reason?: string; message?: string; field?: string }[];
  retryAfterSeconds?: number;
}

/** The error code for an HTTP status (and the Status reason, which tells AlreadyExists from Conflict). */
export function codeForStatus(httpStatus: number, reason?: string): ErrorCode {
  if (httpStatus === 404) return 'not_found';
  if (httpStatus === 409) return reason === 'AlreadyExists' ? 'already_exists' : 'conflict';
  if (httpStatus === 410) return 'gone';
  if (httpStatus === 400 || httpStatus === 422) return 'invalid';
  if (httpStatus === 401 || httpStatus === 403) return 'unauthorized';
  if (httpStatus === 413) return 'too_large';
  if (httpStatus === 429 || httpStatus >= 500) return 'unavailable';
  return 'protocol';
}

/** Parses a response body as a Status when it looks like one. */
export function parseStatus(body: string): Status | undefined {
  if (!body.startsWith('{')) return undefined;
  try {
    const parsed = JSON.parse(body) as unknown;
    if (parsed && typeof parsed === 'object' && (parsed as Status).kind === 'Status') return parsed as Status;
  } catch {
    // not JSON: the caller reports the raw text
  }
  return undefined;
}

/** The CstorError for a failed API response; `what` names the request, e.g. "get volumesnapshots default/s1". */
export function kubeApiError(what: string, httpStatus: number, body: string): CstorError {
  const status = parseStatus(body);
  const reason = status?.reason;
  const text = status?.message ?? (body.trim().slice(0, 300) || `HTTP ${httpStatus}`);
  const details: KubeErrorDetails = { httpStatus };
  if (reason) details.reason = reason;
  if (status?.details?.causes?.length) details.causes = status.details.causes;
  if (status?.details?.retryAfterSeconds !== undefined) details.retryAfterSeconds = status.details.retryAfterSeconds;
  const label = reason ? `${httpStatus} ${reason}` : `${httpStatus}`;
  return new CstorError(codeForStatus(httpStatus, reason), `${what}: ${label}: ${text}`, { details: { ...details } });
}

/** The CstorError for a request that got no response (refused, reset, timed out). */
export function kubeNetworkError(what: string, err: unknown): CstorError {
  const message = err instanceof Error ? err.message : String(err);
  const errno = (err as { code?: unknown } | null)?.code;
  return new CstorError('unavailable', `${what}: API server unreachable: ${message}`, {
    cause: err,
    details: typeof errno === 'string' ? { errno } : {},
  });
}
