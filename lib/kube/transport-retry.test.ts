// HttpKubeTransport's one retry on a reset kept-alive socket: only for requests that are safe to
// apply twice. The server here reads a request in full and THEN resets the connection (it may
// have applied it), which is exactly the case a retry must not double.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo, Socket } from 'node:net';
import { expect } from 'chai';
import { hasErrorCode } from '../errors.ts';
import { loadKubeConfig } from './kubeconfig.ts';
import { writeTestKubeconfig } from './test-kubeconfig.ts';
import { HttpKubeTransport } from './transport.ts';

describe('HttpKubeTransport retry on a reset kept-alive socket', () => {
  let server: http.Server;
  let dir: string;
  let transport: HttpKubeTransport;
  /** Requests the server read in full, as "METHOD path". */
  let received: string[];
  /** Reset the connection after reading the next request on a reused socket. */
  let resetReused: boolean;
  const served = new WeakMap<Socket, number>();

  before(async () => {
    server = http.createServer((req, res) => {
      const n = (served.get(req.socket) ?? 0) + 1;
      served.set(req.socket, n);
      req.resume();
      req.on('end', () => {
        received.push(`${req.method} ${req.url}`);
        if (resetReused && n > 1) {
          resetReused = false;
          req.socket.resetAndDestroy();
          return;
        }
        res.writeHead(req.method === 'POST' ? 201 : 200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ metadata: { name: 'x' } }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tr-'));
    writeTestKubeconfig(path.join(dir, 'kubeconfig'), { server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token: 't' });
    transport = new HttpKubeTransport(loadKubeConfig({ kubeconfigPath: path.join(dir, 'kubeconfig'), env: {} }).kubeConfig);
  });
  beforeEach(() => {
    received = [];
    resetReused = false;
  });
  after(async () => {
    transport.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('never sends a POST twice: a create the server may have applied fails as unavailable', async () => {
    await transport.request({ method: 'GET', path: '/warm', what: 'warm up' }); // a kept-alive socket to reuse
    resetReused = true;
    const err = await transport
      .request({ method: 'POST', path: '/api/v1/namespaces/default/events', body: { metadata: { generateName: 'e-' } }, what: 'create event' })
      .catch((e: unknown) => e);
    expect(hasErrorCode(err, 'unavailable'), String(err)).to.equal(true);
    expect(received).to.deep.equal(['GET /warm', 'POST /api/v1/namespaces/default/events']);
  });

  it('never sends a JSON patch twice', async () => {
    await transport.request({ method: 'GET', path: '/warm', what: 'warm up' });
    resetReused = true;
    const err = await transport
      .request({ method: 'PATCH', path: '/p', body: [{ op: 'add', path: '/metadata/finalizers/-', value: 'f' }], contentType: 'application/json-patch+json', what: 'patch' })
      .catch((e: unknown) => e);
    expect(hasErrorCode(err, 'unavailable'), String(err)).to.equal(true);
    expect(received).to.deep.equal(['GET /warm', 'PATCH /p']);
  });

  it('sends a GET again once, on a fresh connection', async () => {
    await transport.request({ method: 'GET', path: '/warm', what: 'warm up' });
    resetReused = true;
    const got = await transport.request<{ metadata: { name: string } }>({ method: 'GET', path: '/g', what: 'get' });
    expect(got.metadata.name).to.equal('x');
    expect(received).to.deep.equal(['GET /warm', 'GET /g', 'GET /g']);
  });
});
