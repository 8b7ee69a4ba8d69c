// The replication rules of DESIGN.md §6 (as istgt does them), as pure functions of counts, so
// they are tested table-driven and the engine never re-derives them inline.

export const volumePhases = ['Init', 'Healthy', 'Degraded', 'Offline'] as const;
export type VolumePhase = (typeof volumePhases)[number];

/** CF = floor(RF/2)+1. */
export function consistencyFactor(replicationFactor: number): number {
  return Math.floor(replicationFactor / 2) + 1;
}

/** max(RF-CF+1, CF): the replica count that, without a healthy majority, still intersects every write quorum. */
export function degradedQuorum(replicationFactor: number): number {
  const cf = consistencyFactor(replicationFactor);
  return Math.max(replicationFactor - cf + 1, cf);
}

/** RF-CF+1: any set this large intersects every set of CF replicas (so it holds every acknowledged write). */
export function intersectingCount(replicationFactor: number): number {
  return replicationFactor - consistencyFactor(replicationFactor) + 1;
}

/** Ready for IO: (healthy+degraded >= CF && healthy >= 1) || healthy+degraded >= max(RF-CF+1, CF). */
export function isReady(replicationFactor: number, healthy: number, degraded: number): boolean {
  const cf = consistencyFactor(replicationFactor);
  const total = healthy + degraded;
  return (total >= cf && healthy >= 1) || total >= degradedQuorum(replicationFactor);
}

/** Offline if not ready; Healthy if healthy >= CF; else Degraded. `everReady` false → Init instead of Offline. */
export function phaseOf(replicationFactor: number, healthy: number, degraded: number, everReady = true): VolumePhase {
  if (!isReady(replicationFactor, healthy, degraded)) return everReady ? 'Offline' : 'Init';
  return healthy >= consistencyFactor(replicationFactor) ? 'Healthy' : 'Degraded';
}

/** A write (or sync) is acknowledged when healthy OKs >= CF or total OKs >= max(RF-CF+1, CF). */
export function isAcked(replicationFactor: number, healthyOk: number, totalOk: number): boolean {
  return healthyOk >= consistencyFactor(replicationFactor) || totalOk >= degradedQuorum(replicationFactor);
}
