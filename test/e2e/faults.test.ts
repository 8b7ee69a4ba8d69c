// Faults on the real embedded stack (test/e2e/stack.ts), each through real processes:
// - issue 5: a claim deleted while the volume-provisioner is down between the backend volume
//   create and the PV write. The provisioner is killed (-9) while m-apiserver is making the
//   volume, the claim is deleted at once, the provisioner comes back: the claim's provisioning
//   finalizer held it, so the backend volume is deleted and nothing is left (no PV, no backend
//   volume, no CStorVolume or replica).
// - issue 6: a VolumeSnapshot of a volume that is not Healthy (two of its three pools stopped and
//   kept down, so the volume has one replica of the two it needs): an Error condition and a
//   Warning Event naming the problem, no VolumeSnapshotData, no backend snapshot. The pools start
//   again, the volume turns Healthy again, the retried snapshot turns Ready and a new one works.
import { expect } from 'chai';
import type { PersistentVolumeClaim } from '../../lib/kube/types/core.ts';
import { provisioningFinalizer } from '../../lib/provisioner/claim-finalizer.ts';
import { claimObject, cstorClass, currentCondition, promoterClass, orMissing, snapshotIdAnnotation, snapshotObject, startStack, until, type E2eStack } from './stack.ts';

const ns = 'default';
const size = '16Mi';

