// The snapshot-controller's logic: reconcile one VolumeSnapshot key ("ns/name") or one
// VolumeSnapshotData key ("name"). Wiring (informers, queues, workers) is in controller.ts.
//
// Invariants (the design note; docs/snapshot-controller.md says the same at more length):
// - Only this controller writes, on a VolumeSnapshot: our finalizer, the snapshot-id
//   annotation, the SnapshotMetadata-* labels, spec.snapshotDataName and status. Users write
//   spec.persistentVolumeClaimName and delete the object.
// - The finalizer, the id and the labels are written together in ONE patch carrying the
//   resourceVersion the id was computed from, BEFORE m-apiserver is called. A stale cache or a
//   second replica gets 409 and retries from the stored id: one id per VolumeSnapshot, ever, so a
//   retry after a partial failure never takes a second backend snapshot (create is idempotent by id).
// - The VolumeSnapshotData is named from the VolumeSnapshot's uid (k8s-volume-snapshot-<uuid>):
//   a retry finds it instead of making another. It carries the owner's namespace, name and uid
//   as annotations; it is created only after the backend snapshot exists.
// - The finalizer stays until the backend snapshot and the VolumeSnapshotData are deleted, so
//   deleting a VolumeSnapshot before Ready, or while the controller is down, orphans nothing.
// - A VolumeSnapshotData of ours whose VolumeSnapshot (by uid) is gone is an orphan: its backend
//   snapshot and itself are deleted.
// - Problems go to status (an Error condition with a reason) AND a Warning Event, each once per
//   distinct message; causes that may heal are retried with backoff (the method throws).
import type { Logger } from '../lib/logger.ts';
import { CstorError, describeError, hasErrorCode, isCstorError } from '../lib/errors.ts';
import type { Clock } from '../lib/kube/clock.ts';
import type { ResourceClient } from '../lib/kube/resource-client.ts';
import type { ReconcileResult } from '../lib/kube/run-workers.ts';
import { kubeTime } from '../lib/kube/time-format.ts';
import type { EventType, PersistentVolume, PersistentVolumeClaim } from '../lib/kube/types/core.ts';
import type { KubeObject } from '../lib/kube/types/meta.ts';
import { snapshotLabels, type VolumeSnapshot, type VolumeSnapshotData } from '../lib/kube/types/volume-snapshot.ts';
import type { MayaClient, SnapshotRef } from './maya-client.ts';
import { noSnapshotMetrics, type SnapshotMetrics } from './metrics.ts';
import {
  backendNameProblem,
  condition,
  cstorIqnPrefix,
  currentCondition,
  dataBackendNamespaceAnnotation,
  dataOwnerAnnotations,
  hasFinalizer,
  isBackendSnapshotName,
  isCstorVolume,
  isReady,
  nanosOfSnapshotId,
  parseClaimRef,
  showsCondition,
  snapshotDataName,
  snapshotFinalizer,
  snapshotId,
  snapshotIdAnnotation,
  successMessage,
  volumeSnapshotRefName,
} from './naming.ts';

export type VolumeSnapshotClient = Pick<ResourceClient<VolumeSnapshot>, 'get' | 'mergePatch' | 'patchStatus'>;
export type SnapshotDataClient = Pick<ResourceClient<VolumeSnapshotData>, 'get' | 'create' | 'delete' | 'patchStatus'>;

export interface EventSink {
  event(subject: KubeObject, type: EventType, reason: string, message: string): Promise<void>;
}

/** Reads from the informers' caches (never mutate what they return). */
export interface SyncCache {
  snapshot(key: string): VolumeSnapshot | undefined;
  data(name: string): VolumeSnapshotData | undefined;
  claim(namespace: string, name: string): PersistentVolumeClaim | undefined;
  volume(name: string): PersistentVolume | undefined;
}

export interface SyncDeps {
  cache: SyncCache;
  snapshots: VolumeSnapshotClient;
  datas: SnapshotDataClient;
  maya: MayaClient;
  events: EventSink;
  clock: Clock;
  logger: Logger;
  metrics?: SnapshotMetrics;
  /** Unix time in nanoseconds (for snapshot ids); default from the clock plus a sub-ms counter. */
  nowNanos?: () => bigint;
}

