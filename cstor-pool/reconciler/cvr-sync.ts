// The CStorVolumeReplica logic: reconcile one key ("ns/name") of a replica of this pool, and
// sweep replicas whose CStorVolumeReplica is gone. Wiring (informer, queue, timers) is in
// controller.ts; the design note is here and in docs/pool-reconciler.md.
//
// Invariants:
// - m-apiserver (the CAS templates) creates a CVR with labels, annotations, spec and the
//   finalizer; it only ever deletes it. The pool named by `cstorpool.openebs.io/name` writes
//   status (through the status subresource, merge patches) and adds the finalizer if missing;
//   it removes the finalizer ONLY after the replica is deleted from the store, so a deleted CVR
//   never outlives... nor is outlived by its data.
// - The replica's name in the store is the PV name (label `openebs.io/persistent-volume`):
//   that is what the target OPENs. Its size is spec.capacity rounded up to the block size.
// - Every step is idempotent: the finalizer is added with the resourceVersion it was computed
//   from (409 → retry from the cache), createReplica is idempotent for the same size and
//   source, deleteReplica for a missing replica, and status is patched only when it differs.
//   So a kill -9 at any point, then a restart, converges with one replica per CVR.
// - Before creating a replica the pool records it as its own (owned-replicas.ts); the orphan
//   sweep deletes only such replicas, only once the CVR informer has synced, and only after
//   a live list confirms that no CVR of this pool names the volume.
// - Never delete data a CVR may still want: a deleted CVR's replica stays when another live CVR
//   of this pool names it (the record passes to that CVR), or when the reconciler did not make
//   it and it is not what the CVR asks for (ReplicaMismatch); the sweep keeps a replica while
//   its recorded CVR exists anywhere in the namespace (moved to another pool, or this pool
//   restarted under another --name), and never sweeps records of another namespace.
// - A replica re-created because it vanished while its CVR said it held data is put in
//   Rebuilding mode (recorded first, so a crash in between is finished later): a target takes
//   a volume whose replicas are all New as fresh, and would serve it empty.
// - Problems go to status (phase Error, reason, message) AND a Warning Event, once per distinct
//   message; causes that may heal (a clone's snapshot not there yet, API or disk errors) are
//   retried with backoff, the others wait for the CVR to change.
import type { Logger } from '../../lib/logger.ts';
import { CstorError, describeError, hasErrorCode, isCstorError } from '../../lib/errors.ts';
import type { OperationMetrics } from '../../lib/metrics.ts';
import type { Clock } from '../../lib/kube/clock.ts';
import { objectKey } from '../../lib/kube/keys.ts';
import type { ResourceClient } from '../../lib/kube/resource-client.ts';
import { kubeTime } from '../../lib/kube/time-format.ts';
import type { EventType } from '../../lib/kube/types/core.ts';
import type { KubeObject, ObjectReference } from '../../lib/kube/types/meta.ts';
import type { Pool, ReplicaInfo } from '../store/types.ts';
import { replicaSize } from '../../lib/quantity.ts';
import type { OwnedReplicas } from './owned-replicas.ts';
import { statusMatches, statusOfReplica, statusPatch } from './replica-status.ts';
import { cvrAnnotations, cvrFinalizer, cvrLabels, type CStorVolumeReplica, type CvrStatus } from './types.ts';

export type ReplicaStore = Pick<Pool, 'createReplica' | 'deleteReplica' | 'getReplica' | 'listReplicas' | 'openReplica'>;
export type CvrClient = Pick<ResourceClient<CStorVolumeReplica>, 'list' | 'mergePatch' | 'patchStatus'>;

export interface EventSink {
  event(subject: KubeObject | ObjectReference, type: EventType, reason: string, message: string): Promise<void>;
}

/** Reads the informer's cache (never mutate what it returns). */
export interface CvrCache {
  get(key: string): CStorVolumeReplica | undefined;
  list(): CStorVolumeReplica[];
}

export interface CvrSyncDeps {
  poolName: string;
  namespace: string;
  cache: CvrCache;
  cvrs: CvrClient;
  store: ReplicaStore;
  owned: OwnedReplicas;
  events: EventSink;
  /** Closes the protocol connections of a volume about to be deleted. */
  dropVolume(volume: string): void;
  /** Called after a replica was created or deleted (the CStorPool status is then refreshed). */
  onStoreChanged?(): void;
  clock: Clock;
  logger: Logger;
  metrics?: OperationMetrics;
  /** Block size of new replicas (default 4096, the store's default). */
  blockSize?: number;
  /** Crash-test hook: called at each failpoint (the daemon kills itself at the one named in CSTOR_POOL_FAILPOINT). */
  failpoint?: (point: Failpoint) => void;
}

