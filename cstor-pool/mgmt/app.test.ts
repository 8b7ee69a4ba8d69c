// The pool mgmt API against a real pool in a temporary directory: every kind of bad input gets a
// 4xx JSON error naming the problem, nothing is created, and nothing lands outside the pool dir.
import { expect } from 'chai';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { closeServer, listen } from '../../lib/listen.ts';
import { silentLogger } from '../../lib/logger.ts';
import { openPool } from '../store/pool.ts';
import type { Pool } from '../store/types.ts';
import { createMgmtApp } from './app.ts';

const MiB = 1 << 20;

interface Reply {
  status: number;
  body: unknown;
  text: string;
}

/** A raw request: the path goes out exactly as written (no client-side normalisation of %2e%2e). */
function raw(port: number, method: string, urlPath: string, body?: string, contentType = 'application/json'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers = body !== undefined ? { 'content-type': contentType, 'content-length': String(Buffer.byteLength(body)) } : {};
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = null;
        try {
          parsed = text ? JSON.parse(text) : null;
        } catch {
          parsed = null;
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, text });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true })) out.push(path.relative(dir, path.join(e.parentPath, e.name)));
  return out.sort();
}

describe('pool mgmt API: bad input', () => {
  let root: string;
  let pool: Pool;
  let server: http.Server;
  let port: number;
  const dropped: string[] = [];

  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'pool-mgmt-'));
    pool = await openPool({ dir: path.join(root, 'pool'), name: 'p1', logger: silentLogger() });
    server = http.createServer(createMgmtApp({ pool, logger: silentLogger(), registry: new Registry(), dropVolume: (v) => dropped.push(v) }));
    port = ((await listen(server, '127.0.0.1', 0)) as AddressInfo).port;
  });

  afterEach(async () => {
    await closeServer(server);
    await pool.close();
    await fs.rm(root, { recursive: true, force: true });
  });

  it('refuses bad create bodies with 400/413 naming the problem, and creates nothing', async () => {
    const ok = { volume: 'v2', size: MiB };
    const table: { body: string; contentType?: string; status: number; error: RegExp }[] = [
      { body: '{bad', status: 400, error: /^malformed JSON body: / },
      { body: '', status: 400, error: /volume must be a string; size must be a positive integer/ },
      { body: 'volume=v2', contentType: 'text/plain', status: 400, error: /must be a JSON object .*Content-Type: application\/json/ },
      { body: '[]', status: 400, error: /must be a JSON object/ },
      { body: '"v2"', status: 400, error: /^malformed JSON body/ },
      { body: JSON.stringify({ ...ok, size: String(MiB) }), status: 400, error: /size must be a positive integer number of bytes/ },
      { body: JSON.stringify({ ...ok, size: -MiB }), status: 400, error: /size must be a positive integer/ },
      { body: JSON.stringify({ ...ok, size: MiB + 0.5 }), status: 400, error: /size must be a positive integer/ },
      { body: '{"volume":"v2","size":1e300}', status: 400, error: /size must be a positive integer/ },
      { body: JSON.stringify({ ...ok, size: 2 ** 53 + 2 }), status: 400, error: /size must be a positive integer/ },
      { body: JSON.stringify({ ...ok, size: 2 ** 50 }), status: 413, error: /more than 2\^32 blocks/ },
      { body: JSON.stringify({ ...ok, size: 1000 }), status: 400, error: /multiple of the block size/ },
      { body: JSON.stringify({ ...ok, blockSize: '4096' }), status: 400, error: /blockSize must be an integer/ },
      { body: JSON.stringify({ ...ok, blockSize: 3 }), status: 400, error: /block size 3 must be a power of two/ },
      { body: JSON.stringify({ ...ok, blockSize: -512 }), status: 400, error: /block size -512/ },
      { body: JSON.stringify({ ...ok, extra: 1 }), status: 400, error: /unknown field "extra"/ },
      { body: '{"volume":"v2","size":1048576,"__proto__":{"size":1}}', status: 400, error: /unknown field "__proto__"/ },
      { body: JSON.stringify({ ...ok, volume: '../x' }), status: 400, error: /volume name "\.\.\/x" is invalid/ },
      { body: JSON.stringify({ ...ok, volume: 'a/b' }), status: 400, error: /volume name "a\/b" is invalid/ },
      { body: JSON.stringify({ ...ok, volume: 'V2' }), status: 400, error: /volume name "V2" is invalid/ },
      { body: JSON.stringify({ ...ok, volume: 'a'.repeat(254) }), status: 400, error: /no more than 253 characters/ },
      { body: JSON.stringify({ ...ok, cloneOf: 'v1@../../x' }), status: 400, error: /invalid snapshot name "\.\.\/\.\.\/x"/ },
      { body: JSON.stringify({ ...ok, cloneOf: '../v1@s' }), status: 400, error: /cloneOf volume "\.\.\/v1" is invalid/ },
      { body: JSON.stringify({ ...ok, cloneOf: 7 }), status: 400, error: /cloneOf must be "<volume>@<snapshot>"/ },
      { body: JSON.stringify({ ...ok, cloneOf: 'nov@s1' }), status: 404, error: /clone source volume nov not found in pool p1/ },
      { body: JSON.stringify({ ...ok, volume: 'a'.repeat(70_000) }), status: 413, error: /^request body too large/ },
      { body: JSON.stringify(ok), contentType: 'application/json; charset=latin9', status: 400, error: /unsupported charset/ },
    ];
    for (const c of table) {
      const res = await raw(port, 'POST', '/v1/replicas', c.body, c.contentType);
      expect(res.status, `${c.body.slice(0, 60)} → ${res.text}`).to.equal(c.status);
      expect((res.body as { error: string }).error, c.body.slice(0, 60)).to.match(c.error);
    }
    expect(await pool.listReplicas()).to.deep.equal([]);
  });

  it('create: 201, then 200 for the same spec, 409 for another size or block size; the replica is untouched', async () => {
    const first = await raw(port, 'POST', '/v1/replicas', JSON.stringify({ volume: 'v1', size: MiB }));
    expect(first.status, first.text).to.equal(201);
    const again = await raw(port, 'POST', '/v1/replicas', JSON.stringify({ volume: 'v1', size: MiB }));
    expect(again.status, again.text).to.equal(200);
    for (const body of [{ volume: 'v1', size: 2 * MiB }, { volume: 'v1', size: MiB, blockSize: 512 }]) {
      const res = await raw(port, 'POST', '/v1/replicas', JSON.stringify(body));
      expect(res.status, res.text).to.equal(409);
      expect((res.body as { error: string }).error).to.match(/replica v1 already exists in pool p1/);
    }
    expect((await pool.getReplica('v1'))?.size).to.equal(MiB);
  });

  it('concurrent creates of one volume: exactly one 201, the rest 200, one replica', async () => {
    const replies = await Promise.all(Array.from({ length: 6 }, () => raw(port, 'POST', '/v1/replicas', JSON.stringify({ volume: 'v1', size: MiB }))));
    expect(replies.map((r) => r.status).sort()).to.deep.equal([200, 200, 200, 200, 200, 201]);
    expect((await pool.listReplicas()).map((r) => r.volume)).to.deep.equal(['v1']);
  });

  it('path tricks and bad names: 400 naming the name, 404 naming the missing volume, never a 500', async () => {
    const table: { method: string; path: string; status: number; error: RegExp }[] = [
      { method: 'GET', path: '/v1/replicas/..%2F..%2Fetc', status: 400, error: /volume name "\.\.\/\.\.\/etc" is invalid/ },
      { method: 'DELETE', path: '/v1/replicas/..%2Fpool', status: 400, error: /volume name "\.\.\/pool" is invalid/ },
      { method: 'DELETE', path: '/v1/replicas/%2e%2e', status: 400, error: /volume name "\.\." is invalid/ },
      { method: 'GET', path: '/v1/replicas/a%2Fb', status: 400, error: /volume name "a\/b" is invalid/ },
      { method: 'GET', path: '/v1/replicas/UPPER', status: 400, error: /volume name "UPPER" is invalid/ },
      { method: 'GET', path: `/v1/replicas/${'a'.repeat(254)}`, status: 400, error: /no more than 253 characters/ },
      { method: 'GET', path: '/v1/replicas/%E0%A4%A', status: 400, error: /^bad request: Failed to decode param '%E0%A4%A'/ },
      { method: 'GET', path: '/v1/replicas/nope', status: 404, error: /^volume nope has no replica in pool p1$/ },
      { method: 'PATCH', path: '/v1/replicas', status: 404, error: /^no route PATCH \/v1\/replicas$/ },
      { method: 'PUT', path: '/v1/replicas/v1', status: 404, error: /^no route PUT \/v1\/replicas\/v1$/ },
      { method: 'GET', path: '/v2/anything', status: 404, error: /^no route GET \/v2\/anything$/ },
    ];
    for (const c of table) {
      const res = await raw(port, c.method, c.path);
      expect(res.status, `${c.method} ${c.path} → ${res.text}`).to.equal(c.status);
      expect((res.body as { error: string }).error, `${c.method} ${c.path}`).to.match(c.error);
    }
    // A DELETE of a valid name that is not there is idempotent.
    expect((await raw(port, 'DELETE', '/v1/replicas/nope')).status).to.equal(204);
    expect(dropped).to.deep.equal(['nope']);
  });

  it('after all that, the pool dir holds only its own files and the temp dir nothing else', async () => {
    await raw(port, 'POST', '/v1/replicas', JSON.stringify({ volume: 'v1', size: MiB }));
    for (const name of ['..%2Fx', '%2e%2e', '..%2F..%2Fescape']) {
      await raw(port, 'POST', `/v1/replicas/${name}`, '{}');
      await raw(port, 'DELETE', `/v1/replicas/${name}`);
    }
    await raw(port, 'POST', '/v1/replicas', JSON.stringify({ volume: 'v3', size: MiB, cloneOf: 'v1@../../../escape' }));
    expect(await fs.readdir(root)).to.deep.equal(['pool']);
    const tree = await listTree(path.join(root, 'pool'));
    expect(tree.filter((f) => f.includes('escape') || f.startsWith('..'))).to.deep.equal([]);
    expect((await pool.listReplicas()).map((r) => r.volume)).to.deep.equal(['v1']);
  });
});
