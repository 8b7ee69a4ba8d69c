// The logic of the external-provisioner core (the wiring is controller.ts). Two idempotent
// reconciles over informer caches:
//
// syncClaim(ns/name), for a claim that is ours (class provisioner = ours, the storage-provisioner
// annotation names us, spec.volumeName empty, not being deleted):
//   PV `pvc-<uid>` exists already (a retry, a restart) → done;
//   else Event Provisioning → provisioner.provision (idempotent on the PV name) → create the PV
//   (already-exists is success) → Event ProvisioningSucceeded.
//   A failure → Warning Event ProvisioningFailed with the message, then throw: the queue retries
//   the key with per-key backoff.
// syncVolume(name), for a PV provisioned by us with reclaim Delete that is Released:
//   provisioner.delete (the backend volume) → delete the PV (precondition: its uid).
//
// Claim finalizer (claim-finalizer.ts, when a claimApi is given): added before the backend call,
// removed once the PV exists; a claim deleted before its PV was written keeps it until the
// backend volume pvc-<uid> is deleted (finalizeClaim). So a claim deleted while the provisioner is
// down between the backend create and the PV write never orphans the backend volume.
//
// Invariants: one claim ↔ one PV name (pvc-<claim uid>), so a crash between the backend volume
// and the PV, or two retries, never make a second volume; the PV is deleted only after its
// backend volume is gone, so a failure never leaves a volume without a PV to retry it from;
// while the finalizer is held, the claim (and so the name pvc-<uid>) outlives the volume.
import { CstorError, describeError, hasErrorCode, isCstorError } from '../errors.ts';
import type { ResourceClient } from '../kube/resource-client.ts';
import type { EventType, PersistentVolume, PersistentVolumeClaim } from '../kube/types/core.ts';
import type { KubeObject } from '../kube/types/meta.ts';
import type { StorageClass } from '../kube/types/storage.ts';
import type { Logger } from '../logger.ts';
import type { OperationMetrics } from '../metrics.ts';
import { hasProvisioningFinalizer, setProvisioningFinalizer, type ClaimApi } from './claim-finalizer.ts';
import { buildPersistentVolume, pvNameFor } from './pv-builder.ts';
import { annotations, eventReasons, type Provisioner } from './types.ts';

export interface EventSink {
  event(subject: KubeObject, type: EventType, reason: string, message: string): Promise<void>;
}

export interface ProvisionerSyncOptions {
  provisioner: Provisioner;
  /** Claims by `ns/name` (the claim informer's cache). */
  claims: { get(key: string): PersistentVolumeClaim | undefined };
  /** Classes by name (the class informer's cache). */
  classes: { get(name: string): StorageClass | undefined };
  /** PVs by name (the PV informer's cache). */
  volumes: { get(name: string): PersistentVolume | undefined };
  /** The API, for the authoritative "does the PV exist" read and the writes. */
  pvApi: Pick<ResourceClient<PersistentVolume>, 'get' | 'create' | 'delete'>;
  /** The claims API, for the provisioning finalizer; without it claims get none (unit tests of a provisioner). */
  claimApi?: ClaimApi;
  events: EventSink;
  logger: Logger;
  metrics?: OperationMetrics;
}

export type ClaimVerdict =
  | { ours: false; why: string }
  | { ours: true; storageClass: StorageClass | undefined; className: string };

/** The claim's storage-provisioner annotation names us. */
function namesUs(claim: PersistentVolumeClaim, provisionerName: string): boolean {
  const ann = claim.metadata.annotations ?? {};
  return (ann[annotations.storageProvisionerBeta] ?? ann[annotations.storageProvisioner]) === provisionerName;
}

function claimRef(claim: PersistentVolumeClaim): { namespace: string; name: string; uid: string } {
  return { namespace: claim.metadata.namespace ?? '', name: claim.metadata.name ?? '', uid: claim.metadata.uid ?? '' };
}

/** The PV a claim would have had (what Provisioner.delete needs to find and scope its volume). */
function unwrittenPv(claim: PersistentVolumeClaim, pvName: string, provisionerName: string, className: string): PersistentVolume {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: pvName, annotations: { [annotations.provisionedBy]: provisionerName } },
    spec: {
      persistentVolumeReclaimPolicy: 'Delete',
      storageClassName: className,
      claimRef: { kind: 'PersistentVolumeClaim', apiVersion: 'v1', namespace: claim.metadata.namespace ?? '', name: claim.metadata.name ?? '', uid: claim.metadata.uid ?? '' },
    },
  };
}

