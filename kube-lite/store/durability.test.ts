// Durability of the store against the failures a disk and a crash produce: a write is readable
// only once durable, a write the log refuses (full disk) leaves no trace in memory or in a later
// snapshot, and a short write() is completed rather than acknowledged torn.
import { expect } from 'chai';
import fs from 'node:fs';
import type fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../lib/logger.ts';
import { Store } from './store.ts';
import type { KubeObject } from './types.ts';
import { readWalFile, Wal } from './wal.ts';

function cm(name: string, data: Record<string, string> = {}): KubeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default', uid: `uid-${name}` }, data };
}

const dirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'kube-lite-durability-'));
  dirs.push(d);
  return d;
}

function walFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => /^wal-\d+\.log$/.test(f));
}

/** Points the next WAL generation at /dev/full and rotates to it: every later append gets ENOSPC. */
async function fillDisk(s: Store, dir: string): Promise<string> {
  const gens = walFiles(dir).map((f) => Number(/\d+/.exec(f)![0]));
  const next = path.join(dir, `wal-${Math.max(...gens) + 1}.log`);
  fs.symlinkSync('/dev/full', next);
  await s.compact();
  return next;
}

describe('kube-lite store durability', () => {
  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('shows a write to readers (get, list, resourceVersion) only once it is durable', async () => {
    const s = await Store.open({ dataDir: tmp(), logger: silentLogger() });
    const a = await s.put('/configmaps', cm('a', { v: '1' }), '');
    const rvA = s.resourceVersion;
    expect(rvA).to.equal(Number(a.metadata.resourceVersion));
    const pendingB = s.put('/configmaps', cm('b'), '');
    const pendingA = s.put('/configmaps', { ...cm('a', { v: '2' }), metadata: { ...cm('a').metadata } }, a.metadata.resourceVersion);
    // accepted, not yet on disk: writers see it, readers do not
    expect(s.getLatest('/configmaps', 'default', 'b')).to.not.equal(undefined);
    expect(s.get('/configmaps', 'default', 'b')).to.equal(undefined);
    expect(s.get('/configmaps', 'default', 'a')?.data).to.deep.equal({ v: '1' });
    expect(s.list('/configmaps').map((o) => `${o.metadata.name}:${o.metadata.resourceVersion}`)).to.deep.equal([`a:${rvA}`]);
    expect(s.resourceVersion).to.equal(rvA);
    // and a write that conflicts with the accepted one is refused at once
    expect(() => s.put('/configmaps', cm('b'), '')).to.throw(/already exists/);
    await Promise.all([pendingA, pendingB]);
    expect(s.list('/configmaps').map((o) => o.metadata.name)).to.deep.equal(['a', 'b']);
    expect(s.get('/configmaps', 'default', 'a')?.data).to.deep.equal({ v: '2' });
    expect(s.resourceVersion).to.equal(rvA + 2);
    await s.close();
  });

  it('rolls back a write the log refuses (disk full): no phantom object, no event, nothing after a restart', async () => {
    const dir = tmp();
    const s = await Store.open({ dataDir: dir, logger: silentLogger() });
    const kept = await s.put('/configmaps', cm('kept', { v: '1' }), '');
    const events: string[] = [];
    s.hub.listen((ev) => events.push(`${ev.type}:${ev.obj.metadata.name ?? ''}`));
    const full = await fillDisk(s, dir);
    const rv = s.resourceVersion;
    const results = await Promise.allSettled([
      s.put('/configmaps', cm('phantom'), ''),
      s.put('/configmaps', { ...cm('kept', { v: '2' }) }, kept.metadata.resourceVersion),
      s.remove('/configmaps', 'default', 'kept'),
    ]);
    expect(results.map((r) => r.status)).to.deep.equal(['rejected', 'rejected', 'rejected']);
    expect(String((results[0] as PromiseRejectedResult).reason)).to.match(/ENOSPC|no space/i);
    expect(events).to.deep.equal([]);
    for (const view of [s.get.bind(s), s.getLatest.bind(s)]) {
      expect(view('/configmaps', 'default', 'phantom')).to.equal(undefined);
      expect(view('/configmaps', 'default', 'kept')?.data).to.deep.equal({ v: '1' });
    }
    expect(s.list('/configmaps').map((o) => o.metadata.name)).to.deep.equal(['kept']);
    expect(s.byUidLookup('uid-phantom')).to.equal(undefined);
    expect(s.byUidLookup('uid-kept')?.obj.data).to.deep.equal({ v: '1' });
    expect(s.resourceVersion).to.equal(rv);
    // a compaction now must not write the refused writes into a snapshot
    await s.compact().catch(() => {});
    await s.closeAbruptly();
    fs.rmSync(full, { force: true });
    const s2 = await Store.open({ dataDir: dir, logger: silentLogger() });
    expect(s2.list('/configmaps').map((o) => `${o.metadata.name}:${JSON.stringify(o.data)}`)).to.deep.equal(['kept:{"v":"1"}']);
    expect(s2.resourceVersion).to.be.at.least(rv); // refused writes may leave a gap, never a reuse
    await s2.close();
  });

  it('rolls back a write refused before an earlier write to the same object is durable (store closing)', async () => {
    const dir = tmp();
    const s = await Store.open({ dataDir: dir, logger: silentLogger() });
    const first = s.put('/configmaps', cm('k', { v: '1' }), '');
    const closing = s.closeAbruptly(); // the log refuses appends from now on, and flushes the first
    const second = s.put('/configmaps', cm('k', { v: '2' }));
    const results = await Promise.allSettled([first, second]);
    await closing;
    expect(results.map((r) => r.status)).to.deep.equal(['fulfilled', 'rejected']);
    expect(s.get('/configmaps', 'default', 'k')?.data).to.deep.equal({ v: '1' });
    expect(s.getLatest('/configmaps', 'default', 'k')?.data).to.deep.equal({ v: '1' });
    const s2 = await Store.open({ dataDir: dir, logger: silentLogger() });
    expect(s2.get('/configmaps', 'default', 'k')?.data).to.deep.equal({ v: '1' });
    await s2.close();
  });

  it('keeps writes queued before a compaction when they are refused: the snapshot waits for them', async () => {
    const dir = tmp();
    const s = await Store.open({ dataDir: dir, logger: silentLogger() });
    await s.put('/configmaps', cm('base'), '');
    const full = await fillDisk(s, dir);
    const refused = s.put('/configmaps', cm('refused'), '');
    const compaction = s.compact(); // serializes a state holding "refused", rotates behind it
    await refused.catch(() => {});
    await compaction.catch(() => {});
    await s.closeAbruptly();
    fs.rmSync(full, { force: true });
    const s2 = await Store.open({ dataDir: dir, logger: silentLogger() });
    expect(s2.list('/configmaps').map((o) => o.metadata.name)).to.deep.equal(['base']);
    await s2.close();
  });

  it('acknowledges a durable write and delivers its event to every listener even when one listener throws', async () => {
    const s = await Store.open({ dataDir: tmp(), logger: silentLogger() });
    const seen: string[] = [];
    s.hub.listen(() => {
      throw new Error('a broken listener');
    });
    s.hub.listen((ev) => seen.push(`${ev.type}:${ev.obj.metadata.name ?? ''}`));
    const stored = await s.put('/configmaps', cm('x'), '');
    expect(stored.metadata.resourceVersion).to.equal(String(s.resourceVersion));
    expect(seen).to.deep.equal(['ADDED:x']);
    expect(s.hub.listenerErrors).to.equal(1);
    await s.close();
  });

  it('completes a short write() instead of acknowledging a torn record', async () => {
    const dir = tmp();
    const file = path.join(dir, 'wal-1.log');
    const wal = await Wal.open(file);
    // The kernel may write fewer bytes than asked (a nearly full disk, a signal): emulate one.
    const fh = (wal as unknown as { fh: fsp.FileHandle }).fh;
    const write = fh.write.bind(fh) as (buf: Buffer) => Promise<{ bytesWritten: number; buffer: Buffer }>;
    let calls = 0;
    (fh as unknown as { write: (buf: Buffer) => Promise<{ bytesWritten: number; buffer: Buffer }> }).write = (buf: Buffer) => {
      calls++;
      return write(calls === 1 ? buf.subarray(0, 7) : buf);
    };
    await Promise.all([wal.append('{"rv":1,"x":"first"}'), wal.append('{"rv":2,"x":"second"}')]);
    await wal.append('{"rv":3,"x":"third"}');
    await wal.close();
    const { records, torn } = readWalFile(file);
    expect(torn).to.equal(false);
    expect(records).to.deep.equal([
      { rv: 1, x: 'first' },
      { rv: 2, x: 'second' },
      { rv: 3, x: 'third' },
    ]);
  });
});
