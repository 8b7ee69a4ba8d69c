// Fakes for the promoter's unit tests: an m-apiserver client with in-memory volumes (clone
// idempotent by name, as the real one is) and the Kubernetes reads over maps, plus a world of
// objects as the snapshot-controller leaves them (a source PV, a Ready VolumeSnapshot bound to
// its VolumeSnapshotData) and the promoter class and claim of DESIGN.md §1.
import type { CstorError } from '../lib/errors.ts';
import type { PersistentVolume, PersistentVolumeClaim } from '../lib/kube/types/core.ts';
import type { StorageClass } from '../lib/kube/types/storage.ts';
import { snapshotAnnotation, type VolumeSnapshot, type VolumeSnapshotData } from '../lib/kube/types/volume-snapshot.ts';
import type { CasVolume, CasVolumeRequest, VolumeScope } from '../lib/maya-client/types.ts';
import type { CloneSourceReads } from './clone-source.ts';
import { promoterName } from './provisioner.ts';

export class FakeMaya {
  readonly volumes = new Map<string, CasVolumeRequest>();
  /** Every create request, in order (a retry of an existing name shows here, but makes no new volume). */
  readonly requests: CasVolumeRequest[] = [];
  readonly deleted: Array<{ name: string; scope: VolumeScope }> = [];
  /** Errors the next creates throw (after recording the request and making the volume: a lost answer). */
  readonly lostAnswers: CstorError[] = [];

  async createVolume(req: CasVolumeRequest): Promise<CasVolume> {
    this.requests.push(structuredClone(req));
    const existing = this.volumes.get(req.metadata.name);
    if (!existing) this.volumes.set(req.metadata.name, structuredClone(req));
    const f = this.lostAnswers.shift();
    if (f) throw f;
    const name = req.metadata.name;
    return {
      metadata: { name },
      spec: { iqn: `iqn.2016-09.com.openebs.cstor:${name}`, targetPortal: '10.0.0.7:3260', targetIP: '10.0.0.7', targetPort: '3260', lun: 0, capacity: (existing ?? req).spec.capacity },
      status: { Phase: 'Healthy' },
    };
  }

  async deleteVolume(name: string, scope: VolumeScope = {}): Promise<void> {
    this.deleted.push({ name, scope });
    this.volumes.delete(name);
  }
}

export class FakeReads implements CloneSourceReads {
  readonly snapshots = new Map<string, VolumeSnapshot>();
  readonly datas = new Map<string, VolumeSnapshotData>();
  readonly pvs = new Map<string, PersistentVolume>();
  reads = 0;

  async getSnapshot(namespace: string, name: string): Promise<VolumeSnapshot | undefined> {
    this.reads++;
    return structuredClone(this.snapshots.get(`${namespace}/${name}`));
  }
  async listSnapshotNames(namespace: string): Promise<string[]> {
    return [...this.snapshots.values()].filter((s) => s.metadata.namespace === namespace).map((s) => s.metadata.name ?? '');
  }
  async getSnapshotData(name: string): Promise<VolumeSnapshotData | undefined> {
    return structuredClone(this.datas.get(name));
  }
  async getVolume(name: string): Promise<PersistentVolume | undefined> {
    return structuredClone(this.pvs.get(name));
  }

  addSnapshot(s: VolumeSnapshot): void {
    this.snapshots.set(`${s.metadata.namespace ?? ''}/${s.metadata.name ?? ''}`, s);
  }
}

export const promoterClassName = 'openebs-snapshot-promoter';
export const sourceClassName = 'openebs-cstor-default';

export function promoterClass(o: { reclaimPolicy?: 'Delete' | 'Retain'; mountOptions?: string[] } = {}): StorageClass {
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: promoterClassName },
    provisioner: promoterName,
    ...(o.reclaimPolicy ? { reclaimPolicy: o.reclaimPolicy } : {}),
    ...(o.mountOptions ? { mountOptions: o.mountOptions } : {}),
  };
}