/** Is this claim for us? (DESIGN.md §3: the annotation names us and spec.volumeName is empty; and its class is ours.) */
export function judgeClaim(claim: PersistentVolumeClaim, provisionerName: string, classes: ProvisionerSyncOptions['classes']): ClaimVerdict {
  const ann = claim.metadata.annotations ?? {};
  const named = ann[annotations.storageProvisionerBeta] ?? ann[annotations.storageProvisioner];
  if (named !== provisionerName) return { ours: false, why: named ? `annotated for ${named}` : 'no storage-provisioner annotation' };
  if (claim.spec.volumeName) return { ours: false, why: `bound to ${claim.spec.volumeName}` };
  if (claim.metadata.deletionTimestamp) return { ours: false, why: 'being deleted' };
  const className = claim.spec.storageClassName ?? '';
  if (!className) return { ours: false, why: 'no storageClassName' };
  const storageClass = classes.get(className);
  // The annotation names us but the class is not (yet) in the cache: ours, and an error to report.
  if (storageClass && storageClass.provisioner !== provisionerName) return { ours: false, why: `class ${className} is for ${storageClass.provisioner}` };
  return { ours: true, storageClass, className };
}

function requestedStorage(claim: PersistentVolumeClaim): string | undefined {
  return claim.spec.resources?.requests?.['storage'];
}

export class ProvisionerSync {
  private readonly o: ProvisionerSyncOptions;
  private readonly logger: Logger;

  constructor(options: ProvisionerSyncOptions) {
    this.o = options;
    this.logger = options.logger;
  }

  get provisionerName(): string {
    return this.o.provisioner.name;
  }

  async syncClaim(key: string): Promise<void> {
    const claim = this.o.claims.get(key);
    if (!claim) return;
    if (this.o.claimApi && hasProvisioningFinalizer(claim) && namesUs(claim, this.provisionerName)) {
      // Ours to release: deleted (maybe before its PV was written), or bound meanwhile.
      if (claim.metadata.deletionTimestamp) return this.finalizeClaim(claim);
      if (claim.spec.volumeName) {
        await this.releaseClaim(claim);
        return;
      }
    }
    const verdict = judgeClaim(claim, this.provisionerName, this.o.classes);
    if (!verdict.ours) return;
    const log = this.logger.child({ key });
    const pvName = pvNameFor(claim);

    const existing = await this.getPv(pvName);
    if (existing) {
      log.debug('PV exists already', { pv: pvName });
      await this.releaseClaim(claim);
      return;
    }
    const storageClass = verdict.storageClass;
    if (!storageClass) {
      await this.fail(claim, `storageclass.storage.k8s.io "${verdict.className}" not found`);
      throw new CstorError('not_found', `claim ${key}: storage class ${verdict.className} not found`);
    }
    if (claim.spec.selector && Object.keys(claim.spec.selector).length > 0) {
      // Like the external-storage library: dynamic provisioning cannot honour a selector. Not retried.
      await this.fail(claim, 'claim Selector is not supported');
      return;
    }
    const capacity = requestedStorage(claim);
    if (!capacity) {
      await this.fail(claim, 'the claim has no spec.resources.requests.storage');
      return;
    }

    if (this.o.claimApi) {
      // Before the backend call: from here on, deleting the claim waits for us (finalizeClaim).
      const held = await setProvisioningFinalizer(this.o.claimApi, claimRef(claim), true);
      if (!held) return; // gone (or replaced by another claim of that name) meanwhile
    }
    await this.o.events.event(claim, 'Normal', eventReasons.provisioning, `External provisioner is provisioning volume for claim "${key}"`);
    const run = async (): Promise<PersistentVolume> => {
      const volume = await this.o.provisioner.provision({ claim, storageClass, pvName, capacity });
      const pv = buildPersistentVolume({ claim, storageClass, provisionerName: this.provisionerName, pvName, capacity, volume });
      return this.createPv(pv);
    };
    let pv: PersistentVolume;
    try {
      pv = this.o.metrics ? await this.o.metrics.observe('provision', run) : await run();
    } catch (err) {
      const message = isCstorError(err) ? err.message : describeError(err);
      await this.fail(claim, `failed to provision volume with StorageClass "${storageClass.metadata.name ?? ''}": ${message}`);
      throw err;
    }
    log.info('provisioned', { pv: pv.metadata.name });
    await this.o.events.event(claim, 'Normal', eventReasons.provisioningSucceeded, `Successfully provisioned volume ${pvName}`);
    await this.releaseClaim(claim);
  }

