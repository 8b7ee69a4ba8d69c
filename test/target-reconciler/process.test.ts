// The target reconciler against real processes: kube-lite, three `cstor pool --kubeconfig`
// (CStorPools registered, replicas made from CVRs by the pool reconciler) and `cstor target
// --kubeconfig`. CVRs and a CStorVolume are written as the CAS volume create template writes
// them; the target serves the volume, CStorVolume.status turns Healthy with 3 replicaStatuses,
// qemu-io writes and reads over iSCSI; kill -9 of the target and of a pool (back on a new port)
// converge; deleting the CStorVolume stops serving it.
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { stopAll } from '../support/daemon.ts';
import { http, qemuIo, until } from '../target/support.ts';
import { ns, poolNames, TargetWorld } from './support.ts';

const pv = 'pv-tr1';
const capacity = '64Mi';

describe('target reconciler (kube-lite, 3 pools, 1 target: real processes)', function () {
  this.timeout(120_000);
  const w = new TargetWorld();

  before(async () => {
    await w.start();
    await Promise.all(poolNames.map((p) => w.startPool(p)));
    await until(async () => (await w.poolObjects.list()).items.filter((p) => p.status?.phase === 'Online' && p.status.address).length === 3, 30_000, 'three Online CStorPools');
    await w.startTarget();
  });

  after(async () => {
    await stopAll();
    w.cleanup();
  });

  const poolAddresses = async (): Promise<string[]> =>
    (await w.poolObjects.list()).items
      .sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''))
      .map((p) => p.status?.address ?? '');

  const healthy = async (name = pv): Promise<boolean> => {
    const cv = await w.cv(name);
    return cv?.status?.phase === 'Healthy' && (cv.status.replicaStatuses ?? []).filter((r) => r.mode === 'Healthy').length === 3;
  };

  async function qemu(commands: string[], volume = pv): Promise<string[]> {
    const run = qemuIo(w.portal, volume, commands);
    const { code, lines } = await run.done;
    expect(code, lines.join('\n')).to.equal(0);
    expect(lines.join('\n')).to.not.match(/fail|error|abort/i);
    return lines;
  }

  it('a CStorVolume made as the CAS template makes it is served and turns Healthy with 3 replicaStatuses', async () => {
    await w.createVolume(pv, capacity);
    // A volume of another target is not touched.
    await w.cvs.create({
      metadata: { name: 'pv-elsewhere', namespace: ns },
      spec: { targetIP: '10.9.9.9', iqn: 'iqn.2016-09.com.openebs.cstor:pv-elsewhere', capacity: '1Gi', replicationFactor: 3, consistencyFactor: 2 },
    });
    await until(healthy, 60_000, `${pv} Healthy`);
    const cv = await w.cv(pv);
    expect(cv?.metadata.finalizers).to.include('cstorvolume.openebs.io/target-finalizer');
    const addresses = await poolAddresses();
    expect(cv?.status?.replicaStatuses?.map((r) => r.address).sort()).to.deep.equal([...addresses].sort());
    for (const r of cv?.status?.replicaStatuses ?? []) expect(r.quorum).to.equal('1');
    const served = await http(w.mgmt, 'GET', `/v1/volumes/${pv}`);
    expect(served.status).to.equal(200);
    expect(served.data).to.include({ capacity: 64 * 2 ** 20, blockSize: 4096, replicationFactor: 3, phase: 'Healthy' });
    const other = await w.cv('pv-elsewhere');
    expect(other?.status).to.equal(undefined);
    expect(other?.metadata.finalizers ?? []).to.deep.equal([]);
    expect((await http(w.mgmt, 'GET', '/v1/volumes/pv-elsewhere')).status).to.equal(404);
    const events = (await w.events.list({ namespace: ns })).items.filter((e) => e.involvedObject?.name === pv).map((e) => e.reason);
    expect(events).to.include.members(['Serving', 'Healthy']);
    const metrics = String((await http(w.mgmt, 'GET', '/metrics')).data);
    expect(metrics).to.match(/cstor_target_reconcile_operation_total_seconds_count\{[^}]*operation_name="serve"[^}]*operation_status="success"[^}]*\} 1/);
    // Nothing changes: two status refresh periods (2 s each) write nothing.
    const patches = async (): Promise<string> => /cstor_target_reconcile_operation_total_seconds_count\{[^}]*operation_name="patch_status"[^}]*\} (\d+)/.exec(String((await http(w.mgmt, 'GET', '/metrics')).data))?.[1] ?? 'none';
    // Let the replicas settle first (mode changes right after Healthy are real changes), then
    // nothing may be written over two refresh periods.
    let settled = await patches();
    await until(
      async () => {
        await new Promise((r) => setTimeout(r, 2500));
        const now = await patches();
        const same = now === settled;
        settled = now;
        return same;
      },
      30_000,
      'status writes to settle',
    );
    const before = await patches();
    const rv = (await w.cv(pv))?.metadata.resourceVersion;
    await new Promise((r) => setTimeout(r, 4500));
    expect(await patches()).to.equal(before);
    expect((await w.cv(pv))?.metadata.resourceVersion).to.equal(rv);
  });

  it('qemu-io writes a pattern over iSCSI and reads it back', async () => {
    await qemu(['write -P 0xa5 0 1M', 'write -P 0x3c 8M 64k', 'read -P 0xa5 0 1M', 'read -P 0x3c 8M 64k']);
  });

  it('kill -9 of the target, restart (state file gone): served again from the CStorVolume, status converges to Healthy, data there', async () => {
    await w.target?.kill();
    // Without its state file (volumes.json) the target knows the volume only from Kubernetes.
    fs.rmSync(path.join(w.root, 'target', 'volumes.json'), { force: true });
    // Status as a dead target leaves it, made stale on purpose: the restarted target must rewrite it.
    await w.cvs.patchStatus({ namespace: ns, name: pv }, { phase: 'Offline', replicaStatuses: [] });
    await w.startTarget();
    await until(healthy, 60_000, `${pv} Healthy after the target restart`);
    expect((await http(w.mgmt, 'GET', `/v1/volumes/${pv}`)).status).to.equal(200);
    await qemu(['read -P 0xa5 0 1M', 'read -P 0x3c 8M 64k']);
  });

  it('kill -9 of a pool, back on a new port: the target follows its new address and the volume is Healthy again', async () => {
    const old = (await poolAddresses())[1];
    await w.pools.get('pool-b')?.kill();
    await w.startPool('pool-b');
    await until(async () => {
      const now = (await poolAddresses())[1];
      return now !== undefined && now !== '' && now !== old;
    }, 30_000, 'pool-b published a new address');
    const addresses = await poolAddresses();
    await until(async () => (await healthy()) && (await w.cv(pv))?.status?.replicaStatuses?.some((r) => r.address === addresses[1]) === true, 60_000, `${pv} Healthy on pool-b's new address`);
    const served = await http(w.mgmt, 'GET', `/v1/volumes/${pv}`);
    expect((served.data as { replicaStatuses: { address: string }[] }).replicaStatuses.map((r) => r.address).sort()).to.deep.equal([...addresses].sort());
    await qemu(['read -P 0xa5 0 1M', 'read -P 0x3c 8M 64k']);
  });

  it('a clean stop (SIGTERM) reports the volume Offline; the next start makes it Healthy again', async () => {
    expect(await w.target?.stop()).to.equal(0);
    const cv = await w.cv(pv);
    expect(cv?.status).to.include({ phase: 'Offline', reason: 'TargetStopped' });
    await w.startTarget();
    await until(healthy, 60_000, `${pv} Healthy after a clean restart`);
  });

  it('a clone (CVRs and CStorVolume as the clone template writes them) is served and holds the snapshot\'s bytes', async () => {
    const snap = await http(w.mgmt, 'POST', `/v1/volumes/${pv}/snapshots`, { name: 'snap1' });
    expect(snap.status, JSON.stringify(snap.data)).to.equal(201);
    await qemu(['write -P 0x77 0 1M']); // after the snapshot: the clone must not see it
    await w.createVolume('pv-tr1-clone', capacity, { clone: { source: pv, snapshot: 'snap1' } });
    await until(() => healthy('pv-tr1-clone'), 60_000, 'the clone Healthy');
    await qemu(['read -P 0xa5 0 1M', 'read -P 0x3c 8M 64k'], 'pv-tr1-clone');
    await qemu(['read -P 0x77 0 1M']);
  });

  it('a CStorVolume deleted while the target is down (kill -9) waits for it; the restarted target stops serving it and lets it go', async () => {
    const clone = 'pv-tr1-clone';
    await w.target?.kill();
    await w.cvs.delete({ namespace: ns, name: clone });
    const held = await w.cv(clone);
    expect(held?.metadata.deletionTimestamp, 'held by the target finalizer').to.be.a('string');
    await w.startTarget(); // its state file still lists the clone: it is served first, then stopped
    await until(async () => (await w.cv(clone)) === undefined, 30_000, `${clone} gone`);
    expect((await http(w.mgmt, 'GET', `/v1/volumes/${clone}`)).status).to.equal(404);
    await until(healthy, 60_000, `${pv} Healthy after the restart`);
  });

  it('deleting the CStorVolume: no longer served, then the object goes', async () => {
    await w.cvs.delete({ namespace: ns, name: pv });
    await until(async () => (await w.cv(pv)) === undefined, 30_000, `${pv} gone`);
    expect((await http(w.mgmt, 'GET', `/v1/volumes/${pv}`)).status).to.equal(404);
    const run = qemuIo(w.portal, pv, ['read 0 4k']);
    const { code } = await run.done;
    expect(code).to.not.equal(0);
  });
});
