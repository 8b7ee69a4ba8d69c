// The provisioner core wired: informers over fake list-watch sources → queues → sync, with real
// (short) backoff: retries after failures, class-after-claim, released PVs, no duplicates
// however many events a claim gets while it is being provisioned.
import { expect } from 'chai';
import { CstorError } from '../errors.ts';
import { FakeListWatch } from '../kube/fake-list-watch.ts';
import type { PersistentVolume, PersistentVolumeClaim } from '../kube/types/core.ts';
import type { StorageClass } from '../kube/types/storage.ts';
import { silentLogger } from '../logger.ts';
import { ProvisionController } from './controller.ts';
import { FakePvApi, FakeProvisioner, RecordingEvents, testClaim, testClass } from './fakes.ts';

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('lib/provisioner: ProvisionController', () => {
  let claims: FakeListWatch<PersistentVolumeClaim>;
  let classes: FakeListWatch<StorageClass>;
  let volumes: FakeListWatch<PersistentVolume>;
  let api: FakePvApi;
  let events: RecordingEvents;
  let prov: FakeProvisioner;
  let controller: ProvisionController;
  let running: Promise<void>;

  beforeEach(() => {
    claims = new FakeListWatch();
    classes = new FakeListWatch();
    volumes = new FakeListWatch();
    api = new FakePvApi();
    events = new RecordingEvents();
    prov = new FakeProvisioner();
    controller = new ProvisionController({
      provisioner: prov,
      sources: { claims, classes, volumes },
      pvApi: api,
      events,
      logger: silentLogger(),
      backoff: { baseMs: 10, maxMs: 40 },
      resyncPeriodMs: 0,
    });
  });
  afterEach(async () => {
    await controller.stop();
    await running;
  });

  it('retries a failing backend with backoff until it works: one volume, one PV, the Events in order', async () => {
    classes.put(testClass('fast'));
    claims.put(testClaim('c1'));
    prov.provisionFailures.push(new CstorError('unavailable', 'pools offline'), new CstorError('unavailable', 'pools offline'));
    running = controller.run();
    await until(() => api.store.has('pvc-uid-c1'), 'the PV');
    expect(prov.provisionCalls).to.equal(3);
    expect(prov.volumes.size).to.equal(1);
    // The recorder aggregates repeats; here every call is kept.
    expect(events.reasons()).to.deep.equal(['Provisioning', 'ProvisioningFailed', 'Provisioning', 'ProvisioningFailed', 'Provisioning', 'ProvisioningSucceeded']);
  });

  it('provisions a claim whose class appears after it', async () => {
    claims.put(testClaim('c1'));
    running = controller.run();
    await until(() => events.reasons().includes('ProvisioningFailed'), 'the missing class reported');
    classes.put(testClass('fast'));
    await until(() => api.store.has('pvc-uid-c1'), 'the PV');
    expect(prov.volumes.size).to.equal(1);
  });

  it('never provisions twice for one claim, however many updates arrive while it works', async () => {
    classes.put(testClass('fast'));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    prov.onProvision = () => gate;
    claims.put(testClaim('c1'));
    running = controller.run();
    await until(() => prov.provisionCalls === 1, 'provision started');
    for (let i = 0; i < 20; i++) claims.put({ ...testClaim('c1'), metadata: { ...testClaim('c1').metadata, labels: { n: String(i) } } });
    release();
    await until(() => api.store.has('pvc-uid-c1'), 'the PV');
    await new Promise((r) => setTimeout(r, 50));
    expect(prov.provisionCalls).to.equal(1);
    expect(api.creates).to.equal(1);
  });

  it('deletes the backend volume and then the PV of a released volume', async () => {
    const pv: PersistentVolume = {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: 'pvc-x', uid: 'u-x', annotations: { 'pv.kubernetes.io/provisioned-by': prov.name } },
      spec: { persistentVolumeReclaimPolicy: 'Delete' },
      status: { phase: 'Bound' },
    };
    api.store.set('pvc-x', pv);
    volumes.put(pv);
    running = controller.run();
    await new Promise((r) => setTimeout(r, 30));
    expect(prov.deleted).to.deep.equal([]);
    volumes.put({ ...pv, status: { phase: 'Released' } });
    await until(() => !api.store.has('pvc-x'), 'the PV deleted');
    expect(prov.deleted).to.deep.equal(['pvc-x']);
  });
});
