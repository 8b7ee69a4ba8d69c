// Raw watch semantics: the initial state as ADDED events, selector transitions (an object that
// stops matching is DELETED for that watch), the legacy /watch/ path, Table events, bookmarks.
import { expect } from 'chai';
import { stopAll } from '../support/daemon.ts';
import { raw, rawWatch, startKubeLiteProc, type KubeLiteProc } from './support.ts';

describe('kube-lite watch streams', function () {
  this.timeout(30_000);
  let kl: KubeLiteProc;
  before(async () => {
    kl = await startKubeLiteProc(undefined, ['--bookmark-seconds', '0.3']);
  });
  after(stopAll);

  const cms = '/api/v1/namespaces/default/configmaps';
  const post = (name: string, labels: Record<string, string>) => raw(kl, cms, { method: 'POST', body: JSON.stringify({ metadata: { name, labels } }) });
  const relabel = (name: string, labels: Record<string, string | null>) =>
    raw(kl, `${cms}/${name}`, { method: 'PATCH', contentType: 'application/merge-patch+json', body: JSON.stringify({ metadata: { labels } }) });

  it('starts with the current state, then follows selector transitions', async () => {
    await post('t1', { team: 'a' });
    await post('t2', { team: 'b' });
    const w = await rawWatch(kl, `${cms}?watch=true&labelSelector=team%3Da`);
    try {
      expect(w.status).to.equal(200);
      await w.waitFor(1);
      await relabel('t2', { team: 'a' });
      await relabel('t1', { team: 'c' });
      await relabel('t2', { extra: 'x' });
      await w.waitFor(4);
      expect(w.events.map((e) => `${e.type}:${(e.object.metadata as { name: string }).name}`)).to.deep.equal(['ADDED:t1', 'ADDED:t2', 'DELETED:t1', 'MODIFIED:t2']);
    } finally {
      w.close();
    }
  });

  it('serves the legacy /watch/ path and Table watch events', async () => {
    const list = await raw(kl, cms);
    const rv = (list.json.metadata as { resourceVersion: string }).resourceVersion;
    const legacy = await rawWatch(kl, `/api/v1/watch/namespaces/default/configmaps?resourceVersion=${rv}`);
    await post('t3', {});
    await legacy.waitFor(1);
    expect(legacy.events[0]!.type).to.equal('ADDED');
    expect((legacy.events[0]!.object.metadata as { name: string }).name).to.equal('t3');
    legacy.close();
    const res = await raw(kl, `${cms}?watch=1&resourceVersion=${rv}&timeoutSeconds=1`, { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' });
    const ev = JSON.parse(res.text.split('\n')[0]!) as { type: string; object: { kind: string; rows: { cells: unknown[] }[] } };
    expect(ev.type).to.equal('ADDED');
    expect(ev.object.kind).to.equal('Table');
    expect(ev.object.rows[0]!.cells[0]).to.equal('t3');
  });

  it('sends BOOKMARK events only to watches that allow them', async () => {
    const rv = ((await raw(kl, cms)).json.metadata as { resourceVersion: string }).resourceVersion;
    const w = await rawWatch(kl, `${cms}?watch=1&allowWatchBookmarks=true&resourceVersion=${rv}`);
    const plain = await rawWatch(kl, `${cms}?watch=1&resourceVersion=${rv}`);
    try {
      await w.waitFor(1);
      expect(w.events[0]!.type).to.equal('BOOKMARK');
      expect(w.events[0]!.object).to.deep.include({ kind: 'ConfigMap', apiVersion: 'v1' });
      expect(Number((w.events[0]!.object.metadata as { resourceVersion: string }).resourceVersion)).to.be.at.least(Number(rv));
      expect(plain.events).to.deep.equal([]);
    } finally {
      w.close();
      plain.close();
    }
  });

  it('counts requests and open watches in /metrics', async () => {
    const w = await rawWatch(kl, `${cms}?watch=1`);
    const m = await raw(kl, '/metrics', { accept: 'text/plain' });
    w.close();
    expect(m.status).to.equal(200);
    expect(m.text).to.match(/apiserver_request_total\{verb="POST",resource="configmaps",code="201",component="kube-lite"\} \d+/);
    expect(m.text).to.match(/apiserver_longrunning_requests\{verb="WATCH",resource="configmaps",component="kube-lite"\} [1-9]/);
    expect(m.text).to.match(/kube_lite_wal_records\{component="kube-lite"\} [1-9]/);
    expect((await raw(kl, '/metrics', { token: null })).status).to.equal(401);
  });
});
