// HttpCaller over node:http for the target and pool mgmt APIs (what m-apiserver uses): one
// keep-alive agent, JSON in and out, every status an answer; only a missing answer throws
// (unavailable, or timeout past `timeoutMs`). Lighter than axios on the snapshot path (a mgmt call
// is a few hundred microseconds of CPU less). A request that fails with ECONNRESET/EPIPE on a
// REUSED idle socket is sent once more: the server closed that socket before reading the request
// (its keep-alive timeout racing our reuse), so nothing of it was done.
import http from 'node:http';
import { CstorError } from '../../lib/errors.ts';
import type { HttpCaller, HttpMethod, HttpResponse, Json } from './ports.ts';

export interface NodeHttpCallerOptions {
  /** Deadline of each call, from sending to the whole answer. Default 30 s. */
  timeoutMs?: number;
  /** Largest answer body read (bigger: `too_large`). Default 16 MiB. */
  maxBodyBytes?: number;
}

const resetCodes = new Set(['ECONNRESET', 'EPIPE']);

export class NodeHttpCaller implements HttpCaller {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 16, scheduling: 'lifo' });
  private readonly timeoutMs: number;
  private readonly maxBodyBytes: number;

  constructor(options: NodeHttpCallerOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.maxBodyBytes = options.maxBodyBytes ?? 16 * 1024 * 1024;
  }

  async request(method: HttpMethod, url: string, body?: Json): Promise<HttpResponse> {
    let target: URL;
    try {
      target = new URL(url);
    } catch (err) {
      throw new CstorError('invalid', `${method} ${url}: not a URL`, { cause: err });
    }
    if (target.protocol !== 'http:') throw new CstorError('invalid', `${method} ${url}: only http:// is supported`);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
    const deadline = Date.now() + this.timeoutMs;
    try {
      return await this.once(method, target, payload, deadline);
    } catch (err) {
      if (!(err instanceof RetryableReset)) throw this.failure(method, url, err);
      try {
        return await this.once(method, target, payload, deadline);
      } catch (again) {
        throw this.failure(method, url, again instanceof RetryableReset ? again.cause : again);
      }
    }
  }

  /** Closes idle sockets (for a clean exit). */
  close(): void {
    this.agent.destroy();
  }

  private failure(method: HttpMethod, url: string, err: unknown): CstorError {
    if (err instanceof CstorError) return new CstorError(err.code, `${method} ${url}: ${err.message}`, { cause: err });
    const message = err instanceof Error ? err.message : String(err);
    return new CstorError('unavailable', `${method} ${url}: ${message}`, { cause: err });
  }

  private once(method: HttpMethod, target: URL, payload: Buffer | undefined, deadline: number): Promise<HttpResponse> {
    return new Promise<HttpResponse>((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = { Accept: 'application/json' };
      if (payload) {
        headers['Content-Type'] = 'application/json';
        headers['Content-Length'] = payload.length;
      }
      const req = http.request({ method, host: target.hostname, port: target.port || 80, path: `${target.pathname}${target.search}`, headers, agent: this.agent });
      // Our own reason to give up (timeout, too large) wins over the socket error it causes.
      let giveUp: CstorError | undefined;
      const timer = setTimeout(
        () => {
          giveUp = new CstorError('timeout', `no answer within ${this.timeoutMs} ms`);
          req.destroy(giveUp);
        },
        Math.max(0, deadline - Date.now()),
      );
      let answered = false;
      req.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (giveUp) reject(giveUp);
        else if (!answered && req.reusedSocket && err.code !== undefined && resetCodes.has(err.code)) reject(new RetryableReset(err));
        else reject(err);
      });
      req.on('response', (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (giveUp) return;
          size += chunk.length;
          if (size > this.maxBodyBytes) {
            giveUp = new CstorError('too_large', `the answer is larger than ${this.maxBodyBytes} bytes`);
            res.destroy(giveUp);
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', (err) => {
          clearTimeout(timer);
          reject(giveUp ?? err);
        });
        res.on('aborted', () => {
          clearTimeout(timer);
          reject(giveUp ?? new CstorError('unavailable', 'the connection closed before the whole answer came'));
        });
        res.on('end', () => {
          clearTimeout(timer);
          if (giveUp) return reject(giveUp);
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: Json = null;
          if (text.trim() !== '') {
            try {
              parsed = JSON.parse(text) as Json;
            } catch {
              parsed = text;
            }
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.end(payload);
    });
  }
}

/** A reset on a reused keep-alive socket before any answer: safe to send once more. */
class RetryableReset extends Error {
  constructor(override readonly cause: Error) {
    super(cause.message);
  }
}