describe('faults on the embedded stack (real processes)', function () {
  this.timeout(300_000);
  let stack: E2eStack | undefined;
  const paused: string[] = [];

  before(async function () {
    this.timeout(240_000);
    stack = await startStack({ prefix: 'cstor-faults-' });
  });
  after(async () => {
    for (const pool of paused) stack?.system.supervisor.resume(pool);
    await stack?.stop();
  });
  const s = (): E2eStack => {
    if (!stack) throw new Error('the stack did not start');
    return stack;
  };

  /** Kill -9 `component` while m-apiserver makes the claim's volume, delete the claim at once; after the restart nothing is left. */
  const deletedWhileDown = async (component: 'volume-provisioner' | 'snapshot-provisioner', claim: PersistentVolumeClaim): Promise<void> => {
    const st = s();
    const name = claim.metadata.name!;
    const created = await st.claims.create(claim);
    const pvName = `pvc-${created.metadata.uid}`;
    // m-apiserver has the create (its CStorVolume exists) and is waiting for Healthy: the
    // provisioner has asked for the volume and has not written the PV.
    await until('the CStorVolume of the claim', async () => (await orMissing(st.cstorVolumes.get({ namespace: 'openebs', name: pvName }))) !== undefined, 60_000, () => st.logTails([component, 'mapi']), 10);
    expect(await orMissing(st.pvs.get({ name: pvName })), 'no PV yet').to.equal(undefined);
    const killed = st.kill9(component);
    expect(killed, `the ${component} pid`).to.be.a('number');
    await st.claims.delete({ namespace: ns, name });
    // The finalizer holds the claim (so its uid, hence the volume's name, is not lost).
    const held = await orMissing(st.claims.get({ namespace: ns, name }));
    expect(held?.metadata.deletionTimestamp, 'the claim is being deleted').to.be.a('string');
    expect(held?.metadata.finalizers).to.include(provisioningFinalizer);

    await st.waitRestarted(component, killed!);
    let left = '';
    await until(
      'the claim, the PV, the backend volume and its replicas all gone',
      async () => {
        const [live, pv, volumes, cv, replicas] = await Promise.all([
          orMissing(st.claims.get({ namespace: ns, name })),
          orMissing(st.pvs.get({ name: pvName })),
          st.maya.listVolumes(),
          orMissing(st.cstorVolumes.get({ namespace: 'openebs', name: pvName })),
          st.replicas.list({ namespace: 'openebs' }),
        ]);
        const ofIt = replicas.items.filter((r) => r.metadata?.labels?.['openebs.io/persistent-volume'] === pvName);
        left = JSON.stringify({ claim: live?.metadata.finalizers ?? null, pv: !!pv, volume: volumes.some((v) => v.metadata.name === pvName), cv: !!cv, replicas: ofIt.length });
        return !live && !pv && !volumes.some((v) => v.metadata.name === pvName) && !cv && ofIt.length === 0;
      },
      90_000,
      () => `left: ${left}\n${st.logTails([component, 'mapi'])}`,
    );
    const events = (await st.events.list({ namespace: ns })).items.filter((e) => e.involvedObject.name === name);
    expect(events.map((e) => e.reason)).to.include('VolumeDeleted');
    expect(events.find((e) => e.reason === 'VolumeDeleted')?.message).to.include(pvName);
  };

  it('a claim deleted while the volume-provisioner is down between the backend create and the PV write: the backend volume is deleted', async () => {
    await deletedWhileDown('volume-provisioner', claimObject({ ns, name: 'orphan-check', cls: cstorClass, size }));
  });

  it('a VolumeSnapshot of a volume that is not Healthy: an Error naming the problem, nothing left; Healthy again → Ready, and a new one works', async () => {
    const st = s();
    await st.claims.create(claimObject({ ns, name: 'sick', cls: cstorClass, size }));
    const claim = await until(
      'claim sick Bound',
      async () => {
        const c: PersistentVolumeClaim = await st.claims.get({ namespace: ns, name: 'sick' });
        return c.status?.phase === 'Bound' ? c : undefined;
      },
      90_000,
    );
    const pv = claim.spec.volumeName!;
    const phase = async (): Promise<string | undefined> => (await orMissing(st.cstorVolumes.get({ namespace: 'openebs', name: pv })))?.status?.phase;
    await until(`${pv} Healthy`, async () => (await phase()) === 'Healthy', 60_000);

    // Stop two of the three pools and keep them down: one replica left of the two it needs.
    for (const pool of ['pool-1', 'pool-2']) {
      paused.push(pool);
      await st.system.supervisor.pause(pool);
    }
    await until(`${pv} not Healthy`, async () => ((await phase()) !== 'Healthy' ? true : undefined), 60_000, () => `phase still Healthy\n${st.logTails(['target'])}`);
    console.log(`      ${pv} is ${await phase()} with pool-1 and pool-2 stopped`);

    await st.snapshots.create(snapshotObject(ns, 'snap-of-sick', 'sick'));
    const errored = await until(
      'an Error condition on snap-of-sick',
      async () => {
        const snap = await st.snapshots.get({ namespace: ns, name: 'snap-of-sick' });
        return currentCondition(snap)?.type === 'Error' ? snap : undefined;
      },
      60_000,
      () => st.logTails(['snapshot-controller', 'mapi']),
    );
    const cond = currentCondition(errored)!;
    console.log(`      snap-of-sick: ${cond.reason}: ${cond.message}`);
    expect(cond.reason).to.equal('VolumeNotHealthy');
    expect(cond.message).to.include(pv);
    expect(cond.message).to.match(/not Healthy|Offline|Degraded/);
    const warning = await until(
      'a Warning Event on snap-of-sick',
      async () => (await st.events.list({ namespace: ns })).items.find((e) => e.involvedObject.name === 'snap-of-sick' && e.type === 'Warning'),
      30_000,
    );
    expect(warning.message).to.include(pv);
    // Nothing left behind: no VolumeSnapshotData, no backend snapshot of the id it was given.
    const datas = (await st.datas.list()).items.filter((d) => d.metadata.annotations?.['snapshot.cstor.openebs.io/snapshot-uid'] === errored.metadata.uid);
    expect(datas.map((d) => d.metadata.name)).to.deep.equal([]);
    const id = errored.metadata.annotations?.[snapshotIdAnnotation];
    const backendWhileDown = await st.maya.listSnapshots({ volumeName: pv, namespace: ns }).then(
      (l) => l.map((b) => b.metadata.name),
      (err: unknown) => `(list refused: ${String(err)})`,
    );
    console.log(`      backend snapshots of ${pv} while it is not Healthy: ${JSON.stringify(backendWhileDown)}`);
    if (Array.isArray(backendWhileDown)) expect(backendWhileDown).to.deep.equal([]);

    for (const pool of paused.splice(0)) st.system.supervisor.resume(pool);
    await until(`${pv} Healthy again`, async () => (await phase()) === 'Healthy', 90_000, () => st.logTails(['target', 'pool-1']));
    const backendNow = (await st.maya.listSnapshots({ volumeName: pv, namespace: ns })).map((b) => b.metadata.name);
    // The controller retries a VolumeNotHealthy snapshot: it may be taken by now, but only once.
    expect(backendNow.filter((b) => b !== id), 'backend snapshots other than the retried one').to.deep.equal([]);

    const ready = await until(
      'snap-of-sick Ready after the volume healed',
      async () => {
        const snap = await st.snapshots.get({ namespace: ns, name: 'snap-of-sick' });
        return currentCondition(snap)?.type === 'Ready' ? snap : undefined;
      },
      120_000,
      () => st.logTails(['snapshot-controller']),
    );
    expect(ready.metadata.annotations?.[snapshotIdAnnotation]).to.equal(id);
    await st.snapshots.create(snapshotObject(ns, 'snap-after', 'sick'));
    const after = await until(
      'snap-after Ready',
      async () => {
        const snap = await st.snapshots.get({ namespace: ns, name: 'snap-after' });
        return currentCondition(snap)?.type === 'Ready' ? snap : undefined;
      },
      60_000,
    );
    const backend = (await st.maya.listSnapshots({ volumeName: pv, namespace: ns })).map((b) => b.metadata.name).sort();
    expect(backend).to.deep.equal([id, after.metadata.annotations?.[snapshotIdAnnotation]].sort());
  });

  it('a promoter PVC deleted while the snapshot-provisioner is down between the clone create and the PV write: the clone volume is deleted', async () => {
    // snap-after (the test above) is Ready.
    await deletedWhileDown('snapshot-provisioner', claimObject({ ns, name: 'orphan-clone', cls: promoterClass, size, snapshot: 'snap-after' }));
  });
});
