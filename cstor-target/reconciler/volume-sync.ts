// The CStorVolume logic: reconcile one key ("ns/name") of a volume assigned to this target.
// Wiring (informers, queue, refresh timer, engine change events) is in controller.ts.
//
// Invariants (design note; docs/target-reconciler.md):
// - m-apiserver (the CAS templates) creates a CStorVolume with its spec after its
//   CStorVolumeReplicas, and deletes it; it never writes status. The target whose advertised
//   host is spec.targetIP (or any target, when targetIP is empty) serves it, adds the finalizer
//   cstorvolume.openebs.io/target-finalizer before serving it, writes status (status subresource,
//   merge patches) and removes the finalizer ONLY after it stopped serving the volume. So a
//   volume deleted while its target is down is stopped when the target comes back.
// - The served spec is derived, never stored: size = spec.capacity rounded up to the block size
//   by the pool's rule (the replicas were made with it), RF = spec.replicationFactor, replicas =
//   the addresses of the CStorPools named by the volume's CVRs. A changed set (a pool back on a
//   new port) re-serves the volume with the new set; an incomplete set never stops a volume
//   being served (it keeps its last set), it only delays a first serve.
// - Every step is idempotent: serve is a no-op for the same spec, stop for a volume not served,
//   finalizer patches carry the resourceVersion (409 → retry), status is patched only when it
//   differs (the volatile counters at most once per refresh period). A kill -9 at any point,
//   then a restart, converges.
// - Problems go to status (reason, message; phase Error only for an invalid spec) and a Warning
//   Event, once per distinct message.
import type { Logger } from '../../lib/logger.ts';
import { CstorError, describeError, hasErrorCode, isCstorError } from '../../lib/errors.ts';
import type { OperationMetrics } from '../../lib/metrics.ts';
import type { Clock } from '../../lib/kube/clock.ts';
import { objectKey } from '../../lib/kube/keys.ts';
import type { ResourceClient } from '../../lib/kube/resource-client.ts';
import { kubeTime } from '../../lib/kube/time-format.ts';
import type { EventType } from '../../lib/kube/types/core.ts';
import type { KubeObject, ObjectReference } from '../../lib/kube/types/meta.ts';
import type { VolumeSpec } from '../mgmt/volume-manager.ts';
import type { VolumeStatus } from '../replication/replicated-volume.ts';
import { desiredVolume, isAssigned, resolveReplicas, sameServedSpec } from './desired.ts';
import { offlineStatus, statusDiff, statusOfEngine, statusPatch } from './volume-status.ts';
import { cvAnnotations, cvFinalizer, type CStorPool, type CStorVolume, type CStorVolumeReplica, type CvStatus } from './types.ts';

/** What the sync needs from the volumes this target serves (VolumeManager, through start.ts). */
export interface VolumeEngine {
  serve(spec: VolumeSpec): Promise<boolean>;
  stop(name: string): Promise<boolean>;
  spec(name: string): VolumeSpec | undefined;
  status(name: string): VolumeStatus | undefined;
  /** Calls `onChange` whenever the served volume's phase or replicas change (once per served instance). */
  watch(name: string, onChange: () => void): void;
}

export type CvClient = Pick<ResourceClient<CStorVolume>, 'mergePatch' | 'patchStatus'>;

export interface EventSink {
  event(subject: KubeObject | ObjectReference, type: EventType, reason: string, message: string): Promise<void>;
}

/** Reads of the informers' caches (never mutate what they return). */
export interface SyncCaches {
  volume(key: string): CStorVolume | undefined;
  replicasOf(pv: string): CStorVolumeReplica[];
  pool(name: string): CStorPool | undefined;
}

export interface VolumeSyncDeps {
  /** The host this target is reached at, matched against spec.targetIP. */
  advertise: string;
  caches: SyncCaches;
  cvs: CvClient;
  engine: VolumeEngine;
  events: EventSink;
  clock: Clock;
  logger: Logger;
  metrics?: OperationMetrics;
  /** Block size of served volumes; must be the pools' (default 4096, the pool reconciler's). */
  blockSize?: number;
  /** Longest time the volatile status counters may be stale (default 30 s). */
  statusRefreshMs?: number;
  /** Enqueues a key again (for engine change events). */
  enqueue(key: string): void;
}

export interface VolumeProblem {
  reason: string;
  message: string;
  /** True when it may heal by itself (retry with backoff); false when only an object change helps. */
  retry: boolean;
  /** Sets phase Error (an invalid spec); otherwise the phase is left as it is. */
  error: boolean;
  cause?: unknown;
}

