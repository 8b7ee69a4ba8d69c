// When a supervised child that died is started again: exponential backoff on consecutive quick
// failures, capped, reset once a child has run long enough to count as healthy. Pure, so the
// supervisor's timing decisions are tested without waiting.

export interface RestartPolicy {
  /** Delay before the first restart after a quick failure (ms). */
  initialDelayMs: number;
  /** The delay doubles per consecutive quick failure up to this cap (ms). */
  maxDelayMs: number;
  /** A child that ran at least this long before dying starts the count afresh (ms). */
  resetAfterMs: number;
  /** Give up after this many consecutive quick failures (Infinity: never). */
  maxConsecutiveFailures: number;
}

export const defaultRestartPolicy: RestartPolicy = Object.freeze({
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  resetAfterMs: 30_000,
  maxConsecutiveFailures: 12,
});

export type RestartDecision = { restart: true; delayMs: number; consecutiveFailures: number } | { restart: false; consecutiveFailures: number };

/**
 * Decides what to do after a child exited.
 * @param previousFailures consecutive quick failures before this exit
 * @param ranMs how long the child ran before this exit
 */
export function decideRestart(policy: RestartPolicy, previousFailures: number, ranMs: number): RestartDecision {
  const failures = ranMs >= policy.resetAfterMs ? 1 : previousFailures + 1;
  if (failures > policy.maxConsecutiveFailures) return { restart: false, consecutiveFailures: failures };
  const delayMs = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (failures - 1));
  return { restart: true, delayMs, consecutiveFailures: failures };
}