/** Points between two durable steps where the crash tests kill the daemon. */
export type Failpoint = 'after-intent' | 'after-create' | 'after-delete';

/** Why a CVR cannot be served as asked: the Error status's reason and message. */
export interface CvrProblem {
  reason: string;
  message: string;
  /** True when the cause may heal (retry with backoff); false when only a CVR change helps. */
  retry: boolean;
  cause?: unknown;
}

/** Thrown so the queue retries with backoff (the problem is already recorded). */
export class CvrRetryError extends CstorError {
  constructor(problem: CvrProblem) {
    super(isCstorError(problem.cause) ? problem.cause.code : 'unavailable', `${problem.reason}: ${problem.message}`, {
      cause: problem.cause,
      retryable: true,
      details: { reason: problem.reason },
    });
    this.name = 'CvrRetryError';
  }
}

/** What a valid CVR asks for. */
export interface Desired {
  volume: string;
  capacity: string;
  size: number;
  cloneOf?: { volume: string; snapshot: string };
}

const noMetrics: OperationMetrics = { observe: (_op, fn) => fn() };

export class CvrSyncer {
  private readonly metrics: OperationMetrics;
  private readonly blockSize: number;
  /** Per CVR uid: the last problem recorded, so a retry never repeats an Event. */
  private readonly recorded = new Map<string, string>();
  /** Per volume: the store step running now (a sync and the orphan sweep never interleave on one volume). */
  private readonly volumeLocks = new Map<string, Promise<unknown>>();
  private warnedForeign = false;

  constructor(private readonly d: CvrSyncDeps) {
    this.metrics = d.metrics ?? noMetrics;
    this.blockSize = d.blockSize ?? 4096;
  }

  /** Reconciles one CVR: a short dispatcher over idempotent steps. */
  async sync(key: string): Promise<void> {
    const cached = this.d.cache.get(key);
    if (!cached) return; // gone: its replica, if any is left, is the orphan sweep's
    if (cached.metadata.labels?.[cvrLabels.pool] !== this.d.poolName) return; // not ours
    if (cached.metadata.deletionTimestamp) return this.finalize(cached);
    const desired = this.validate(cached);
    if ('problem' in desired) return this.fail(cached, desired.problem);
    const cvr = await this.ensureFinalizer(cached);
    const info = await this.withVolume(desired.volume, async () => {
      const cur = await this.d.store.getReplica(desired.volume);
      return cur ? this.finishRecreate(cvr, desired.volume, cur) : this.create(cvr, desired);
    });
    if (!info) return;
    const mismatch = this.mismatch(info, desired);
    if (mismatch) return this.fail(cvr, mismatch);
    await this.ensureStatus(cvr, statusOfReplica(info, desired.capacity));
    this.recorded.delete(cvr.metadata.uid ?? '');
  }

  // ---- steps -------------------------------------------------------------------------------

  private validate(cvr: CStorVolumeReplica): Desired | { problem: CvrProblem } {
    const problems: string[] = [];
    const labels = cvr.metadata.labels ?? {};
    const annotations = cvr.metadata.annotations ?? {};
    const volume = labels[cvrLabels.persistentVolume];
    if (!volume) problems.push(`label ${cvrLabels.persistentVolume} (the volume name) is missing`);
    const capacity = cvr.spec?.capacity;
    let size = 0;
    try {
      size = replicaSize(capacity, this.blockSize);
    } catch (err) {
      problems.push(`spec.capacity: ${err instanceof Error ? err.message : String(err)}`);
    }
    let cloneOf: Desired['cloneOf'];
    if (labels[cvrLabels.cloned] === 'true') {
      const source = annotations[cvrAnnotations.sourceVolume];
      const snapshot = annotations[cvrAnnotations.snapshot];
      if (!source) problems.push(`a clone (label ${cvrLabels.cloned}: "true") needs the annotation ${cvrAnnotations.sourceVolume}`);
      if (!snapshot) problems.push(`a clone (label ${cvrLabels.cloned}: "true") needs the annotation ${cvrAnnotations.snapshot}`);
      if (source && snapshot) cloneOf = { volume: source, snapshot };
    }
    if (problems.length > 0 || !volume || typeof capacity !== 'string') {
      return { problem: { reason: 'InvalidSpec', message: `CStorVolumeReplica ${objectKey(cvr)} is invalid: ${problems.join('; ')}`, retry: false } };
    }
    return cloneOf ? { volume, capacity, size, cloneOf } : { volume, capacity, size };
  }

