// The REST layer over a stand-in for the flows: routing (paths, headers, query), body formats,
// the one error middleware (every code → its status and {"error"}), metrics.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import axios, { type AxiosInstance } from 'axios';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { CstorError, errorCodes, httpStatusFor, type ErrorCode } from '../../lib/errors.ts';
import { silentLogger } from '../../lib/logger.ts';
import { operationMetrics } from '../../lib/metrics.ts';
import type { Json } from '../cas/ports.ts';
import { createMapiApp, type MapiFlows } from './app.ts';
import { maxBodyBytes } from './body.ts';

interface Call {
  method: string;
  arg: unknown;
}

function fakeFlows(calls: Call[], fail: { code?: ErrorCode; thrown?: unknown }): MapiFlows {
  const handle = (method: string) => async (arg: unknown): Promise<Json> => {
    calls.push({ method, arg });
    if (fail.thrown !== undefined) throw fail.thrown;
    if (fail.code) throw new CstorError(fail.code, `flow says ${fail.code}`);
    return { ok: method };
  };
  return {
    createVolume: handle('createVolume'),
    readVolume: handle('readVolume'),
    listVolumes: handle('listVolumes'),
    deleteVolume: handle('deleteVolume'),
    createSnapshot: handle('createSnapshot'),
    readSnapshot: handle('readSnapshot'),
    listSnapshots: handle('listSnapshots'),
    deleteSnapshot: handle('deleteSnapshot'),
  } as MapiFlows;
}

describe('maya-apiserver/server: REST app', () => {
  let server: http.Server;
  let api: AxiosInstance;
  const calls: Call[] = [];
  const fail: { code?: ErrorCode; thrown?: unknown } = {};

  before(async () => {
    const registry = new Registry();
    const app = createMapiApp({ flows: fakeFlows(calls, fail), logger: silentLogger(), registry, metrics: operationMetrics(registry, 'mapi') });
    server = http.createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    api = axios.create({ baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, validateStatus: () => true, proxy: false });
  });
  after(() => new Promise<void>((r) => server.close(() => r())));
  beforeEach(() => {
    calls.length = 0;
    delete fail.code;
    delete fail.thrown;
  });

  const routes: Array<{ what: string; send: () => Promise<unknown>; method: string; arg: unknown }> = [
    { what: 'POST /latest/volumes/ (JSON)', send: () => api.post('/latest/volumes/', { metadata: { name: 'v' } }), method: 'createVolume', arg: { metadata: { name: 'v' } } },
    {
      what: 'POST /latest/volumes (YAML)',
      send: () => api.post('/latest/volumes', 'metadata:\n  name: v\nspec: {capacity: 5G}\n', { headers: { 'Content-Type': 'text/yaml; charset=utf-8' } }),
      method: 'createVolume',
      arg: { metadata: { name: 'v' }, spec: { capacity: '5G' } },
    },
    { what: 'GET /latest/volumes/ with headers', send: () => api.get('/latest/volumes/', { headers: { namespace: 'app', storageclass: 'sc' } }), method: 'listVolumes', arg: { namespace: 'app', storageClass: 'sc' } },
    { what: 'GET /latest/volumes/v', send: () => api.get('/latest/volumes/v', { headers: { namespace: 'app' } }), method: 'readVolume', arg: { name: 'v', namespace: 'app' } },
    { what: 'DELETE /latest/volumes/v', send: () => api.delete('/latest/volumes/v'), method: 'deleteVolume', arg: { name: 'v' } },
    { what: 'POST /latest/snapshots/', send: () => api.post('/latest/snapshots/', { metadata: { name: 's' } }), method: 'createSnapshot', arg: { metadata: { name: 's' } } },
    { what: 'POST /latest/snapshots/create/ (legacy)', send: () => api.post('/latest/snapshots/create/', { metadata: { name: 's' } }), method: 'createSnapshot', arg: { metadata: { name: 's' } } },
    { what: 'POST /latest/snapshots', send: () => api.post('/latest/snapshots', { metadata: { name: 's' } }), method: 'createSnapshot', arg: { metadata: { name: 's' } } },
    { what: 'GET /latest/snapshots/?volume=', send: () => api.get('/latest/snapshots/', { params: { volume: 'v', namespace: 'app', casType: 'cstor' } }), method: 'listSnapshots', arg: { volume: 'v', namespace: 'app' } },
    { what: 'GET /latest/snapshots/s?volume=', send: () => api.get('/latest/snapshots/s', { params: { volume: 'v' } }), method: 'readSnapshot', arg: { name: 's', volume: 'v' } },
    { what: 'DELETE /latest/snapshots/s?volume=', send: () => api.delete('/latest/snapshots/s.1_x', { params: { volume: 'v' } }), method: 'deleteSnapshot', arg: { name: 's.1_x', volume: 'v' } },
  ];
  for (const r of routes) {
    it(`routes ${r.what}`, async () => {
      const res = (await r.send()) as { status: number; data: unknown };
      expect(res.status).to.equal(200);
      expect(res.data).to.deep.equal({ ok: r.method });
      expect(calls).to.deep.equal([{ method: r.method, arg: r.arg }]);
    });
  }

  for (const code of errorCodes) {
    it(`maps a flow's ${code} error to HTTP ${httpStatusFor(code)} with {"error"}`, async () => {
      fail.code = code;
      const res = await api.get<{ error: string }>('/latest/volumes/v');
      expect(res.status).to.equal(httpStatusFor(code));
      expect(res.data).to.deep.equal({ error: `flow says ${code}` });
    });
  }

  it('a non-CstorError thrown is a 500 with its message, never a crash or an HTML page', async () => {
    fail.thrown = new TypeError('cannot read x of undefined');
    const res = await api.get<{ error: string }>('/latest/volumes/v');
    expect(res.status).to.equal(500);
    expect(res.data).to.deep.equal({ error: 'cannot read x of undefined' });
  });

  it('refuses a body over the limit with 413, without calling the flow', async () => {
    const res = await api.post<{ error: string }>('/latest/volumes/', JSON.stringify({ pad: 'x'.repeat(maxBodyBytes) }), { headers: { 'Content-Type': 'application/json' } });
    expect(res.status).to.equal(413);
    expect(res.data.error).to.match(/larger than 1048576 bytes/);
    expect(calls).to.deep.equal([]);
  });

  it('refuses a repeated query parameter', async () => {
    const res = await api.get<{ error: string }>('/latest/snapshots/?volume=a&volume=b');
    expect(res.status).to.equal(400);
    expect(res.data.error).to.match(/query parameter volume must be given once/);
  });

  it('counts operations in mapi_operation_total_seconds by name and status', async () => {
    await api.get('/latest/volumes/v');
    fail.code = 'not_found';
    await api.get('/latest/volumes/v');
    const text = (await api.get<string>('/metrics', { responseType: 'text' })).data;
    expect(text).to.match(/mapi_operation_total_seconds_count\{operation_name="volume_read",operation_status="success"\} \d+/);
    expect(text).to.match(/mapi_operation_total_seconds_count\{operation_name="volume_read",operation_status="failure"\} \d+/);
  });
});
