// NodeHttpCaller against a real HTTP server on 127.0.0.1:0: answers of every status and body
// kind, keep-alive reuse, the one resend after a reset on a reused socket, timeouts, refusals.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { expect } from 'chai';
import { NodeHttpCaller } from './node-http-caller.ts';
import { rejection } from '../../test/support/rejection.ts';

type Handler = (req: http.IncomingMessage, body: string, res: http.ServerResponse, nthOnSocket: number) => void;

async function serve(handler: Handler): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  const perSocket = new WeakMap<Socket, number>();
  let connections = 0;
  const server = http.createServer((req, res) => {
    const n = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, n);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handler(req, Buffer.concat(chunks).toString('utf8'), res, n));
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('NodeHttpCaller', () => {
  const callers: NodeHttpCaller[] = [];
  const caller = (options?: ConstructorParameters<typeof NodeHttpCaller>[0]): NodeHttpCaller => {
    const c = new NodeHttpCaller(options);
    callers.push(c);
    return c;
  };
  afterEach(() => {
    for (const c of callers.splice(0)) c.close();
  });

  it('answers every status with its parsed body (JSON, text, empty), sending JSON bodies', async () => {
    const s = await serve((req, body, res) => {
      if (req.url === '/json') {
        res.writeHead(201, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ method: req.method, contentType: req.headers['content-type'] ?? null, got: body ? (JSON.parse(body) as unknown) : null }));
      } else if (req.url === '/text?x=1') {
        res.writeHead(503);
        res.end('target busy');
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    try {
      const c = caller();
      expect(await c.request('POST', `${s.url}/json`, { name: 's1' })).to.deep.equal({
        status: 201,
        body: { method: 'POST', contentType: 'application/json', got: { name: 's1' } },
      });
      expect(await c.request('GET', `${s.url}/json`)).to.deep.equal({ status: 201, body: { method: 'GET', contentType: null, got: null } });
      expect(await c.request('GET', `${s.url}/text?x=1`)).to.deep.equal({ status: 503, body: 'target busy' });
      expect(await c.request('DELETE', `${s.url}/gone`)).to.deep.equal({ status: 404, body: null });
    } finally {
      await s.close();
    }
  });

  it('keeps one connection alive across calls', async () => {
    const s = await serve((_req, _body, res) => res.end('{}'));
    try {
      const c = caller();
      for (let i = 0; i < 5; i++) expect((await c.request('GET', `${s.url}/v1/volumes`)).status).to.equal(200);
      expect(s.connections()).to.equal(1);
    } finally {
      await s.close();
    }
  });

  it('sends a request once more when a reused socket is reset before any answer, never on a fresh one', async () => {
    // The second request on any connection is dropped unanswered, as a server closing an idle
    // keep-alive socket at the moment it is reused does.
    let served = 0;
    const s = await serve((_req, _body, res, nth) => {
      if (nth > 1) {
        res.socket?.destroy();
        return;
      }
      served++;
      res.end(JSON.stringify({ served }));
    });
    try {
      const c = caller();
      expect(await c.request('POST', `${s.url}/a`, { name: 'x' })).to.deep.equal({ status: 200, body: { served: 1 } });
      expect(await c.request('POST', `${s.url}/a`, { name: 'x' })).to.deep.equal({ status: 200, body: { served: 2 } });
      expect(s.connections()).to.equal(2);
    } finally {
      await s.close();
    }
    const dropAll = await serve((_req, _body, res) => res.socket?.destroy());
    try {
      const err = await rejection(caller().request('GET', `${dropAll.url}/b`));
      expect(err.code).to.equal('unavailable');
      expect(err.message).to.match(/^GET http:\/\/127\.0\.0\.1:\d+\/b: socket hang up/);
      expect(dropAll.connections()).to.equal(1);
    } finally {
      await dropAll.close();
    }
  });

  it('a slow answer is a timeout; a refused connection or a bad URL is named', async () => {
    const s = await serve(() => undefined); // never answers
    try {
      const err = await rejection(caller({ timeoutMs: 150 }).request('GET', `${s.url}/slow`));
      expect(err.code).to.equal('timeout');
      expect(err.message).to.match(/^GET http:\/\/127\.0\.0\.1:\d+\/slow: no answer within 150 ms$/);
    } finally {
      await s.close();
    }
    const closed = await serve(() => undefined);
    const url = closed.url;
    await closed.close();
    const refused = await rejection(caller().request('GET', `${url}/x`));
    expect(refused.code).to.equal('unavailable');
    expect(refused.message).to.include('ECONNREFUSED');
    expect((await rejection(caller().request('GET', 'not a url'))).message).to.equal('GET not a url: not a URL');
    expect((await rejection(caller().request('GET', 'https://127.0.0.1:1/'))).message).to.equal('GET https://127.0.0.1:1/: only http:// is supported');
  });

  it('refuses an answer larger than the limit', async () => {
    const s = await serve((_req, _body, res) => res.end('x'.repeat(4096)));
    try {
      const err = await rejection(caller({ maxBodyBytes: 1024 }).request('GET', `${s.url}/big`));
      expect(err.code).to.equal('too_large');
      expect(err.message).to.match(/the answer is larger than 1024 bytes$/);
    } finally {
      await s.close();
    }
  });
});
