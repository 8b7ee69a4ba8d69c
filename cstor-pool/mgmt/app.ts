// The pool's mgmt HTTP API (express 5, JSON). Routes:
//   POST   /v1/replicas           {volume, size, blockSize?, cloneOf?: "<volume>@<snapshot>"}
//                                  201 created | 200 already there (idempotent) → ReplicaInfo
//   GET    /v1/replicas           {items: ReplicaInfo[]} (snapshots, clones, space used)
//   GET    /v1/replicas/:volume   ReplicaInfo | 404
//   DELETE /v1/replicas/:volume   204 (idempotent; closes its protocol connections first)
//   GET    /v1/pool               {name, capacityBytes, usedBytes, freeBytes, replicas}
//   GET    /metrics               Prometheus text
//   GET    /healthz               {status: "ok"}
// Errors: one middleware maps CstorError codes to HTTP statuses (lib/errors.ts), body {"error"}.
import { statfs } from 'node:fs/promises';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Registry } from 'prom-client';
import { CstorError, describeError, httpStatusFor, isCstorError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { metricsHandler, operationMetrics } from '../../lib/metrics.ts';
import type { Pool } from '../store/types.ts';
import { checkVolumeParam, parseCreateReplica } from './body.ts';

export interface MgmtAppOptions {
  pool: Pool;
  logger: Logger;
  registry: Registry;
  /** Closes the protocol connections of a volume about to be deleted. */
  dropVolume(volume: string): void;
}

export function createMgmtApp(options: MgmtAppOptions): express.Express {
  const { pool, registry } = options;
  const log = options.logger.child({ component: 'pool-mgmt' });
  const ops = operationMetrics(registry, 'cstor_pool_mgmt');
  const app = express();
  app.disable('x-powered-by');
  app.use((req, res, next) => {
    const t0 = Date.now();
    res.on('finish', () => {
      const entry = { method: req.method, path: req.originalUrl, status: res.statusCode, ms: Date.now() - t0 };
      if (req.path === '/metrics' || req.path === '/healthz') log.debug('request', entry);
      else log.info('request', entry);
    });
    next();
  });
  app.use(express.json({ limit: '64kb' }));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/metrics', metricsHandler(registry));

  app.get('/v1/pool', async (_req, res) => {
    const [space, replicas, fsStat] = await Promise.all([pool.space(), pool.listReplicas(), statfs(pool.dir)]);
    res.json({
      name: pool.name,
      capacityBytes: fsStat.blocks * fsStat.bsize,
      usedBytes: space.usedBytes,
      freeBytes: space.freeBytes,
      replicas: replicas.length,
    });
  });

  app.post('/v1/replicas', async (req, res) => {
    const opts = parseCreateReplica(req.body);
    const existed = (await pool.getReplica(opts.volume)) !== null;
    const info = await ops.observe(opts.cloneOf ? 'clone' : 'create', () => pool.createReplica(opts));
    res.status(existed ? 200 : 201).json(info);
  });

  app.get('/v1/replicas', async (_req, res) => {
    res.json({ items: await pool.listReplicas() });
  });

  app.get('/v1/replicas/:volume', async (req, res) => {
    const volume = checkVolumeParam(req.params.volume as string);
    const info = await pool.getReplica(volume);
    if (info === null) throw new CstorError('not_found', `volume ${volume} has no replica in pool ${pool.name}`);
    res.json(info);
  });

  app.delete('/v1/replicas/:volume', async (req, res) => {
    const volume = checkVolumeParam(req.params.volume as string);
    options.dropVolume(volume);
    await ops.observe('delete', () => pool.deleteReplica(volume));
    res.status(204).end();
  });

  app.use((req, _res, next) => {
    next(new CstorError('not_found', `no route ${req.method} ${req.path}`));
  });

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = toApiError(err);
    const status = httpStatusFor(e.code);
    if (status >= 500) log.error('request failed', { method: req.method, path: req.originalUrl, error: describeError(err) });
    if (!res.headersSent) res.status(status).json({ error: e.message });
  });
  return app;
}

/** body-parser errors carry a `type`; everything else becomes a CstorError. */
function toApiError(err: unknown): CstorError {
  if (isCstorError(err)) return err;
  const type = (err as { type?: unknown }).type;
  const message = err instanceof Error ? err.message : String(err);
  if (type === 'entity.parse.failed') return new CstorError('invalid', `malformed JSON body: ${message}`, { cause: err });
  if (type === 'entity.too.large') return new CstorError('too_large', `request body too large: ${message}`, { cause: err });
  if (typeof type === 'string') return new CstorError('invalid', `bad request body: ${message}`, { cause: err });
  return new CstorError('internal', message, { cause: err });
}
