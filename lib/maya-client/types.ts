// The m-apiserver REST shapes (DESIGN.md §4), as the clients see them.

export const mayaLabels = {
  storageClass: 'openebs.io/storageclass',
  namespace: 'openebs.io/namespace',
  claim: 'openebs.io/persistentvolumeclaim',
} as const;

export interface CasVolumeRequest {
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec: { capacity: string };
  cloneSpec?: { isClone: boolean; sourceVolume: string; snapshotName: string };
}

export interface CasVolume {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    capacity?: string;
    iqn?: string;
    targetPortal?: string;
    targetIP?: string;
    targetPort?: string;
    replicas?: number | string;
    casType?: string;
    fsType?: string;
    lun?: number | string;
  };
  status?: { Phase?: string; Message?: string; Reason?: string };
}

export interface CasSnapshot {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { casType?: string; volumeName: string };
}

export interface VolumeScope {
  /** The claim's namespace (header / query `namespace`). */
  namespace?: string;
  /** Picks templates by the class's annotations (header `storageclass`). */
  storageClass?: string;
}

export interface SnapshotRef {
  snapshotName: string;
  volumeName: string;
  namespace?: string;
}