/** Thrown so the queue retries with backoff (the problem is already recorded). */
export class VolumeRetryError extends CstorError {
  constructor(problem: VolumeProblem) {
    super(isCstorError(problem.cause) ? problem.cause.code : 'unavailable', `${problem.reason}: ${problem.message}`, { cause: problem.cause, retryable: true, details: { reason: problem.reason } });
    this.name = 'VolumeRetryError';
  }
}

const noMetrics: OperationMetrics = { observe: (_op, fn) => fn() };

export class VolumeSyncer {
  private readonly metrics: OperationMetrics;
  private readonly blockSize: number;
  /** Per CStorVolume uid: the last problem recorded, so a retry never repeats an Event. */
  private readonly recorded = new Map<string, string>();
  /** Keys whose volume this process serves for Kubernetes → the volume name. */
  private readonly managed = new Map<string, string>();
  /** Keys of volumes assigned to other targets, logged once each. */
  private readonly others = new Set<string>();
  /** Per key: a capacity/block size change refused while served (the message, Warning once). */
  private readonly resizeRefused = new Map<string, string>();
  /** Per key: our last status write (the cache may not have caught up with it yet). */
  private readonly written = new Map<string, { before: string; status: CvStatus; at: number }>();

  constructor(private readonly d: VolumeSyncDeps) {
    this.metrics = d.metrics ?? noMetrics;
    this.blockSize = d.blockSize ?? 4096;
  }

  /** Reconciles one CStorVolume: a short dispatcher over idempotent steps. */
  async sync(key: string): Promise<void> {
    const cached = this.d.caches.volume(key);
    if (!cached) return this.forget(key);
    const mine = isAssigned(cached, this.d.advertise);
    const holds = (cached.metadata.finalizers ?? []).includes(cvFinalizer);
    if (cached.metadata.deletionTimestamp || (!mine && holds)) {
      // The finalizer's name is the same on every target: one that neither is assigned the
      // volume nor serves it must leave it to the target that is (else two targets fight over
      // it, and a volume deleted while its own target is down loses its guard).
      if (mine || this.d.engine.spec(cached.metadata.name ?? '')) return this.finalize(key, cached);
      return this.notMine(key, cached);
    }
    if (!mine) return this.notMine(key, cached);
    const want = desiredVolume(cached, this.blockSize);
    if ('problems' in want) {
      return this.fail(cached, { reason: 'InvalidSpec', message: `CStorVolume ${key} is invalid: ${want.problems.join('; ')}`, retry: false, error: true });
    }
    const cv = await this.ensureFinalizer(cached);
    const replicas = resolveReplicas(want.name, want.replicationFactor, this.d.caches.replicasOf(want.name), (n) => this.d.caches.pool(n));
    const served = this.d.engine.spec(want.name);
    if ('waiting' in replicas) {
      if (!served) return this.waiting(key, cv, replicas.waiting);
      this.log(key).debug('replica set incomplete; keeping the served one', { waiting: replicas.waiting, replicas: served.replicas });
    } else {
      const spec = this.keepSize(key, cv, served, { ...want, replicas: replicas.addresses });
      if (!(await this.ensureServed(key, cv, spec))) return;
    }
    this.managed.set(key, want.name);
    this.d.engine.watch(want.name, () => this.d.enqueue(key));
    const st = this.d.engine.status(want.name);
    if (st) {
      const status = statusOfEngine(st);
      const refused = this.resizeRefused.get(key);
      if (refused) Object.assign(status, { reason: status.reason || 'ResizeNotSupported', message: status.message ? `${status.message}; ${refused}` : refused });
      await this.ensureStatus(key, cv, status, false);
    }
    this.recorded.delete(cv.metadata.uid ?? key);
  }

  // ---- steps -------------------------------------------------------------------------------

  private async ensureFinalizer(cv: CStorVolume): Promise<CStorVolume> {
    const finalizers = cv.metadata.finalizers ?? [];
    if (finalizers.includes(cvFinalizer)) return cv;
    const patched = await this.metrics.observe('add_finalizer', () =>
      this.d.cvs.mergePatch(refOf(cv), { metadata: { finalizers: [...finalizers, cvFinalizer], resourceVersion: cv.metadata.resourceVersion } }),
    );
    this.log(objectKey(cv)).info('finalizer added');
    return patched;
  }

  /**
   * A served volume keeps its size and block size: the pools cannot resize a replica (they refuse
   * the OPEN of another size), so serving it again at a new size would take it offline. The
   * change is reported (Warning once, status message) and the volume stays served as it is.
   */
  private keepSize(key: string, cv: CStorVolume, served: VolumeSpec | undefined, want: VolumeSpec): VolumeSpec {
    if (!served || (served.capacity === want.capacity && served.blockSize === want.blockSize)) {
      this.resizeRefused.delete(key);
      return want;
    }
    const message = `spec.capacity ${String(cv.spec?.capacity)} (${want.capacity} bytes) differs from the served ${served.capacity} bytes: resizing is not supported; the volume stays served at ${served.capacity} bytes`;
    if (this.resizeRefused.get(key) !== message) {
      this.resizeRefused.set(key, message);
      this.log(key).warn('capacity change refused; volume kept as served', { served: served.capacity, wanted: want.capacity });
      void this.d.events.event(cv, 'Warning', 'ResizeNotSupported', message);
    }
    return { ...want, capacity: served.capacity, blockSize: served.blockSize };
  }

