// Adversarial API semantics against an in-process kube-lite over HTTPS: the rules a controller
// relies on to neither lose nor duplicate work (resourceVersions, finalizers, server-owned
// metadata, status subresource, watch resumption) and bad input answered with a Status, never a
// crash.
import { expect } from 'chai';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../lib/logger.ts';
import { startKubeLite, type KubeLite } from '../server.ts';

interface Reply {
  status: number;
  text: string;
  json: Record<string, unknown>;
}

interface Meta {
  name: string;
  uid: string;
  resourceVersion: string;
  creationTimestamp: string;
  generation?: number;
  deletionTimestamp?: string;
  finalizers?: string[];
}

function metaOf(r: Reply): Meta {
  return r.json.metadata as Meta;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('kube-lite adversarial API semantics', function () {
  this.timeout(30_000);
  let kl: KubeLite;
  let ca: string;
  let dataDir: string;

  function call(p: string, opts: { method?: string; body?: unknown; contentType?: string } = {}): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const body = opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
      const headers: Record<string, string> = { Authorization: `Bearer ${kl.token}`, Accept: 'application/json' };
      if (body !== undefined) {
        headers['Content-Type'] = opts.contentType ?? 'application/json';
        headers['Content-Length'] = String(Buffer.byteLength(body));
      }
      const r = https.request(new URL(p, kl.url), { method: opts.method ?? 'GET', headers, ca }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: Record<string, unknown> = {};
          try {
            json = JSON.parse(text) as Record<string, unknown>;
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode ?? 0, text, json });
        });
      });
      r.on('error', reject);
      if (body !== undefined) r.write(body);
      r.end();
    });
  }

  /** A watch collecting parsed lines; `close()` ends it. */
  function watch(p: string): Promise<{ status: number; events: { type: string; object: Record<string, unknown> }[]; text: () => string; close: () => void }> {
    return new Promise((resolve, reject) => {
      const r = https.request(new URL(p, kl.url), { headers: { Authorization: `Bearer ${kl.token}` }, ca }, (res) => {
        const events: { type: string; object: Record<string, unknown> }[] = [];
        let buf = '';
        let all = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          all += c;
          buf += c;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line.trim() && res.statusCode === 200) events.push(JSON.parse(line) as { type: string; object: Record<string, unknown> });
          }
        });
        res.on('error', () => {});
        resolve({ status: res.statusCode ?? 0, events, text: () => all, close: () => r.destroy() });
      });
      r.on('error', reject);
      r.end();
    });
  }

  async function until<T>(fn: () => T | undefined | false, what: string): Promise<T> {
    for (let i = 0; i < 200; i++) {
      const v = fn();
      if (v) return v;
      await sleep(50);
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kube-lite-adv-'));
    kl = await startKubeLite({ host: '127.0.0.1', port: 0, dataDir, logger: silentLogger(), historySize: 50, bookmarkIntervalMs: 200 });
    ca = fs.readFileSync(path.join(dataDir, 'tls.crt'), 'utf8');
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'widgets.adv.example.com' },
      spec: {
        group: 'adv.example.com',
        scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
        versions: [{ name: 'v1', served: true, storage: true, subresources: { status: {} }, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
      },
    };
    expect((await call('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', { method: 'POST', body: crd })).status).to.equal(201);
    await until(async () => (await call('/apis/adv.example.com/v1/namespaces/default/widgets')).status === 200, 'the Widget CRD to be served');
  });

  after(async () => {
    await kl.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const cms = '/api/v1/namespaces/default/configmaps';
  const widgets = '/apis/adv.example.com/v1/namespaces/default/widgets';

  describe('bad input gets a Status, never a crash', () => {
    it('answers a malformed percent-encoding in the path with 404/400, and keeps serving', async () => {
      const r = await call('/api/v1/namespaces/%E0%A4%A/configmaps');
      expect([400, 404]).to.include(r.status);
      expect(r.json).to.include({ kind: 'Status', status: 'Failure' });
      expect((await call(cms)).status).to.equal(200);
    });

    const badMeta: { what: string; metadata: Record<string, unknown>; field: RegExp }[] = [
      { what: 'a numeric name', metadata: { name: 123 }, field: /metadata\.name/ },
      { what: 'ownerReferences that are not a list', metadata: { name: 'bad-owners', ownerReferences: { uid: 'x' } }, field: /metadata\.ownerReferences/ },
      { what: 'finalizers that are not a list of strings', metadata: { name: 'bad-finalizers', finalizers: 'example.com/f' }, field: /metadata\.finalizers/ },
      { what: 'a finalizer that is not a qualified name', metadata: { name: 'bad-finalizer', finalizers: ['not a name!'] }, field: /metadata\.finalizers/ },
      { what: 'labels that are not a map', metadata: { name: 'bad-labels', labels: ['a'] }, field: /metadata\.labels/ },
      { what: 'annotations that are not a map', metadata: { name: 'bad-annotations', annotations: 'a=b' }, field: /metadata\.annotations/ },
    ];
    for (const c of badMeta) {
      it(`refuses ${c.what} with 422 and stores nothing`, async () => {
        const r = await call(cms, { method: 'POST', body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: c.metadata } });
        expect(r.status, r.text).to.equal(422);
        expect(String(r.json.message)).to.match(c.field);
        const names = ((await call(cms)).json.items as { metadata: { name: unknown } }[]).map((i) => i.metadata.name);
        expect(names).to.not.include(c.metadata.name);
      });
    }

    it('refuses a body nested too deep with 400 (not a stack overflow answered 500)', async () => {
      const n = 100_000;
      const r = await call(cms, { method: 'POST', body: `{"metadata":{"name":"deep"},"x":${'['.repeat(n)}${']'.repeat(n)}}` });
      expect(r.status, r.text).to.equal(400);
      expect(String(r.json.message)).to.match(/nested more than 1000 levels/);
      const ok = await call(cms, { method: 'POST', body: `{"metadata":{"name":"deep-ok"},"x":${'['.repeat(900)}${']'.repeat(900)}}` });
      expect(ok.status, ok.text).to.equal(201);
      const patched = await call(`${cms}/deep-ok`, { method: 'PATCH', contentType: 'application/merge-patch+json', body: { data: { a: 'b' } } });
      expect(patched.status, patched.text).to.equal(200);
    });

    it('answers a body over the size limit with a 413 Status (not a reset connection)', async () => {
      const big = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'big' }, data: { x: 'a'.repeat(4 * 1024 * 1024) } });
      const r = await call(cms, { method: 'POST', body: big });
      expect(r.status).to.equal(413);
      expect(r.json).to.include({ kind: 'Status', reason: 'RequestEntityTooLarge', code: 413 });
      expect((await call(`${cms}/big`)).status).to.equal(404);
    });
  });

  describe('optimistic concurrency and server-owned metadata', () => {
    it('refuses a stale resourceVersion on update, merge patch, JSON patch and delete (409)', async () => {
      const c = await call(cms, { method: 'POST', body: { metadata: { name: 'occ' }, data: { a: '1' } } });
      const rv1 = metaOf(c).resourceVersion;
      const u = await call(`${cms}/occ`, { method: 'PUT', body: { metadata: { name: 'occ', resourceVersion: rv1 }, data: { a: '2' } } });
      expect(u.status).to.equal(200);
      expect(Number(metaOf(u).resourceVersion)).to.be.greaterThan(Number(rv1));
      expect((await call(`${cms}/occ`, { method: 'PUT', body: { metadata: { name: 'occ', resourceVersion: rv1 }, data: { a: '3' } } })).status).to.equal(409);
      expect((await call(`${cms}/occ`, { method: 'PATCH', contentType: 'application/merge-patch+json', body: { metadata: { resourceVersion: rv1 }, data: { a: '3' } } })).status).to.equal(409);
      const jp = [{ op: 'test', path: '/metadata/resourceVersion', value: rv1 }, { op: 'replace', path: '/data/a', value: '3' }];
      expect((await call(`${cms}/occ`, { method: 'PATCH', contentType: 'application/json-patch+json', body: jp })).status).to.be.oneOf([409, 422, 400]);
      const del = await call(`${cms}/occ`, { method: 'DELETE', body: { preconditions: { resourceVersion: rv1 } } });
      expect(del.status).to.equal(409);
      expect(((await call(`${cms}/occ`)).json.data as Record<string, string>).a).to.equal('2');
    });

    it('keeps uid, creationTimestamp, generation and deletionTimestamp out of clients\' hands', async () => {
      const c = await call(widgets, { method: 'POST', body: { apiVersion: 'adv.example.com/v1', kind: 'Widget', metadata: { name: 'own', generation: 42, deletionTimestamp: '2020-01-01T00:00:00Z', creationTimestamp: '2020-01-01T00:00:00Z' }, spec: { size: 1 } } });
      expect(c.status).to.equal(201);
      const m = metaOf(c);
      expect(m.generation).to.equal(1);
      expect(m.deletionTimestamp).to.equal(undefined);
      expect(m.creationTimestamp).to.not.equal('2020-01-01T00:00:00Z');
      const p = await call(`${widgets}/own`, { method: 'PATCH', contentType: 'application/merge-patch+json', body: { metadata: { generation: 99, creationTimestamp: '2020-01-01T00:00:00Z', deletionTimestamp: '2020-01-01T00:00:00Z' } } });
      expect(p.status).to.equal(200);
      expect(metaOf(p)).to.include({ generation: 1, creationTimestamp: m.creationTimestamp, uid: m.uid });
      expect(metaOf(p).deletionTimestamp).to.equal(undefined);
      const wrongUid = await call(`${widgets}/own`, { method: 'PATCH', contentType: 'application/merge-patch+json', body: { metadata: { uid: 'someone-else' } } });
      expect(wrongUid.status).to.equal(409);
    });

    it('separates spec and status: a spec update keeps status, a status update keeps spec, only spec bumps generation', async () => {
      await call(widgets, { method: 'POST', body: { metadata: { name: 'st' }, spec: { size: 1 }, status: { ready: true } } });
      const afterCreate = await call(`${widgets}/st`);
      expect(afterCreate.json.status).to.equal(undefined);
      const s = await call(`${widgets}/st/status`, { method: 'PATCH', contentType: 'application/merge-patch+json', body: { spec: { size: 9 }, status: { ready: true } } });
      expect(s.status).to.equal(200);
      expect(s.json.spec).to.deep.equal({ size: 1 });
      expect(s.json.status).to.deep.equal({ ready: true });
      expect(metaOf(s).generation).to.equal(1);
      const u = await call(`${widgets}/st`, { method: 'PATCH', contentType: 'application/merge-patch+json', body: { spec: { size: 2 }, status: { ready: false } } });
      expect(u.json.spec).to.deep.equal({ size: 2 });
      expect(u.json.status).to.deep.equal({ ready: true });
      expect(metaOf(u).generation).to.equal(2);
      const meta = await call(`${widgets}/st`, { method: 'PATCH', contentType: 'application/merge-patch+json', body: { metadata: { labels: { a: 'b' } } } });
      expect(metaOf(meta).generation).to.equal(2);
    });

    it('treats a write that changes nothing as a no-op (same resourceVersion, no event)', async () => {
      const c = await call(cms, { method: 'POST', body: { metadata: { name: 'noop' }, data: { a: '1' } } });
      const rv = metaOf(c).resourceVersion;
      const w = await watch(`${cms}?watch=1&resourceVersion=${rv}&fieldSelector=metadata.name%3Dnoop`);
      const p = await call(`${cms}/noop`, { method: 'PATCH', contentType: 'application/merge-patch+json', body: { data: { a: '1' } } });
      expect(metaOf(p).resourceVersion).to.equal(rv);
      await call(`${cms}/noop`, { method: 'PATCH', contentType: 'application/merge-patch+json', body: { data: { a: '2' } } });
      await until(() => w.events.length >= 1, 'the MODIFIED event');
      await sleep(100);
      w.close();
      expect(w.events.map((e) => `${e.type}:${(e.object.data as Record<string, string>).a}`)).to.deep.equal(['MODIFIED:2']);
    });
  });

  describe('finalizers and deletionTimestamp', () => {
    it('sets deletionTimestamp once, refuses new finalizers, and removes the object with its last finalizer', async () => {
      const c = await call(widgets, { method: 'POST', body: { metadata: { name: 'fin', finalizers: ['adv.example.com/a', 'adv.example.com/b'] }, spec: { size: 1 } } });
      const rv0 = metaOf(c).resourceVersion;
      const w = await watch(`${widgets}?watch=1&resourceVersion=${rv0}`);
      const d1 = await call(`${widgets}/fin`, { method: 'DELETE' });
      expect(d1.status).to.equal(200);
      const ts = metaOf(d1).deletionTimestamp;
      expect(ts).to.be.a('string');
      // Kubernetes bumps the generation when deletion starts (markAsDeleting), once
      expect(metaOf(c).generation).to.equal(1);
      expect(metaOf(d1).generation).to.equal(2);
      await sleep(1100); // timestamps have second precision
      const d2 = await call(`${widgets}/fin`, { method: 'DELETE' });
      expect(metaOf(d2).deletionTimestamp).to.equal(ts);
      expect(metaOf(d2).resourceVersion).to.equal(metaOf(d1).resourceVersion);
      expect(metaOf(d2).generation).to.equal(2);
      const add = await call(`${widgets}/fin`, { method: 'PATCH', contentType: 'application/merge-patch+json', body: { metadata: { finalizers: ['adv.example.com/a', 'adv.example.com/b', 'adv.example.com/c'] } } });
      expect(add.status).to.equal(422);
      const clear = await call(`${widgets}/fin`, { method: 'PATCH', contentType: 'application/merge-patch+json', body: { metadata: { deletionTimestamp: null } } });
      expect(metaOf(clear).deletionTimestamp).to.equal(ts);
      const one = await call(`${widgets}/fin`, { method: 'PATCH', contentType: 'application/json-patch+json', body: [{ op: 'remove', path: '/metadata/finalizers/0' }] });
      expect(metaOf(one).finalizers).to.deep.equal(['adv.example.com/b']);
      // the status subresource cannot touch finalizers (Kubernetes resets metadata on status writes)
      const viaStatus = await call(`${widgets}/fin/status`, { method: 'PATCH', contentType: 'application/merge-patch+json', body: { metadata: { finalizers: null }, status: { x: 1 } } });
      expect(metaOf(viaStatus).finalizers).to.deep.equal(['adv.example.com/b']);
      // as the controllers remove their finalizer: a merge patch carrying the resourceVersion
      const stale = await call(`${widgets}/fin`, { method: 'PATCH', contentType: 'application/merge-patch+json', body: { metadata: { finalizers: [], resourceVersion: metaOf(one).resourceVersion } } });
      expect(stale.status).to.equal(409);
      const last = await call(`${widgets}/fin`, { method: 'PATCH', contentType: 'application/merge-patch+json', body: { metadata: { finalizers: [], resourceVersion: metaOf(viaStatus).resourceVersion }, spec: { size: 2 } } });
      expect(last.status).to.equal(200);
      // the reply and the DELETED event show the object as updated: no finalizers left
      expect(metaOf(last).finalizers).to.equal(undefined);
      expect(last.json.spec).to.deep.equal({ size: 2 });
      expect((await call(`${widgets}/fin`)).status).to.equal(404);
      await until(() => w.events.some((e) => e.type === 'DELETED'), 'the DELETED event');
      w.close();
      const types = w.events.map((e) => e.type);
      expect(types[types.length - 1]).to.equal('DELETED');
      expect(types.filter((t) => t === 'DELETED')).to.have.length(1);
      const gone = w.events[w.events.length - 1]!.object;
      expect((gone.metadata as Meta).finalizers).to.equal(undefined);
      expect((gone.metadata as Meta).deletionTimestamp).to.equal(ts);
      expect(gone.spec).to.deep.equal({ size: 2 });
      const rvs = w.events.map((e) => Number((e.object.metadata as Meta).resourceVersion));
      expect([...rvs].sort((a, b) => a - b)).to.deep.equal(rvs);
    });
  });

  describe('list and watch', () => {
    it('lists then watches from the list resourceVersion with no gap and no duplicate under concurrent writes', async () => {
      const writes = (from: number, n: number): Promise<Reply[]> => Promise.all(Array.from({ length: n }, (_, i) => call(cms, { method: 'POST', body: { metadata: { name: `lw-${from + i}`, labels: { lw: 'y' } } } })));
      const first = writes(0, 20);
      await sleep(5);
      const list = await call(`${cms}?labelSelector=lw%3Dy`);
      const listed = (list.json.items as { metadata: { name: string } }[]).map((i) => i.metadata.name);
      const rv = (list.json.metadata as { resourceVersion: string }).resourceVersion;
      const w = await watch(`${cms}?watch=1&labelSelector=lw%3Dy&resourceVersion=${rv}`);
      await first;
      await writes(20, 10);
      await until(() => listed.length + w.events.length >= 30, `30 objects (listed ${listed.length}, watched ${w.events.length})`);
      await sleep(100);
      w.close();
      const watched = w.events.map((e) => (e.object.metadata as Meta).name);
      const all = [...listed, ...watched].sort();
      expect(all).to.deep.equal(Array.from({ length: 30 }, (_, i) => `lw-${i}`).sort());
      for (const e of w.events) expect(Number((e.object.metadata as Meta).resourceVersion)).to.be.greaterThan(Number(rv));
    });

    it('serves the pages of a list (limit/continue) from one state, or answers 410 when the resource changed', async () => {
      for (let i = 0; i < 5; i++) await call(cms, { method: 'POST', body: { metadata: { name: `pg-${i}`, labels: { pg: 'y' } } } });
      const first = await call(`${cms}?labelSelector=pg%3Dy&limit=2`);
      const fm = first.json.metadata as { resourceVersion: string; continue: string };
      expect((first.json.items as { metadata: Meta }[]).map((i) => i.metadata.name)).to.deep.equal(['pg-0', 'pg-1']);
      // a write to another resource does not disturb the pages
      await call('/api/v1/namespaces/default/secrets', { method: 'POST', body: { metadata: { name: 'pg-other' } } });
      const second = await call(`${cms}?labelSelector=pg%3Dy&limit=2&continue=${fm.continue}`);
      expect(second.status).to.equal(200);
      const sm = second.json.metadata as { resourceVersion: string; continue: string };
      expect(sm.resourceVersion).to.equal(fm.resourceVersion);
      expect((second.json.items as { metadata: Meta }[]).map((i) => i.metadata.name)).to.deep.equal(['pg-2', 'pg-3']);
      // a change to an object of a page already read: the rest would not be of the same state
      await call(`${cms}/pg-0`, { method: 'PATCH', contentType: 'application/merge-patch+json', body: { data: { changed: 'yes' } } });
      const third = await call(`${cms}?labelSelector=pg%3Dy&limit=2&continue=${sm.continue}`);
      expect(third.status).to.equal(410);
      expect(third.json).to.include({ kind: 'Status', reason: 'Expired', code: 410 });
    });

    it('answers a watch from a resourceVersion past the history with 410 Expired', async () => {
      for (let i = 0; i < 60; i++) await call(cms, { method: 'POST', body: { metadata: { name: `old-${i}` } } });
      const w = await watch(`${cms}?watch=1&resourceVersion=1`);
      await until(() => w.text().length > 0 || undefined, 'the reply');
      w.close();
      expect(w.status).to.equal(410);
      expect(JSON.parse(w.text())).to.include({ kind: 'Status', reason: 'Expired', code: 410 });
    });

    it('answers a watch from a resourceVersion this server never issued (data directory replaced) with 410, not a silent skip', async () => {
      const cur = Number(((await call(cms)).json.metadata as { resourceVersion: string }).resourceVersion);
      const w = await watch(`${cms}?watch=1&resourceVersion=${cur + 1000}`);
      await until(() => w.text().length > 0 || undefined, 'the reply');
      w.close();
      expect(w.status).to.equal(410);
      expect(JSON.parse(w.text())).to.include({ kind: 'Status', reason: 'Expired', code: 410 });
      expect(String(JSON.parse(w.text()).message)).to.match(/too large resource version/);
      const ok = await watch(`${cms}?watch=1&resourceVersion=${cur}`);
      await call(cms, { method: 'POST', body: { metadata: { name: 'at-current' } } });
      await until(() => ok.events.length >= 1, 'the event after the current resourceVersion');
      ok.close();
      expect(ok.status).to.equal(200);
      expect(ok.events.map((e) => `${e.type}:${(e.object.metadata as Meta).name}`)).to.deep.equal(['ADDED:at-current']);
    });

    it('sends bookmarks whose resourceVersion follows writes to other resources, so a quiet watch resumes without a 410', async () => {
      const list = await call('/api/v1/namespaces/default/secrets');
      const rv0 = (list.json.metadata as { resourceVersion: string }).resourceVersion;
      const w = await watch(`/api/v1/namespaces/default/secrets?watch=1&allowWatchBookmarks=true&resourceVersion=${rv0}`);
      // 60 writes to ConfigMaps: more than the 50 events of history
      for (let i = 0; i < 60; i++) await call(cms, { method: 'POST', body: { metadata: { name: `quiet-${i}` } } });
      const cmRv = Number(((await call(cms)).json.metadata as { resourceVersion: string }).resourceVersion);
      const bm = await until(() => w.events.find((e) => e.type === 'BOOKMARK' && Number((e.object.metadata as Meta).resourceVersion) >= cmRv), 'a bookmark at the latest resourceVersion');
      w.close();
      const resumeRv = (bm.object.metadata as Meta).resourceVersion;
      const again = await watch(`/api/v1/namespaces/default/secrets?watch=1&resourceVersion=${resumeRv}`);
      await call('/api/v1/namespaces/default/secrets', { method: 'POST', body: { metadata: { name: 'after-quiet' } } });
      await until(() => again.events.length >= 1 || again.status !== 200, 'the secret event');
      again.close();
      expect(again.status).to.equal(200);
      expect(again.events.map((e) => `${e.type}:${(e.object.metadata as Meta).name}`)).to.deep.equal(['ADDED:after-quiet']);
    });
  });
});
