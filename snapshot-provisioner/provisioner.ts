// volumesnapshot.external-storage.k8s.io/snapshot-promoter: a claim annotated with a Ready
// VolumeSnapshot of its namespace → a clone volume made through m-apiserver
// (POST /latest/volumes/ with cloneSpec) → the parts of an iSCSI PV (DESIGN.md §3); a released
// PV → the clone volume deleted through m-apiserver.
//
// Idempotence: the clone volume is named after the PV (`pvc-<claim uid>`), so a retry or a
// restart asks m-apiserver for the same volume, and m-apiserver answers the one that exists
// (the core looks for the PV first, so a PV that exists is never asked for twice).
// Every check (clone-source.ts) runs before the backend call: a refusal never reaches m-apiserver.
import { CstorError } from '../lib/errors.ts';
import type { PersistentVolume } from '../lib/kube/types/core.ts';
import type { MayaClient } from '../lib/maya-client/client.ts';
import { mayaLabels } from '../lib/maya-client/types.ts';
import type { ProvisionedVolume, ProvisionRequest, Provisioner } from '../lib/provisioner/types.ts';
import { pvPartsFor } from '../lib/provisioner/iscsi-pv.ts';
import { checkVolumeAnswer } from '../volume-provisioner/provisioner.ts';
import { resolveCloneSource, type CloneSourceReads } from './clone-source.ts';

export const promoterName = 'volumesnapshot.external-storage.k8s.io/snapshot-promoter';

/** PV annotation naming the promoter instance that made it (DESIGN.md §3). */
export const identityAnnotation = 'snapshotProvisionerIdentity';

const sourceClassLabel = 'openebs.io/storageclass';

type Maya = Pick<MayaClient, 'createVolume' | 'deleteVolume'>;

export interface SnapshotPromoterOptions {
  maya: Maya;
  reads: CloneSourceReads;
  /** Written on every PV as snapshotProvisionerIdentity. */
  identity: string;
}

export class SnapshotPromoter implements Provisioner {
  readonly name = promoterName;

  constructor(private readonly o: SnapshotPromoterOptions) {}

  async provision(req: ProvisionRequest): Promise<ProvisionedVolume> {
    const source = await resolveCloneSource({ claim: req.claim, requested: req.capacity, reads: this.o.reads });
    const namespace = req.claim.metadata.namespace ?? '';
    const volume = await this.o.maya.createVolume({
      metadata: {
        name: req.pvName,
        namespace,
        labels: { [mayaLabels.storageClass]: source.sourceClass, [mayaLabels.namespace]: namespace, [mayaLabels.claim]: req.claim.metadata.name ?? '' },
      },
      spec: { capacity: req.capacity },
      cloneSpec: { isClone: true, sourceVolume: source.sourceVolume, snapshotName: source.snapshotId },
    });
    checkVolumeAnswer(volume, req.pvName);
    const parts = pvPartsFor({ ...volume, metadata: { ...volume.metadata, name: req.pvName } }, source.sourceClass, source.fsType);
    return { ...parts, annotations: { [identityAnnotation]: this.o.identity } };
  }

  async delete(pv: PersistentVolume): Promise<void> {
    const name = pv.metadata?.name;
    if (!name) throw new CstorError('invalid', 'the PV has no name');
    // The source class carries the CAS config (templates); the promoter class has none.
    const storageClass = pv.metadata.labels?.[sourceClassLabel] || pv.spec.storageClassName;
    await this.o.maya.deleteVolume(name, {
      ...(pv.spec.claimRef?.namespace ? { namespace: pv.spec.claimRef.namespace } : {}),
      ...(storageClass ? { storageClass } : {}),
    });
  }
}
