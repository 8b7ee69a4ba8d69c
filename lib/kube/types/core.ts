// Core v1 object shapes the controllers use: PersistentVolume, PersistentVolumeClaim, Event.
import type { KubeObject, ObjectMeta, ObjectReference } from './meta.ts';

export type AccessMode = 'ReadWriteOnce' | 'ReadOnlyMany' | 'ReadWriteMany' | 'ReadWriteOncePod';
export type ReclaimPolicy = 'Retain' | 'Delete' | 'Recycle';

export interface PersistentVolumeClaim extends KubeObject {
  metadata: ObjectMeta;
  spec: {
    accessModes?: AccessMode[];
    resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
    storageClassName?: string;
    volumeName?: string;
    volumeMode?: 'Filesystem' | 'Block';
    selector?: { matchLabels?: Record<string, string> };
    dataSource?: { apiGroup?: string; kind: string; name: string };
  };
  status?: { phase?: 'Pending' | 'Bound' | 'Lost'; accessModes?: AccessMode[]; capacity?: Record<string, string> };
}

export interface IscsiVolumeSource {
  targetPortal: string;
  iqn: string;
  lun: number;
  fsType?: string;
  readOnly?: boolean;
  iscsiInterface?: string;
  portals?: string[];
}

export interface PersistentVolume extends KubeObject {
  metadata: ObjectMeta;
  spec: {
    capacity?: Record<string, string>;
    accessModes?: AccessMode[];
    persistentVolumeReclaimPolicy?: ReclaimPolicy;
    storageClassName?: string;
    claimRef?: ObjectReference;
    volumeMode?: 'Filesystem' | 'Block';
    mountOptions?: string[];
    iscsi?: IscsiVolumeSource;
  };
  status?: { phase?: 'Pending' | 'Available' | 'Bound' | 'Released' | 'Failed'; message?: string; reason?: string };
}

export type EventType = 'Normal' | 'Warning';

export interface CoreEvent extends KubeObject {
  metadata: ObjectMeta;
  involvedObject: ObjectReference;
  reason?: string;
  message?: string;
  type?: EventType;
  source?: { component?: string; host?: string };
  firstTimestamp?: string;
  lastTimestamp?: string;
  count?: number;
  eventTime?: string | null;
  reportingComponent?: string;
  reportingInstance?: string;
  action?: string;
}
