// HTTP(S) to the API server with the credentials of a KubeConfig (client-node applies the
// token, client certificates and CA to each request's options). Two calls: request() for a
// JSON answer, stream() for a watch's newline-delimited JSON. Failures come back as CstorErrors
// (api-errors.ts); nothing here reads the environment.
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { CstorError } from '../errors.ts';
import { kubeApiError, kubeNetworkError } from './api-errors.ts';
import type { WatchHandle } from './list-watch.ts';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface KubeRequest {
  method: HttpMethod;
  /** Path under the server URL, e.g. /api/v1/namespaces/default/events. */
  path: string;
  query?: Readonly<Record<string, string | number | boolean | undefined>>;
  body?: unknown;
  /** Default application/json when there is a body. */
  contentType?: string;
  /** Names the request in errors, e.g. "get persistentvolumes pv-1". */
  what: string;
  /** request(): whole-answer deadline; stream(): longest silence before the stream is failed. */
  timeoutMs?: number;
}

export interface KubeTransport {
  request<T>(req: KubeRequest): Promise<T>;
  /** Opens a streaming GET; resolves once the server answered 200, then calls onLine per line. */
  stream(req: KubeRequest, onLine: (line: string) => void): Promise<WatchHandle>;
}

const maxBodyBytes = 256 * 1024 * 1024;

export class HttpKubeTransport implements KubeTransport {
  private readonly base: string;
  private readonly requestTimeoutMs: number;
  private agent: http.Agent | undefined;

  constructor(
    private readonly kubeConfig: KubeConfig,
    options: { requestTimeoutMs?: number } = {},
  ) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster?.server) throw new CstorError('invalid', 'kubeconfig: the current context has no cluster with a server URL');
    this.base = cluster.server.replace(/\/+$/, '');
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  }

  /** The API server's base URL. */
  get server(): string {
    return this.base;
  }

  async request<T>(req: KubeRequest): Promise<T> {
    const timeoutMs = req.timeoutMs ?? this.requestTimeoutMs;
    const res = await this.open(req, timeoutMs);
    const body = await readBody(res, req.what);
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw kubeApiError(req.what, status, body);
    if (body.length === 0) return undefined as T;
    try {
      return JSON.parse(body) as T;
    } catch (err) {
      throw new CstorError('protocol', `${req.what}: the API server answered with bad JSON`, { cause: err });
    }
  }

  async stream(req: KubeRequest, onLine: (line: string) => void): Promise<WatchHandle> {
    const res = await this.open(req, req.timeoutMs ?? 0);
    const status = res.statusCode ?? 0;
    if (status !== 200) throw kubeApiError(req.what, status, await readBody(res, req.what));
    let aborted = false;
    let settle!: (err?: Error) => void;
    const done = new Promise<void>((resolve, reject) => {
      let settled = false;
      settle = (err) => {
        if (settled) return;
        settled = true;
        if (err && !aborted) reject(err);
        else resolve();
      };
    });
    // Mark it handled: a caller that only aborts must not crash the process on a late failure.
    done.catch(() => {});
    let pending = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl).trim();
        pending = pending.slice(nl + 1);
        if (line.length === 0 || aborted) continue;
        try {
          onLine(line);
        } catch (err) {
          settle(err instanceof Error ? err : new Error(String(err)));
          res.destroy();
          return;
        }
      }
      if (pending.length > maxBodyBytes) {
        settle(new CstorError('too_large', `${req.what}: a watch line is longer than ${maxBodyBytes} bytes`));
        res.destroy();
      }
    });
    res.on('end', () => settle());
    res.on('error', (err) => settle(kubeNetworkError(req.what, err)));
    res.on('close', () => {
      if (!res.complete) settle(kubeNetworkError(req.what, new Error('the watch stream was cut off')));
      settle();
    });
    return {
      done,
      abort: () => {
        aborted = true;
        settle();
        res.destroy();
      },
    };
  }

  private async open(req: KubeRequest, timeoutMs: number): Promise<http.IncomingMessage> {
    const url = new URL(this.base + req.path);
    for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (payload) {
      headers['Content-Type'] = req.contentType ?? 'application/json';
      headers['Content-Length'] = String(payload.length);
    }
    const options: https.RequestOptions = { method: req.method, headers };
    try {
      await this.kubeConfig.applyToHTTPSOptions(options);
    } catch (err) {
      throw new CstorError('invalid', `${req.what}: cannot apply kubeconfig credentials: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    // One keep-alive agent per transport (client-node makes a new agent, so a new TLS
    // handshake, per request). A proxied cluster keeps client-node's proxy agent.
    if (!this.kubeConfig.getCurrentCluster()?.proxyUrl) options.agent = this.agentFor(url.protocol, options);
    const mod = url.protocol === 'https:' ? https : http;
    // A reset on a kept-alive socket usually means the server closed it idle before our request
    // got there, but the server may also have read and applied the request before the reset: so
    // only requests that are safe to apply twice are sent again (a second POST could create a
    // second generateName object; a second JSON patch could append twice). The others fail as
    // `unavailable` (retryable), and their caller's own retry reads the state first.
    const idempotent = req.method === 'GET' || req.method === 'PUT' || req.method === 'DELETE' || (req.method === 'PATCH' && req.contentType === 'application/merge-patch+json');
    const attempt = (retry: boolean): Promise<http.IncomingMessage> =>
      new Promise((resolve, reject) => {
        const r = mod.request(url, options, (res) => {
          if (timeoutMs > 0) res.setTimeout(timeoutMs, () => res.destroy(new Error(`no data for ${timeoutMs} ms`)));
          resolve(res);
        });
        r.on('socket', (socket) => socket.setKeepAlive(true, 30_000));
        r.on('error', (err: NodeJS.ErrnoException) => {
          // A kept-alive socket the server reset: send an idempotent request again, once.
          if (retry && idempotent && r.reusedSocket && err.code === 'ECONNRESET') resolve(attempt(false));
          else reject(kubeNetworkError(req.what, err));
        });
        if (timeoutMs > 0) r.setTimeout(timeoutMs, () => r.destroy(new Error(`no answer in ${timeoutMs} ms`)));
        r.end(payload);
      });
    return attempt(true);
  }

  private agentFor(protocol: string, tls: https.RequestOptions): http.Agent {
    if (this.agent) return this.agent;
    this.agent =
      protocol === 'https:'
        ? new https.Agent({
            keepAlive: true,
            ca: tls.ca,
            cert: tls.cert,
            key: tls.key,
            pfx: tls.pfx,
            passphrase: tls.passphrase,
            servername: tls.servername,
            ...(tls.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: tls.rejectUnauthorized }),
          })
        : new http.Agent({ keepAlive: true });
    return this.agent;
  }

  /** Closes idle kept-alive connections (open watches end on their own when aborted). */
  close(): void {
    this.agent?.destroy();
    this.agent = undefined;
  }
}

function readBody(res: http.IncomingMessage, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBodyBytes) {
        res.destroy(new CstorError('too_large', `${what}: answer longer than ${maxBodyBytes} bytes`));
        return;
      }
      chunks.push(c);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', (err) => reject(err instanceof CstorError ? err : kubeNetworkError(what, err)));
    res.on('close', () => {
      if (!res.complete) reject(kubeNetworkError(what, new Error('the answer was cut off')));
    });
  });
}
