// Builds the PV for a provisioned claim (DESIGN.md §3): name `pvc-<claim uid>`, annotation
// pv.kubernetes.io/provisioned-by, claimRef with the claim's uid, the class's reclaim policy
// (Delete when unset, as Kubernetes defaults it), the claim's access modes and volume mode.
import type { PersistentVolume, PersistentVolumeClaim } from '../kube/types/core.ts';
import type { StorageClass } from '../kube/types/storage.ts';
import { annotations, type ProvisionedVolume } from './types.ts';

/** The deterministic PV name of a claim: one claim, one name, on every retry and after a crash. */
export function pvNameFor(claim: PersistentVolumeClaim): string {
  const uid = claim.metadata.uid;
  if (!uid) throw new Error('claim has no metadata.uid');
  return `pvc-${uid}`;
}

export interface BuildPvOptions {
  claim: PersistentVolumeClaim;
  storageClass: StorageClass;
  provisionerName: string;
  pvName: string;
  capacity: string;
  volume: ProvisionedVolume;
}

export function buildPersistentVolume(o: BuildPvOptions): PersistentVolume {
  const { claim, storageClass, volume } = o;
  const spec: PersistentVolume['spec'] = {
    capacity: { storage: volume.capacity ?? o.capacity },
    accessModes: claim.spec.accessModes ?? ['ReadWriteOnce'],
    persistentVolumeReclaimPolicy: storageClass.reclaimPolicy ?? 'Delete',
    storageClassName: storageClass.metadata.name ?? '',
    claimRef: {
      kind: 'PersistentVolumeClaim',
      apiVersion: 'v1',
      namespace: claim.metadata.namespace,
      name: claim.metadata.name,
      uid: claim.metadata.uid,
      resourceVersion: claim.metadata.resourceVersion,
    },
    ...(claim.spec.volumeMode ? { volumeMode: claim.spec.volumeMode } : {}),
    ...(storageClass.mountOptions?.length ? { mountOptions: storageClass.mountOptions } : {}),
    ...volume.spec,
  };
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: {
      name: o.pvName,
      labels: { ...(volume.labels ?? {}) },
      annotations: { ...(volume.annotations ?? {}), [annotations.provisionedBy]: o.provisionerName },
    },
    spec,
  };
}
