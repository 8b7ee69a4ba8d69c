// The replica timeout rule (Longhorn's, with keepalives): a replica is dead when a request has
// been outstanding for the timeout and the replica sent nothing at all (no reply to anything, no
// keepalive) for the timeout. A pool keeps its connection alive while it works
// (messages/keepalive.ts), so a slow fsync, snapshot or rebuild step on a loaded machine does not
// trip it, while a stopped (SIGSTOP) or hung pool process does, within the timeout (plus the
// sweep interval). A request older than hardLimitFactor x timeout fails whatever the keepalives
// say (a pool alive but stuck on one request).

export const hardLimitFactor = 30;

/** All times on one monotonic clock (the client uses performance.now(), never the wall clock). */
export interface TimeoutCheck {
  now: number;
  /** When the oldest outstanding request was sent. */
  sentAt: number;
  /** When the peer last sent anything: bytes of any frame, keepalives included (or the connection was made). */
  lastHeard: number;
  timeoutMs: number;
}

/** null while the replica counts as alive; else how long the request waited for what (for the error message). */
export function replicaTimeoutVerdict(c: TimeoutCheck): { withinMs: number; why: string } | null {
  const waited = c.now - c.sentAt;
  if (waited >= hardLimitFactor * c.timeoutMs) return { withinMs: hardLimitFactor * c.timeoutMs, why: 'the hard limit, which keepalives do not extend' };
  if (waited >= c.timeoutMs && c.now - c.lastHeard >= c.timeoutMs) return { withinMs: c.timeoutMs, why: 'nor any other frame, keepalives included, for as long' };
  return null;
}
