// A fake m-apiserver for the snapshot-controller tests: the DESIGN.md §4 snapshot endpoints
// over express on 127.0.0.1:0, with in-memory state and fault injection (failures, volumes that
// are not Healthy, slow creates).
import express, { type Request, type Response } from 'express';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface BackendSnapshot {
  name: string;
  namespace: string;
  volumeName: string;
}

export class FakeMapi {
  readonly snapshots = new Map<string, BackendSnapshot>();
  /** volume name → phase; a snapshot of a volume listed here is refused with 409. */
  readonly unhealthy = new Map<string, string>();
  /** Every request: "POST name", "DELETE name", ... */
  readonly requests: string[] = [];
  /** The next N snapshot creates answer 500. */
  failCreates = 0;
  /** Delay of each create (ms), to kill the controller while one is in flight. */
  createDelayMs = 0;
  private server: http.Server | undefined;
  url = '';

  async start(): Promise<void> {
    const app = express();
    app.use(express.json());
    app.post('/latest/snapshots{/*rest}', (req, res) => void this.create(req, res));
    app.get('/latest/snapshots/', (req, res) => {
      const volume = String(req.query.volume ?? '');
      this.requests.push(`LIST ${volume}`);
      res.json({ items: [...this.snapshots.values()].filter((s) => !volume || s.volumeName === volume).map(casSnapshot) });
    });
    app.get('/latest/snapshots/:name', (req, res) => {
      const name = req.params.name;
      this.requests.push(`GET ${name}`);
      const s = this.snapshots.get(name);
      if (!s) {
        res.status(404).json({ error: `snapshot "${name}" not found` });
        return;
      }
      res.json(casSnapshot(s));
    });
    app.delete('/latest/snapshots/:name', (req, res) => {
      const name = req.params.name;
      this.requests.push(`DELETE ${name}`);
      if (!req.query.volume) {
        res.status(400).json({ error: 'the query parameter volume is required' });
        return;
      }
      this.snapshots.delete(name);
      res.json({ status: 'deleted', name });
    });
    this.server = http.createServer(app);
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const addr = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${addr.port}`;
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  creates(): string[] {
    return this.requests.filter((r) => r.startsWith('POST ')).map((r) => r.slice(5));
  }

  private async create(req: Request, res: Response): Promise<void> {
    const body = req.body as { metadata?: { name?: string; namespace?: string }; spec?: { volumeName?: string; casType?: string } } | undefined;
    const name = body?.metadata?.name;
    const volumeName = body?.spec?.volumeName;
    this.requests.push(`POST ${name ?? '?'}`);
    if (!name || !volumeName) {
      res.status(400).json({ error: 'metadata.name and spec.volumeName are required' });
      return;
    }
    if (this.createDelayMs) await new Promise((r) => setTimeout(r, this.createDelayMs));
    if (this.failCreates > 0) {
      this.failCreates--;
      res.status(500).json({ error: `target of volume ${volumeName} did not answer (injected)` });
      return;
    }
    const phase = this.unhealthy.get(volumeName);
    if (phase) {
      res.status(409).json({ error: `volume "${volumeName}" is ${phase}, not Healthy: snapshots need a Healthy volume` });
      return;
    }
    const existing = this.snapshots.get(name);
    const s = existing ?? { name, namespace: body?.metadata?.namespace ?? '', volumeName };
    this.snapshots.set(name, s);
    res.status(existing ? 200 : 201).json(casSnapshot(s));
  }
}

function casSnapshot(s: BackendSnapshot): object {
  return { apiVersion: 'v1alpha1', kind: 'CASSnapshot', metadata: { name: s.name, namespace: s.namespace }, spec: { casType: 'cstor', volumeName: s.volumeName } };
}
