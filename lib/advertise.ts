// The host a daemon publishes for others to reach it (CStorPool.status.address, the target's
// CStorVolume match). No Kubernetes imports: mains load the Kubernetes code only when needed.
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
