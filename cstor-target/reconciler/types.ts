// The cStor objects the target daemon reads and writes (DESIGN.md §3, deploy/crds/): the
// CStorVolumes assigned to it (status written here), and, read only, the CStorVolumeReplicas of
// those volumes and the CStorPools holding them. Only the fields the reconciler uses; unknown
// fields pass through untouched. The pool-side shapes are the pool reconciler's.
import type { ResourceType } from '../../lib/kube/resource-type.ts';
import type { KubeObject, ObjectMeta } from '../../lib/kube/types/meta.ts';
import { cstorGroup, cstorResources as poolResources, cstorVersion } from '../../cstor-pool/reconciler/types.ts';

export type { CStorPool, CStorVolumeReplica } from '../../cstor-pool/reconciler/types.ts';
export { cvrLabels } from '../../cstor-pool/reconciler/types.ts';

export const cstorResources = {
  ...poolResources,
  cstorVolumes: { group: cstorGroup, version: cstorVersion, plural: 'cstorvolumes', kind: 'CStorVolume', namespaced: true },
} as const satisfies Record<string, ResourceType>;

/** Held on a CStorVolume by the target that serves it, until it has stopped serving it. */
export const cvFinalizer = 'cstorvolume.openebs.io/target-finalizer';

export const cvAnnotations = { snapshot: 'openebs.io/snapshot' } as const;
export const cvLabels = { sourceVolume: 'openebs.io/source-volume', persistentVolume: 'openebs.io/persistent-volume' } as const;

export const iqnPrefix = 'iqn.2016-09.com.openebs.cstor:';

export const cvPhases = ['Init', 'Healthy', 'Degraded', 'Offline', 'Error'] as const;
export type CvPhase = (typeof cvPhases)[number];

/** One entry of status.replicaStatuses: exactly the fields the CRD declares. */
export interface CvReplicaStatus {
  replicaId: string;
  address: string;
  mode: string;
  checkpointedIOSeq: string | number;
  inflightRead: string | number;
  inflightWrite: string | number;
  quorum: string | number;
  upTime: string | number;
}

export interface CvStatus {
  phase?: CvPhase;
  replicaStatuses?: CvReplicaStatus[];
  reason?: string;
  message?: string;
  lastUpdateTime?: string;
}

export interface CvSpec {
  targetIP?: string;
  targetPortal?: string;
  targetMgmtAddress?: string;
  iqn?: string;
  capacity?: string | number;
  replicationFactor?: number | string;
  consistencyFactor?: number | string;
}

export interface CStorVolume extends KubeObject {
  metadata: ObjectMeta;
  spec?: CvSpec;
  status?: CvStatus;
}
