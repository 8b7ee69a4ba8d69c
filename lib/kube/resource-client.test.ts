import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { loadKubeConfig } from './kubeconfig.ts';
import { ResourceClient } from './resource-client.ts';
import { resources } from './resources.ts';
import { writeTestKubeconfig } from './test-kubeconfig.ts';
import { HttpKubeTransport } from './transport.ts';
import type { VolumeSnapshot } from './types/volume-snapshot.ts';
import type { WatchEvent } from './types/meta.ts';

interface Seen {
  method: string;
  url: string;
  auth: string | undefined;
  contentType: string | undefined;
  body: string;
}

describe('ResourceClient over HTTP (in-process fake server)', () => {
  let server: http.Server;
  let dir: string;
  let seen: Seen[];
  let handler: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;
  let client: ResourceClient<VolumeSnapshot>;

  before(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization, contentType: req.headers['content-type'], body });
        handler(req, res, body);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rc-'));
    const port = (server.address() as AddressInfo).port;
    writeTestKubeconfig(path.join(dir, 'kubeconfig'), { server: `http://127.0.0.1:${port}`, token: 'sekret' });
    const { kubeConfig } = loadKubeConfig({ kubeconfigPath: path.join(dir, 'kubeconfig'), env: {} });
    client = new ResourceClient<VolumeSnapshot>(new HttpKubeTransport(kubeConfig), resources.volumeSnapshots);
  });
  beforeEach(() => {
    seen = [];
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function reply(status: number, body: unknown): void {
    handler = (_req, res) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
  }

  it('lists with selectors and the bearer token, filling apiVersion and kind of items', async () => {
    reply(200, { kind: 'VolumeSnapshotList', metadata: { resourceVersion: '7' }, items: [{ metadata: { name: 's1', namespace: 'default' }, spec: { persistentVolumeClaimName: 'c' } }] });
    const list = await client.list({ namespace: 'default', labelSelector: 'a=b' });
    expect(seen[0]).to.include({ method: 'GET', url: '/apis/volumesnapshot.external-storage.k8s.io/v1/namespaces/default/volumesnapshots?labelSelector=a%3Db', auth: 'Bearer sekret' });
    expect(list.metadata?.resourceVersion).to.equal('7');
    expect(list.items[0]).to.include({ apiVersion: 'volumesnapshot.external-storage.k8s.io/v1', kind: 'VolumeSnapshot' });
  });

  it('turns Status bodies into coded errors', async () => {
    reply(404, { kind: 'Status', code: 404, reason: 'NotFound', message: 'volumesnapshots "x" not found' });
    const err = await client.get({ name: 'x', namespace: 'default' }).catch((e: unknown) => e);
    expect(err).to.have.property('code', 'not_found');
    expect((err as Error).message).to.equal('get volumesnapshots default/x: 404 NotFound: volumesnapshots "x" not found');
    reply(409, { kind: 'Status', code: 409, reason: 'AlreadyExists', message: 'exists' });
    const err2 = await client.create({ metadata: { name: 'x', namespace: 'default' }, spec: { persistentVolumeClaimName: 'c' } }).catch((e: unknown) => e);
    expect(err2).to.have.property('code', 'already_exists');
    expect(JSON.parse(seen[1]!.body)).to.include({ apiVersion: 'volumesnapshot.external-storage.k8s.io/v1', kind: 'VolumeSnapshot' });
  });

  it('refuses a namespaced call without a namespace before sending anything', async () => {
    const err = await Promise.resolve()
      .then(() => client.get({ name: 'x' }))
      .catch((e: unknown) => e);
    expect(err).to.have.property('code', 'invalid');
    expect(seen).to.have.length(0);
  });

  it('sends merge, JSON and status patches with their content types and paths, and delete options', async () => {
    reply(200, { metadata: { name: 'x' } });
    await client.mergePatch({ name: 'x', namespace: 'ns' }, { metadata: { labels: { a: 'b' } } });
    await client.jsonPatch({ name: 'x', namespace: 'ns' }, [{ op: 'test', path: '/metadata/resourceVersion', value: '3' }]);
    await client.patchStatus({ name: 'x', namespace: 'ns' }, { conditions: [] });
    await client.delete({ name: 'x', namespace: 'ns' }, { propagationPolicy: 'Background' });
    expect(seen.map((s) => [s.method, s.url, s.contentType])).to.deep.equal([
      ['PATCH', '/apis/volumesnapshot.external-storage.k8s.io/v1/namespaces/ns/volumesnapshots/x', 'application/merge-patch+json'],
      ['PATCH', '/apis/volumesnapshot.external-storage.k8s.io/v1/namespaces/ns/volumesnapshots/x', 'application/json-patch+json'],
      ['PATCH', '/apis/volumesnapshot.external-storage.k8s.io/v1/namespaces/ns/volumesnapshots/x/status', 'application/merge-patch+json'],
      ['DELETE', '/apis/volumesnapshot.external-storage.k8s.io/v1/namespaces/ns/volumesnapshots/x', 'application/json'],
    ]);
    expect(JSON.parse(seen[2]!.body)).to.deep.equal({ status: { conditions: [] } });
    expect(JSON.parse(seen[3]!.body)).to.include({ kind: 'DeleteOptions', propagationPolicy: 'Background' });
  });

  it('streams watch events in order, fails a cut-off stream, and ends quietly on abort', async () => {
    let cut: (() => void) | undefined;
    handler = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
      res.write(JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '1' } } }) + '\n');
      res.write(JSON.stringify({ type: 'MODIFIED', object: { metadata: { name: 'a', resourceVersion: '2' } } }) + '\n{"type":"DEL');
      res.write('ETED","object":{"metadata":{"name":"a","resourceVersion":"3"}}}\n');
      cut = () => res.socket?.destroy();
    };
    const events: WatchEvent<VolumeSnapshot>[] = [];
    const w = await client.watch({ resourceVersion: '0', timeoutSeconds: 30 }, (e) => events.push(e));
    expect(seen[0]!.url).to.equal('/apis/volumesnapshot.external-storage.k8s.io/v1/volumesnapshots?watch=true&resourceVersion=0&timeoutSeconds=30');
    for (let i = 0; i < 100 && events.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
    expect(events.map((e) => `${e.type} ${(e.object as VolumeSnapshot).metadata.resourceVersion}`)).to.deep.equal(['ADDED 1', 'MODIFIED 2', 'DELETED 3']);
    cut!();
    const err = await w.done.catch((e: unknown) => e);
    expect(err).to.have.property('code', 'unavailable');

    const w2 = await client.watch({}, () => {});
    w2.abort();
    await w2.done;
  });

  it('fails the watch on a malformed line, and refuses a watch the server answers with 410', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"type":"ADDED","object":{"metadata":{"name":"a"}}}\nnot json\n');
    };
    const w = await client.watch({}, () => {});
    const err = await w.done.catch((e: unknown) => e);
    expect(err).to.have.property('code', 'protocol');
    reply(410, { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version: 1 (5)' });
    const err2 = await client.watch({ resourceVersion: '1' }, () => {}).catch((e: unknown) => e);
    expect(err2).to.have.property('code', 'gone');
  });

  it('reports a refused connection as unavailable', async () => {
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    writeTestKubeconfig(path.join(dir, 'dead'), { server: `http://127.0.0.1:${port}`, token: 't' });
    const { kubeConfig } = loadKubeConfig({ kubeconfigPath: path.join(dir, 'dead'), env: {} });
    const dead = new ResourceClient<VolumeSnapshot>(new HttpKubeTransport(kubeConfig), resources.volumeSnapshots);
    const err = await dead.list().catch((e: unknown) => e);
    expect(err).to.have.property('code', 'unavailable');
    expect((err as Error).message).to.contain('ECONNREFUSED');
  });
});
