// The cStor objects the pool daemon reads and writes (DESIGN.md §3, deploy/crds/): its own
// CStorPool, and the CStorVolumeReplicas of its pool. Only the fields the reconciler uses;
// unknown fields pass through untouched.
import type { ResourceType } from '../../lib/kube/resource-type.ts';
import type { KubeObject, ObjectMeta } from '../../lib/kube/types/meta.ts';

export const cstorGroup = 'openebs.io';
export const cstorVersion = 'v1alpha1';
export const cstorApiVersion = `${cstorGroup}/${cstorVersion}`;

export const cstorResources = {
  cstorPools: { group: cstorGroup, version: cstorVersion, plural: 'cstorpools', kind: 'CStorPool', namespaced: false },
  cstorVolumeReplicas: { group: cstorGroup, version: cstorVersion, plural: 'cstorvolumereplicas', kind: 'CStorVolumeReplica', namespaced: true },
} as const satisfies Record<string, ResourceType>;

/** Labels, annotations and the finalizer, as the CAS templates write them. */
export const cvrLabels = {
  pool: 'cstorpool.openebs.io/name',
  persistentVolume: 'openebs.io/persistent-volume',
  cloned: 'openebs.io/cloned',
} as const;

export const cvrAnnotations = {
  snapshot: 'openebs.io/snapshot',
  sourceVolume: 'openebs.io/source-volume',
} as const;

export const cvrFinalizer = 'cstorvolumereplica.openebs.io/finalizer';

export const cvrPhases = ['Init', 'Healthy', 'Degraded', 'Rebuilding', 'Offline', 'Error'] as const;
export type CvrPhase = (typeof cvrPhases)[number];

export interface CvrStatus {
  phase?: CvrPhase;
  capacity?: { total?: string | number; used?: string | number };
  reason?: string;
  message?: string;
  lastUpdateTime?: string;
}

export interface CStorVolumeReplica extends KubeObject {
  metadata: ObjectMeta;
  spec?: { capacity?: string; targetIP?: string };
  status?: CvrStatus;
}

export const poolPhases = ['Init', 'Online', 'Offline', 'Error'] as const;
export type PoolPhase = (typeof poolPhases)[number];

export interface CStorPoolStatus {
  phase?: PoolPhase;
  address?: string;
  mgmtAddress?: string;
  capacity?: { total?: number | string; used?: number | string; free?: number | string };
  replicas?: number;
  reason?: string;
  message?: string;
  lastUpdateTime?: string;
}

export interface CStorPool extends KubeObject {
  metadata: ObjectMeta;
  spec?: { path?: string; node?: string };
  status?: CStorPoolStatus;
}
