// The m-apiserver client against an in-process HTTP server: requests as DESIGN.md §4 says,
// statuses to codes, idempotent deletes, and the address looked up again after a failure.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { CstorError } from '../errors.ts';
import { MayaAddressResolver, mayaBaseUrl } from './address.ts';
import { MayaClient } from './client.ts';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

describe('lib/maya-client', () => {
  let server: http.Server;
  let port: number;
  const seen: Seen[] = [];
  let answer: { status: number; body: unknown } = { status: 200, body: {} };

  before(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(answer.status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(answer.body));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));
  beforeEach(() => {
    seen.length = 0;
    answer = { status: 200, body: {} };
  });

  const client = (): MayaClient => new MayaClient({ address: new MayaAddressResolver({ mapiAddr: `127.0.0.1:${port}`, namespace: 'openebs', getService: () => Promise.reject(new Error('unused')) }) });

  it('normalizes addresses', () => {
    expect(mayaBaseUrl('maya')).to.equal('http://maya:5656');
    expect(mayaBaseUrl('10.0.0.1:8080')).to.equal('http://10.0.0.1:8080');
    expect(mayaBaseUrl('http://x:1/')).to.equal('http://x:1');
    expect(() => mayaBaseUrl(' ')).to.throw(/empty/);
  });

  it('sends volume and snapshot requests as the REST contract says', async () => {
    const c = client();
    answer = { status: 200, body: { metadata: { name: 'pv1' }, spec: { iqn: 'iqn' } } };
    expect((await c.createVolume({ metadata: { name: 'pv1', namespace: 'default' }, spec: { capacity: '5G' } })).spec.iqn).to.equal('iqn');
    await c.getVolume('pv1', { namespace: 'default', storageClass: 'sc' });
    answer = { status: 200, body: { items: [{ metadata: { name: 's1' }, spec: { volumeName: 'pv1' } }] } };
    expect(await c.listSnapshots({ volumeName: 'pv1', namespace: 'default' })).to.have.length(1);
    answer = { status: 200, body: {} };
    await c.createSnapshot({ snapshotName: 'pv1_s_1', volumeName: 'pv1', namespace: 'default' });
    await c.deleteSnapshot({ snapshotName: 'pv1_s_1', volumeName: 'pv1', namespace: 'default' });
    await c.deleteVolume('pv1');
    expect(seen.map((s) => `${s.method} ${s.url}`)).to.deep.equal([
      'POST /latest/volumes/',
      'GET /latest/volumes/pv1',
      'GET /latest/snapshots/?volume=pv1&namespace=default&casType=cstor',
      'POST /latest/snapshots/',
      'DELETE /latest/snapshots/pv1_s_1?volume=pv1&namespace=default&casType=cstor',
      'DELETE /latest/volumes/pv1',
    ]);
    expect(JSON.parse(seen[0]?.body ?? '')).to.deep.equal({ metadata: { name: 'pv1', namespace: 'default' }, spec: { capacity: '5G' } });
    expect(seen[1]?.headers).to.include({ namespace: 'default', storageclass: 'sc' });
    expect(JSON.parse(seen[3]?.body ?? '')).to.deep.equal({ metadata: { name: 'pv1_s_1', namespace: 'default' }, spec: { casType: 'cstor', volumeName: 'pv1' } });
  });

  const statuses: Array<[number, string]> = [
    [400, 'invalid'],
    [404, 'not_found'],
    [409, 'conflict'],
    [413, 'too_large'],
    [500, 'unavailable'],
    [503, 'unavailable'],
    [504, 'timeout'],
  ];
  for (const [status, code] of statuses) {
    it(`HTTP ${status} → ${code}, with m-apiserver's message`, async () => {
      answer = { status, body: { error: 'volume pv9 is not Healthy' } };
      const err = await client().getVolume('pv9').catch((e: unknown) => e);
      expect(err).to.be.instanceOf(CstorError);
      expect((err as CstorError).code).to.equal(code);
      expect((err as CstorError).message).to.equal(`read volume pv9: m-apiserver ${status}: volume pv9 is not Healthy`);
    });
  }

  it('deleting what is gone (404) succeeds', async () => {
    answer = { status: 404, body: { error: 'gone' } };
    await client().deleteVolume('pv1');
    await client().deleteSnapshot({ snapshotName: 's', volumeName: 'pv1' });
  });

  it('looks the Service up again after m-apiserver was unreachable', async () => {
    let lookups = 0;
    const ports = [1, port]; // first answer: a port nobody listens on
    const c = new MayaClient({
      address: new MayaAddressResolver({
        namespace: 'openebs',
        getService: async (ref) => {
          expect(ref).to.deep.equal({ name: 'maya-apiserver-service', namespace: 'openebs' });
          return { metadata: { name: ref.name }, spec: { clusterIP: '127.0.0.1', ports: [{ port: ports[lookups++] ?? port }] } };
        },
      }),
    });
    const err = await c.getVolume('pv1').catch((e: unknown) => e);
    expect((err as CstorError).code).to.equal('unavailable');
    expect((err as CstorError).message).to.match(/unreachable/);
    await c.getVolume('pv1');
    expect(lookups).to.equal(2);
    await c.getVolume('pv1');
    expect(lookups).to.equal(2);
  });
});