/** Why a VolumeSnapshot cannot (yet) be Ready: the Error condition's reason and message. */
export interface SnapshotProblem {
  reason: string;
  message: string;
  /** True when the cause may heal (retry with backoff); false when only a user change helps. */
  retry: boolean;
  cause?: unknown;
}

/** What a VolumeSnapshot is a snapshot of. */
interface Source {
  pvName: string;
  pv?: PersistentVolume;
  claim?: PersistentVolumeClaim;
}

type Validated = { source: Source } | { problem: SnapshotProblem };

/** The error a sync throws so the queue retries with backoff (the problem is already recorded). */
export class SnapshotRetryError extends CstorError {
  constructor(problem: SnapshotProblem) {
    super('not_ready', `${problem.reason}: ${problem.message}`, { cause: problem.cause, retryable: true, details: { reason: problem.reason } });
    this.name = 'SnapshotRetryError';
  }
}

export class SnapshotSyncer {
  private readonly metrics: SnapshotMetrics;
  private readonly nowNanos: () => bigint;
  /** Per VolumeSnapshot key: "<uid> <what was last recorded>", so a retry never repeats an Event. */
  private readonly recorded = new Map<string, string>();

  constructor(private readonly d: SyncDeps) {
    this.metrics = d.metrics ?? noSnapshotMetrics;
    this.nowNanos = d.nowNanos ?? (() => BigInt(d.clock.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n));
  }

  /** Reconciles one VolumeSnapshot: a short dispatcher over idempotent steps. */
  async syncSnapshot(key: string): Promise<ReconcileResult | void> {
    const cached = this.d.cache.snapshot(key);
    if (!cached) {
      this.recorded.delete(key);
      return; // gone; a VolumeSnapshotData left behind is an orphan for syncData
    }
    if (cached.metadata.deletionTimestamp) return this.finalize(cached);
    if (isReady(cached) && cached.spec.snapshotDataName) return this.verify(cached);

    const validated = this.validate(cached);
    if ('problem' in validated) return this.fail(cached, validated.problem);
    const { source } = validated;
    let snap = await this.ensurePrepared(cached, source);
    snap = await this.ensurePending(snap, source);
    const id = snap.metadata.annotations?.[snapshotIdAnnotation];
    if (!id) throw new CstorError('internal', `${key}: no snapshot id after preparing`);
    const ref: SnapshotRef = { snapshotId: id, volumeName: source.pvName, namespace: snap.metadata.namespace ?? '' };
    const existing = this.d.cache.data(snapshotDataName(snap.metadata.uid ?? ''));
    if (!existing && !(await this.ensureBackendSnapshot(snap, ref))) return;
    const data = await this.ensureData(snap, ref, source);
    if (!data) return; // a conflict, recorded; only a user change helps
    snap = await this.ensureBound(snap, data);
    await this.ensureReady(snap);
  }

  /** Reconciles one VolumeSnapshotData: deletes it (and its backend snapshot) when its VolumeSnapshot is gone. */
  async syncData(name: string): Promise<void> {
    const data = this.d.cache.data(name);
    if (!data) return;
    const owner = ownerOf(data);
    if (!owner) return; // not made by this controller
    const snap = this.d.cache.snapshot(`${owner.namespace}/${owner.name}`);
    if (snap && snap.metadata.uid === owner.uid) return;
    // The cache may lag: confirm with the API server before deleting anything.
    try {
      const live = await this.d.snapshots.get({ namespace: owner.namespace, name: owner.name });
      if (live.metadata.uid === owner.uid) return;
    } catch (err) {
      if (!hasErrorCode(err, 'not_found')) throw err;
    }
    const log = this.d.logger.child({ data: name, snapshot: `${owner.namespace}/${owner.name}` });
    const ref = backendRefOfData(data, owner.namespace);
    if (ref && isBackendSnapshotName(ref.snapshotId, ref.volumeName)) await this.metrics.observe('DeleteSnapshot', () => this.d.maya.deleteSnapshot(ref));
    await ignoreNotFound(this.d.datas.delete({ name }));
    log.info('deleted an orphaned VolumeSnapshotData and its backend snapshot', { snapshotId: ref?.snapshotId });
    void this.d.events.event(data, 'Normal', 'OrphanDeleted', `VolumeSnapshot ${owner.namespace}/${owner.name} (uid ${owner.uid}) is gone: deleted backend snapshot ${ref?.snapshotId ?? '(none)'} and this VolumeSnapshotData`);
  }

