// In-memory fakes of what SnapshotSyncer talks to, for the table-driven unit tests: the API
// objects (with resourceVersion conflicts, finalizer semantics and a cache that can be frozen
// to simulate informer lag), m-apiserver's snapshots, the Event sink, a log of every call, and
// error injection per operation.
import { applyMergePatch } from '../lib/json-merge-patch.ts';
import { CstorError } from '../lib/errors.ts';
import { silentLogger } from '../lib/logger.ts';
import { FakeClock } from '../lib/kube/fake-clock.ts';
import type { EventType, PersistentVolume, PersistentVolumeClaim } from '../lib/kube/types/core.ts';
import type { KubeObject } from '../lib/kube/types/meta.ts';
import type { VolumeSnapshot, VolumeSnapshotData } from '../lib/kube/types/volume-snapshot.ts';
import type { CasSnapshot, MayaClient, SnapshotRef } from './maya-client.ts';
import { SnapshotSyncer, type SnapshotDataClient, type SyncCache, type VolumeSnapshotClient } from './sync.ts';

export interface RecordedEvent {
  object: string;
  type: EventType;
  reason: string;
  message: string;
}

type Json = Record<string, unknown>;

function clone<T>(v: T): T {
  return structuredClone(v);
}

export class FakeApi {
  readonly clock = new FakeClock(Date.parse('2026-01-02T03:04:05Z'));
  readonly snapshots = new Map<string, VolumeSnapshot>();
  readonly datas = new Map<string, VolumeSnapshotData>();
  readonly claims = new Map<string, PersistentVolumeClaim>();
  readonly volumes = new Map<string, PersistentVolume>();
  /** m-apiserver's snapshots, by id. */
  readonly backend = new Map<string, SnapshotRef>();
  /** Volumes m-apiserver refuses to snapshot (409 not Healthy). */
  readonly unhealthy = new Set<string>();
  readonly events: RecordedEvent[] = [];
  readonly calls: string[] = [];
  private readonly faults = new Map<string, CstorError[]>();
  private frozen: Map<string, VolumeSnapshot> | undefined;
  private rv = 100;
  private uidSeq = 0;
  private nanos = 1_767_323_045_000_000_000n;

  /** The next `times` calls of `op` (e.g. "maya.createSnapshot", "datas.create") fail with `err`. */
  failNext(op: string, err: CstorError, times = 1): void {
    const list = this.faults.get(op) ?? [];
    for (let i = 0; i < times; i++) list.push(err);
    this.faults.set(op, list);
  }

  /** From now on the snapshot cache returns the objects as they are now (informer lag). */
  freezeSnapshotCache(): void {
    this.frozen = new Map([...this.snapshots].map(([k, v]) => [k, clone(v)]));
  }

  thawSnapshotCache(): void {
    this.frozen = undefined;
  }

  addSnapshot(name: string, claimName: string, namespace = 'default', extra: Partial<VolumeSnapshot['metadata']> = {}): VolumeSnapshot {
    const snap: VolumeSnapshot = {
      apiVersion: 'volumesnapshot.external-storage.k8s.io/v1',
      kind: 'VolumeSnapshot',
      metadata: { name, namespace, uid: this.uid(), resourceVersion: this.nextRv(), creationTimestamp: '2026-01-02T03:04:05Z', ...extra },
      spec: { persistentVolumeClaimName: claimName },
    };
    this.snapshots.set(`${namespace}/${name}`, snap);
    return snap;
  }

