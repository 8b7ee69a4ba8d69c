// The target's mgmt HTTP API (express 5, JSON). Routes:
//   PUT    /v1/volumes/:volume                   {capacity, replicationFactor, replicas, blockSize?}
//                                                201 served | 200 already served (idempotent) → status
//   DELETE /v1/volumes/:volume                   204 (idempotent) stop serving
//   GET    /v1/volumes                           {items: VolumeStatus[]}
//   GET    /v1/volumes/:volume                   VolumeStatus {phase, replicaStatuses, ...} (CStorVolume.status shape)
//   POST   /v1/volumes/:volume/snapshots         {name} → 201 SnapshotInfo
//   DELETE /v1/volumes/:volume/snapshots/:name   204 (idempotent)
//   GET    /v1/volumes/:volume/snapshots         {items: SnapshotInfo[]} (user snapshots, oldest first)
//   GET    /v1/volumes/:volume/stats             {volume, engine: IoStats, iscsi: TargetInfo | null}
//   GET    /metrics, GET /healthz
// Errors: one middleware maps CstorError codes to HTTP statuses (lib/errors.ts), body {"error"}.
import { apiErrorHandler, requestLog, unknownRoute } from '../../lib/http/api-middleware.ts';
import express from 'express';
import { Gauge, type Registry } from 'prom-client';
import { CstorError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { metricsHandler, operationMetrics } from '../../lib/metrics.ts';
import { dns1123LabelProblems } from '../../lib/names.ts';
import { volumePhases } from '../replication/quorum.ts';
import { parseVolumeSpec, type VolumeManager } from './volume-manager.ts';

export interface MgmtAppOptions {
  manager: VolumeManager;
  logger: Logger;
  registry: Registry;
  /** Per-volume iSCSI stats from the portal, when there is one. */
  iscsiStats?: (volume: string) => unknown;
}

export function createMgmtApp(options: MgmtAppOptions): express.Express {
  const { manager, registry } = options;
  const log = options.logger.child({ component: 'target-mgmt' });
  const ops = operationMetrics(registry, 'cstor_target');
  registerVolumeGauges(registry, manager);

  const app = express();
  app.disable('x-powered-by');
  app.use(requestLog(log, (req) => req.method === 'GET'));
  app.use(express.json({ limit: '64kb' }));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/metrics', metricsHandler(registry));

  app.get('/v1/volumes', (_req, res) => {
    res.json({ items: manager.list().map((v) => v.status()) });
  });

  app.put('/v1/volumes/:volume', async (req, res) => {
    const spec = parseVolumeSpec(String(req.params.volume), req.body as unknown);
    const created = await ops.observe('volume_serve', () => manager.serve(spec));
    res.status(created ? 201 : 200).json(manager.get(spec.name).status());
  });

  app.delete('/v1/volumes/:volume', async (req, res) => {
    const name = volumeParam(req.params.volume);
    await ops.observe('volume_stop', () => manager.stop(name));
    res.status(204).end();
  });

  app.get('/v1/volumes/:volume', (req, res) => {
    res.json(manager.get(volumeParam(req.params.volume)).status());
  });

  app.get('/v1/volumes/:volume/stats', (req, res) => {
    const name = volumeParam(req.params.volume);
    const vol = manager.get(name);
    res.json({ volume: name, phase: vol.phase, engine: vol.stats, iscsi: options.iscsiStats?.(name) ?? null });
  });

  app.get('/v1/volumes/:volume/snapshots', async (req, res) => {
    const vol = manager.get(volumeParam(req.params.volume));
    const items = await ops.observe('snapshot_list', () => vol.snapshotList());
    res.json({ items });
  });

  app.post('/v1/volumes/:volume/snapshots', async (req, res) => {
    const vol = manager.get(volumeParam(req.params.volume));
    const name = parseSnapshotBody(req.body as unknown);
    const info = await ops.observe('snapshot_create', () => vol.snapshotCreate(name));
    res.status(201).json(info);
  });

  app.delete('/v1/volumes/:volume/snapshots/:name', async (req, res) => {
    const vol = manager.get(volumeParam(req.params.volume));
    await ops.observe('snapshot_destroy', () => vol.snapshotDestroy(String(req.params.name)));
    res.status(204).end();
  });

  app.use(unknownRoute());
  app.use(apiErrorHandler(log));
  return app;
}

/** The :volume path parameter, refused (400 naming the problem) unless it is a DNS-1123 label. */
function volumeParam(value: unknown): string {
  const name = String(value);
  const problems = dns1123LabelProblems(name);
  if (problems.length > 0) throw new CstorError('invalid', `volume name ${JSON.stringify(name)} is invalid: ${problems.join('; ')}`);
  return name;
}

/** A snapshot create body: {"name": "<snapshot>"} and nothing else (the volume checks the name itself). */
function parseSnapshotBody(body: unknown): string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new CstorError('invalid', 'request body must be a JSON object like {"name": "snap-1"} (send Content-Type: application/json)');
  }
  const problems: string[] = [];
  for (const k of Object.keys(body)) if (k !== 'name') problems.push(`unknown field "${k}"`);
  const name = (body as Record<string, unknown>).name;
  if (typeof name !== 'string') problems.push('name must be a string');
  if (problems.length > 0) throw new CstorError('invalid', `create snapshot: ${problems.join('; ')}`);
  return name as string;
}

/** Phase and in-flight gauges, read from the volumes at scrape time. */
function registerVolumeGauges(registry: Registry, manager: VolumeManager): void {
  new Gauge({
    name: 'cstor_target_volume_phase',
    help: 'Volume phase: 1 for the current phase, 0 for the others',
    labelNames: ['volume', 'phase'],
    registers: [registry],
    collect() {
      this.reset();
      for (const v of manager.list()) for (const p of volumePhases) this.set({ volume: v.name, phase: p }, v.phase === p ? 1 : 0);
    },
  });
  new Gauge({
    name: 'cstor_target_replica_inflight_io',
    help: 'IOs in flight per replica, by kind (read|write)',
    labelNames: ['volume', 'replica', 'kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const v of manager.list()) {
        for (const m of v.members) {
          this.set({ volume: v.name, replica: m.address, kind: 'read' }, m.inflightRead);
          this.set({ volume: v.name, replica: m.address, kind: 'write' }, m.inflightWrite);
        }
      }
    },
  });
  new Gauge({
    name: 'cstor_target_healthy_replicas',
    help: 'Healthy replicas per volume',
    labelNames: ['volume'],
    registers: [registry],
    collect() {
      this.reset();
      for (const v of manager.list()) this.set({ volume: v.name }, v.count('healthy'));
    },
  });
}
