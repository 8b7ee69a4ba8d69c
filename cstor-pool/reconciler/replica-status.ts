// What a CStorVolumeReplica's status says, computed from the replica as the pool sees it.
//
// Phase mapping (the pool's view; the target alone knows whether a replica is in quorum):
//   no replica yet, or create in progress      → Init
//   store mode New  (created, never taken into its volume by a target)   → Init
//   store mode Healthy                          → Healthy
//   store mode Rebuilding (a target is copying data into it)             → Rebuilding
//   the pool cannot make the replica as asked   → Error   (reason, message)
//   the pool daemon stopped cleanly             → Offline (set on the way down; a restart recomputes)
// Degraded is never set here: it is a volume-level judgement the target makes
// (CStorVolume.status.replicaStatuses), not something a pool can see.
import type { ReplicaMode } from '../../lib/replica-protocol/types.ts';
import type { ReplicaInfo } from '../store/types.ts';
import type { CvrPhase, CvrStatus } from './types.ts';

export const phaseOfMode: Readonly<Record<ReplicaMode, CvrPhase>> = {
  New: 'Init',
  Healthy: 'Healthy',
  Rebuilding: 'Rebuilding',
};

/** The status fields the pool owns, for a replica that exists (reason and message cleared). */
export function statusOfReplica(info: ReplicaInfo, capacity: string): CvrStatus {
  return { phase: phaseOfMode[info.mode], capacity: { total: capacity, used: info.usedBytes } };
}

/** True when `cur` already says what `want` says (lastUpdateTime aside). */
export function statusMatches(cur: CvrStatus | undefined, want: CvrStatus): boolean {
  if (!cur) return false;
  return (
    cur.phase === want.phase &&
    (cur.reason ?? '') === (want.reason ?? '') &&
    (cur.message ?? '') === (want.message ?? '') &&
    String(cur.capacity?.total ?? '') === String(want.capacity?.total ?? '') &&
    String(cur.capacity?.used ?? '') === String(want.capacity?.used ?? '')
  );
}

/** A merge patch of the status subresource that makes it `want` (null removes a stale reason/message). */
export function statusPatch(cur: CvrStatus | undefined, want: CvrStatus, now: string): Record<string, unknown> {
  const patch: Record<string, unknown> = { phase: want.phase, lastUpdateTime: now };
  if (want.capacity) patch.capacity = want.capacity;
  patch.reason = want.reason ?? (cur?.reason !== undefined ? null : undefined);
  patch.message = want.message ?? (cur?.message !== undefined ? null : undefined);
  for (const k of Object.keys(patch)) if (patch[k] === undefined) delete patch[k];
  return patch;
}
