// Keepalives on a replica connection (lib/replica-protocol/messages/keepalive.ts): about once per
// interval while requests are in flight, so the target sees the pool alive through a long fsync or
// snapshot, and only a stopped or hung pool process goes silent.

/** Default interval: well under any sensible replica timeout (the target's default is 8 s). */
export const keepaliveIntervalMs = 1000;

export interface KeepaliveOptions {
  /** True while the connection has requests in flight. */
  busy: () => boolean;
  /** Writes one keepalive frame. */
  send: () => void;
  intervalMs?: number;
}

/** Starts the keepalive timer; returns its stop function. */
export function startKeepalive(options: KeepaliveOptions): () => void {
  const timer = setInterval(() => {
    if (options.busy()) options.send();
  }, options.intervalMs ?? keepaliveIntervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