  /** A claim bound to a cStor iSCSI PV (or, with bound false, a Pending claim). */
  addBoundClaim(name: string, pvName: string, options: { namespace?: string; bound?: boolean; iscsi?: boolean } = {}): void {
    const namespace = options.namespace ?? 'default';
    const bound = options.bound ?? true;
    this.claims.set(`${namespace}/${name}`, {
      metadata: { name, namespace, uid: this.uid(), resourceVersion: this.nextRv() },
      spec: { volumeName: bound ? pvName : undefined, accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '5G' } } },
      status: { phase: bound ? 'Bound' : 'Pending' },
    });
    if (!bound) return;
    this.volumes.set(pvName, {
      metadata: { name: pvName, uid: this.uid(), resourceVersion: this.nextRv() },
      spec: {
        capacity: { storage: '5G' },
        claimRef: { namespace, name },
        ...(options.iscsi === false
          ? {}
          : { iscsi: { targetPortal: '10.0.0.1:3260', iqn: `iqn.2016-09.com.openebs.cstor:${pvName}`, lun: 0, fsType: 'ext4' } }),
      },
      status: { phase: 'Bound' },
    });
  }

  nowNanos = (): bigint => {
    this.nanos += 1000n;
    return this.nanos;
  };

  readonly cache: SyncCache = {
    snapshot: (key) => (this.frozen ?? this.snapshots).get(key),
    data: (name) => this.datas.get(name),
    claim: (namespace, name) => this.claims.get(`${namespace}/${name}`),
    volume: (name) => this.volumes.get(name),
  };

  readonly snapshotClient: VolumeSnapshotClient = {
    get: async (ref) => {
      this.call('snapshots.get', `${ref.namespace}/${ref.name}`);
      return clone(this.mustGet(this.snapshots, `${ref.namespace}/${ref.name}`, 'volumesnapshots'));
    },
    mergePatch: async (ref, patch) => {
      this.call('snapshots.mergePatch', `${ref.namespace}/${ref.name}`);
      return this.patchSnapshot(`${ref.namespace}/${ref.name}`, patch as Json, false);
    },
    patchStatus: async (ref, status) => {
      this.call('snapshots.patchStatus', `${ref.namespace}/${ref.name}`);
      return this.patchSnapshot(`${ref.namespace}/${ref.name}`, { status }, true);
    },
  };

  readonly dataClient: SnapshotDataClient = {
    get: async (ref) => {
      this.call('datas.get', ref.name);
      return clone(this.mustGet(this.datas, ref.name, 'volumesnapshotdatas'));
    },
    create: async (obj) => {
      const name = obj.metadata?.name ?? '';
      this.call('datas.create', name);
      if (this.datas.has(name)) throw new CstorError('already_exists', `volumesnapshotdatas "${name}" already exists`);
      const stored: VolumeSnapshotData = { ...clone(obj), metadata: { ...clone(obj.metadata), uid: this.uid(), resourceVersion: this.nextRv() } };
      delete stored.status; // status subresource: dropped on create
      this.datas.set(name, stored);
      return clone(stored);
    },
    delete: async (ref) => {
      this.call('datas.delete', ref.name);
      this.mustGet(this.datas, ref.name, 'volumesnapshotdatas');
      this.datas.delete(ref.name);
    },
    patchStatus: async (ref, status) => {
      this.call('datas.patchStatus', ref.name);
      const cur = this.mustGet(this.datas, ref.name, 'volumesnapshotdatas');
      const next = applyMergePatch(cur, { status }) as VolumeSnapshotData;
      next.metadata.resourceVersion = this.nextRv();
      this.datas.set(ref.name, next);
      return clone(next);
    },
  };

  readonly maya: MayaClient = {
    createSnapshot: async (ref) => {
      this.call('maya.createSnapshot', ref.snapshotId);
      if (this.unhealthy.has(ref.volumeName)) throw new CstorError('not_ready', `volume ${ref.volumeName} is Degraded, not Healthy`);
      this.backend.set(ref.snapshotId, { ...ref });
      return casSnapshot(ref);
    },
    getSnapshot: async (ref) => {
      this.call('maya.getSnapshot', ref.snapshotId);
      if (!this.backend.has(ref.snapshotId)) throw new CstorError('not_found', `snapshot ${ref.snapshotId} not found`);
      return casSnapshot(ref);
    },
    listSnapshots: async (v) => {
      this.call('maya.listSnapshots', v.volumeName);
      return [...this.backend.values()].filter((r) => r.volumeName === v.volumeName).map(casSnapshot);
    },
    deleteSnapshot: async (ref) => {
      this.call('maya.deleteSnapshot', ref.snapshotId);
      this.backend.delete(ref.snapshotId);
    },
  };

  syncer(): SnapshotSyncer {
    return new SnapshotSyncer({
      cache: this.cache,
      snapshots: this.snapshotClient,
      datas: this.dataClient,
      maya: this.maya,
      events: {
        event: async (subject: KubeObject, type, reason, message) => {
          this.events.push({ object: `${subject.kind ?? '?'}/${subject.metadata?.namespace ? `${subject.metadata.namespace}/` : ''}${subject.metadata?.name ?? ''}`, type, reason, message });
        },
      },
      clock: this.clock,
      logger: silentLogger(),
      nowNanos: this.nowNanos,
    });
  }

  /** Marks the snapshot deleted (deletionTimestamp), or removes it when it has no finalizers. */
  deleteSnapshot(key: string): void {
    const snap = this.snapshots.get(key);
    if (!snap) return;
    if (!snap.metadata.finalizers?.length) {
      this.snapshots.delete(key);
      return;
    }
    snap.metadata = { ...snap.metadata, deletionTimestamp: '2026-01-02T03:05:00Z', resourceVersion: this.nextRv() };
  }

  private patchSnapshot(key: string, patch: Json, statusOnly: boolean): VolumeSnapshot {
    const cur = this.mustGet(this.snapshots, key, 'volumesnapshots');
    const meta = (patch.metadata ?? {}) as Json;
    if (meta.resourceVersion !== undefined && meta.resourceVersion !== cur.metadata.resourceVersion) {
      throw new CstorError('conflict', `Operation cannot be fulfilled on volumesnapshots "${key}": the object has been modified`);
    }
    const body = statusOnly ? { status: patch.status } : { ...patch, status: undefined };
    const next = applyMergePatch(cur, { ...body, metadata: { ...meta, resourceVersion: undefined } }) as VolumeSnapshot;
    if (statusOnly) next.metadata = cur.metadata;
    else next.status = cur.status;
    const added = (next.metadata.finalizers ?? []).filter((f) => !(cur.metadata.finalizers ?? []).includes(f));
    if (cur.metadata.deletionTimestamp && added.length) throw new CstorError('invalid', `volumesnapshots "${key}": no new finalizers can be added while deleting`);
    next.metadata.resourceVersion = this.nextRv();
    if (next.metadata.deletionTimestamp && !next.metadata.finalizers?.length) {
      this.snapshots.delete(key);
      return clone(next);
    }
    this.snapshots.set(key, next);
    return clone(next);
  }

  private mustGet<T>(map: Map<string, T>, key: string, plural: string): T {
    const v = map.get(key);
    if (!v) throw new CstorError('not_found', `${plural} "${key}" not found`);
    return v;
  }

  private call(op: string, arg: string): void {
    this.calls.push(`${op} ${arg}`);
    const list = this.faults.get(op);
    const err = list?.shift();
    if (err) throw err;
  }

  private nextRv(): string {
    return String(++this.rv);
  }

  private uid(): string {
    const n = (++this.uidSeq).toString(16).padStart(12, '0');
    return `00000000-0000-4000-8000-${n}`;
  }
}

function casSnapshot(ref: SnapshotRef): CasSnapshot {
  return { apiVersion: 'v1alpha1', kind: 'CASSnapshot', metadata: { name: ref.snapshotId, namespace: ref.namespace }, spec: { casType: 'cstor', volumeName: ref.volumeName } };
}
