// The promoter's reads (clone-source.ts) over the API server: live GETs, not informer caches,
// so a claim created right after its VolumeSnapshot turned Ready never meets a stale copy. A
// claim costs these reads only while it is unbound.
import type { KubeClients } from '../lib/kube/kube-clients.ts';
import { resources } from '../lib/kube/resources.ts';
import type { PersistentVolume } from '../lib/kube/types/core.ts';
import type { VolumeSnapshot, VolumeSnapshotData } from '../lib/kube/types/volume-snapshot.ts';
import { orUndefined, type CloneSourceReads } from './clone-source.ts';

export function kubeCloneSourceReads(clients: KubeClients): CloneSourceReads {
  const snapshots = clients.for<VolumeSnapshot>(resources.volumeSnapshots);
  const datas = clients.for<VolumeSnapshotData>(resources.volumeSnapshotDatas);
  const pvs = clients.for<PersistentVolume>(resources.persistentVolumes);
  return {
    getSnapshot: (namespace, name) => orUndefined(snapshots.get({ namespace, name })),
    listSnapshotNames: async (namespace) => (await snapshots.list({ namespace })).items.map((s) => s.metadata.name ?? ''),
    getSnapshotData: (name) => orUndefined(datas.get({ name })),
    getVolume: (name) => orUndefined(pvs.get({ name })),
  };
}
