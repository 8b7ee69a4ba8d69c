// The snapshot templates against the real target mgmt API (cstor-target/mgmt/app.ts over fake
// replicas), through NodeHttpCaller (m-apiserver's client): the wire contract both sides assume.
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { BlockDevice } from '../../lib/block-device.ts';
import { CstorError } from '../../lib/errors.ts';
import { closeServer, listen } from '../../lib/listen.ts';
import { silentLogger } from '../../lib/logger.ts';
import { FakeCluster } from '../../cstor-target/replication/fake-replica.ts';
import { createMgmtApp } from '../../cstor-target/mgmt/app.ts';
import { VolumeManager, type TargetPortal } from '../../cstor-target/mgmt/volume-manager.ts';
import { NodeHttpCaller } from '../../maya-apiserver/cas/node-http-caller.ts';
import { CasEngine } from '../../maya-apiserver/cas/engine.ts';
import { FakeKubeObjects } from '../../maya-apiserver/cas/fakes.ts';
import { installTemplates } from '../../maya-apiserver/cas/install.ts';
import { CasFlows } from '../../maya-apiserver/flows/cas-flows.ts';
import { cstorVolume, cvr, ns } from './harness.ts';

const MiB = 1 << 20;
const replicas = ['127.0.0.1:3001', '127.0.0.1:3002', '127.0.0.1:3003'];

class NoPortal implements TargetPortal {
  readonly targets = new Set<string>();
  addTarget(opts: { volume: string; device: BlockDevice }): void {
    this.targets.add(opts.volume);
  }
  async removeTarget(volume: string): Promise<void> {
    this.targets.delete(volume);
  }
  hasTarget(volume: string): boolean {
    return this.targets.has(volume);
  }
}

describe('CAS snapshot templates against the real target mgmt API', () => {
  let dir: string;
  let manager: VolumeManager;
  let server: http.Server;
  let flows: CasFlows;
  let kube: FakeKubeObjects;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cas-target-'));
    const cluster = new FakeCluster('vol1', 8 * MiB, replicas);
    manager = new VolumeManager({ connect: cluster.connect, portal: new NoPortal(), stateFile: path.join(dir, 'volumes.json'), logger: silentLogger(), targetId: 't1' });
    await manager.load();
    server = http.createServer(createMgmtApp({ manager, logger: silentLogger(), registry: new Registry(), iscsiStats: (v) => ({ volume: v }) }));
    const addr: AddressInfo = await listen(server, '127.0.0.1', 0);
    const mgmt = `127.0.0.1:${addr.port}`;
    const caller = new NodeHttpCaller({ timeoutMs: 5000 });
    const put = await caller.request('PUT', `http://${mgmt}/v1/volumes/vol1`, { capacity: 8 * MiB, replicationFactor: 3, replicas });
    expect(put.status, JSON.stringify(put.body)).to.equal(201);
    await manager.get('vol1').waitFor((v) => v.phase === 'Healthy', 5000);
    kube = new FakeKubeObjects();
    const cv = cstorVolume('vol1', 'Healthy', { capacity: '8Mi' });
    (cv['spec'] as Record<string, unknown>)['targetMgmtAddress'] = mgmt;
    kube.seed(cv, cvr('vol1', 'pool-a'), cvr('vol1', 'pool-b'), cvr('vol1', 'pool-c'));
    await installTemplates({ kube, logger: silentLogger(), namespace: ns });
    const engine = new CasEngine({ kube, http: caller, logger: silentLogger(), namespace: ns, env: { targetIP: '127.0.0.1', targetPortal: '127.0.0.1:3260', targetMgmtAddress: mgmt } });
    flows = new CasFlows({ engine, kube, logger: silentLogger() });
  });

  afterEach(async () => {
    await closeServer(server);
    await manager.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('create (twice), read, list, delete (twice) a snapshot; a missing one is 404', async () => {
    const req = { metadata: { name: 'vol1_snap_1', namespace: 'default' }, spec: { casType: 'cstor', volumeName: 'vol1' } };
    expect(await flows.createSnapshot(req)).to.nested.include({ 'metadata.name': 'vol1_snap_1' });
    expect(await flows.createSnapshot(req)).to.nested.include({ 'metadata.name': 'vol1_snap_1' });
    expect((await manager.get('vol1').snapshotList()).map((s) => s.name)).to.deep.equal(['vol1_snap_1']);
    const one = await flows.readSnapshot({ name: 'vol1_snap_1', volume: 'vol1' });
    expect(one).to.have.nested.property('status.createdAt').that.is.a('number');
    const list = (await flows.listSnapshots({ volume: 'vol1' })) as { items: Array<{ metadata: { name: string } }> };
    expect(list.items.map((i) => i.metadata.name)).to.deep.equal(['vol1_snap_1']);
    const missing = await flows.readSnapshot({ name: 'nope', volume: 'vol1' }).catch((e: unknown) => e);
    expect(missing).to.be.instanceOf(CstorError);
    expect((missing as CstorError).code).to.equal('not_found');
    await flows.deleteSnapshot({ name: 'vol1_snap_1', volume: 'vol1' });
    await flows.deleteSnapshot({ name: 'vol1_snap_1', volume: 'vol1' });
    expect(await manager.get('vol1').snapshotList()).to.deep.equal([]);
  });

  it('clone checks the snapshot on the source volume target', async () => {
    await flows.createSnapshot({ metadata: { name: 's1' }, spec: { volumeName: 'vol1' } });
    kube.reactors.push(({ verb, object, store }) => {
      if (verb === 'create' && object.kind === 'CStorVolume') {
        store.applyPatch({ apiVersion: object.apiVersion, kind: object.kind, namespace: ns, name: String(object.metadata.name) }, { status: { phase: 'Healthy' } });
      }
    });
    const clone = (snapshotName: string): Promise<unknown> =>
      flows.createVolume({ metadata: { name: 'vol1-clone' }, spec: { capacity: '8Mi' }, cloneSpec: { isClone: true, sourceVolume: 'vol1', snapshotName } });
    const missing = await clone('s2').catch((e: unknown) => e);
    expect((missing as CstorError).message).to.equal('task snapshot-exists (5 of 10) failed: snapshot s2 of volume vol1 not found: cannot clone vol1-clone from it');
    expect(await clone('s1')).to.nested.include({ 'status.Phase': 'Healthy', 'cloneSpec.snapshotName': 's1' });
    expect(kube.all('CStorVolumeReplica').filter((o) => String(o.metadata.name).startsWith('vol1-clone-'))).to.have.length(3);
  });
});