  // ---- deleting ----------------------------------------------------------------------------

  /** Deletes the backend snapshot and the VolumeSnapshotData, then lets the object go. */
  private async finalize(snap: VolumeSnapshot): Promise<void> {
    if (!hasFinalizer(snap)) return;
    const uid = snap.metadata.uid ?? '';
    const names = new Set([snapshotDataName(uid)]);
    if (snap.spec.snapshotDataName) names.add(snap.spec.snapshotDataName);
    const datas = [...names].map((n) => this.d.cache.data(n)).filter((x): x is VolumeSnapshotData => x !== undefined && ownerOf(x)?.uid === uid);
    const refs = new Map<string, SnapshotRef>();
    // The id and PV on the object only when they are still what this controller wrote (users can
    // edit labels and annotations: never delete another volume's snapshot because of an edit).
    const stored = this.storedRef(snap);
    if (stored) refs.set(stored.snapshotId, stored);
    for (const data of datas) {
      const ref = backendRefOfData(data, snap.metadata.namespace ?? '');
      if (ref) refs.set(ref.snapshotId, ref);
    }
    for (const ref of refs.values()) {
      // A name m-apiserver refuses was never created there (it checks create and delete alike),
      // and asking to delete it would be refused forever: nothing to delete.
      if (!isBackendSnapshotName(ref.snapshotId, ref.volumeName)) continue;
      try {
        await this.metrics.observe('DeleteSnapshot', () => this.d.maya.deleteSnapshot(ref));
      } catch (err) {
        const problem: SnapshotProblem = {
          reason: 'SnapshotDeleteFailed',
          message: `cannot delete backend snapshot ${ref.snapshotId} of volume ${ref.volumeName}: ${errorText(err)}`,
          retry: true,
          cause: err,
        };
        return this.fail(snap, problem);
      }
    }
    for (const name of names) {
      const data = this.d.cache.data(name);
      // Only ours: a name from spec.snapshotDataName that another snapshot owns is left alone.
      if (name !== snapshotDataName(uid) && (!data || ownerOf(data)?.uid !== uid)) continue;
      await ignoreNotFound(this.d.datas.delete({ name }));
    }
    const finalizers = (snap.metadata.finalizers ?? []).filter((f) => f !== snapshotFinalizer);
    await ignoreNotFound(
      this.d.snapshots.mergePatch(refOf(snap), { metadata: { finalizers, resourceVersion: snap.metadata.resourceVersion } }),
    );
    this.recorded.delete(keyOf(snap));
    this.d.logger.info('snapshot deleted', { key: keyOf(snap), snapshotIds: [...refs.keys()], snapshotData: [...names] });
  }

  /**
   * The backend snapshot the object's id annotation and PV label name, when they are still what
   * this controller wrote: the id is `<that PV>_<this object's name>_<nanos>`, and the PV (when it
   * still exists) is bound to a claim of this namespace. Labels and annotations are the user's to
   * edit; an edit must never point the controller at another namespace's volume.
   */
  private storedRef(snap: VolumeSnapshot): SnapshotRef | undefined {
    const id = snap.metadata.annotations?.[snapshotIdAnnotation];
    const pvName = snap.metadata.labels?.[snapshotLabels.pvName];
    const ns = snap.metadata.namespace ?? '';
    if (!id || !pvName) return undefined;
    const prefix = `${pvName}_${snap.metadata.name ?? ''}_`;
    if (!id.startsWith(prefix) || !/^\d+$/.test(id.slice(prefix.length))) return undefined;
    const pv = this.d.cache.volume(pvName);
    if (pv && pv.spec.claimRef?.namespace !== ns) return undefined;
    return { snapshotId: id, volumeName: pvName, namespace: ns };
  }

  // ---- invalid? ----------------------------------------------------------------------------

