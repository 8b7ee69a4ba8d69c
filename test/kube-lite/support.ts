// Starting kube-lite as a real process for tests, and raw HTTPS requests to it.
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { startDaemon, type Daemon } from '../support/daemon.ts';

export interface KubeLiteProc {
  daemon: Daemon;
  dataDir: string;
  kubeconfig: string;
  kc: KubeConfig;
  url: string;
  token: string;
  ca: string;
}

const createdDirs: string[] = [];
process.on('exit', () => {
  for (const d of createdDirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A fresh data directory, removed when the test process exits. */
export function tempDataDir(prefix = 'kube-lite-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  createdDirs.push(dir);
  return dir;
}

export async function startKubeLiteProc(dataDir: string = tempDataDir(), extraArgs: string[] = []): Promise<KubeLiteProc> {
  const daemon = await startDaemon(['kube-lite', '--listen', '127.0.0.1:0', '--data-dir', dataDir, ...extraArgs], { listeners: ['api'] });
  const kubeconfig = path.join(dataDir, 'kubeconfig');
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const cluster = kc.getCurrentCluster()!;
  return {
    daemon,
    dataDir,
    kubeconfig,
    kc,
    url: cluster.server,
    token: fs.readFileSync(path.join(dataDir, 'token'), 'utf8').trim(),
    ca: fs.readFileSync(path.join(dataDir, 'tls.crt'), 'utf8'),
  };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: Record<string, unknown>;
}

export interface RawRequest {
  method?: string;
  /** A string is sent as UTF-8; a Buffer as is (protobuf bodies). */
  body?: string | Buffer;
  contentType?: string;
  accept?: string;
  /** undefined = the right token; null = no Authorization header. */
  token?: string | null;
}

export function raw(kl: KubeLiteProc, p: string, req: RawRequest = {}): Promise<RawResponse> {
  const u = new URL(p, kl.url);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { Accept: req.accept ?? 'application/json' };
    const token = req.token === undefined ? kl.token : req.token;
    if (token !== null) headers.Authorization = `Bearer ${token}`;
    if (req.body !== undefined) {
      headers['Content-Type'] = req.contentType ?? 'application/json';
      headers['Content-Length'] = String(typeof req.body === 'string' ? Buffer.byteLength(req.body) : req.body.length);
    }
    const r = https.request(u, { method: req.method ?? 'GET', headers, ca: kl.ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: Record<string, unknown> = {};
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    r.on('error', reject);
    if (req.body !== undefined) r.write(req.body);
    r.end();
  });
}

export interface WatchStream {
  events: { type: string; object: Record<string, unknown> }[];
  status: number;
  /** Resolves once `n` events have arrived (or rejects after timeoutMs). */
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  close(): void;
}

/** A raw watch (path with its query), collecting events. */
export function rawWatch(kl: KubeLiteProc, p: string): Promise<WatchStream> {
  const u = new URL(p, kl.url);
  return new Promise((resolve, reject) => {
    const r = https.request(u, { headers: { Authorization: `Bearer ${kl.token}` }, ca: kl.ca }, (res) => {
      const events: WatchStream['events'] = [];
      const waiters: { n: number; resolve: () => void }[] = [];
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.trim()) events.push(JSON.parse(line) as WatchStream['events'][number]);
        }
        for (const w of [...waiters]) {
          if (events.length >= w.n) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve();
          }
        }
      });
      res.on('error', () => {});
      resolve({
        events,
        status: res.statusCode ?? 0,
        waitFor(n, timeoutMs = 10_000) {
          if (events.length >= n) return Promise.resolve();
          return new Promise((res2, rej2) => {
            const t = setTimeout(() => rej2(new Error(`watch ${p}: ${events.length} of ${n} events after ${timeoutMs} ms: ${JSON.stringify(events.map((e) => e.type))}`)), timeoutMs);
            waiters.push({ n, resolve: () => (clearTimeout(t), res2()) });
          });
        },
        close() {
          r.destroy();
        },
      });
    });
    r.on('error', reject);
    r.end();
  });
}

/** Polls `fn` until it returns a truthy value (bounded). */
export async function eventually<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let i = 0; Date.now() < deadline; i++) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, Math.min(50 * (i + 1), 250)));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}
