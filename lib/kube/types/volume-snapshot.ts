// The legacy external-storage snapshot API (DESIGN.md §3): group
// volumesnapshot.external-storage.k8s.io, version v1. VolumeSnapshot is namespaced,
// VolumeSnapshotData is cluster-scoped; both carry the same condition shape.
import type { Condition, KubeObject, ObjectMeta } from './meta.ts';

export const snapshotGroup = 'volumesnapshot.external-storage.k8s.io';
export const snapshotVersion = 'v1';

export type SnapshotConditionType = 'Pending' | 'Ready' | 'Error';

export interface SnapshotCondition extends Condition {
  type: SnapshotConditionType;
}

export interface SnapshotStatus {
  creationTimestamp?: string;
  conditions?: SnapshotCondition[];
}

export interface VolumeSnapshot extends KubeObject {
  metadata: ObjectMeta;
  spec: {
    persistentVolumeClaimName: string;
    snapshotDataName?: string;
  };
  status?: SnapshotStatus;
}

export interface VolumeSnapshotData extends KubeObject {
  metadata: ObjectMeta;
  spec: {
    openebsVolume?: { snapshotId: string; capacity?: string };
    /** name is "<ns>/<snapshot name>-<snapshot uid>". */
    volumeSnapshotRef?: { kind: 'VolumeSnapshot'; name: string };
    persistentVolumeRef?: { kind: 'PersistentVolume'; name: string };
  };
  status?: SnapshotStatus;
}

/** Labels the snapshot controller puts on a VolumeSnapshot. */
export const snapshotLabels = {
  pvName: 'SnapshotMetadata-PVName',
  timestamp: 'SnapshotMetadata-Timestamp',
} as const;

/** The PVC annotation naming the snapshot to clone from. */
export const snapshotAnnotation = 'snapshot.alpha.kubernetes.io/snapshot';