  /** What the snapshot is of; once an id is stored, the PV name on the labels is the answer. */
  private validate(snap: VolumeSnapshot): Validated {
    const ns = snap.metadata.namespace ?? '';
    const storedPv = snap.metadata.labels?.[snapshotLabels.pvName];
    if (snap.metadata.annotations?.[snapshotIdAnnotation] && storedPv) {
      const stored = this.storedRef(snap);
      if (!stored) return problem('SnapshotMetadataChanged', untrustedMessage(snap), false);
      const pv = this.d.cache.volume(storedPv);
      return { source: pv ? { pvName: storedPv, pv } : { pvName: storedPv } };
    }
    const ours = snap.metadata.uid ? snapshotDataName(snap.metadata.uid) : undefined;
    if (snap.spec.snapshotDataName && snap.spec.snapshotDataName !== ours) {
      return problem('SnapshotDataMismatch', `spec.snapshotDataName "${snap.spec.snapshotDataName}" names a VolumeSnapshotData this controller did not make; leave it empty so the controller takes the snapshot`, false);
    }
    const claimName = snap.spec?.persistentVolumeClaimName ?? '';
    const claimRef = parseClaimRef(claimName, ns);
    if (!claimRef) return problem('ClaimNameMissing', 'spec.persistentVolumeClaimName is empty: name the PersistentVolumeClaim (in this namespace) to snapshot', false);
    if ('crossNamespace' in claimRef) {
      return problem(
        'CrossNamespaceReference',
        `spec.persistentVolumeClaimName "${claimName}" names a claim in namespace "${claimRef.crossNamespace}": a VolumeSnapshot can only snapshot a claim in its own namespace "${ns}"`,
        false,
      );
    }
    const claimKey = `${claimRef.namespace}/${claimRef.name}`;
    const claim = this.d.cache.claim(claimRef.namespace, claimRef.name);
    if (!claim) return problem('ClaimNotFound', `PersistentVolumeClaim "${claimKey}" not found`, true);
    const pvName = claim.spec.volumeName;
    if (!pvName || claim.status?.phase !== 'Bound') {
      return problem('ClaimNotBound', `PersistentVolumeClaim "${claimKey}" is not bound to a volume yet (phase ${claim.status?.phase ?? 'Pending'})`, true);
    }
    const pv = this.d.cache.volume(pvName);
    if (!pv) return problem('VolumeNotFound', `PersistentVolume "${pvName}" of claim "${claimKey}" not found`, true);
    const boundTo = pv.spec.claimRef;
    if (boundTo?.namespace !== claimRef.namespace || boundTo.name !== claimRef.name || (boundTo.uid && claim.metadata.uid && boundTo.uid !== claim.metadata.uid)) {
      return problem(
        'VolumeNotBoundToClaim',
        `PersistentVolume "${pvName}" named by claim "${claimKey}" is bound to ${boundTo?.name ? `claim "${boundTo.namespace ?? ''}/${boundTo.name}"` : 'no claim'}, not to this one`,
        true,
      );
    }
    if (!isCstorVolume(pv)) {
      return problem(
        'UnsupportedVolume',
        `PersistentVolume "${pvName}" of claim "${claimKey}" is not a cStor iSCSI volume (it needs spec.iscsi with an IQN starting "${cstorIqnPrefix}" or the label openebs.io/cas-type=cstor): only cStor volumes can be snapshotted`,
        false,
      );
    }
    const nameProblem = backendNameProblem(pvName, snap.metadata.name ?? '');
    if (nameProblem) return problem('InvalidSnapshotName', `cannot snapshot claim "${claimKey}": ${nameProblem}`, false);
    return { source: { pvName, pv, claim } };
  }

  /** Records a problem (status + Event, once per distinct message); throws to retry when it may heal. */
  private async fail(snap: VolumeSnapshot, p: SnapshotProblem): Promise<void> {
    const uid = snap.metadata.uid ?? '';
    const memo = `${uid} ${p.reason}\n${p.message}`;
    if (this.recorded.get(keyOf(snap)) !== memo) {
      // The status already showing it means it was recorded before (e.g. by a previous run).
      if (!showsCondition(snap, 'Error', p.reason, p.message)) await this.recordProblem(snap, p);
      this.recorded.set(keyOf(snap), memo);
    }
    if (p.retry) throw new SnapshotRetryError(p);
  }