  private async ensureFinalizer(cvr: CStorVolumeReplica): Promise<CStorVolumeReplica> {
    const finalizers = cvr.metadata.finalizers ?? [];
    if (finalizers.includes(cvrFinalizer)) return cvr;
    const patched = await this.metrics.observe('add_finalizer', () =>
      this.d.cvrs.mergePatch(refOf(cvr), { metadata: { finalizers: [...finalizers, cvrFinalizer], resourceVersion: cvr.metadata.resourceVersion } }),
    );
    this.log(cvr).info('finalizer added');
    return patched;
  }

  /** Creates (or clones) the replica; null when it cannot (the problem is recorded). */
  private async create(cvr: CStorVolumeReplica, want: Desired): Promise<ReplicaInfo | null> {
    const log = this.log(cvr, want.volume);
    const key = objectKey(cvr);
    const was = cvr.status?.phase;
    // It held data once (its CVR said so): the new, empty replica must be rebuilt, never taken
    // as a fresh volume's. (Offline alone does not tell: a never-served replica of a stopped
    // pool is Offline too; the space it used does.)
    const held = was === 'Healthy' || was === 'Degraded' || was === 'Rebuilding' || (was === 'Offline' && Number(cvr.status?.capacity?.used ?? 0) > 0);
    // Intent first: a crash after the create but before this record would leak the replica
    // (or, for a re-creation, leave it New: finishRecreate picks that up from the record).
    await this.d.owned.add(want.volume, { cvr: key, uid: cvr.metadata.uid ?? '', createdAt: this.d.clock.now(), ...(held ? { rebuild: true } : {}) });
    this.d.failpoint?.('after-intent');
    const op = want.cloneOf ? 'clone' : 'create';
    let info: ReplicaInfo;
    try {
      info = await this.metrics.observe(op, () => this.d.store.createReplica({ volume: want.volume, size: want.size, blockSize: this.blockSize, ...(want.cloneOf ? { cloneOf: want.cloneOf } : {}) }));
    } catch (err) {
      await this.fail(cvr, this.createProblem(want, err));
      return null;
    }
    this.d.failpoint?.('after-create');
    this.d.onStoreChanged?.();
    const what = want.cloneOf ? `cloned from ${want.cloneOf.volume}@${want.cloneOf.snapshot}` : 'created';
    log.info(`replica ${what}`, { size: info.size });
    if (was === 'Healthy' || was === 'Degraded' || was === 'Rebuilding' || was === 'Offline') {
      // It existed (the CVR said so) and vanished from the store: say so loudly; the target rebuilds it.
      const how = held ? 'recreated empty in Rebuilding mode (its target rebuilds it from a healthy replica; it is never served as a fresh volume)' : 'recreated empty (its target must rebuild it)';
      const message = `replica ${want.volume} was ${was} but is missing from pool ${this.d.poolName}: ${how}`;
      log.warn('replica missing from the store; recreated', { was, rebuild: held });
      void this.d.events.event(cvr, 'Warning', 'ReplicaRecreated', message);
    }
    void this.d.events.event(cvr, 'Normal', want.cloneOf ? 'Cloned' : 'Created', `replica ${want.volume} (${info.size} bytes) ${what} in pool ${this.d.poolName}`);
    return held ? this.finishRecreate(cvr, want.volume, info) : info;
  }

  /**
   * A re-created replica (owned record `rebuild`) still New is put in Rebuilding mode, so no
   * target elects it, alone or with other New ones, as a fresh volume's and serves it empty;
   * the flag goes once the replica has left New. Null when it cannot (recorded, retried).
   */
  private async finishRecreate(cvr: CStorVolumeReplica, volume: string, info: ReplicaInfo): Promise<ReplicaInfo | null> {
    const owned = this.d.owned.get(volume);
    if (!owned?.rebuild) return info;
    if (info.mode !== 'New') {
      const { rebuild: _done, ...rest } = owned;
      await this.d.owned.add(volume, rest);
      return info;
    }
    try {
      this.d.dropVolume(volume); // a target connected meanwhile sees the new mode when it reconnects
      const replica = await this.d.store.openReplica(volume);
      try {
        await replica.rebuildStart(null);
      } finally {
        await replica.close();
      }
    } catch (err) {
      await this.fail(cvr, { reason: 'CreateFailed', message: `cannot put the re-created replica ${volume} in Rebuilding mode: ${describeError(err)}`, retry: true, cause: err });
      return null;
    }
    this.log(cvr, volume).info('re-created replica set to Rebuilding (its target rebuilds it)');
    return (await this.d.store.getReplica(volume)) ?? { ...info, mode: 'Rebuilding' };
  }

