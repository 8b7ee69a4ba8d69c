// A fake m-apiserver for the snapshot-promoter process tests: the DESIGN.md §4 volume endpoints
// (create with cloneSpec, read, delete) over express on 127.0.0.1:0, with in-memory volumes and
// snapshots, the checks the real clone flow makes (source exists 404, snapshot exists 404, clone
// not smaller than its source 400), idempotent create by name, and a delay to kill the promoter
// while a clone is in flight. (The idea of test/snapshot-controller/fake-mapi.ts, for volumes.)
import express, { type Request, type Response } from 'express';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tryQuantityBytes } from '../../lib/quantity.ts';

export interface FakeVolume {
  name: string;
  namespace: string;
  capacity: string;
  labels: Record<string, string>;
  cloneOf?: { sourceVolume: string; snapshotName: string };
}

interface VolumeBody {
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  spec?: { capacity?: string };
  cloneSpec?: { isClone?: boolean | string; sourceVolume?: string; snapshotName?: string };
}

export class FakeVolumeMapi {
  readonly volumes = new Map<string, FakeVolume>();
  /** volume name → its backend snapshot names. */
  readonly snapshots = new Map<string, Set<string>>();
  /** Every create body, in order. */
  readonly createBodies: VolumeBody[] = [];
  /** Volumes made, in order (a create of an existing name adds nothing here). */
  readonly made: string[] = [];
  readonly deletes: string[] = [];
  /** Delay of each create before it answers (the volume is made first), ms. */
  createDelayMs = 0;
  private server: http.Server | undefined;
  url = '';

  addSource(name: string, capacity: string, snapshots: string[]): void {
    this.volumes.set(name, { name, namespace: 'default', capacity, labels: {} });
    this.snapshots.set(name, new Set(snapshots));
  }

  async start(): Promise<void> {
    const app = express();
    app.use(express.json());
    app.post('/latest/volumes/', (req, res) => void this.create(req, res));
    app.get('/latest/volumes/:name', (req, res) => {
      const v = this.volumes.get(req.params.name);
      if (!v) {
        res.status(404).json({ error: `volume ${req.params.name} not found` });
        return;
      }
      res.json(casVolume(v));
    });
    app.delete('/latest/volumes/:name', (req, res) => {
      this.deletes.push(req.params.name);
      const v = this.volumes.get(req.params.name);
      this.volumes.delete(req.params.name);
      res.json(v ? casVolume(v) : { metadata: { name: req.params.name }, status: { Message: 'already gone' } });
    });
    // Snapshots, enough for the real snapshot-controller: create (idempotent, by id), read, delete.
    app.post('/latest/snapshots{/*rest}', (req, res) => {
      const body = (req.body ?? {}) as { metadata?: { name?: string; namespace?: string }; spec?: { volumeName?: string } };
      const name = body.metadata?.name ?? '';
      const volume = body.spec?.volumeName ?? '';
      const snaps = this.snapshots.get(volume);
      if (!name || !this.volumes.has(volume) || !snaps) {
        res.status(404).json({ error: `volume ${volume} not found` });
        return;
      }
      snaps.add(name);
      res.json(casSnapshot(name, body.metadata?.namespace ?? '', volume));
    });
    app.get('/latest/snapshots/:name', (req, res) => {
      const volume = String(req.query.volume ?? '');
      if (!this.snapshots.get(volume)?.has(req.params.name)) {
        res.status(404).json({ error: `snapshot ${req.params.name} of volume ${volume} not found` });
        return;
      }
      res.json(casSnapshot(req.params.name, String(req.query.namespace ?? ''), volume));
    });
    app.delete('/latest/snapshots/:name', (req, res) => {
      this.snapshots.get(String(req.query.volume ?? ''))?.delete(req.params.name);
      res.json({ status: 'deleted', name: req.params.name });
    });
    this.server = http.createServer(app);
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private async create(req: Request, res: Response): Promise<void> {
    const body = (req.body ?? {}) as VolumeBody;
    this.createBodies.push(structuredClone(body));
    const name = body.metadata?.name;
    const capacity = body.spec?.capacity;
    if (!name || !capacity) {
      res.status(400).json({ error: 'metadata.name and spec.capacity are required' });
      return;
    }
    let v = this.volumes.get(name);
    if (!v) {
      const clone = body.cloneSpec;
      const isClone = clone?.isClone === true || clone?.isClone === 'true';
      let cloneOf: FakeVolume['cloneOf'];
      if (isClone) {
        const source = this.volumes.get(clone?.sourceVolume ?? '');
        if (!source) {
          res.status(404).json({ error: `source volume ${clone?.sourceVolume ?? ''} not found` });
          return;
        }
        if (!this.snapshots.get(source.name)?.has(clone?.snapshotName ?? '')) {
          res.status(404).json({ error: `snapshot ${clone?.snapshotName ?? ''} of volume ${source.name} not found: cannot clone ${name} from it` });
          return;
        }
        if ((tryQuantityBytes(capacity) ?? 0) < (tryQuantityBytes(source.capacity) ?? 0)) {
          res.status(400).json({ error: `clone ${name} of ${capacity} is smaller than its source volume ${source.name} (${source.capacity})` });
          return;
        }
        cloneOf = { sourceVolume: source.name, snapshotName: clone?.snapshotName ?? '' };
      }
      v = { name, namespace: body.metadata?.namespace ?? '', capacity, labels: body.metadata?.labels ?? {}, ...(cloneOf ? { cloneOf } : {}) };
      this.volumes.set(name, v);
      this.made.push(name);
    }
    if (this.createDelayMs) await new Promise((r) => setTimeout(r, this.createDelayMs));
    res.json(casVolume(v));
  }
}

function casVolume(v: FakeVolume): object {
  return {
    apiVersion: 'v1alpha1',
    kind: 'CASVolume',
    metadata: { name: v.name, namespace: v.namespace, labels: v.labels },
    spec: { capacity: v.capacity, iqn: `iqn.2016-09.com.openebs.cstor:${v.name}`, targetPortal: '127.0.0.1:3260', targetIP: '127.0.0.1', targetPort: '3260', replicas: 3, casType: 'cstor', fsType: 'ext4', lun: 0 },
    status: { Phase: 'Healthy' },
  };
}

function casSnapshot(name: string, namespace: string, volumeName: string): object {
  return { apiVersion: 'v1alpha1', kind: 'CASSnapshot', metadata: { name, namespace }, spec: { casType: 'cstor', volumeName } };
}
