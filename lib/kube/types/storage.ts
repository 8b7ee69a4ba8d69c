// storage.k8s.io/v1 StorageClass.
import type { KubeObject, ObjectMeta } from './meta.ts';
import type { ReclaimPolicy } from './core.ts';

export interface StorageClass extends KubeObject {
  metadata: ObjectMeta;
  provisioner: string;
  parameters?: Record<string, string>;
  reclaimPolicy?: ReclaimPolicy;
  volumeBindingMode?: 'Immediate' | 'WaitForFirstConsumer';
  allowVolumeExpansion?: boolean;
  mountOptions?: string[];
}
