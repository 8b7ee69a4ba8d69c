// The resources our controllers use.
import type { ResourceType } from './resource-type.ts';
import { snapshotGroup, snapshotVersion } from './types/volume-snapshot.ts';

export const resources = {
  namespaces: { group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false },
  persistentVolumes: { group: '', version: 'v1', plural: 'persistentvolumes', kind: 'PersistentVolume', namespaced: false },
  persistentVolumeClaims: { group: '', version: 'v1', plural: 'persistentvolumeclaims', kind: 'PersistentVolumeClaim', namespaced: true },
  events: { group: '', version: 'v1', plural: 'events', kind: 'Event', namespaced: true },
  services: { group: '', version: 'v1', plural: 'services', kind: 'Service', namespaced: true },
  configMaps: { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true },
  storageClasses: { group: 'storage.k8s.io', version: 'v1', plural: 'storageclasses', kind: 'StorageClass', namespaced: false },
  leases: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease', namespaced: true },
  customResourceDefinitions: {
    group: 'apiextensions.k8s.io',
    version: 'v1',
    plural: 'customresourcedefinitions',
    kind: 'CustomResourceDefinition',
    namespaced: false,
  },
  volumeSnapshots: { group: snapshotGroup, version: snapshotVersion, plural: 'volumesnapshots', kind: 'VolumeSnapshot', namespaced: true },
  volumeSnapshotDatas: { group: snapshotGroup, version: snapshotVersion, plural: 'volumesnapshotdatas', kind: 'VolumeSnapshotData', namespaced: false },
} as const satisfies Record<string, ResourceType>;