  private createProblem(want: Desired, err: unknown): CvrProblem {
    const why = describeError(err);
    if (want.cloneOf && hasErrorCode(err, 'not_found')) {
      const src = `${want.cloneOf.volume}@${want.cloneOf.snapshot}`;
      return { reason: 'CloneSourceMissing', message: `cannot clone replica ${want.volume} from ${src}: the source snapshot is not in pool ${this.d.poolName} (${why})`, retry: true, cause: err };
    }
    if (hasErrorCode(err, 'invalid', 'too_large')) return { reason: 'InvalidSpec', message: `cannot create replica ${want.volume}: ${why}`, retry: false, cause: err };
    if (hasErrorCode(err, 'already_exists')) return { reason: 'ReplicaMismatch', message: why, retry: false, cause: err };
    return { reason: 'CreateFailed', message: `cannot create replica ${want.volume} in pool ${this.d.poolName}: ${why}`, retry: true, cause: err };
  }

  /** A replica that exists but is not what the CVR asks for (resizing is not supported). */
  private mismatch(info: ReplicaInfo, want: Desired): CvrProblem | null {
    if (info.size !== want.size) {
      return {
        reason: 'ReplicaMismatch',
        message: `replica ${want.volume} in pool ${this.d.poolName} holds ${info.size} bytes; spec.capacity ${want.capacity} asks for ${want.size} (resizing is not supported)`,
        retry: false,
      };
    }
    const wantSource = want.cloneOf ? `${want.cloneOf.volume}@${want.cloneOf.snapshot}` : null;
    if (wantSource !== null && info.cloneOf !== wantSource) {
      return {
        reason: 'ReplicaMismatch',
        message: `replica ${want.volume} in pool ${this.d.poolName} is ${info.cloneOf ? `a clone of ${info.cloneOf}` : 'not a clone'}; the CVR asks for a clone of ${wantSource}`,
        retry: false,
      };
    }
    return null;
  }

  private async ensureStatus(cvr: CStorVolumeReplica, want: CvrStatus): Promise<void> {
    if (statusMatches(cvr.status, want)) return;
    await this.metrics.observe('patch_status', () => this.d.cvrs.patchStatus(refOf(cvr), statusPatch(cvr.status, want, kubeTime(this.d.clock.now()))));
    if (cvr.status?.phase !== want.phase) this.log(cvr).info('replica phase', { from: cvr.status?.phase ?? null, to: want.phase });
  }

  // ---- deleting ----------------------------------------------------------------------------

  /** Deletes the replica from the store, then lets the CVR go. */
  private async finalize(cvr: CStorVolumeReplica): Promise<void> {
    const finalizers = cvr.metadata.finalizers ?? [];
    if (!finalizers.includes(cvrFinalizer)) return;
    const key = objectKey(cvr);
    const target = this.volumeToDelete(cvr);
    // Another live CVR of this pool names the same volume (e.g. one moved here from another
    // pool): the data is still wanted. Leave it, and hand the owned record to that CVR.
    const heir = target ? this.otherClaimant(target, cvr) : undefined;
    if (target && heir) {
      await this.withVolume(target, async () => {
        const owner = this.d.owned.get(target);
        if (owner?.cvr === key) await this.d.owned.add(target, { ...owner, cvr: objectKey(heir), uid: heir.metadata.uid ?? '' });
      });
      this.log(cvr, target).warn('another CStorVolumeReplica of this pool names the replica; leaving its data', { heir: objectKey(heir) });
    }
    const volume = heir ? null : target;
    if (volume) {
      const problem = await this.withVolume(volume, async (): Promise<CvrProblem | 'kept' | null> => {
        const foreign = await this.foreignReplica(cvr, volume);
        if (foreign) {
          this.log(cvr, volume).warn('the replica was not made for this CStorVolumeReplica and is not what it asks for; leaving its data', { why: foreign });
          return 'kept';
        }
        try {
          this.d.dropVolume(volume);
          await this.metrics.observe('delete', () => this.d.store.deleteReplica(volume));
        } catch (err) {
          return { reason: 'DeleteFailed', message: `cannot delete replica ${volume} from pool ${this.d.poolName}: ${describeError(err)}`, retry: true, cause: err };
        }
        this.d.failpoint?.('after-delete');
        await this.d.owned.remove(volume);
        return null;
      });
      if (problem && problem !== 'kept') return this.fail(cvr, problem);
      if (!problem) {
        this.d.onStoreChanged?.();
        this.log(cvr, volume).info('replica deleted');
      }
    }
    try {
      await this.metrics.observe('remove_finalizer', () =>
        this.d.cvrs.mergePatch(refOf(cvr), { metadata: { finalizers: finalizers.filter((f) => f !== cvrFinalizer), resourceVersion: cvr.metadata.resourceVersion } }),
      );
    } catch (err) {
      if (!hasErrorCode(err, 'not_found')) throw err;
    }
    this.recorded.delete(cvr.metadata.uid ?? '');
    this.log(cvr, volume ?? undefined).info('finalizer removed', { key });
  }

