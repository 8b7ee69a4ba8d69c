// The Event recorder against a real kube-lite: Events created in the object's namespace with
// the full shape, repeats aggregated by count, and failures swallowed.
import { expect } from 'chai';
import { silentLogger } from '../../lib/logger.ts';
import { EventRecorder } from '../../lib/kube/event-recorder.ts';
import { resources } from '../../lib/kube/resources.ts';
import type { CoreEvent, PersistentVolumeClaim } from '../../lib/kube/types/core.ts';
import { kubeLiteForSuite } from './kube-lite-harness.ts';

describe('lib/kube event recorder against kube-lite', function () {
  this.timeout(60_000);
  const kl = kubeLiteForSuite();

  it('creates Events and aggregates repeats by bumping count', async () => {
    const claims = kl.client<PersistentVolumeClaim>(resources.persistentVolumeClaims);
    const claim = await claims.create({
      metadata: { name: 'evt-claim', namespace: 'default' },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, storageClassName: 'none' },
    });
    const events = kl.client<CoreEvent>(resources.events);
    const rec = new EventRecorder({ client: events, component: 'snapshot-provisioner', logger: silentLogger() });
    await rec.event(claim, 'Normal', 'Provisioning', 'External provisioner is provisioning volume for claim "default/evt-claim"');
    await rec.event(claim, 'Warning', 'ProvisioningFailed', 'snapshot "nope" not found');
    await Promise.all([rec.event(claim, 'Warning', 'ProvisioningFailed', 'snapshot "nope" not found'), rec.event(claim, 'Warning', 'ProvisioningFailed', 'snapshot "nope" not found')]);

    const list = await events.list({ namespace: 'default' });
    const mine = list.items.filter((e) => e.involvedObject.name === 'evt-claim');
    expect(mine).to.have.length(2);
    const failed = mine.find((e) => e.reason === 'ProvisioningFailed')!;
    expect(failed.count).to.equal(3);
    expect(failed.type).to.equal('Warning');
    expect(failed.involvedObject).to.include({ kind: 'PersistentVolumeClaim', apiVersion: 'v1', name: 'evt-claim', namespace: 'default', uid: claim.metadata.uid });
    expect(failed.source).to.deep.equal({ component: 'snapshot-provisioner', host: 'snapshot-provisioner' });
    expect(failed.reportingComponent).to.equal('snapshot-provisioner');
    expect(failed.firstTimestamp).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(Date.parse(failed.lastTimestamp!)).to.be.at.least(Date.parse(failed.firstTimestamp!));
    const provisioning = mine.find((e) => e.reason === 'Provisioning')!;
    expect(provisioning.count).to.equal(1);

    // The server gone: recording resolves anyway (a warning is logged).
    await kl.kill();
    await rec.event(claim, 'Warning', 'ProvisioningFailed', 'snapshot "nope" not found');
  });
});
