// What a promoter claim clones from, checked step by step before any backend call:
//
//   claim annotation snapshot.alpha.kubernetes.io/snapshot: <name>
//     → VolumeSnapshot <claim ns>/<name>   (same namespace only; must exist, not be deleting, be Ready)
//     → VolumeSnapshotData spec.snapshotDataName   (must exist and point back at this snapshot)
//         spec.openebsVolume.snapshotId  = the backend snapshot name
//         spec.openebsVolume.capacity    = the snapshot's size (else the source PV's)
//         spec.persistentVolumeRef.name  = the source PV = the source backend volume
//     → source PV: its StorageClass (label openebs.io/storageclass, else spec.storageClassName)
//       and its filesystem (spec.iscsi.fsType)
//   and the claim's request must be >= the snapshot's size.
//
// Every refusal is a CstorError whose message names the problem (it becomes the claim's
// ProvisioningFailed Event): `not_found` and `not_ready` for what may still appear (retried),
// `invalid` for what only an edit of the claim or snapshot fixes.
import { CstorError, hasErrorCode } from '../lib/errors.ts';
import type { PersistentVolume, PersistentVolumeClaim } from '../lib/kube/types/core.ts';
import { snapshotAnnotation, type VolumeSnapshot, type VolumeSnapshotData } from '../lib/kube/types/volume-snapshot.ts';
import { dns1123SubdomainProblems } from '../lib/names.ts';
import { tryQuantityBytes } from '../lib/quantity.ts';

/** The reads the promoter needs; undefined means "not found". */
export interface CloneSourceReads {
  getSnapshot(namespace: string, name: string): Promise<VolumeSnapshot | undefined>;
  /** Names of the VolumeSnapshots in a namespace (only read to suggest a near name after a miss). */
  listSnapshotNames(namespace: string): Promise<string[]>;
  getSnapshotData(name: string): Promise<VolumeSnapshotData | undefined>;
  getVolume(name: string): Promise<PersistentVolume | undefined>;
}

export interface CloneSource {
  snapshot: VolumeSnapshot;
  data: VolumeSnapshotData;
  /** `<ns>/<name>` of the VolumeSnapshot, for messages. */
  snapshotKey: string;
  /** The backend snapshot name (VolumeSnapshotData spec.openebsVolume.snapshotId). */
  snapshotId: string;
  /** The source PV name, which is the source backend volume name. */
  sourceVolume: string;
  /** The source volume's StorageClass ('' when the PV names none). */
  sourceClass: string;
  /** The source volume's filesystem (the clone has the same one). */
  fsType: string;
  /** The snapshot's size as written on the VolumeSnapshotData (or the source PV). */
  snapshotCapacity: string;
}

const sourceClassLabel = 'openebs.io/storageclass';

/** The snapshot name a claim's annotation names (same namespace), or a refusal naming the problem. */
export function annotatedSnapshotName(claim: PersistentVolumeClaim): string {
  const claimNs = claim.metadata.namespace ?? '';
  const raw = claim.metadata.annotations?.[snapshotAnnotation];
  if (raw === undefined) {
    throw new CstorError('invalid', `the claim has no annotation ${snapshotAnnotation}: the snapshot-promoter only makes volumes from a VolumeSnapshot named there`);
  }
  let name = raw.trim();
  if (!name) throw new CstorError('invalid', `the claim's annotation ${snapshotAnnotation} is empty: it must name a VolumeSnapshot in namespace ${claimNs}`);
  const slash = name.indexOf('/');
  if (slash >= 0) {
    const ns = name.slice(0, slash);
    if (ns !== claimNs) {
      throw new CstorError(
        'invalid',
        `the claim's annotation ${snapshotAnnotation} "${raw}" names a VolumeSnapshot in namespace ${ns || '(empty)'}: cross-namespace clones are not allowed; the VolumeSnapshot must be in the claim's namespace ${claimNs}`,
      );
    }
    // "<claim ns>/<name>" says the same as "<name>": accepted.
    name = name.slice(slash + 1);
  }
  const problems = dns1123SubdomainProblems(name);
  if (problems.length > 0) {
    throw new CstorError('invalid', `the claim's annotation ${snapshotAnnotation} "${raw}" is not a valid VolumeSnapshot name: ${problems.join('; ')}`);
  }
  return name;
}

/** Levenshtein distance, bounded: names longer than 253 never reach here. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/** The closest existing name to a misspelt one (distance ≤ 2, or ≤ 1 for short names), if any. */
export function nearestName(wanted: string, names: readonly string[]): string | undefined {
  const limit = wanted.length <= 4 ? 1 : 2;
  let best: { name: string; d: number } | undefined;
  for (const n of names) {
    const d = editDistance(wanted, n);
    if (d <= limit && (!best || d < best.d)) best = { name: n, d };
  }
  return best?.name;
}

