import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../lib/logger.ts';
import { Store } from './store.ts';
import type { KubeObject } from './types.ts';
import { readWalFile, encodeRecord } from './wal.ts';

function cm(name: string, data: Record<string, string> = {}): KubeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default', uid: `uid-${name}` }, data };
}

const dirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'kube-lite-store-'));
  dirs.push(d);
  return d;
}

function walFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.startsWith('wal-')).map((f) => path.join(dir, f));
}

describe('kube-lite store', () => {
  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('assigns increasing resourceVersions and refuses stale or duplicate writes', async () => {
    const s = await Store.open({ dataDir: tmp(), logger: silentLogger() });
    const a = await s.put('/configmaps', cm('a'), '');
    const b = await s.put('/configmaps', cm('b'), '');
    expect(Number(b.metadata.resourceVersion)).to.be.greaterThan(Number(a.metadata.resourceVersion));
    expect(() => s.put('/configmaps', cm('a'), '')).to.throw(/already exists/);
    expect(() => s.put('/configmaps', cm('a'), '999')).to.throw(/was modified/);
    await s.put('/configmaps', cm('a', { x: '1' }), a.metadata.resourceVersion);
    await s.close();
  });

  it('replays snapshot + WAL after a crash, ignores a torn last record, and keeps RVs monotonic', async () => {
    const dir = tmp();
    const s1 = await Store.open({ dataDir: dir, logger: silentLogger() });
    for (let i = 0; i < 20; i++) await s1.put('/configmaps', cm(`o${i}`, { i: String(i) }), '');
    await s1.remove('/configmaps', 'default', 'o3');
    const rv = s1.resourceVersion;
    // Simulate a crash: no close(); append a torn record to the live WAL.
    const [wal] = walFiles(dir);
    fs.appendFileSync(wal!, encodeRecord(JSON.stringify({ rv: rv + 1, r: '/configmaps', t: 'put', o: cm('torn') })).subarray(0, 20));
    const s2 = await Store.open({ dataDir: dir, logger: silentLogger() });
    expect(s2.list('/configmaps').map((o) => o.metadata.name)).to.have.length(19);
    expect(s2.get('/configmaps', 'default', 'o3')).to.equal(undefined);
    expect(s2.get('/configmaps', 'default', 'torn')).to.equal(undefined);
    expect(s2.get('/configmaps', 'default', 'o7')?.data).to.deep.equal({ i: '7' });
    expect(s2.resourceVersion).to.equal(rv);
    // Replayed records seed the watch history: a watch from before the crash resumes.
    expect(s2.hub.since(rv - 2).map((e) => e.type)).to.deep.equal(['ADDED', 'DELETED']);
    const next = await s2.put('/configmaps', cm('new'), '');
    expect(Number(next.metadata.resourceVersion)).to.equal(rv + 1);
    await s2.close();
    const s3 = await Store.open({ dataDir: dir, logger: silentLogger() });
    expect(s3.resourceVersion).to.equal(rv + 1);
    expect(s3.list('/configmaps')).to.have.length(20);
    await s3.close();
    await s1.closeAbruptly(); // the "crashed" store's WAL handle, left open above
  });

  it('groups the fsyncs of concurrent writes and compacts into a snapshot', async () => {
    const dir = tmp();
    const s = await Store.open({ dataDir: dir, logger: silentLogger(), snapshotEvery: 150 });
    await Promise.all(Array.from({ length: 200 }, (_, i) => s.put('/configmaps', cm(`c${i}`), '')));
    expect(s.walStats.records).to.equal(200);
    expect(s.walStats.batches).to.be.lessThan(100);
    await s.compact(); // joins the automatic compaction if one is running
    await s.compact();
    const files = walFiles(dir);
    expect(files).to.have.length(1);
    expect(readWalFile(files[0]!).records).to.have.length(0);
    await s.put('/configmaps', cm('after'), '');
    await s.close();
    const s2 = await Store.open({ dataDir: dir, logger: silentLogger() });
    expect(s2.list('/configmaps')).to.have.length(201);
    await s2.close();
  });

  it('refuses a watch from a resourceVersion older than the retained window', async () => {
    const s = await Store.open({ dataDir: tmp(), logger: silentLogger(), historySize: 3 });
    for (let i = 0; i < 6; i++) await s.put('/configmaps', cm(`w${i}`), '');
    expect(() => s.hub.since(1)).to.throw(/too old resource version/);
    expect(s.hub.since(3).map((e) => e.rv)).to.deep.equal([4, 5, 6]);
    await s.close();
  });
});
