// CStorVolume.status computed from the replication engine's status, compared and patched.
//
// The engine (cstor-target/replication) decides phase and replica modes by DESIGN.md §6; this
// file only maps them onto the CRD's declared fields (a real API server prunes anything else,
// so `lastError` goes into status.message instead) and decides when a write is worth it:
// - "significant" fields (phase, reason, message, and per replica its id, address, mode and
//   quorum) are written as soon as they differ;
// - "volatile" counters (checkpointedIOSeq, inflightRead/Write, upTime) change with every IO
//   and every second, so they are refreshed at most once per refresh period.
import type { VolumeStatus } from '../replication/replicated-volume.ts';
import type { CvPhase, CvReplicaStatus, CvStatus } from './types.ts';

/** The status fields the target owns for a served volume. */
export function statusOfEngine(st: VolumeStatus): CvStatus {
  const replicaStatuses: CvReplicaStatus[] = st.replicaStatuses.map((r) => ({
    replicaId: r.replicaId,
    address: r.address,
    mode: r.mode,
    checkpointedIOSeq: r.checkpointedIOSeq,
    inflightRead: r.inflightRead,
    inflightWrite: r.inflightWrite,
    quorum: r.quorum,
    upTime: r.upTime,
  }));
  const out: CvStatus = { phase: st.phase, replicaStatuses };
  if (st.phase !== 'Healthy') {
    const healthy = st.replicaStatuses.filter((r) => r.mode === 'Healthy').length;
    const troubles = st.replicaStatuses.filter((r) => r.mode !== 'Healthy').map((r) => `${r.address} ${r.mode}${r.lastError ? ` (${r.lastError})` : ''}`);
    out.reason = reasonOfPhase[st.phase];
    out.message = `${healthy} of ${st.replicationFactor} replicas healthy, ${st.consistencyFactor} needed${troubles.length > 0 ? `; ${troubles.join('; ')}` : ''}`;
  }
  return out;
}

const reasonOfPhase: Readonly<Record<CvPhase, string>> = {
  Init: 'ReplicasConnecting',
  Healthy: '',
  Degraded: 'ReplicasDegraded',
  Offline: 'QuorumLost',
  Error: 'Error',
};

function str(v: unknown): string {
  return v === undefined || v === null ? '' : String(v);
}

function significant(s: CvStatus | undefined): string {
  if (!s) return 'none';
  const replicas = (s.replicaStatuses ?? []).map((r) => [str(r.replicaId), str(r.address), str(r.mode), str(r.quorum)]);
  return JSON.stringify([str(s.phase), str(s.reason), str(s.message), replicas]);
}

function volatile(s: CvStatus | undefined): string {
  const replicas = (s?.replicaStatuses ?? []).map((r) => [str(r.checkpointedIOSeq), str(r.inflightRead), str(r.inflightWrite), str(r.upTime)]);
  return JSON.stringify(replicas);
}

export type StatusDiff = 'same' | 'volatile' | 'significant';

/** How `cur` differs from `want` (lastUpdateTime aside). */
export function statusDiff(cur: CvStatus | undefined, want: CvStatus): StatusDiff {
  if (significant(cur) !== significant(want)) return 'significant';
  return volatile(cur) === volatile(want) ? 'same' : 'volatile';
}

/** A merge patch of the status subresource making it `want` (null clears a stale reason/message). */
export function statusPatch(cur: CvStatus | undefined, want: CvStatus, now: string): Record<string, unknown> {
  const patch: Record<string, unknown> = { phase: want.phase, replicaStatuses: want.replicaStatuses ?? [], lastUpdateTime: now };
  if (want.reason) patch.reason = want.reason;
  else if (cur?.reason !== undefined) patch.reason = null;
  if (want.message) patch.message = want.message;
  else if (cur?.message !== undefined) patch.message = null;
  return patch;
}

/** The status reported for a volume this target stopped serving on its way down. */
export function offlineStatus(cur: CvStatus | undefined, why: string): CvStatus {
  return {
    phase: 'Offline',
    reason: 'TargetStopped',
    message: why,
    replicaStatuses: (cur?.replicaStatuses ?? []).map((r) => ({ ...r, mode: 'Offline', quorum: '0', inflightRead: '0', inflightWrite: '0', upTime: 0 })),
  };
}