  private async recordProblem(snap: VolumeSnapshot, p: SnapshotProblem): Promise<void> {
    try {
      await this.d.snapshots.patchStatus(refOf(snap), { conditions: [condition('Error', p.reason, p.message, this.d.clock.now(), currentCondition(snap))] });
    } catch (err) {
      if (hasErrorCode(err, 'not_found')) return;
      throw new CstorError(isCstorError(err) ? err.code : 'unavailable', `record ${p.reason} on ${keyOf(snap)}`, { cause: err });
    }
    void this.d.events.event(snap, 'Warning', p.reason, p.message);
    const log = this.d.logger.child({ key: keyOf(snap) });
    if (p.retry) log.warn('snapshot problem; retrying with backoff', { reason: p.reason, problem: p.message });
    else log.error('snapshot problem; waiting for a change to the object', { reason: p.reason, problem: p.message });
  }

  // ---- not ready: create and bind ----------------------------------------------------------

  /** Finalizer, snapshot id and labels in one patch, conditional on the resourceVersion read. */
  private async ensurePrepared(snap: VolumeSnapshot, source: Source): Promise<VolumeSnapshot> {
    const annotations = snap.metadata.annotations ?? {};
    const labels = snap.metadata.labels ?? {};
    const id = annotations[snapshotIdAnnotation] ?? snapshotId(source.pvName, snap.metadata.name ?? '', this.nowNanos());
    const nanos = nanosOfSnapshotId(id) ?? '';
    if (hasFinalizer(snap) && annotations[snapshotIdAnnotation] === id && labels[snapshotLabels.pvName] === source.pvName && labels[snapshotLabels.timestamp] === nanos) return snap;
    const patch = {
      metadata: {
        resourceVersion: snap.metadata.resourceVersion,
        finalizers: hasFinalizer(snap) ? snap.metadata.finalizers : [...(snap.metadata.finalizers ?? []), snapshotFinalizer],
        annotations: { [snapshotIdAnnotation]: id },
        labels: { [snapshotLabels.pvName]: source.pvName, [snapshotLabels.timestamp]: nanos },
      },
    };
    // 409 (stale cache, or another replica got there first) → retry from the stored id.
    const updated = await this.d.snapshots.mergePatch(refOf(snap), patch);
    this.d.logger.info('snapshot id assigned', { key: keyOf(snap), snapshotId: id, volume: source.pvName });
    return updated;
  }

  private async ensurePending(snap: VolumeSnapshot, source: Source): Promise<VolumeSnapshot> {
    if (currentCondition(snap)) return snap; // Pending already, or an Error we keep until success
    const id = snap.metadata.annotations?.[snapshotIdAnnotation] ?? '';
    const pending = condition('Pending', 'SnapshotCreating', `Creating snapshot ${id} of volume ${source.pvName}`, this.d.clock.now());
    return this.d.snapshots.patchStatus(refOf(snap), { conditions: [pending] });
  }

  /** Creates the backend snapshot (idempotent by id); false after a refusal recorded as an Error condition. */
  private async ensureBackendSnapshot(snap: VolumeSnapshot, ref: SnapshotRef): Promise<boolean> {
    try {
      await this.metrics.observe('CreateSnapshot', () => this.d.maya.createSnapshot(ref));
      return true;
    } catch (err) {
      const text = errorText(err);
      if (hasErrorCode(err, 'not_ready', 'conflict')) {
        await this.fail(snap, { reason: 'VolumeNotHealthy', message: `cannot snapshot volume "${ref.volumeName}": it is not Healthy: ${text}`, retry: true, cause: err });
        return false;
      }
      const retry = isCstorError(err) ? err.retryable : true;
      await this.fail(snap, { reason: 'SnapshotCreateFailed', message: `cannot create snapshot ${ref.snapshotId} of volume "${ref.volumeName}": ${text}`, retry, cause: err });
      return false;
    }
  }