function readyState(snapshot: VolumeSnapshot): { ready: boolean; describe: string } {
  const conditions = snapshot.status?.conditions ?? [];
  if (conditions.some((c) => c.type === 'Ready' && c.status === 'True')) return { ready: true, describe: 'Ready' };
  const last = conditions[conditions.length - 1];
  if (!last) return { ready: false, describe: 'no condition yet' };
  const why = [last.reason, last.message].filter(Boolean).join(': ');
  return { ready: false, describe: `${last.type}${why ? ` (${why})` : ''}` };
}

export interface ResolveOptions {
  claim: PersistentVolumeClaim;
  /** The claim's request (spec.resources.requests.storage). */
  requested: string;
  reads: CloneSourceReads;
}

export async function resolveCloneSource(o: ResolveOptions): Promise<CloneSource> {
  const ns = o.claim.metadata.namespace ?? '';
  const name = annotatedSnapshotName(o.claim);
  const key = `${ns}/${name}`;
  const requestedBytes = tryQuantityBytes(o.requested);
  if (requestedBytes === undefined) throw new CstorError('invalid', `the claim's requested storage "${o.requested}" is not a quantity`);

  const snapshot = await o.reads.getSnapshot(ns, name);
  if (!snapshot) {
    const near = nearestName(name, await o.reads.listSnapshotNames(ns).catch(() => []));
    throw new CstorError('not_found', `VolumeSnapshot ${key} not found${near ? ` (did you mean "${near}"?)` : ''}`, { retryable: true });
  }
  if (snapshot.metadata.deletionTimestamp) throw new CstorError('invalid', `VolumeSnapshot ${key} is being deleted: it cannot be cloned`);
  const state = readyState(snapshot);
  if (!state.ready) throw new CstorError('not_ready', `VolumeSnapshot ${key} is not Ready: ${state.describe}; waiting for it`);
  const dataName = snapshot.spec.snapshotDataName;
  if (!dataName) throw new CstorError('not_ready', `VolumeSnapshot ${key} is not bound to a VolumeSnapshotData yet (spec.snapshotDataName is empty); waiting for it`);

  const data = await o.reads.getSnapshotData(dataName);
  if (!data) throw new CstorError('not_found', `VolumeSnapshotData ${dataName} of VolumeSnapshot ${key} not found`, { retryable: true });
  // It must point back at exactly this VolumeSnapshot (namespace, name AND uid): spec.snapshotDataName
  // is editable, and a VolumeSnapshotData (cluster-scoped) of another namespace, of an earlier
  // snapshot of the same name, or one without a reference must never be cloned through it.
  const ref = data.spec.volumeSnapshotRef?.name;
  const uid = snapshot.metadata.uid ?? '';
  if (ref !== `${key}-${uid}`) {
    throw new CstorError(
      'invalid',
      ref
        ? `VolumeSnapshotData ${dataName} belongs to VolumeSnapshot ${ref}, not to ${key} (uid ${uid})`
        : `VolumeSnapshotData ${dataName} names no VolumeSnapshot (spec.volumeSnapshotRef.name is empty): it is not the data of ${key} (uid ${uid})`,
    );
  }
  const snapshotId = data.spec.openebsVolume?.snapshotId;
  if (!snapshotId) throw new CstorError('invalid', `VolumeSnapshotData ${dataName} of VolumeSnapshot ${key} has no spec.openebsVolume.snapshotId: it is not a cStor snapshot`);
  const sourceVolume = data.spec.persistentVolumeRef?.name;
  if (!sourceVolume) throw new CstorError('invalid', `VolumeSnapshotData ${dataName} of VolumeSnapshot ${key} has no spec.persistentVolumeRef.name: the source volume is unknown`);

  const pv = await o.reads.getVolume(sourceVolume);
  if (!pv) throw new CstorError('not_found', `source PersistentVolume ${sourceVolume} of VolumeSnapshot ${key} not found`, { retryable: true });

  const snapshotCapacity = data.spec.openebsVolume?.capacity || pv.spec.capacity?.['storage'] || '';
  const snapshotBytes = snapshotCapacity ? tryQuantityBytes(snapshotCapacity) : undefined;
  if (snapshotBytes === undefined) {
    throw new CstorError('invalid', `the size of VolumeSnapshot ${key} is unknown: neither VolumeSnapshotData ${dataName} nor PV ${sourceVolume} gives a valid capacity ("${snapshotCapacity}")`);
  }
  if (requestedBytes < snapshotBytes) {
    throw new CstorError('invalid', `requested ${o.requested} is smaller than snapshot ${name} (${snapshotCapacity}): a clone must be at least as large as its snapshot`);
  }
  return {
    snapshot,
    data,
    snapshotKey: key,
    snapshotId,
    sourceVolume,
    sourceClass: pv.metadata.labels?.[sourceClassLabel] || pv.spec.storageClassName || '',
    fsType: pv.spec.iscsi?.fsType || 'ext4',
    snapshotCapacity,
  };
}

/** undefined for a `not_found` CstorError, the value otherwise (the adapters' helper). */
export async function orUndefined<T>(read: Promise<T>): Promise<T | undefined> {
  try {
    return await read;
  } catch (err) {
    if (hasErrorCode(err, 'not_found')) return undefined;
    throw err;
  }
}
