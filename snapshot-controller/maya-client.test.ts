// The m-apiserver client against a small express server on 127.0.0.1:0: the REST contract,
// errors classified by status, and the address looked up again after a failure.
import { expect } from 'chai';
import express from 'express';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CstorError, isCstorError } from '../lib/errors.ts';
import { MayaAddressResolver } from '../lib/maya-client/address.ts';
import { MayaClient as MayaRestClient } from '../lib/maya-client/client.ts';
import { MayaSnapshots } from './maya-client.ts';

interface Server {
  port: number;
  seen: string[];
  close(): Promise<void>;
}

async function fakeMapi(): Promise<Server> {
  const seen: string[] = [];
  const snaps = new Map<string, string>();
  const app = express();
  app.use(express.json());
  app.post('/latest/snapshots{/*rest}', (req, res) => {
    const body = req.body as { metadata: { name: string }; spec: { volumeName: string; casType: string } };
    seen.push(`POST ${req.path} ${body.metadata.name} ${body.spec.volumeName} ${body.spec.casType}`);
    if (body.spec.volumeName === 'sick') {
      res.status(409).json({ error: 'volume "sick" is Offline, not Healthy' });
      return;
    }
    if (body.spec.volumeName === 'boom') {
      res.status(500).json({ error: 'target timed out' });
      return;
    }
    snaps.set(body.metadata.name, body.spec.volumeName);
    res.status(201).json({ metadata: { name: body.metadata.name }, spec: { volumeName: body.spec.volumeName, casType: 'cstor' } });
  });
  app.get('/latest/snapshots/', (req, res) => {
    seen.push(`LIST ${String(req.query.volume)}`);
    res.json({ items: [...snaps].filter(([, v]) => v === req.query.volume).map(([name, volumeName]) => ({ metadata: { name }, spec: { volumeName } })) });
  });
  app.get('/latest/snapshots/:name', (req, res) => {
    seen.push(`GET ${req.params.name} ${String(req.query.volume)} ${String(req.query.namespace)} ${String(req.query.casType)}`);
    const v = snaps.get(req.params.name);
    if (!v) res.status(404).json({ error: `snapshot ${req.params.name} not found` });
    else res.json({ metadata: { name: req.params.name }, spec: { volumeName: v } });
  });
  app.delete('/latest/snapshots/:name', (req, res) => {
    seen.push(`DELETE ${req.params.name}`);
    if (!snaps.delete(req.params.name)) res.status(404).json({ error: 'gone' });
    else res.json({});
  });
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return isCstorError(err) ? `${err.code}: ${err.message}` : String(err);
  }
}

describe('snapshot-controller maya client', () => {
  let server: Server;
  before(async () => {
    server = await fakeMapi();
  });
  after(async () => {
    await server.close();
  });

  it('speaks the REST contract and classifies errors by status', async () => {
    const client = new MayaSnapshots(new MayaRestClient({ address: new MayaAddressResolver({ mapiAddr: `127.0.0.1:${server.port}`, namespace: 'openebs', getService: () => Promise.reject(new Error('unused')) }) }));
    const ref = { snapshotId: 'pv1_s1_1', volumeName: 'pv1', namespace: 'default' };
    expect((await client.createSnapshot(ref)).metadata.name).to.equal('pv1_s1_1');
    expect((await client.getSnapshot(ref)).spec.volumeName).to.equal('pv1');
    expect((await client.listSnapshots({ volumeName: 'pv1', namespace: 'default' })).map((s) => s.metadata.name)).to.deep.equal(['pv1_s1_1']);
    await client.deleteSnapshot(ref);
    await client.deleteSnapshot(ref); // gone (404) is success
    expect(await codeOf(client.getSnapshot(ref))).to.match(/^not_found: read snapshot pv1_s1_1 of volume pv1: m-apiserver 404: snapshot pv1_s1_1 not found$/);
    expect(await codeOf(client.createSnapshot({ ...ref, volumeName: 'sick' }))).to.match(/^conflict: .*409: volume "sick" is Offline, not Healthy$/);
    expect(await codeOf(client.createSnapshot({ ...ref, volumeName: 'boom' }))).to.match(/^unavailable: .*500: target timed out$/);
    expect(server.seen).to.include('POST /latest/snapshots/ pv1_s1_1 pv1 cstor');
    expect(server.seen).to.include('GET pv1_s1_1 pv1 default cstor');
  });

  it('finds m-apiserver from the Service and looks it up again after a failure', async () => {
    const dead = http.createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const deadPort = (dead.address() as AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    let port = deadPort;
    let lookups = 0;
    const resolver = new MayaAddressResolver({
      namespace: 'openebs',
      getService: async (ref) => {
        lookups++;
        expect(ref).to.deep.equal({ name: 'maya-apiserver-service', namespace: 'openebs' });
        return { metadata: { name: ref.name }, spec: { clusterIP: '127.0.0.1', ports: [{ name: 'api', port }] } };
      },
    });
    const client = new MayaSnapshots(new MayaRestClient({ address: resolver, timeoutMs: 5000 }));
    const ref = { snapshotId: 'pv2_s_1', volumeName: 'pv2', namespace: 'default' };
    expect(await codeOf(client.createSnapshot(ref))).to.match(/^unavailable: .*unreachable/);
    port = server.port; // the Service now points at the live m-apiserver
    expect(await codeOf(client.createSnapshot(ref))).to.equal('ok');
    expect(await codeOf(client.getSnapshot(ref))).to.equal('ok');
    expect(lookups).to.equal(2);
  });

  it('says clearly when neither MAPI_ADDR nor the Service is there', async () => {
    const resolver = new MayaAddressResolver({ namespace: 'openebs', getService: () => Promise.reject(new CstorError('not_found', 'services "maya-apiserver-service" not found')) });
    expect(await codeOf(resolver.resolve())).to.match(/^unavailable: m-apiserver address unknown \(MAPI_ADDR not set\): no Service openebs\/maya-apiserver-service$/);
  });
});
