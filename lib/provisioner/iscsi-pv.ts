// The iSCSI parts of a cStor PV (DESIGN.md §3), from m-apiserver's CASVolume: shared by the
// volume-provisioner and the snapshot-promoter, which build the same PV shape.
import { CstorError } from '../errors.ts';
import type { CasVolume } from '../maya-client/types.ts';
import type { ProvisionedVolume } from './types.ts';

export const pvLabels = {
  casType: 'openebs.io/cas-type',
  storageClass: 'openebs.io/storageclass',
} as const;

export function iqnFor(volume: string): string {
  return `iqn.2016-09.com.openebs.cstor:${volume}`;
}

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
