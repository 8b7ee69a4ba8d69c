// The garbage collector over an in-process store: one object it cannot fix must not stall the
// collection of the others.
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../lib/logger.ts';
import { Operations } from '../api/operations.ts';
import { ResourceRegistry } from '../resources/registry.ts';
import { Store } from '../store/store.ts';
import type { KubeObject } from '../store/types.ts';
import { GarbageCollector } from './garbage-collector.ts';
import { NamespaceController } from './namespace.ts';

const ref = (uid: string): { apiVersion: string; kind: string; name: string; uid: string } => ({ apiVersion: 'v1', kind: 'ConfigMap', name: uid, uid });

describe('kube-lite garbage collector (in process)', () => {
  it('collects orphans past an object whose update is refused (stored before a stricter rule)', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kube-lite-gc-'));
    const store = await Store.open({ dataDir, logger: silentLogger() });
    const ops = new Operations(store, new ResourceRegistry(), silentLogger());
    await new NamespaceController(ops, silentLogger()).ensureInitial();
    const cm = (name: string, extra: Partial<KubeObject['metadata']> = {}): KubeObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default', uid: `uid-${name}`, ...extra } });
    await store.put('/configmaps', cm('owner'), '');
    // Written straight to the store, as an older server might have accepted it: an invalid label
    // key makes every update of it fail validation (422).
    await store.put('/configmaps', cm('a-stuck', { labels: { 'not a key!': 'x' }, ownerReferences: [ref('uid-owner'), ref('uid-gone')] }), '');
    await store.put('/configmaps', cm('b-orphan', { ownerReferences: [ref('uid-gone')] }), '');
    await store.put('/configmaps', cm('c-dependent', { ownerReferences: [ref('uid-owner')] }), '');
    const gc = new GarbageCollector(ops, silentLogger());
    gc.start();
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline && store.get('/configmaps', 'default', 'b-orphan')) await new Promise((r) => setTimeout(r, 20));
    await gc.stop();
    expect(store.get('/configmaps', 'default', 'b-orphan'), 'the orphan is collected').to.equal(undefined);
    expect(store.get('/configmaps', 'default', 'c-dependent'), 'a dependent of a live owner stays').to.not.equal(undefined);
    expect(store.get('/configmaps', 'default', 'a-stuck')?.metadata.ownerReferences).to.have.length(2);
    await store.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
});
