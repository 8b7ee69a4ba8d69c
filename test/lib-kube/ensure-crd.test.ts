// ensureCrd and the typed client on a custom resource (the legacy VolumeSnapshot) against kube-lite.
import { expect } from 'chai';
import { silentLogger } from '../../lib/logger.ts';
import { ensureCrd } from '../../lib/kube/ensure-crd.ts';
import { resources } from '../../lib/kube/resources.ts';
import type { CustomResourceDefinition } from '../../lib/kube/types/crd.ts';
import type { VolumeSnapshot } from '../../lib/kube/types/volume-snapshot.ts';
import { kubeLiteForSuite } from './kube-lite-harness.ts';

const snapshotCrd: CustomResourceDefinition = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'volumesnapshots.volumesnapshot.external-storage.k8s.io' },
  spec: {
    group: 'volumesnapshot.external-storage.k8s.io',
    names: { plural: 'volumesnapshots', singular: 'volumesnapshot', kind: 'VolumeSnapshot', listKind: 'VolumeSnapshotList' },
    scope: 'Namespaced',
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        subresources: { status: {} },
      },
    ],
  },
};

describe('lib/kube ensureCrd and custom resources against kube-lite', function () {
  this.timeout(60_000);
  const kl = kubeLiteForSuite();

  it('installs the CRD once, waits for Established, then serves the resource with its status subresource', async () => {
    const crds = kl.client<CustomResourceDefinition>(resources.customResourceDefinitions);
    const first = await ensureCrd(snapshotCrd, { client: crds, logger: silentLogger() });
    const again = await ensureCrd(snapshotCrd, { client: crds, logger: silentLogger() });
    expect(again.metadata.uid).to.equal(first.metadata.uid);

    const snaps = kl.client<VolumeSnapshot>(resources.volumeSnapshots);
    const created = await snaps.create({ metadata: { name: 'snap-1', namespace: 'default' }, spec: { persistentVolumeClaimName: 'pvc-1' } });
    expect(created.kind).to.equal('VolumeSnapshot');
    const withStatus = await snaps.patchStatus(
      { name: 'snap-1', namespace: 'default' },
      { conditions: [{ type: 'Ready', status: 'True', reason: '', message: 'Snapshot created successfully' }] },
    );
    expect(withStatus.status?.conditions?.[0]?.message).to.equal('Snapshot created successfully');
    // the main endpoint ignores status changes
    const main = await snaps.mergePatch({ name: 'snap-1', namespace: 'default' }, { spec: { snapshotDataName: 'k8s-volume-snapshot-x' }, status: { conditions: [] } });
    expect(main.spec.snapshotDataName).to.equal('k8s-volume-snapshot-x');
    expect(main.status?.conditions).to.have.length(1);
    // a stale resourceVersion is a conflict, a taken name already_exists, a bad name invalid
    const stale = await snaps.replace({ ...created }).catch((e: unknown) => e);
    expect(stale).to.have.property('code', 'conflict');
    const dup = await snaps.create({ metadata: { name: 'snap-1', namespace: 'default' }, spec: { persistentVolumeClaimName: 'x' } }).catch((e: unknown) => e);
    expect(dup).to.have.property('code', 'already_exists');
    const bad = await snaps.create({ metadata: { name: 'Bad_Name', namespace: 'default' }, spec: { persistentVolumeClaimName: 'x' } }).catch((e: unknown) => e);
    expect(bad).to.have.property('code', 'invalid');
    const missing = await snaps.get({ name: 'nope', namespace: 'default' }).catch((e: unknown) => e);
    expect(missing).to.have.property('code', 'not_found');
    expect((missing as Error).message).to.match(/^get volumesnapshots default\/nope: 404 NotFound: /);
  });
});
