// Fakes of the provisioner core's ports, for unit tests here and in the provisioners' tests:
// an in-memory PV API with error injection, an Event sink that records, and a Provisioner that
// counts calls, remembers the volumes it made (one per name) and can be told to fail.
import { CstorError } from '../errors.ts';
import type { EventType, PersistentVolume, PersistentVolumeClaim } from '../kube/types/core.ts';
import type { KubeObject } from '../kube/types/meta.ts';
import type { StorageClass } from '../kube/types/storage.ts';
import type { ClaimApi } from './claim-finalizer.ts';
import type { EventSink, ProvisionerSyncOptions } from './sync.ts';
import type { ProvisionedVolume, ProvisionRequest, Provisioner } from './types.ts';

type PvApi = ProvisionerSyncOptions['pvApi'];

export class FakePvApi implements PvApi {
  readonly store = new Map<string, PersistentVolume>();
  /** Errors the next calls of a verb throw, in order. */
  readonly failures: { create: CstorError[]; get: CstorError[]; delete: CstorError[] } = { create: [], get: [], delete: [] };
  creates = 0;

  async get(ref: { name: string }): Promise<PersistentVolume> {
    const f = this.failures.get.shift();
    if (f) throw f;
    const pv = this.store.get(ref.name);
    if (!pv) throw new CstorError('not_found', `persistentvolumes "${ref.name}" not found`);
    return structuredClone(pv);
  }

  async create(pv: PersistentVolume): Promise<PersistentVolume> {
    this.creates++;
    const f = this.failures.create.shift();
    if (f) throw f;
    const name = pv.metadata?.name ?? '';
    if (this.store.has(name)) throw new CstorError('already_exists', `persistentvolumes "${name}" already exists`);
    const stored = structuredClone(pv);
    stored.metadata = { ...stored.metadata, uid: `uid-${name}`, resourceVersion: '1' };
    this.store.set(name, stored);
    return structuredClone(stored);
  }

  async delete(ref: { name: string }): Promise<void> {
    const f = this.failures.delete.shift();
    if (f) throw f;
    if (!this.store.delete(ref.name)) throw new CstorError('not_found', `persistentvolumes "${ref.name}" not found`);
  }
}

export interface RecordedEvent {
  kind: string | undefined;
  name: string | undefined;
  type: EventType;
  reason: string;
  message: string;
}

export class RecordingEvents implements EventSink {
  readonly events: RecordedEvent[] = [];
  async event(subject: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    this.events.push({ kind: subject.kind, name: subject.metadata?.name, type, reason, message });
  }
  reasons(): string[] {
    return this.events.map((e) => e.reason);
  }
}

export class FakeProvisioner implements Provisioner {
  readonly volumes = new Map<string, ProvisionRequest>();
  readonly deleted: string[] = [];
  provisionCalls = 0;
  /** Errors the next provision calls throw, in order. */
  readonly provisionFailures: Error[] = [];
  readonly deleteFailures: Error[] = [];
  /** Called inside provision (tests block or count here). */
  onProvision: ((req: ProvisionRequest) => Promise<void>) | undefined;

  constructor(readonly name = 'example.com/fake') {}

  async provision(req: ProvisionRequest): Promise<ProvisionedVolume> {
    this.provisionCalls++;
    await this.onProvision?.(req);
    const f = this.provisionFailures.shift();
    if (f) throw f;
    this.volumes.set(req.pvName, req);
    return {
      labels: { 'example.com/made-by': 'fake' },
      annotations: { 'example.com/identity': 'fake-1' },
      spec: { iscsi: { targetPortal: '127.0.0.1:3260', iqn: `iqn.2016-09.com.openebs.cstor:${req.pvName}`, lun: 0, fsType: 'ext4', readOnly: false } },
    };
  }

  async delete(pv: PersistentVolume): Promise<void> {
    const f = this.deleteFailures.shift();
    if (f) throw f;
    const name = pv.metadata?.name ?? '';
    this.volumes.delete(name);
    this.deleted.push(name);
  }
}

export function testClaim(name: string, o: { uid?: string; provisioner?: string | null; className?: string; volumeName?: string; storage?: string | null; namespace?: string } = {}): PersistentVolumeClaim {
  const annotations: Record<string, string> = {};
  if (o.provisioner !== null) annotations['volume.beta.kubernetes.io/storage-provisioner'] = o.provisioner ?? 'example.com/fake';
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace: o.namespace ?? 'default', uid: o.uid ?? `uid-${name}`, resourceVersion: '5', annotations },
    spec: {
      storageClassName: o.className ?? 'fast',
      accessModes: ['ReadWriteOnce'],
      ...(o.storage === null ? {} : { resources: { requests: { storage: o.storage ?? '5G' } } }),
      ...(o.volumeName ? { volumeName: o.volumeName } : {}),
    },
  };
}

export function testClass(name: string, provisioner = 'example.com/fake', reclaimPolicy?: 'Delete' | 'Retain'): StorageClass {
  return { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name }, provisioner, ...(reclaimPolicy ? { reclaimPolicy } : {}) };
}

/**
 * An in-memory claims API for the provisioning finalizer (get + merge patch of metadata), over
 * the same map a test gives the sync as its claim cache. A patch carrying a stale
 * resourceVersion gets `conflict`; removing the last finalizer of a deleting claim removes it.
 */
export class FakeClaimApi implements ClaimApi {
  patches = 0;
  readonly failures: { mergePatch: CstorError[] } = { mergePatch: [] };

  constructor(readonly store: Map<string, PersistentVolumeClaim>) {}

  async get(ref: { namespace?: string; name: string }): Promise<PersistentVolumeClaim> {
    const claim = this.store.get(`${ref.namespace ?? ''}/${ref.name}`);
    if (!claim) throw new CstorError('not_found', `persistentvolumeclaims "${ref.name}" not found`);
    return structuredClone(claim);
  }

  async mergePatch(ref: { namespace?: string; name: string }, patch: object): Promise<PersistentVolumeClaim> {
    this.patches++;
    const f = this.failures.mergePatch.shift();
    if (f) throw f;
    const key = `${ref.namespace ?? ''}/${ref.name}`;
    const claim = this.store.get(key);
    if (!claim) throw new CstorError('not_found', `persistentvolumeclaims "${ref.name}" not found`);
    const meta = (patch as { metadata?: { resourceVersion?: string; finalizers?: string[] | null } }).metadata ?? {};
    if (meta.resourceVersion !== undefined && meta.resourceVersion !== claim.metadata.resourceVersion) {
      throw new CstorError('conflict', `persistentvolumeclaims "${ref.name}": the object has been modified`);
    }
    const next = structuredClone(claim);
    if (meta.finalizers === null) delete next.metadata.finalizers;
    else if (meta.finalizers !== undefined) next.metadata.finalizers = meta.finalizers;
    next.metadata.resourceVersion = String(Number(claim.metadata.resourceVersion ?? '0') + 1);
    if (next.metadata.deletionTimestamp && !next.metadata.finalizers?.length) this.store.delete(key);
    else this.store.set(key, next);
    return structuredClone(next);
  }
}
