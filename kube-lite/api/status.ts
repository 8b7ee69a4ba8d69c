// Kubernetes `Status` bodies, and the one mapping from errors to them.
import { CstorError, httpStatusFor, isCstorError } from '../../lib/errors.ts';

export interface StatusCause {
  reason: string;
  message: string;
  field: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface KubeStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code: number;
}

/** Extra fields a CstorError's details may carry for the API: reason, httpStatus, details. */
export interface ApiErrorDetails {
  reason?: string;
  httpStatus?: number;
  status?: StatusDetails;
}

const reasonByCode: Record<string, string> = {
  invalid: 'BadRequest',
  not_found: 'NotFound',
  already_exists: 'AlreadyExists',
  conflict: 'Conflict',
  gone: 'Expired',
  unauthorized: 'Unauthorized',
  too_large: 'RequestEntityTooLarge',
  timeout: 'Timeout',
  unavailable: 'ServiceUnavailable',
  aborted: 'ServiceUnavailable',
};

export function failure(code: number, reason: string, message: string, details?: StatusDetails): KubeStatus {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

export function success(details?: StatusDetails): KubeStatus {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', ...(details ? { details } : {}), code: 200 };
}

export function statusFromError(err: unknown): KubeStatus {
  if (!isCstorError(err)) {
    const msg = err instanceof Error ? err.message : String(err);
    return failure(500, 'InternalError', `Internal error occurred: ${msg}`);
  }
  const d = err.details as ApiErrorDetails;
  const code = d.httpStatus ?? httpStatusFor(err.code);
  return failure(code, d.reason ?? reasonByCode[err.code] ?? 'InternalError', err.message, d.status);
}

function qualified(resource: string, group: string): string {
  return group ? `${resource}.${group}` : resource;
}

/** 404 `<resource>[.<group>] "<name>" not found`. */
export function notFound(resource: string, group: string, name: string): CstorError {
  return new CstorError('not_found', `${qualified(resource, group)} "${name}" not found`, {
    details: { status: { name, group, kind: resource } } satisfies ApiErrorDetails,
  });
}

export function alreadyExists(resource: string, group: string, name: string): CstorError {
  return new CstorError('already_exists', `${qualified(resource, group)} "${name}" already exists`, {
    details: { status: { name, group, kind: resource } } satisfies ApiErrorDetails,
  });
}

export function conflict(resource: string, group: string, name: string, why: string): CstorError {
  return new CstorError('conflict', `Operation cannot be fulfilled on ${qualified(resource, group)} "${name}": ${why}`, {
    details: { status: { name, group, kind: resource } } satisfies ApiErrorDetails,
  });
}

/** 422 Invalid with field causes, worded as Kubernetes words it. */
export function invalid(kind: string, group: string, name: string, causes: StatusCause[]): CstorError {
  const list = causes.map((c) => `${c.field}: ${c.message}`).join(', ');
  const qk = group ? `${kind}.${group}` : kind;
  return new CstorError('invalid', `${qk} "${name}" is invalid: ${causes.length > 1 ? `[${list}]` : list}`, {
    details: { reason: 'Invalid', httpStatus: 422, status: { name, group, kind, causes } } satisfies ApiErrorDetails,
  });
}

export function badRequest(message: string): CstorError {
  return new CstorError('invalid', message, { details: { reason: 'BadRequest', httpStatus: 400 } satisfies ApiErrorDetails });
}

export function methodNotAllowed(message: string): CstorError {
  return new CstorError('invalid', message, { details: { reason: 'MethodNotAllowed', httpStatus: 405 } satisfies ApiErrorDetails });
}

export function forbidden(message: string): CstorError {
  return new CstorError('conflict', message, { details: { reason: 'Forbidden', httpStatus: 403 } satisfies ApiErrorDetails, retryable: false });
}

export function unsupportedMediaType(message: string): CstorError {
  return new CstorError('invalid', message, { details: { reason: 'UnsupportedMediaType', httpStatus: 415 } satisfies ApiErrorDetails });
}

export function gone(message: string): CstorError {
  return new CstorError('gone', message, { details: { reason: 'Expired', httpStatus: 410 } satisfies ApiErrorDetails });
}
