// openebs.io/provisioner-iscsi: a claim of a cStor class → a volume through m-apiserver → the
// parts of an iSCSI PV (DESIGN.md §3); a released PV → the volume deleted through m-apiserver.
// The volume is named after the PV (pvc-<claim uid>), so a retry or a restart asks m-apiserver
// for the same volume, and m-apiserver answers the one that exists.
import { CstorError } from '../lib/errors.ts';
import type { PersistentVolume } from '../lib/kube/types/core.ts';
import type { MayaClient } from '../lib/maya-client/client.ts';
import { mayaLabels, type CasVolume } from '../lib/maya-client/types.ts';
import type { ProvisionedVolume, ProvisionRequest, Provisioner } from '../lib/provisioner/types.ts';

export const iscsiProvisionerName = 'openebs.io/provisioner-iscsi';

export const pvLabels = {
  casType: 'openebs.io/cas-type',
  storageClass: 'openebs.io/storageclass',
} as const;

export function iqnFor(volume: string): string {
  return `iqn.2016-09.com.openebs.cstor:${volume}`;
}

type Maya = Pick<MayaClient, 'createVolume' | 'deleteVolume'>;

/** The iSCSI PV parts from m-apiserver's answer; a CASVolume without a portal is refused, naming the field. */
export function pvPartsFor(volume: CasVolume, storageClass: string, fsType = 'ext4'): ProvisionedVolume {
  const s = volume.spec;
  const portal = s.targetPortal || (s.targetIP ? `${s.targetIP}:${s.targetPort || '3260'}` : '');
  if (!portal) throw new CstorError('protocol', `m-apiserver answered volume ${volume.metadata.name} without spec.targetPortal or spec.targetIP`);
  const lun = Number(s.lun ?? 0);
  return {
    labels: { [pvLabels.casType]: 'cstor', [pvLabels.storageClass]: storageClass },
    spec: {
      iscsi: {
        targetPortal: portal,
        iqn: s.iqn || iqnFor(volume.metadata.name),
        lun: Number.isInteger(lun) ? lun : 0,
        fsType,
        readOnly: false,
      },
    },
  };
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
