// The contract between the shared external-provisioner core and one provisioner (the
// volume-provisioner, the snapshot-promoter): the core picks claims and PVs, records Events,
// retries and writes the PV; a Provisioner only makes and removes backend volumes.
import type { PersistentVolume, PersistentVolumeClaim } from '../kube/types/core.ts';
import type { StorageClass } from '../kube/types/storage.ts';

/** Annotations the core reads and writes (as Kubernetes and the external-storage library name them). */
export const annotations = {
  /** Set by the PV controller on claims of an external provisioner: the provisioner's name. */
  storageProvisionerBeta: 'volume.beta.kubernetes.io/storage-provisioner',
  storageProvisioner: 'volume.kubernetes.io/storage-provisioner',
  /** Set by us on every PV we create: our name. */
  provisionedBy: 'pv.kubernetes.io/provisioned-by',
} as const;

/** Event reasons on claims (DESIGN.md §3) and on PVs. */
export const eventReasons = {
  provisioning: 'Provisioning',
  provisioningSucceeded: 'ProvisioningSucceeded',
  provisioningFailed: 'ProvisioningFailed',
  volumeFailedDelete: 'VolumeFailedDelete',
  volumeDeleted: 'VolumeDeleted',
} as const;

export interface ProvisionRequest {
  claim: PersistentVolumeClaim;
  storageClass: StorageClass;
  /** The PV (and backend volume) name: `pvc-<claim uid>`, the same on every retry. */
  pvName: string;
  /** The claim's requested storage (spec.resources.requests.storage). */
  capacity: string;
  signal?: AbortSignal;
}

/** The parts of the PV a provisioner decides; the core adds name, claimRef, class, reclaim policy. */
export interface ProvisionedVolume {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Default: the claim's request. */
  capacity?: string;
  /** The volume source and any other spec field (e.g. `{iscsi: {...}}`); merged over the core's fields. */
  spec: Partial<PersistentVolume['spec']>;
}

export interface Provisioner {
  /** The provisioner name classes name, e.g. `openebs.io/provisioner-iscsi`. */
  readonly name: string;
  /**
   * Makes the backend volume `request.pvName` (idempotent: called again after a crash or a failed
   * PV write, it must answer for the volume it made, never make a second). Throws a CstorError
   * whose message becomes the ProvisioningFailed Event.
   */
  provision(request: ProvisionRequest): Promise<ProvisionedVolume>;
  /** Removes the backend volume of a released PV (idempotent: gone already is success). */
  delete(pv: PersistentVolume): Promise<void>;
}