export function sourcePv(name: string, o: { capacity?: string; fsType?: string; className?: string } = {}): PersistentVolume {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name, labels: { 'openebs.io/cas-type': 'cstor', 'openebs.io/storageclass': o.className ?? sourceClassName } },
    spec: {
      capacity: { storage: o.capacity ?? '5G' },
      accessModes: ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: 'Delete',
      storageClassName: o.className ?? sourceClassName,
      claimRef: { kind: 'PersistentVolumeClaim', namespace: 'default', name: 'openebs-pvc' },
      iscsi: { targetPortal: '10.0.0.7:3260', iqn: `iqn.2016-09.com.openebs.cstor:${name}`, lun: 0, fsType: o.fsType ?? 'ext4', readOnly: false },
    },
    status: { phase: 'Bound' },
  };
}

export interface SnapshotFixture {
  snapshot: VolumeSnapshot;
  data: VolumeSnapshotData;
}

/** A VolumeSnapshot and its VolumeSnapshotData as the snapshot-controller writes them. */
export function readySnapshot(name: string, o: { namespace?: string; pv?: string; capacity?: string; ready?: boolean; bound?: boolean } = {}): SnapshotFixture {
  const ns = o.namespace ?? 'default';
  const pv = o.pv ?? 'pvc-src';
  const uid = `uid-${name}`;
  const dataName = `k8s-volume-snapshot-${name}`;
  const ready = o.ready ?? true;
  const snapshot: VolumeSnapshot = {
    apiVersion: 'volumesnapshot.external-storage.k8s.io/v1',
    kind: 'VolumeSnapshot',
    metadata: { name, namespace: ns, uid, labels: { 'SnapshotMetadata-PVName': pv } },
    spec: { persistentVolumeClaimName: 'openebs-pvc', ...((o.bound ?? ready) ? { snapshotDataName: dataName } : {}) },
    status: {
      conditions: [
        ready
          ? { type: 'Ready', status: 'True', reason: 'SnapshotCreated', message: 'Snapshot created successfully', lastTransitionTime: '2026-11-21T00:00:00Z' }
          : { type: 'Pending', status: 'True', reason: 'SnapshotCreating', message: 'creating the backend snapshot', lastTransitionTime: '2026-11-21T00:00:00Z' },
      ],
    },
  };
  const data: VolumeSnapshotData = {
    apiVersion: 'volumesnapshot.external-storage.k8s.io/v1',
    kind: 'VolumeSnapshotData',
    metadata: { name: dataName },
    spec: {
      openebsVolume: { snapshotId: `${pv}_${name}_1763683200000000000`, capacity: o.capacity ?? '5G' },
      volumeSnapshotRef: { kind: 'VolumeSnapshot', name: `${ns}/${name}-${uid}` },
      persistentVolumeRef: { kind: 'PersistentVolume', name: pv },
    },
    status: { conditions: [{ type: 'Ready', status: 'True', reason: 'SnapshotCreated', message: 'Snapshot created successfully', lastTransitionTime: '2026-11-21T00:00:00Z' }] },
  };
  return { snapshot, data };
}

/** A promoter claim as the PV controller leaves it (storage-provisioner annotation set). */
export function promoterClaim(name: string, o: { snapshot?: string | null; storage?: string; namespace?: string } = {}): PersistentVolumeClaim {
  const annotations: Record<string, string> = { 'volume.beta.kubernetes.io/storage-provisioner': promoterName };
  if (o.snapshot !== null) annotations[snapshotAnnotation] = o.snapshot ?? 'snapshot-demo';
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace: o.namespace ?? 'default', uid: `uid-${name}`, resourceVersion: '7', annotations },
    spec: { storageClassName: promoterClassName, accessModes: ['ReadWriteOnce'], resources: { requests: { storage: o.storage ?? '5G' } } },
  };
}
