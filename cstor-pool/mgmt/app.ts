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
import { apiErrorHandler, requestLog, unknownRoute } from '../../lib/http/api-middleware.ts';
import { statfs } from 'node:fs/promises';
import express from 'express';
import type { Registry } from 'prom-client';
import { CstorError } from '../../lib/errors.ts';
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
  app.use(requestLog(log, (req) => req.path === '/metrics' || req.path === '/healthz'));
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

  // Creates run one at a time, so "was it there before?" (201 or 200) holds for concurrent creates of one volume.
  let creating: Promise<unknown> = Promise.resolve();
  app.post('/v1/replicas', async (req, res) => {
    const opts = parseCreateReplica(req.body);
    const run = creating.then(async () => {
      const existed = (await pool.getReplica(opts.volume)) !== null;
      const info = await ops.observe(opts.cloneOf ? 'clone' : 'create', () => pool.createReplica(opts));
      return { existed, info };
    });
    creating = run.catch(() => {});
    const { existed, info } = await run;
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

  app.use(unknownRoute());
  app.use(apiErrorHandler(log));
  return app;
}
