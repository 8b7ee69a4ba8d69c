// openebs.io/provisioner-iscsi: a claim of a cStor class → a volume through m-apiserver → the
// parts of an iSCSI PV (DESIGN.md §3); a released PV → the volume deleted through m-apiserver.
// The volume is named after the PV (pvc-<claim uid>), so a retry or a restart asks m-apiserver
// for the same volume, and m-apiserver answers the one that exists.
import { CstorError } from '../lib/errors.ts';
import type { PersistentVolume } from '../lib/kube/types/core.ts';
import type { CasVolume } from '../lib/maya-client/types.ts';
import type { MayaClient } from '../lib/maya-client/client.ts';
import { mayaLabels } from '../lib/maya-client/types.ts';
import { iqnFor, pvPartsFor } from '../lib/provisioner/iscsi-pv.ts';
import type { ProvisionedVolume, ProvisionRequest, Provisioner } from '../lib/provisioner/types.ts';

export const iscsiProvisionerName = 'openebs.io/provisioner-iscsi';

type Maya = Pick<MayaClient, 'createVolume' | 'deleteVolume'>;

/**
 * Refuses an m-apiserver answer that describes another volume than `pvName` (its name, or its
 * IQN): a PV built from it would send the claim's IO to someone else's volume.
 */
export function checkVolumeAnswer(volume: CasVolume, pvName: string): void {
  const name = volume.metadata?.name;
  if (name && name !== pvName) throw new CstorError('protocol', `m-apiserver answered volume ${name} for a volume named ${pvName}`);
  const iqn = volume.spec?.iqn;
  if (iqn && iqn !== iqnFor(pvName)) throw new CstorError('protocol', `m-apiserver answered IQN ${iqn} for volume ${pvName} (expected ${iqnFor(pvName)})`);
}

export class IscsiVolumeProvisioner implements Provisioner {
  readonly name = iscsiProvisionerName;

  constructor(private readonly maya: Maya) {}

  async provision(req: ProvisionRequest): Promise<ProvisionedVolume> {
    const className = req.storageClass.metadata.name ?? '';
    const namespace = req.claim.metadata.namespace ?? '';
    const volume = await this.maya.createVolume({
      metadata: {
        name: req.pvName,
        namespace,
        labels: { [mayaLabels.storageClass]: className, [mayaLabels.namespace]: namespace, [mayaLabels.claim]: req.claim.metadata.name ?? '' },
      },
      spec: { capacity: req.capacity },
    });
    checkVolumeAnswer(volume, req.pvName);
    return pvPartsFor(volume, className, req.storageClass.parameters?.['fsType'] || 'ext4');
  }

  async delete(pv: PersistentVolume): Promise<void> {
    const name = pv.metadata?.name;
    if (!name) throw new CstorError('invalid', 'the PV has no name');
    await this.maya.deleteVolume(name, {
      ...(pv.spec.claimRef?.namespace ? { namespace: pv.spec.claimRef.namespace } : {}),
      ...(pv.spec.storageClassName ? { storageClass: pv.spec.storageClassName } : {}),
    });
  }
}
