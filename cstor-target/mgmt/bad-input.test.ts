// The target mgmt API against bad input: 4xx JSON errors naming the problem, never a 500 with a
// stack; and a state file that cannot be written leaves nothing half done (served but forgotten,
// or stopped but still remembered).
import { expect } from 'chai';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { closeServer, listen } from '../../lib/listen.ts';
import { silentLogger } from '../../lib/logger.ts';
import { rejection } from '../../test/support/rejection.ts';
import { FakeCluster } from '../replication/fake-replica.ts';
import { createMgmtApp } from './app.ts';
import { VolumeManager } from './volume-manager.ts';

const MiB = 1 << 20;
const replicas = ['127.0.0.1:3001', '127.0.0.1:3002', '127.0.0.1:3003'];

interface Reply {
  status: number;
  error: string | undefined;
  text: string;
}

/** A raw request: the path goes out exactly as written (no client-side normalisation). */
function raw(port: number, method: string, urlPath: string, body?: string, contentType = 'application/json'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers = body !== undefined ? { 'content-type': contentType, 'content-length': String(Buffer.byteLength(body)) } : {};
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let error: string | undefined;
        try {
          error = (JSON.parse(text) as { error?: string }).error;
        } catch {
          error = undefined;
        }
        resolve({ status: res.statusCode ?? 0, error, text });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('target mgmt API: bad input', () => {
  let dir: string;
  let stateFile: string;
  let manager: VolumeManager;
  let server: http.Server;
  let port: number;
  const spec = (o: object = {}): string => JSON.stringify({ capacity: 8 * MiB, replicationFactor: 3, replicas, ...o });

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'target-bad-'));
    stateFile = path.join(dir, 'volumes.json');
    const cluster = new FakeCluster('vol1', 8 * MiB, replicas);
    manager = new VolumeManager({ connect: cluster.connect, portal: null, stateFile, logger: silentLogger(), targetId: 't1' });
    await manager.load();
    server = http.createServer(createMgmtApp({ manager, logger: silentLogger(), registry: new Registry() }));
    port = ((await listen(server, '127.0.0.1', 0)) as AddressInfo).port;
  });

  afterEach(async () => {
    await closeServer(server);
    await manager.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('refuses bad serve bodies and names, naming the problem; serves nothing', async () => {
    const table: { path?: string; body?: string; contentType?: string; status: number; error: RegExp }[] = [
      { body: '{bad', status: 400, error: /^malformed JSON body: / },
      { body: 'x', contentType: 'text/plain', status: 400, error: /must be a JSON object .*Content-Type: application\/json/ },
      { status: 400, error: /must be a JSON object/ },
      { body: spec({ capacity: String(8 * MiB) }), status: 400, error: /capacity must be a positive integer number of bytes/ },
      { body: spec({ capacity: 2 ** 60 }), status: 400, error: /capacity must be a positive integer/ },
      { body: spec({ capacity: 1.5 }), status: 400, error: /capacity must be a positive integer/ },
      { body: spec({ capacity: 8 * MiB + 1 }), status: 400, error: /not a multiple of the block size 512/ },
      { body: spec({ replicationFactor: 2.5 }), status: 400, error: /replicationFactor must be an integer in 1\.\.16/ },
      { body: spec({ replicas: 'x' }), status: 400, error: /replicas must be an array/ },
      { body: spec({ replicas: ['a:70000', ':', 'unix:rel'] }), status: 400, error: /"a:70000" is not HOST:PORT; .*":" is not HOST:PORT; .*must be absolute/ },
      { body: spec({ replicas: [replicas[0], replicas[0], replicas[1]] }), status: 400, error: /replica addresses repeat/ },
      { body: spec({ blockSize: '512' }), status: 400, error: /blockSize must be 512 or 4096/ },
      { body: spec({ extra: 1 }), status: 400, error: /unknown field "extra"/ },
      { body: JSON.stringify({ capacity: 8 * MiB, replicationFactor: 3, replicas, a: 'x'.repeat(70_000) }), status: 413, error: /^request body too large/ },
      { path: '/v1/volumes/Vol2', body: spec(), status: 400, error: /volume name "Vol2" is invalid/ },
      { path: `/v1/volumes/${'a'.repeat(64)}`, body: spec(), status: 400, error: /no more than 63 characters/ },
      { path: '/v1/volumes/..%2Fx', body: spec(), status: 400, error: /volume name "\.\.\/x" is invalid/ },
      { path: '/v1/volumes/%2e%2e', body: spec(), status: 400, error: /volume name "\.\." is invalid/ },
      { path: '/v1/volumes/%E0%A4%A', body: spec(), status: 400, error: /^bad request: Failed to decode param/ },
    ];
    for (const c of table) {
      const res = await raw(port, 'PUT', c.path ?? '/v1/volumes/vol2', c.body, c.contentType);
      expect(res.status, `${c.path ?? ''} ${(c.body ?? '').slice(0, 60)} → ${res.text.slice(0, 200)}`).to.equal(c.status);
      expect(res.error).to.match(c.error);
    }
    expect(manager.list()).to.deep.equal([]);
    expect(await fs.readdir(dir)).to.deep.equal([]);
  });

  it('every :volume route refuses an invalid name with 400 and names a missing volume with 404', async () => {
    const routes = [
      ['GET', ''],
      ['DELETE', ''],
      ['GET', '/stats'],
      ['GET', '/snapshots'],
      ['POST', '/snapshots'],
      ['DELETE', '/snapshots/s1'],
    ] as const;
    for (const [method, suffix] of routes) {
      const body = method === 'POST' ? '{"name":"s1"}' : undefined;
      for (const bad of ['..%2F..%2Fetc', 'a%2Fb', 'UPPER', 'a'.repeat(64)]) {
        const res = await raw(port, method, `/v1/volumes/${bad}${suffix}`, body);
        expect(res.status, `${method} ${bad}${suffix} → ${res.text}`).to.equal(400);
        expect(res.error).to.match(/^volume name ".*" is invalid: /);
      }
      const bad = await raw(port, method, `/v1/volumes/%E0%A4%A${suffix}`, body);
      expect(bad.status, `${method} %E0%A4%A${suffix} → ${bad.text}`).to.equal(400);
      if (method === 'DELETE' && suffix === '') {
        expect((await raw(port, method, '/v1/volumes/nope')).status).to.equal(204); // idempotent
      } else {
        const res = await raw(port, method, `/v1/volumes/nope${suffix}`, body);
        expect(res.status, `${method} nope${suffix}`).to.equal(404);
        expect(res.error).to.equal('volume nope is not served by this target');
      }
    }
    for (const [method, p] of [['PATCH', '/v1/volumes/vol1'], ['POST', '/v1/volumes/vol1'], ['PUT', '/v1/volumes']] as const) {
      const res = await raw(port, method, p, '{}');
      expect(res.status).to.equal(404);
      expect(res.error).to.equal(`no route ${method} ${p}`);
    }
  });

  it('snapshot create: names the wrong field type and unknown fields, and refuses path-like names', async () => {
    expect((await raw(port, 'PUT', '/v1/volumes/vol1', spec())).status).to.equal(201);
    await manager.get('vol1').waitFor((v) => v.phase === 'Healthy', 5000);
    const table: { body?: string; error: RegExp }[] = [
      { error: /must be a JSON object like \{"name": "snap-1"\}/ },
      { body: '[]', error: /must be a JSON object/ },
      { body: '{"name":5}', error: /^create snapshot: name must be a string$/ },
      { body: '{"name":"s1","extra":true}', error: /^create snapshot: unknown field "extra"$/ },
      { body: '{"name":"../x"}', error: /snapshot name "\.\.\/x"/ },
      { body: JSON.stringify({ name: 'a'.repeat(254) }), error: /snapshot name "a+"/ },
    ];
    for (const c of table) {
      const res = await raw(port, 'POST', '/v1/volumes/vol1/snapshots', c.body);
      expect(res.status, `${c.body ?? ''} → ${res.text.slice(0, 200)}`).to.equal(400);
      expect(res.error).to.match(c.error);
    }
    const del = await raw(port, 'DELETE', '/v1/volumes/vol1/snapshots/..%2Fx');
    expect(del.status).to.equal(400);
    expect(del.error).to.match(/snapshot name "\.\.\/x"/);
    expect(await manager.get('vol1').snapshotList()).to.deep.equal([]);
  });

  it('a serve whose state file cannot be written is not served (500 naming the file); a retry once it can succeeds', async () => {
    await fs.mkdir(`${stateFile}.tmp`); // the tmp-file + rename of the save fails
    const res = await raw(port, 'PUT', '/v1/volumes/vol1', spec());
    expect(res.status, res.text).to.equal(500);
    expect(res.error).to.match(/^cannot save the state file .*volumes\.json: EISDIR/);
    expect((await raw(port, 'GET', '/v1/volumes/vol1')).status).to.equal(404);
    expect(manager.list()).to.deep.equal([]);
    await fs.rmdir(`${stateFile}.tmp`);
    expect((await raw(port, 'PUT', '/v1/volumes/vol1', spec())).status).to.equal(201);
    expect((JSON.parse(await fs.readFile(stateFile, 'utf8')) as { volumes: { name: string }[] }).volumes.map((v) => v.name)).to.deep.equal(['vol1']);
  });

  it('a stop whose state file cannot be written keeps the volume served and remembered', async () => {
    expect((await raw(port, 'PUT', '/v1/volumes/vol1', spec())).status).to.equal(201);
    await fs.mkdir(`${stateFile}.tmp`);
    const res = await raw(port, 'DELETE', '/v1/volumes/vol1');
    expect(res.status, res.text).to.equal(500);
    expect(res.error).to.match(/^cannot save the state file /);
    expect((await raw(port, 'GET', '/v1/volumes/vol1')).status).to.equal(200);
    expect((JSON.parse(await fs.readFile(stateFile, 'utf8')) as { volumes: { name: string }[] }).volumes.map((v) => v.name)).to.deep.equal(['vol1']);
    await fs.rmdir(`${stateFile}.tmp`);
    expect((await raw(port, 'DELETE', '/v1/volumes/vol1')).status).to.equal(204);
    expect((JSON.parse(await fs.readFile(stateFile, 'utf8')) as { volumes: unknown[] }).volumes).to.deep.equal([]);
  });
});