  /**
   * A claim with our finalizer is being deleted. Its PV exists: the PV's reclaim policy owns the
   * volume now, just release the claim. No PV: the backend volume pvc-<uid> may exist without
   * anything naming it (a crash between the backend create and the PV write): delete it (gone
   * already is success), then release the claim.
   */
  private async finalizeClaim(claim: PersistentVolumeClaim): Promise<void> {
    const key = `${claim.metadata.namespace}/${claim.metadata.name}`;
    const pvName = pvNameFor(claim);
    if (!(await this.getPv(pvName))) {
      const className = claim.spec.storageClassName ?? '';
      const run = (): Promise<void> => this.o.provisioner.delete(unwrittenPv(claim, pvName, this.provisionerName, className));
      try {
        await (this.o.metrics ? this.o.metrics.observe('delete', run) : run());
      } catch (err) {
        const message = isCstorError(err) ? err.message : describeError(err);
        this.logger.warn('deleting the volume of a deleted claim failed', { key, pv: pvName, error: message });
        await this.o.events.event(claim, 'Warning', eventReasons.volumeFailedDelete, `the claim was deleted before its PV was written; deleting its volume ${pvName} failed: ${message}`);
        throw err;
      }
      this.logger.info('deleted the volume of a claim deleted before its PV was written', { key, pv: pvName });
      await this.o.events.event(claim, 'Normal', eventReasons.volumeDeleted, `the claim was deleted before its PV was written: deleted its volume ${pvName}`);
    }
    await this.releaseClaim(claim);
  }

  /** Removes our finalizer from the claim, if it has it (in the cache or live). */
  private async releaseClaim(claim: PersistentVolumeClaim): Promise<void> {
    if (!this.o.claimApi) return;
    await setProvisioningFinalizer(this.o.claimApi, claimRef(claim), false);
  }

  async syncVolume(name: string): Promise<void> {
    const pv = this.o.volumes.get(name);
    if (!pv || !this.shouldDelete(pv)) return;
    const log = this.logger.child({ pv: name });
    const run = async (): Promise<void> => {
      await this.o.provisioner.delete(pv);
      try {
        await this.o.pvApi.delete({ name }, pv.metadata.uid ? { preconditions: { uid: pv.metadata.uid } } : {});
      } catch (err) {
        if (!hasErrorCode(err, 'not_found')) throw err;
      }
    };
    try {
      await (this.o.metrics ? this.o.metrics.observe('delete', run) : run());
    } catch (err) {
      await this.o.events.event(pv, 'Warning', eventReasons.volumeFailedDelete, isCstorError(err) ? err.message : describeError(err));
      throw err;
    }
    log.info('deleted released volume and its PV');
  }

  /** Released, reclaim Delete, provisioned by us. */
  shouldDelete(pv: PersistentVolume): boolean {
    return (
      pv.status?.phase === 'Released' &&
      pv.spec.persistentVolumeReclaimPolicy === 'Delete' &&
      pv.metadata.annotations?.[annotations.provisionedBy] === this.provisionerName
    );
  }

  private async getPv(name: string): Promise<PersistentVolume | undefined> {
    try {
      return await this.o.pvApi.get({ name });
    } catch (err) {
      if (hasErrorCode(err, 'not_found')) return undefined;
      throw err;
    }
  }

  /** Creates the PV; a PV of that name already there (a racing retry) is success. A few quick tries. */
  private async createPv(pv: PersistentVolume): Promise<PersistentVolume> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.o.pvApi.create(pv);
      } catch (err) {
        if (hasErrorCode(err, 'already_exists')) return pv;
        if (attempt >= 3 || !(isCstorError(err) && err.retryable)) {
          throw new CstorError(isCstorError(err) ? err.code : 'internal', `the volume was made but saving PV ${pv.metadata.name} failed: ${describeError(err)}`, { cause: err });
        }
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  }

  private fail(claim: PersistentVolumeClaim, message: string): Promise<void> {
    this.logger.warn('provisioning failed', { key: `${claim.metadata.namespace}/${claim.metadata.name}`, error: message });
    return this.o.events.event(claim, 'Warning', eventReasons.provisioningFailed, message);
  }
}
