// m-apiserver's REST app (DESIGN.md §4): routes over the CAS flows, /metrics and /healthz, a
// request log line per request with its outcome, and ONE error middleware that turns every
// CstorError code into its HTTP status (lib/errors.ts httpStatusFor) and a {"error"} body.
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Registry } from 'prom-client';
import { CstorError, describeError, httpStatusFor, toCstorError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { metricsHandler, type OperationMetrics } from '../../lib/metrics.ts';
import type { Json } from '../cas/ports.ts';
import type { CasFlows } from '../flows/cas-flows.ts';
import { readBody } from './body.ts';

/** What the REST layer needs of the flows (CasFlows; tests may pass a stand-in). */
export type MapiFlows = Pick<
  CasFlows,
  'createVolume' | 'readVolume' | 'listVolumes' | 'deleteVolume' | 'createSnapshot' | 'readSnapshot' | 'listSnapshots' | 'deleteSnapshot'
>;

export interface MapiAppOptions {
  flows: MapiFlows;
  logger: Logger;
  registry: Registry;
  /** mapi_operation_total_seconds{operation_name,operation_status}. */
  metrics: OperationMetrics;
  /** /healthz answers 200 while this returns true (default: always). */
  isHealthy?: () => boolean;
}

/** Sent in the error middleware's log line (set by the error middleware, read by the request log). */
interface Locals {
  error?: CstorError;
}

function header(req: Request, name: string): string | undefined {
  const v = req.get(name);
  return v === undefined || v === '' ? undefined : v;
}

/** A single-valued query parameter; repeated ones are refused. */
function queryParam(req: Request, name: string): string | undefined {
  const v: unknown = (req.query as Record<string, unknown>)[name];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string') throw new CstorError('invalid', `query parameter ${name} must be given once, as a plain string`);
  return v;
}

function snapshotQuery(req: Request): { volume: string; namespace?: string; storageClass?: string } {
  const volume = queryParam(req, 'volume');
  if (volume === undefined) throw new CstorError('invalid', 'query parameter volume (the volume the snapshot belongs to) is required');
  const casType = queryParam(req, 'casType');
  if (casType !== undefined && casType !== 'cstor') throw new CstorError('invalid', `query parameter casType "${casType}" is not supported: only cstor`);
  const namespace = queryParam(req, 'namespace') ?? header(req, 'namespace');
  const storageClass = header(req, 'storageclass');
  return { volume, ...(namespace ? { namespace } : {}), ...(storageClass ? { storageClass } : {}) };
}

export function createMapiApp(options: MapiAppOptions): express.Express {
  const { flows, logger, metrics } = options;
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  // Every request is logged once, when the answer has gone out, with its outcome.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const error = (res.locals as Locals).error;
      const entry = { method: req.method, path: req.originalUrl, status: res.statusCode, ms: Math.round(ms * 100) / 100, ...(error ? { code: error.code, error: error.message } : {}) };
      if (req.path === '/metrics' || req.path === '/healthz') logger.debug('request', entry); // scrapes and probes: debug, not noise
      else if (res.statusCode >= 500) logger.error('request failed', { ...entry, cause: error ? describeError(error) : undefined });
      else if (res.statusCode >= 400) logger.warn('request refused', entry);
      else logger.info('request', entry);
    });
    // A client that goes away before the answer (killed, timed out) is logged too; the flow runs on.
    res.on('close', () => {
      if (!res.writableFinished) logger.warn('request abandoned by the client', { method: req.method, path: req.originalUrl, ms: Math.round(Number(process.hrtime.bigint() - started) / 1e4) / 100 });
    });
    next();
  });

  const answer = (operation: string, fn: (req: Request) => Promise<Json>) => async (req: Request, res: Response): Promise<void> => {
    const out = await metrics.observe(operation, () => fn(req));
    res.status(200).json(out);
  };

  // Volumes.
  app.post('/latest/volumes', answer('volume_create', async (req) => flows.createVolume(await readBody(req, 'a CASVolume'))));
  app.get('/latest/volumes', answer('volume_list', async (req) => {
    const namespace = header(req, 'namespace');
    const storageClass = header(req, 'storageclass');
    return flows.listVolumes({ ...(namespace ? { namespace } : {}), ...(storageClass ? { storageClass } : {}) });
  }));
  const volumeQuery = (req: Request): { name: string; namespace?: string; storageClass?: string } => {
    const namespace = header(req, 'namespace');
    const storageClass = header(req, 'storageclass');
    return { name: String(req.params['name']), ...(namespace ? { namespace } : {}), ...(storageClass ? { storageClass } : {}) };
  };
  app.get('/latest/volumes/:name', answer('volume_read', async (req) => flows.readVolume(volumeQuery(req))));
  app.delete('/latest/volumes/:name', answer('volume_delete', async (req) => flows.deleteVolume(volumeQuery(req))));

  // Snapshots: POST to anything under /latest/snapshots/ creates (legacy /latest/snapshots/create/ too).
  app.post(/^\/latest\/snapshots(\/.*)?$/, answer('snapshot_create', async (req) => flows.createSnapshot(await readBody(req, 'a CASSnapshot'))));
  app.get('/latest/snapshots', answer('snapshot_list', async (req) => flows.listSnapshots(snapshotQuery(req))));
  app.get('/latest/snapshots/:name', answer('snapshot_read', async (req) => flows.readSnapshot({ name: String(req.params['name']), ...snapshotQuery(req) })));
  app.delete('/latest/snapshots/:name', answer('snapshot_delete', async (req) => flows.deleteSnapshot({ name: String(req.params['name']), ...snapshotQuery(req) })));

  app.get('/metrics', metricsHandler(options.registry));
  app.get('/healthz', (_req, res) => {
    const ok = options.isHealthy?.() ?? true;
    res.status(ok ? 200 : 503).type('text/plain').send(ok ? 'ok' : 'not ready');
  });

  app.use((req: Request) => {
    throw new CstorError('not_found', `no route ${req.method} ${req.path} (see DESIGN.md §4: /latest/volumes/, /latest/snapshots/)`);
  });

  // The one error middleware: code → status, message → {"error"}.
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const e = toCstorError(err, 'internal');
    (res.locals as Locals).error = e;
    res.status(httpStatusFor(e.code)).json({ error: e.message });
  });

  return app;
}
