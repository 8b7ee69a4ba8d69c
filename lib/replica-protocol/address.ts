// Replica addresses: "host:port" (TCP: the wire contract, DESIGN.md §6) or "unix:/path/to.sock"
// (a UNIX domain socket, for a target and a pool on the same host: the same frames, and less CPU
// per byte than loopback TCP; see docs/pool-daemon.md).
import { parseHostPort } from '../cli/args.ts';
import { CstorError } from '../errors.ts';

/** The prefix of a UNIX domain socket address ("unix:/run/cstor/pool-1.sock"). */
export const unixAddressPrefix = 'unix:';

export type ReplicaAddress = { path: string } | { host: string; port: number };

/** Where a replica address points; throws `invalid` naming the problem. */
export function parseReplicaAddress(address: string): ReplicaAddress {
  if (address.startsWith(unixAddressPrefix)) {
    const p = address.slice(unixAddressPrefix.length);
    if (!p.startsWith('/')) throw new CstorError('invalid', `replica address ${JSON.stringify(address)}: a UNIX socket path must be absolute`);
    return { path: p };
  }
  return parseHostPort(address, 'replica address');
}