  /**
   * The store replica a deleted CVR stands for: its volume label, else the one recorded as
   * created for this CVR. Not one recorded for ANOTHER CVR (that CVR owns the data).
   */
  private volumeToDelete(cvr: CStorVolumeReplica): string | null {
    const key = objectKey(cvr);
    const label = cvr.metadata.labels?.[cvrLabels.persistentVolume];
    if (label) {
      const owner = this.d.owned.get(label);
      if (owner && owner.cvr !== key) {
        this.log(cvr, label).warn('replica belongs to another CStorVolumeReplica; leaving its data', { owner: owner.cvr });
        return null;
      }
      return label;
    }
    for (const [volume, entry] of this.d.owned.list()) if (entry.cvr === key && entry.uid === cvr.metadata.uid) return volume;
    return null;
  }

  /**
   * Why the replica `volume` must not be deleted for `cvr`, or null: a replica the reconciler
   * did not record (made through the mgmt API, or by another cluster) that this CVR never
   * served — it asks for another size or source (it was ReplicaMismatch), or its spec is invalid.
   */
  private async foreignReplica(cvr: CStorVolumeReplica, volume: string): Promise<string | null> {
    if (this.d.owned.get(volume)) return null;
    const info = await this.d.store.getReplica(volume);
    if (!info) return null;
    const desired = this.validate(cvr);
    if ('problem' in desired) return desired.problem.message;
    return this.mismatch(info, desired)?.message ?? null;
  }

  /** A live (not deleting) CVR of this pool, other than `cvr`, that names `volume`. */
  private otherClaimant(volume: string, cvr: CStorVolumeReplica): CStorVolumeReplica | undefined {
    const key = objectKey(cvr);
    return this.d.cache
      .list()
      .find(
        (c) =>
          objectKey(c) !== key &&
          !c.metadata.deletionTimestamp &&
          c.metadata.labels?.[cvrLabels.pool] === this.d.poolName &&
          c.metadata.labels[cvrLabels.persistentVolume] === volume,
      );
  }

  // ---- problems ----------------------------------------------------------------------------

  /** Records a problem in status and as a Warning Event (once per message); throws to retry when it may heal. */
  private async fail(cvr: CStorVolumeReplica, problem: CvrProblem): Promise<void> {
    const uid = cvr.metadata.uid ?? objectKey(cvr);
    const log = this.log(cvr);
    const fresh = this.recorded.get(uid) !== problem.message;
    if (fresh) {
      const entry = { reason: problem.reason, error: problem.message };
      if (problem.retry) log.warn('replica problem; retrying with backoff', entry);
      else log.error('replica problem; waiting for the CStorVolumeReplica to change', entry);
      void this.d.events.event(cvr, 'Warning', problem.reason, problem.message);
      this.recorded.set(uid, problem.message);
    }
    if (!cvr.metadata.deletionTimestamp) {
      const want: CvrStatus = { phase: 'Error', reason: problem.reason, message: problem.message };
      if (cvr.status?.capacity) want.capacity = cvr.status.capacity;
      await this.ensureStatus(cvr, want);
    }
    if (problem.retry) throw new CvrRetryError(problem);
  }

  // ---- orphans and shutdown ----------------------------------------------------------------

