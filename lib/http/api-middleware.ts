// The express middleware every JSON mgmt API shares: a request log line with the outcome, a 404
// for unknown routes, and the ONE error handler that maps CstorError codes to HTTP statuses
// (lib/errors.ts httpStatusFor) with a {"error": "<message>"} body.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { CstorError, describeError, httpStatusFor, isCstorError } from '../errors.ts';
import type { Logger } from '../logger.ts';

/** Logs each request once finished; `quiet(req)` ones (probes, reads) at debug level. */
export function requestLog(log: Logger, quiet: (req: Request) => boolean = () => false): RequestHandler {
  return (req, res, next) => {
    const t0 = Date.now();
    res.on('finish', () => {
      const entry = { method: req.method, path: req.originalUrl, status: res.statusCode, ms: Date.now() - t0 };
      if (quiet(req)) log.debug('request', entry);
      else log.info('request', entry);
    });
    next();
  };
}

/** The last route: anything unmatched is a 404 naming the method and path. */
export function unknownRoute(hint = ''): RequestHandler {
  return (req, _res, next) => {
    next(new CstorError('not_found', `no route ${req.method} ${req.path}${hint ? ` (${hint})` : ''}`));
  };
}

/**
 * body-parser errors carry a `type`: malformed JSON → invalid, too large → too_large. Other
 * client errors express raises (http-errors with a 4xx `status`, e.g. a path parameter that is not
 * valid percent-encoding) → invalid; anything else is a bug → internal.
 */
export function toApiError(err: unknown): CstorError {
  if (isCstorError(err)) return err;
  const { type, status } = (err ?? {}) as { type?: unknown; status?: unknown };
  const message = err instanceof Error ? err.message : String(err);
  if (type === 'entity.parse.failed') return new CstorError('invalid', `malformed JSON body: ${message}`, { cause: err });
  if (type === 'entity.too.large') return new CstorError('too_large', `request body too large: ${message}`, { cause: err });
  if (typeof type === 'string') return new CstorError('invalid', `bad request body: ${message}`, { cause: err });
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new CstorError(status === 413 ? 'too_large' : 'invalid', `bad request: ${message}`, { cause: err });
  }
  return new CstorError('internal', describeError(err), { cause: err });
}

/** The one error handler: code → status, message → {"error"}; 5xx are logged with their causes. */
export function apiErrorHandler(log: Logger) {
  return (err: unknown, req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const e = toApiError(err);
    const status = httpStatusFor(e.code);
    if (status >= 500) log.error('request failed', { method: req.method, path: req.originalUrl, error: describeError(err) });
    res.status(status).json({ error: e.message });
  };
}