  /** Serves the volume with `spec`: first serve, or again with a changed replica set (or RF). */
  private async ensureServed(key: string, cv: CStorVolume, spec: VolumeSpec): Promise<boolean> {
    const cur = this.d.engine.spec(spec.name);
    if (cur && sameServedSpec(cur, spec)) return true;
    const log = this.log(key);
    try {
      if (cur) {
        await this.metrics.observe('update_replicas', async () => {
          await this.d.engine.stop(spec.name);
          await this.d.engine.serve(spec);
        });
        log.info('volume served again with a new spec', { from: cur.replicas, to: spec.replicas, capacity: spec.capacity });
        const what = cur.replicationFactor !== spec.replicationFactor ? `replicationFactor ${cur.replicationFactor} → ${spec.replicationFactor}, replicas ${cur.replicas.join(',')} → ${spec.replicas.join(',')}` : `replicas ${cur.replicas.join(',')} → ${spec.replicas.join(',')}`;
        void this.d.events.event(cv, 'Normal', 'ReplicasChanged', `volume ${spec.name} served again: ${what}`);
      } else {
        await this.metrics.observe('serve', () => this.d.engine.serve(spec));
        const clone = cv.metadata.annotations?.[cvAnnotations.snapshot];
        log.info('serving volume', { capacity: spec.capacity, replicas: spec.replicas, ...(clone ? { cloneOfSnapshot: clone } : {}) });
        void this.d.events.event(cv, 'Normal', 'Serving', `volume ${spec.name} (${spec.capacity} bytes, ${spec.replicationFactor} replicas: ${spec.replicas.join(', ')}) served`);
      }
    } catch (err) {
      const invalid = hasErrorCode(err, 'invalid');
      await this.fail(cv, { reason: invalid ? 'InvalidSpec' : 'ServeFailed', message: `cannot serve volume ${spec.name}: ${describeError(err)}`, retry: !invalid, error: invalid, cause: err });
      return false;
    }
    return true;
  }

  /** Not served yet, and its replicas cannot all be found: Init with the reason (an Event once). */
  private async waiting(key: string, cv: CStorVolume, why: string): Promise<void> {
    const message = `waiting for replicas: ${why}`;
    const uid = cv.metadata.uid ?? key;
    if (this.recorded.get(uid) !== message) {
      this.recorded.set(uid, message);
      this.log(key).info('volume waits for its replicas', { why });
      void this.d.events.event(cv, 'Normal', 'WaitingForReplicas', message);
    }
    await this.ensureStatus(key, cv, { phase: 'Init', replicaStatuses: [], reason: 'WaitingForReplicas', message }, true);
  }

  /** Patches status when it differs (volatile counters: at most once per refresh period). */
  private async ensureStatus(key: string, cv: CStorVolume, want: CvStatus, announce: boolean): Promise<void> {
    const last = this.written.get(key);
    const rv = cv.metadata.resourceVersion ?? '';
    // Our last write may not be in the cache yet: compare with it while the cache shows the version we patched.
    const cur = last && last.before === rv ? last.status : cv.status;
    const diff = statusDiff(cur, want);
    if (diff === 'same') return;
    const now = this.d.clock.now();
    if (diff === 'volatile' && last && now - last.at < (this.d.statusRefreshMs ?? 30_000)) return;
    await this.metrics.observe('patch_status', () => this.d.cvs.patchStatus(refOf(cv), statusPatch(cv.status, want, kubeTime(now))));
    this.written.set(key, { before: rv, status: want, at: now });
    const from = cur?.phase;
    if (from !== want.phase) {
      this.log(key).info('volume phase', { from: from ?? null, to: want.phase, ...(want.message ? { message: want.message } : {}) });
      if (!announce && want.phase === 'Healthy') void this.d.events.event(cv, 'Normal', 'Healthy', `volume ${cv.metadata.name} is Healthy: ${(want.replicaStatuses ?? []).length} replicas connected`);
      if (!announce && (want.phase === 'Degraded' || want.phase === 'Offline')) void this.d.events.event(cv, 'Warning', want.reason ?? want.phase, `volume ${cv.metadata.name} is ${want.phase}: ${want.message ?? ''}`);
    }
  }

