// Names, ids, labels, annotations and conditions of the legacy snapshot API (DESIGN.md §3).
// Pure functions: the same input always gives the same name, which is what makes every
// reconcile step safe to repeat.
import { createHash } from 'node:crypto';
import type { PersistentVolume } from '../lib/kube/types/core.ts';
import type { SnapshotCondition, SnapshotConditionType, VolumeSnapshot } from '../lib/kube/types/volume-snapshot.ts';
import { kubeTime } from '../lib/kube/time-format.ts';
import { dns1123LabelProblems } from '../lib/names.ts';

/** Our finalizer on a VolumeSnapshot: held while a backend snapshot or VolumeSnapshotData may exist. */
export const snapshotFinalizer = 'volumesnapshot.external-storage.k8s.io/snapshot-protection';

/** The snapshot id, computed once and persisted before the backend is called. */
export const snapshotIdAnnotation = 'snapshot.cstor.openebs.io/snapshot-id';

/** On a VolumeSnapshotData: which VolumeSnapshot (namespace, name, uid) it belongs to. */
export const dataOwnerAnnotations = {
  namespace: 'snapshot.cstor.openebs.io/snapshot-namespace',
  name: 'snapshot.cstor.openebs.io/snapshot-name',
  uid: 'snapshot.cstor.openebs.io/snapshot-uid',
} as const;

/** On a VolumeSnapshotData: the m-apiserver namespace the backend snapshot was created with. */
export const dataBackendNamespaceAnnotation = 'snapshot.cstor.openebs.io/backend-namespace';

export const successMessage = 'Snapshot created successfully';

/** The IQN prefix of cStor volumes (DESIGN.md §3, §6). */
export const cstorIqnPrefix = 'iqn.2016-09.com.openebs.cstor:';

/** `<pvName>_<snapshotName>_<unixNanos>`. */
export function snapshotId(pvName: string, snapshotName: string, unixNanos: bigint): string {
  return `${pvName}_${snapshotName}_${unixNanos.toString()}`;
}

/** m-apiserver's and the pools' limit on a snapshot name (maya-apiserver/flows/cas-flows.ts checkSnapshotName). */
export const maxSnapshotIdLength = 253;

/** Digits of a unix-nanosecond timestamp (until the year 2286). */
const nanosDigits = 19;

const backendSnapshotNamePattern = /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/;

/**
 * Why m-apiserver would refuse a snapshot of PV `pvName` named after VolumeSnapshot
 * `snapshotName` (its id too long, or the PV name not a volume name), or undefined. Checked
 * before an id is stored: an id m-apiserver refuses could never be created, and its delete
 * would be refused forever too.
 */
export function backendNameProblem(pvName: string, snapshotName: string): string | undefined {
  const volumeProblems = dns1123LabelProblems(pvName);
  if (volumeProblems.length > 0) return `PersistentVolume name "${pvName}" is not a cStor volume name (${volumeProblems.join('; ')})`;
  const length = pvName.length + snapshotName.length + 2 + nanosDigits;
  if (length > maxSnapshotIdLength) {
    return `the snapshot id "<pv>_<snapshot name>_<unix nanos>" would be ${length} characters, more than the ${maxSnapshotIdLength} the backend accepts: use a VolumeSnapshot name of at most ${Math.max(0, maxSnapshotIdLength - pvName.length - 2 - nanosDigits)} characters`;
  }
  return undefined;
}

/** True when m-apiserver could hold a snapshot `snapshotId` of volume `volumeName` (else it never made one). */
export function isBackendSnapshotName(snapshotId: string, volumeName: string): boolean {
  return snapshotId.length <= maxSnapshotIdLength && backendSnapshotNamePattern.test(snapshotId) && dns1123LabelProblems(volumeName).length === 0;
}

/** The `<unixNanos>` part of a snapshot id (for the Timestamp label), or undefined. */
export function nanosOfSnapshotId(id: string): string | undefined {
  const m = /_(\d+)$/.exec(id);
  return m?.[1];
}

/**
 * A UUID (version-5 layout) derived from the VolumeSnapshot's uid: the VolumeSnapshotData of a
 * snapshot always has the same name, so a retry finds it instead of making a second one.
 */
export function uuidFromUid(uid: string): string {
  const h = createHash('sha1').update(`volumesnapshotdata:${uid}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** `k8s-volume-snapshot-<uuid>`, deterministic per VolumeSnapshot uid. */
export function snapshotDataName(snapshotUid: string): string {
  return `k8s-volume-snapshot-${uuidFromUid(snapshotUid)}`;
}

/** `<ns>/<name>-<uid>`: VolumeSnapshotData.spec.volumeSnapshotRef.name. */
export function volumeSnapshotRefName(snap: VolumeSnapshot): string {
  return `${snap.metadata.namespace ?? ''}/${snap.metadata.name ?? ''}-${snap.metadata.uid ?? ''}`;
}

/** True when the PV is a cStor volume served over iSCSI (ours). */
export function isCstorVolume(pv: PersistentVolume): boolean {
  const iscsi = pv.spec.iscsi;
  if (!iscsi) return false;
  return iscsi.iqn.startsWith(cstorIqnPrefix) || pv.metadata.labels?.['openebs.io/cas-type'] === 'cstor';
}

export function hasFinalizer(snap: { metadata?: { finalizers?: string[] } }, finalizer = snapshotFinalizer): boolean {
  return snap.metadata?.finalizers?.includes(finalizer) ?? false;
}

/** The condition that is True (the snapshot's current state), if any. */
export function currentCondition(snap: { status?: { conditions?: SnapshotCondition[] } }): SnapshotCondition | undefined {
  return snap.status?.conditions?.find((c) => c.status === 'True');
}

export function isReady(snap: VolumeSnapshot): boolean {
  return currentCondition(snap)?.type === 'Ready';
}

/** A True condition of `type`; the transition time is kept when the same condition is already there. */
export function condition(type: SnapshotConditionType, reason: string, message: string, nowMs: number, previous?: SnapshotCondition): SnapshotCondition {
  const same = previous && previous.type === type && previous.status === 'True';
  return { type, status: 'True', lastTransitionTime: same && previous.lastTransitionTime ? previous.lastTransitionTime : kubeTime(nowMs), reason, message };
}

/** True when `snap` already shows exactly this condition (no write, no Event needed). */
export function showsCondition(snap: { status?: { conditions?: SnapshotCondition[] } }, type: SnapshotConditionType, reason: string, message: string): boolean {
  const c = currentCondition(snap);
  return c !== undefined && c.type === type && c.reason === reason && c.message === message;
}

/** Splits spec.persistentVolumeClaimName: "claim" or "namespace/claim" (the latter is cross-namespace unless it names the snapshot's own). */
export function parseClaimRef(value: string, snapshotNamespace: string): { namespace: string; name: string } | { crossNamespace: string } | undefined {
  if (!value) return undefined;
  const slash = value.indexOf('/');
  if (slash < 0) return { namespace: snapshotNamespace, name: value };
  const ns = value.slice(0, slash);
  const name = value.slice(slash + 1);
  if (ns !== snapshotNamespace) return { crossNamespace: ns };
  return name ? { namespace: ns, name } : undefined;
}
