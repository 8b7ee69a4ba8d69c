// Bad input against kube-lite: each gets the right status, a Status body with a clear message,
// and nothing is stored.
import { expect } from 'chai';
import { stopAll } from '../support/daemon.ts';
import { raw, startKubeLiteProc, type KubeLiteProc } from './support.ts';

describe('kube-lite bad input', function () {
  this.timeout(30_000);
  let kl: KubeLiteProc;
  before(async () => {
    kl = await startKubeLiteProc();
  });
  after(stopAll);

  const cms = '/api/v1/namespaces/default/configmaps';
  async function stored(): Promise<string[]> {
    const r = await raw(kl, cms);
    return (r.json.items as { metadata: { name: string } }[]).map((i) => i.metadata.name);
  }

  const cases: { what: string; path?: string; method?: string; body: string; contentType?: string; status: number; reason: string; message: RegExp }[] = [
    { what: 'malformed JSON', body: '{"metadata": {"name": "x"', status: 400, reason: 'BadRequest', message: /not valid JSON/ },
    { what: 'a JSON array', body: '[1,2]', status: 400, reason: 'BadRequest', message: /must be a JSON object/ },
    { what: 'a wrong apiVersion', body: '{"apiVersion":"v2","kind":"ConfigMap","metadata":{"name":"x"}}', status: 400, reason: 'BadRequest', message: /API version in the data \(v2\) does not match the expected API version \(v1\)/ },
    { what: 'a wrong kind', body: '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}', status: 400, reason: 'BadRequest', message: /kind in the data \(Secret\) does not match the expected kind \(ConfigMap\)/ },
    { what: 'an invalid name', body: '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}', status: 422, reason: 'Invalid', message: /ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/ },
    { what: 'a missing name', body: '{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}', status: 422, reason: 'Invalid', message: /metadata.name: Required value: name or generateName is required/ },
    { what: 'a namespace mismatch', body: '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"kube-system"}}', status: 400, reason: 'BadRequest', message: /does not match the namespace sent on the request/ },
    { what: 'an empty body', body: '', status: 400, reason: 'BadRequest', message: /empty/ },
    { what: 'malformed protobuf', body: 'xx', contentType: 'application/vnd.kubernetes.protobuf', status: 400, reason: 'BadRequest', message: /protobuf request body is malformed: it does not start with the 4-byte magic/ },
    { what: 'truncated protobuf', body: 'k8s\u0000\u000a\u000f\u000a', contentType: 'application/vnd.kubernetes.protobuf', status: 400, reason: 'BadRequest', message: /protobuf request body is malformed: Unknown: field 1 at offset 0 declares 15 bytes/ },
    { what: 'an empty protobuf body', body: '', contentType: 'application/vnd.kubernetes.protobuf', status: 400, reason: 'BadRequest', message: /empty/ },
    { what: 'another protobuf media type', body: 'xx', contentType: 'application/x-protobuf', status: 415, reason: 'UnsupportedMediaType', message: /not application\/x-protobuf/ },
  ];
  for (const c of cases) {
    it(`refuses ${c.what} with ${c.status} ${c.reason}`, async () => {
      const before = await stored();
      const r = await raw(kl, c.path ?? cms, { method: c.method ?? 'POST', body: c.body, ...(c.contentType ? { contentType: c.contentType } : {}) });
      expect(r.status, r.text).to.equal(c.status);
      expect(r.json).to.deep.include({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: c.reason, code: c.status });
      expect(String(r.json.message)).to.match(c.message);
      expect(await stored()).to.deep.equal(before);
    });
  }

  it('names the field of each problem in details.causes (422)', async () => {
    const body = JSON.stringify({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'c1' }, spec: { resources: {} } });
    const r = await raw(kl, '/api/v1/namespaces/default/persistentvolumeclaims', { method: 'POST', body });
    expect(r.status).to.equal(422);
    const details = r.json.details as { name: string; kind: string; causes: { field: string; reason: string; message: string }[] };
    expect(details.name).to.equal('c1');
    expect(details.kind).to.equal('PersistentVolumeClaim');
    expect(details.causes.map((c) => `${c.field}:${c.reason}`)).to.deep.equal(['spec.accessModes:FieldValueRequired', 'spec.resources[storage]:FieldValueRequired']);
    const list = await raw(kl, '/api/v1/namespaces/default/persistentvolumeclaims');
    expect(list.json.items).to.deep.equal([]);
    const ns = await raw(kl, '/api/v1/namespaces', { method: 'POST', body: JSON.stringify({ metadata: { name: 'a.b' } }) });
    expect(ns.status).to.equal(422);
    expect(String(ns.json.message)).to.match(/RFC 1123 label/);
  });

  it('refuses changes to immutable fields (422) and keeps the object', async () => {
    const pvcs = '/api/v1/namespaces/default/persistentvolumeclaims';
    await raw(kl, pvcs, { method: 'POST', body: JSON.stringify({ metadata: { name: 'imm' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, storageClassName: 'a' } }) });
    const r = await raw(kl, `${pvcs}/imm`, { method: 'PATCH', contentType: 'application/merge-patch+json', body: JSON.stringify({ spec: { storageClassName: 'b' } }) });
    expect(r.status).to.equal(422);
    expect(String(r.json.message)).to.match(/spec is immutable after creation/);
    const grow = await raw(kl, `${pvcs}/imm`, { method: 'PATCH', contentType: 'application/merge-patch+json', body: JSON.stringify({ spec: { resources: { requests: { storage: '2Gi' } } } }) });
    expect(grow.status).to.equal(200);
    expect((await raw(kl, `${pvcs}/imm`)).json.spec).to.deep.include({ storageClassName: 'a' });
    await raw(kl, '/apis/storage.k8s.io/v1/storageclasses', { method: 'POST', body: JSON.stringify({ metadata: { name: 'imm-sc' }, provisioner: 'x.io/p' }) });
    const sc = await raw(kl, '/apis/storage.k8s.io/v1/storageclasses/imm-sc', { method: 'PATCH', contentType: 'application/merge-patch+json', body: JSON.stringify({ parameters: { a: 'b' } }) });
    expect(sc.status).to.equal(422);
    expect(String(sc.json.message)).to.match(/parameters: Forbidden: updates to parameters are forbidden/);
  });

  it('requires the bearer token on every request (401 Status)', async () => {
    for (const [p, method] of [['/api', 'GET'], [cms, 'GET'], ['/healthz', 'GET'], [cms, 'POST']] as const) {
      const none = await raw(kl, p, { method, token: null, ...(method === 'POST' ? { body: '{"metadata":{"name":"sneaky"}}' } : {}) });
      expect(none.status, p).to.equal(401);
      expect(none.json).to.deep.include({ kind: 'Status', reason: 'Unauthorized', code: 401 });
      const wrong = await raw(kl, p, { method, token: 'not-the-token', ...(method === 'POST' ? { body: '{"metadata":{"name":"sneaky"}}' } : {}) });
      expect(wrong.status, p).to.equal(401);
    }
    expect(await stored()).to.not.include('sneaky');
  });

  it('answers unknown resources, a missing object and bad patches clearly', async () => {
    const unknown = await raw(kl, '/apis/example.com/v1/namespaces/default/things');
    expect(unknown.status).to.equal(404);
    expect(unknown.json.reason).to.equal('NotFound');
    const missing = await raw(kl, `${cms}/nope`);
    expect(missing.status).to.equal(404);
    expect(missing.json.message).to.equal('configmaps "nope" not found');
    expect(missing.json.details).to.deep.equal({ name: 'nope', group: '', kind: 'configmaps' });
    await raw(kl, cms, { method: 'POST', body: JSON.stringify({ metadata: { name: 'p1' }, data: { a: '1' } }) });
    const badType = await raw(kl, `${cms}/p1`, { method: 'PATCH', body: '{}', contentType: 'text/plain' });
    expect(badType.status).to.equal(415);
    const badOp = await raw(kl, `${cms}/p1`, { method: 'PATCH', body: '[{"op":"remove","path":"/data/zz"}]', contentType: 'application/json-patch+json' });
    expect(badOp.status).to.equal(400);
    expect(String(badOp.json.message)).to.match(/does not exist/);
    const rename = await raw(kl, `${cms}/p1`, { method: 'PATCH', body: '{"metadata":{"name":"p2"}}', contentType: 'application/merge-patch+json' });
    expect(rename.status).to.equal(400);
    const after = await raw(kl, `${cms}/p1`);
    expect(after.json.data).to.deep.equal({ a: '1' });
    expect(after.json.metadata).to.include({ resourceVersion: (after.json.metadata as { resourceVersion: string }).resourceVersion });
    const badSel = await raw(kl, `${cms}?labelSelector=${encodeURIComponent('a in b')}`);
    expect(badSel.status).to.equal(400);
    expect(String(badSel.json.message)).to.match(/unable to parse requirement/);
  });
});