  private notMine(key: string, cv: CStorVolume): void {
    this.managed.delete(key);
    this.written.delete(key);
    this.resizeRefused.delete(key);
    if (this.others.has(key)) return;
    this.others.add(key);
    this.log(key).info('CStorVolume assigned to another target; not serving it', { targetIP: cv.spec?.targetIP, advertise: this.d.advertise });
  }

  // ---- deleting ----------------------------------------------------------------------------

  /** Stops serving, then lets the CStorVolume go (deleted, or assigned to another target). */
  private async finalize(key: string, cv: CStorVolume): Promise<void> {
    const name = cv.metadata.name ?? '';
    const log = this.log(key);
    if (this.d.engine.spec(name)) {
      try {
        await this.metrics.observe('stop', () => this.d.engine.stop(name));
      } catch (err) {
        return this.fail(cv, { reason: 'StopFailed', message: `cannot stop serving volume ${name}: ${describeError(err)}`, retry: true, error: false, cause: err });
      }
      const why = cv.metadata.deletionTimestamp ? 'the CStorVolume is being deleted' : `spec.targetIP is now ${cv.spec?.targetIP ?? ''}`;
      log.info('stopped serving volume', { why });
      void this.d.events.event(cv, 'Normal', 'Stopped', `volume ${name} no longer served by this target: ${why}`);
    }
    this.managed.delete(key);
    this.written.delete(key);
    this.resizeRefused.delete(key);
    const finalizers = cv.metadata.finalizers ?? [];
    if (finalizers.includes(cvFinalizer)) {
      try {
        await this.metrics.observe('remove_finalizer', () =>
          this.d.cvs.mergePatch(refOf(cv), { metadata: { finalizers: finalizers.filter((f) => f !== cvFinalizer), resourceVersion: cv.metadata.resourceVersion } }),
        );
        log.info('finalizer removed');
      } catch (err) {
        if (!hasErrorCode(err, 'not_found')) throw err;
      }
    }
    this.recorded.delete(cv.metadata.uid ?? key);
  }

  /** The object is gone (deleted without waiting for us): stop what this process served for it. */
  private async forget(key: string): Promise<void> {
    const name = this.managed.get(key);
    this.others.delete(key);
    this.written.delete(key);
    this.resizeRefused.delete(key);
    if (name === undefined) return;
    if (this.d.engine.spec(name)) {
      await this.metrics.observe('stop', () => this.d.engine.stop(name));
      this.log(key).info('stopped serving volume: its CStorVolume is gone');
    }
    this.managed.delete(key);
  }

  // ---- problems ----------------------------------------------------------------------------

  /** Records a problem in status and as a Warning Event (once per message); throws to retry when it may heal. */
  private async fail(cv: CStorVolume, problem: VolumeProblem): Promise<void> {
    const key = objectKey(cv);
    const uid = cv.metadata.uid ?? key;
    if (this.recorded.get(uid) !== problem.message) {
      this.recorded.set(uid, problem.message);
      const entry = { reason: problem.reason, error: problem.message };
      if (problem.retry) this.log(key).warn('volume problem; retrying with backoff', entry);
      else this.log(key).error('volume problem; waiting for the CStorVolume to change', entry);
      void this.d.events.event(cv, 'Warning', problem.reason, problem.message);
    }
    if (!cv.metadata.deletionTimestamp) {
      const want: CvStatus = { phase: problem.error ? 'Error' : (cv.status?.phase ?? 'Init'), replicaStatuses: cv.status?.replicaStatuses ?? [], reason: problem.reason, message: problem.message };
      await this.ensureStatus(key, cv, want, true);
    }
    if (problem.retry) throw new VolumeRetryError(problem);
  }

  // ---- shutdown ----------------------------------------------------------------------------

  /** On a clean stop: every volume served here is reported Offline until the target is back. */
  async markOffline(): Promise<number> {
    let n = 0;
    for (const key of this.managed.keys()) {
      const cv = this.d.caches.volume(key);
      if (!cv || cv.metadata.deletionTimestamp) continue;
      const want = offlineStatus(cv.status, `target stopped; volume ${cv.metadata.name} is not served until it is back`);
      await this.d.cvs.patchStatus(refOf(cv), statusPatch(cv.status, want, kubeTime(this.d.clock.now())));
      n++;
    }
    return n;
  }

  /** Keys of the volumes this process serves for Kubernetes. */
  managedKeys(): string[] {
    return [...this.managed.keys()];
  }

  private log(key: string): Logger {
    return this.d.logger.child({ key, volume: key.slice(key.indexOf('/') + 1) });
  }
}

function refOf(cv: CStorVolume): { name: string; namespace: string } {
  return { name: cv.metadata.name ?? '', namespace: cv.metadata.namespace ?? '' };
}