describe('target state file: bad content', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'target-state-'));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('refuses a state file of the wrong shape with an io error naming the file and the field, leaving it as it is', async () => {
    const cluster = new FakeCluster('vol1', 8 * MiB, replicas);
    const table: { content: string; error: RegExp }[] = [
      { content: '{"version":1', error: /is unreadable: / },
      { content: 'null', error: /is not a target state file: not a JSON object/ },
      { content: '{"version":1,"volumes":5}', error: /"volumes" is not a list/ },
      { content: '{"version":1,"volumes":[null]}', error: /"volumes" holds a non-object/ },
      { content: '{"version":1,"volumes":[],"suspects":[]}', error: /"suspects" is not an object/ },
      { content: '{"version":1,"volumes":[],"writeCacheOff":"x"}', error: /"writeCacheOff" is not a list/ },
    ];
    for (const c of table) {
      const file = path.join(dir, 'volumes.json');
      await fs.writeFile(file, c.content);
      const manager = new VolumeManager({ connect: cluster.connect, portal: null, stateFile: file, logger: silentLogger(), targetId: 't1' });
      const err = await rejection(manager.load());
      expect(err.code, c.content).to.equal('io');
      expect(err.message, c.content).to.match(c.error).and.to.include(file);
      expect(await fs.readFile(file, 'utf8')).to.equal(c.content);
      await manager.close();
    }
  });

  it('serves the good volumes of a state file and skips a bad one (wrong name type), logging it', async () => {
    const cluster = new FakeCluster('vol1', 8 * MiB, replicas);
    const file = path.join(dir, 'volumes.json');
    const good = { name: 'vol1', capacity: 8 * MiB, replicationFactor: 3, replicas, blockSize: 512 };
    await fs.writeFile(file, JSON.stringify({ version: 1, volumes: [good, { ...good, name: 7 }, { ...good, name: '../x' }] }));
    const manager = new VolumeManager({ connect: cluster.connect, portal: null, stateFile: file, logger: silentLogger(), targetId: 't1' });
    await manager.load();
    expect(manager.list().map((v) => v.name)).to.deep.equal(['vol1']);
    await manager.close();
  });
});
