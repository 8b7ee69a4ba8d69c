// What a CStorVolume asks of this target, as pure functions over the objects:
// - whether it is assigned to this target (spec.targetIP);
// - the volume spec to serve (size from spec.capacity by the pool's own rounding rule, RF);
// - its replica addresses: CStorVolumeReplicas labelled openebs.io/persistent-volume=<pv> →
//   their pool (label cstorpool.openebs.io/name) → that CStorPool's status.address.
import { describeError } from '../../lib/errors.ts';
import { objectKey } from '../../lib/kube/keys.ts';
import { dns1123LabelProblems } from '../../lib/names.ts';
import { replicaSize } from '../../lib/quantity.ts';
import type { VolumeSpec } from '../mgmt/volume-manager.ts';
import { cvrLabels, iqnPrefix, type CStorPool, type CStorVolume, type CStorVolumeReplica } from './types.ts';

/**
 * A CStorVolume is ours when spec.targetIP is our advertised host. One without a targetIP is
 * served by every target that sees it: deployments run one target (deploy/40-cstor-target.yaml),
 * and the CAS templates always write it.
 */
export function isAssigned(cv: CStorVolume, advertise: string): boolean {
  const ip = cv.spec?.targetIP?.trim();
  return !ip || ip === advertise;
}

/** What a valid CStorVolume asks for (replicas still to be resolved). */
export interface DesiredVolume {
  name: string;
  capacity: number;
  replicationFactor: number;
  blockSize: number;
}

/** Validates a CStorVolume, naming every problem. */
export function desiredVolume(cv: CStorVolume, blockSize: number): DesiredVolume | { problems: string[] } {
  const problems: string[] = [];
  const name = cv.metadata.name ?? '';
  const nameProblems = dns1123LabelProblems(name);
  if (nameProblems.length > 0) problems.push(`the name ${JSON.stringify(name)} cannot be a volume name: ${nameProblems.join('; ')}`);
  const spec = cv.spec ?? {};
  let capacity = 0;
  try {
    capacity = replicaSize(spec.capacity, blockSize);
  } catch (err) {
    problems.push(`spec.capacity: ${describeError(err)}`);
  }
  const rfRaw = spec.replicationFactor;
  const rf = typeof rfRaw === 'string' && /^\d+$/.test(rfRaw.trim()) ? Number(rfRaw) : rfRaw;
  if (typeof rf !== 'number' || !Number.isInteger(rf) || rf < 1 || rf > 9) problems.push(`spec.replicationFactor ${JSON.stringify(rfRaw ?? null)} must be an integer in 1..9`);
  if (spec.iqn !== undefined && spec.iqn !== `${iqnPrefix}${name}`) problems.push(`spec.iqn "${spec.iqn}" must be "${iqnPrefix}${name}" (the target names its iSCSI targets after the volume)`);
  if (problems.length > 0) return { problems };
  return { name, capacity, replicationFactor: rf as number, blockSize };
}

export type ReplicaResolution = { addresses: string[] } | { waiting: string };

/**
 * The replica addresses of volume `pv`, ordered by pool name (a stable order, so an unchanged set
 * never looks changed), or why they cannot all be known yet.
 */
export function resolveReplicas(pv: string, rf: number, cvrs: readonly CStorVolumeReplica[], poolByName: (name: string) => CStorPool | undefined): ReplicaResolution {
  const live = cvrs
    .filter((c) => c.metadata.labels?.[cvrLabels.persistentVolume] === pv && !c.metadata.deletionTimestamp)
    .sort((a, b) => (a.metadata.labels?.[cvrLabels.pool] ?? '').localeCompare(b.metadata.labels?.[cvrLabels.pool] ?? '') || (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''));
  if (live.length < rf) return { waiting: `${live.length} of ${rf} CStorVolumeReplicas of ${pv} exist` };
  if (live.length > rf) return { waiting: `${live.length} CStorVolumeReplicas of ${pv} (${live.map((c) => c.metadata.name).join(', ')}) for replicationFactor ${rf}` };
  const addresses: string[] = [];
  const missing: string[] = [];
  for (const cvr of live) {
    const poolName = cvr.metadata.labels?.[cvrLabels.pool];
    if (!poolName) {
      missing.push(`CStorVolumeReplica ${objectKey(cvr)} has no ${cvrLabels.pool} label`);
      continue;
    }
    const pool = poolByName(poolName);
    if (!pool) missing.push(`CStorPool ${poolName} (of ${cvr.metadata.name}) is not registered`);
    else if (!pool.status?.address) missing.push(`CStorPool ${poolName} has no status.address yet`);
    else addresses.push(pool.status.address);
  }
  if (missing.length > 0) return { waiting: missing.join('; ') };
  if (new Set(addresses).size !== addresses.length) return { waiting: `replicas of ${pv} share a pool address (${addresses.join(', ')})` };
  return { addresses };
}

/** True when the served spec already is what is wanted (replicas compared as a set). */
export function sameServedSpec(cur: VolumeSpec, want: VolumeSpec): boolean {
  if (cur.capacity !== want.capacity || cur.replicationFactor !== want.replicationFactor || cur.blockSize !== want.blockSize) return false;
  const a = new Set(cur.replicas);
  return a.size === want.replicas.length && want.replicas.every((r) => a.has(r));
}