  /** Finds or creates the VolumeSnapshotData (deterministic name), with a Ready status. */
  private async ensureData(snap: VolumeSnapshot, ref: SnapshotRef, source: Source): Promise<VolumeSnapshotData | undefined> {
    const uid = snap.metadata.uid ?? '';
    const name = snapshotDataName(uid);
    let data = this.d.cache.data(name);
    if (!data) {
      const capacity = source.pv?.spec.capacity?.storage ?? source.claim?.status?.capacity?.storage;
      const body: VolumeSnapshotData = {
        metadata: {
          name,
          annotations: {
            [dataOwnerAnnotations.namespace]: snap.metadata.namespace ?? '',
            [dataOwnerAnnotations.name]: snap.metadata.name ?? '',
            [dataOwnerAnnotations.uid]: uid,
            [dataBackendNamespaceAnnotation]: ref.namespace,
          },
        },
        spec: {
          openebsVolume: capacity ? { snapshotId: ref.snapshotId, capacity } : { snapshotId: ref.snapshotId },
          volumeSnapshotRef: { kind: 'VolumeSnapshot', name: volumeSnapshotRefName(snap) },
          persistentVolumeRef: { kind: 'PersistentVolume', name: ref.volumeName },
        },
      };
      try {
        data = await this.d.datas.create(body);
        this.d.logger.info('snapshot data created', { key: keyOf(snap), data: name, snapshotId: ref.snapshotId });
      } catch (err) {
        if (!hasErrorCode(err, 'already_exists')) throw err;
        data = await this.d.datas.get({ name });
      }
    }
    if (ownerOf(data)?.uid !== uid) {
      await this.fail(snap, { reason: 'SnapshotDataConflict', message: `VolumeSnapshotData "${name}" exists but belongs to another VolumeSnapshot`, retry: false });
      return undefined;
    }
    if (!showsCondition(data, 'Ready', 'SnapshotCreated', successMessage)) {
      data = await this.d.datas.patchStatus(
        { name },
        { creationTimestamp: data.status?.creationTimestamp ?? kubeTime(this.d.clock.now()), conditions: [condition('Ready', 'SnapshotCreated', successMessage, this.d.clock.now())] },
      );
    }
    return data;
  }

  private async ensureBound(snap: VolumeSnapshot, data: VolumeSnapshotData): Promise<VolumeSnapshot> {
    const name = data.metadata.name ?? '';
    if (snap.spec.snapshotDataName === name) return snap;
    return this.d.snapshots.mergePatch(refOf(snap), { spec: { snapshotDataName: name } });
  }

  private async ensureReady(snap: VolumeSnapshot): Promise<void> {
    const uid = snap.metadata.uid ?? '';
    // The memo covers a cache that has not seen our Ready write yet: no second Event or metric.
    if (showsCondition(snap, 'Ready', 'SnapshotCreated', successMessage) || this.recorded.get(keyOf(snap)) === `${uid} ${readyMemo}`) return;
    const now = this.d.clock.now();
    await this.d.snapshots.patchStatus(refOf(snap), {
      creationTimestamp: snap.status?.creationTimestamp ?? kubeTime(now),
      conditions: [condition('Ready', 'SnapshotCreated', successMessage, now)],
    });
    this.recorded.set(keyOf(snap), `${uid} ${readyMemo}`);
    const created = Date.parse(snap.metadata.creationTimestamp ?? '');
    if (!Number.isNaN(created)) this.metrics.createdToReady((now - created) / 1000);
    const id = snap.metadata.annotations?.[snapshotIdAnnotation] ?? '';
    this.d.logger.info('snapshot ready', { key: keyOf(snap), snapshotId: id, data: snap.spec.snapshotDataName });
    void this.d.events.event(snap, 'Normal', 'SnapshotCreated', `${successMessage}: ${id}`);
  }

  // ---- ready: verify -----------------------------------------------------------------------