  /**
   * Deletes replicas this reconciler created whose CVR is gone (deleted without the pool, e.g.
   * its finalizer removed by hand while the pool was down). Call only once the informer has
   * synced. Returns the volumes deleted.
   */
  async sweepOrphans(): Promise<string[]> {
    const inCache = new Set(this.d.cache.list().map((c) => c.metadata.labels?.[cvrLabels.persistentVolume]));
    // A record made for a CVR of another namespace is never swept: the pool restarted with
    // another --namespace (or OPENEBS_NAMESPACE unset) sees none of its CVRs, and must not
    // take them all for gone.
    const candidates = [...this.d.owned.list()].filter(([volume, entry]) => !inCache.has(volume) && entry.cvr.startsWith(`${this.d.namespace}/`));
    const foreign = [...this.d.owned.list()].filter(([, entry]) => !entry.cvr.startsWith(`${this.d.namespace}/`)).map(([volume]) => volume);
    if (foreign.length > 0 && !this.warnedForeign) {
      this.warnedForeign = true;
      this.d.logger.warn(`replicas recorded for CStorVolumeReplicas outside namespace ${this.d.namespace} are never swept; is --namespace right?`, { volumes: foreign });
    }
    if (candidates.length === 0) return [];
    // The cache may lag: confirm with the API server before deleting anything. The whole
    // namespace is listed: a recorded CVR that still exists, even now labelled for another pool
    // (moved), may still want this data (e.g. as the source of its rebuild there); it goes
    // only once that CVR is gone.
    const live = await this.d.cvrs.list({ namespace: this.d.namespace });
    const liveVolumes = new Set(live.items.filter((c) => c.metadata.labels?.[cvrLabels.pool] === this.d.poolName).map((c) => c.metadata.labels?.[cvrLabels.persistentVolume]));
    const liveKeys = new Set(live.items.map((c) => objectKey(c)));
    const deleted: string[] = [];
    for (const [volume, entry] of candidates) {
      if (liveVolumes.has(volume) || liveKeys.has(entry.cvr)) continue;
      await this.withVolume(volume, async () => {
        // Re-checked under the volume's lock: a CVR that arrived since, or a record replaced since, wins.
        if (this.d.cache.list().some((c) => c.metadata.labels?.[cvrLabels.persistentVolume] === volume)) return;
        if (this.d.owned.get(volume) !== entry) return;
        const log = this.d.logger.child({ volume, key: entry.cvr });
        if ((await this.d.store.getReplica(volume)) !== null) {
          this.d.dropVolume(volume);
          await this.metrics.observe('delete_orphan', () => this.d.store.deleteReplica(volume));
          this.d.onStoreChanged?.();
          log.info('deleted an orphaned replica: its CStorVolumeReplica is gone', { uid: entry.uid });
          void this.d.events.event(
            { apiVersion: 'openebs.io/v1alpha1', kind: 'CStorPool', name: this.d.poolName },
            'Normal',
            'OrphanDeleted',
            `deleted replica ${volume}: its CStorVolumeReplica ${entry.cvr} (uid ${entry.uid}) is gone`,
          );
          deleted.push(volume);
        }
        await this.d.owned.remove(volume);
      });
    }
    return deleted;
  }

  /** Runs `fn` after any other store step on `volume` has finished. */
  private async withVolume<T>(volume: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.volumeLocks.get(volume) ?? Promise.resolve();
    const run = prev.catch(() => {}).then(fn);
    this.volumeLocks.set(volume, run);
    try {
      return await run;
    } finally {
      if (this.volumeLocks.get(volume) === run) this.volumeLocks.delete(volume);
    }
  }

  /** On a clean shutdown: every replica of this pool is Offline until the pool is back. */
  async markOffline(): Promise<number> {
    let n = 0;
    for (const cvr of this.d.cache.list()) {
      if (cvr.metadata.deletionTimestamp || !cvr.status?.phase || cvr.status.phase === 'Error' || cvr.status.phase === 'Offline') continue;
      const want: CvrStatus = { phase: 'Offline', reason: 'PoolStopped', message: `pool ${this.d.poolName} stopped` };
      if (cvr.status.capacity) want.capacity = cvr.status.capacity;
      await this.d.cvrs.patchStatus(refOf(cvr), statusPatch(cvr.status, want, kubeTime(this.d.clock.now())));
      n++;
    }
    return n;
  }

  private log(cvr: CStorVolumeReplica, volume?: string): Logger {
    return this.d.logger.child({ key: objectKey(cvr), volume: volume ?? cvr.metadata.labels?.[cvrLabels.persistentVolume] });
  }
}

function refOf(cvr: CStorVolumeReplica): { name: string; namespace: string } {
  return { name: cvr.metadata.name ?? '', namespace: cvr.metadata.namespace ?? '' };
}
