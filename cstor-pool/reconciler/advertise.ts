// The host a pool publishes in CStorPool.status.address (no Kubernetes imports: main.ts loads
// the Kubernetes code only when the pool runs with Kubernetes).
import os from 'node:os';

export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '' || host === '[::]';
}

/** The host to publish when --advertise is not given: the listen host, unless it is a wildcard. */
export function defaultAdvertiseHost(listenHost: string): string {
  if (!isWildcard(listenHost)) return listenHost;
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}