  /** A Ready snapshot keeps its VolumeSnapshotData: recreate it when the backend snapshot is still there. */
  private async verify(snap: VolumeSnapshot): Promise<void> {
    const ours = snapshotDataName(snap.metadata.uid ?? '');
    if (snap.spec.snapshotDataName !== ours && snap.metadata.annotations?.[snapshotIdAnnotation]) {
      // spec.snapshotDataName is this controller's field: a Ready snapshot pointed (by an edit) at
      // another VolumeSnapshotData would let a clone read that one's backend snapshot. Bind it back.
      const foreign = snap.spec.snapshotDataName ?? '';
      snap = await this.d.snapshots.mergePatch(refOf(snap), { spec: { snapshotDataName: ours } });
      this.d.logger.warn('bound a VolumeSnapshot back to its own VolumeSnapshotData', { key: keyOf(snap), foreign, data: ours });
      void this.d.events.event(
        snap,
        'Warning',
        'SnapshotDataMismatch',
        `spec.snapshotDataName was changed to "${foreign}"; this controller owns that field: bound back to "${ours}"`,
      );
    }
    const name = snap.spec.snapshotDataName ?? '';
    if (this.d.cache.data(name)) return;
    try {
      await this.d.datas.get({ name });
      return; // the cache lags
    } catch (err) {
      if (!hasErrorCode(err, 'not_found')) throw err;
    }
    const ref = this.storedRef(snap);
    if (!ref || name !== snapshotDataName(snap.metadata.uid ?? '')) {
      const why = snap.metadata.annotations?.[snapshotIdAnnotation] ? untrustedMessage(snap) : 'no snapshot id recorded';
      return this.fail(snap, { reason: 'SnapshotDataMissing', message: `VolumeSnapshotData "${name}" is gone and this controller cannot recreate it (${why})`, retry: false });
    }
    const { snapshotId: id, volumeName: pvName } = ref;
    try {
      await this.d.maya.getSnapshot(ref);
    } catch (err) {
      if (hasErrorCode(err, 'not_found')) {
        return this.fail(snap, { reason: 'BackendSnapshotMissing', message: `VolumeSnapshotData "${name}" and backend snapshot ${id} of volume "${pvName}" are gone`, retry: false, cause: err });
      }
      throw err;
    }
    const pv = this.d.cache.volume(pvName);
    await this.ensureData(snap, ref, pv ? { pvName, pv } : { pvName });
    this.d.logger.warn('recreated a missing VolumeSnapshotData', { key: keyOf(snap), data: name, snapshotId: id });
    void this.d.events.event(snap, 'Normal', 'SnapshotDataRecreated', `VolumeSnapshotData "${name}" was missing; recreated it for snapshot ${id}`);
  }
}

const readyMemo = 'Ready';

function untrustedMessage(snap: VolumeSnapshot): string {
  const id = snap.metadata.annotations?.[snapshotIdAnnotation] ?? '';
  const pv = snap.metadata.labels?.[snapshotLabels.pvName] ?? '';
  return `the annotation ${snapshotIdAnnotation} "${id}" and the label ${snapshotLabels.pvName} "${pv}" were changed: they no longer name a snapshot of this VolumeSnapshot's volume (a PersistentVolume of a claim in namespace "${snap.metadata.namespace ?? ''}"); this controller writes them once and they must not be edited`;
}

function problem(reason: string, message: string, retry: boolean): { problem: SnapshotProblem } {
  return { problem: { reason, message, retry } };
}

function refOf(snap: VolumeSnapshot): { namespace: string; name: string } {
  return { namespace: snap.metadata.namespace ?? '', name: snap.metadata.name ?? '' };
}

function keyOf(snap: VolumeSnapshot): string {
  return `${snap.metadata.namespace ?? ''}/${snap.metadata.name ?? ''}`;
}

/** The VolumeSnapshot a VolumeSnapshotData of ours belongs to (from our annotations). */
export function ownerOf(data: VolumeSnapshotData): { namespace: string; name: string; uid: string } | undefined {
  const a = data.metadata.annotations ?? {};
  const namespace = a[dataOwnerAnnotations.namespace];
  const name = a[dataOwnerAnnotations.name];
  const uid = a[dataOwnerAnnotations.uid];
  return namespace && name && uid ? { namespace, name, uid } : undefined;
}

function backendRefOfData(data: VolumeSnapshotData, fallbackNamespace: string): SnapshotRef | undefined {
  const snapshotIdValue = data.spec.openebsVolume?.snapshotId;
  const volumeName = data.spec.persistentVolumeRef?.name;
  if (!snapshotIdValue || !volumeName) return undefined;
  return { snapshotId: snapshotIdValue, volumeName, namespace: data.metadata.annotations?.[dataBackendNamespaceAnnotation] ?? fallbackNamespace };
}

async function ignoreNotFound<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (hasErrorCode(err, 'not_found')) return undefined;
    throw err;
  }
}

/** The VolumeSnapshot keys ("ns/name") of a claim key, for the wiring's claim index. */
export function claimKeyOf(snap: VolumeSnapshot): string[] {
  const ns = snap.metadata.namespace ?? '';
  const ref = parseClaimRef(snap.spec?.persistentVolumeClaimName ?? '', ns);
  return ref && !('crossNamespace' in ref) ? [`${ref.namespace}/${ref.name}`] : [];
}

/** A CstorError's message already carries its cause's text (lib/maya-client): no "caused by" chain. */
function errorText(err: unknown): string {
  return isCstorError(err) ? err.message : describeError(err);
}
