// Validation of mgmt API request bodies: every problem is listed in one `invalid` error.
import { CstorError } from '../../lib/errors.ts';
import { dns1123SubdomainProblems } from '../../lib/names.ts';
import type { CreateReplicaOptions } from '../store/types.ts';

export interface CreateReplicaBody {
  volume: string;
  size: number;
  blockSize?: number;
  /** "<volume>@<snapshot>" */
  cloneOf?: string;
}

/** Throws `invalid` naming the problem unless `name` is a DNS-1123 volume name. */
export function checkVolumeParam(name: string): string {
  const problems = dns1123SubdomainProblems(name);
  if (problems.length > 0) throw new CstorError('invalid', `volume name ${JSON.stringify(name)} is invalid: ${problems.join('; ')}`);
  return name;
}

export function parseCreateReplica(body: unknown): CreateReplicaOptions {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new CstorError('invalid', 'request body must be a JSON object like {"volume": "pv-1", "size": 1073741824} (send Content-Type: application/json)');
  }
  const b = body as Record<string, unknown>;
  const problems: string[] = [];
  const known = new Set(['volume', 'size', 'blockSize', 'cloneOf']);
  for (const k of Object.keys(b)) if (!known.has(k)) problems.push(`unknown field "${k}"`);
  if (typeof b.volume !== 'string') problems.push('volume must be a string');
  else {
    const p = dns1123SubdomainProblems(b.volume);
    if (p.length > 0) problems.push(`volume name ${JSON.stringify(b.volume)} is invalid: ${p.join('; ')}`);
  }
  if (typeof b.size !== 'number' || !Number.isSafeInteger(b.size) || b.size <= 0) problems.push('size must be a positive integer number of bytes');
  // The store checks the block size's range and that size is a multiple of it.
  if (b.blockSize !== undefined && (typeof b.blockSize !== 'number' || !Number.isInteger(b.blockSize))) problems.push('blockSize must be an integer');
  const blockSize = typeof b.blockSize === 'number' ? b.blockSize : undefined;
  let cloneOf: CreateReplicaOptions['cloneOf'];
  if (b.cloneOf !== undefined) {
    const m = typeof b.cloneOf === 'string' ? /^([^@]+)@([^@]+)$/.exec(b.cloneOf) : null;
    if (!m) problems.push('cloneOf must be "<volume>@<snapshot>"');
    else {
      const p = dns1123SubdomainProblems(m[1]!);
      if (p.length > 0) problems.push(`cloneOf volume ${JSON.stringify(m[1])} is invalid: ${p.join('; ')}`);
      cloneOf = { volume: m[1]!, snapshot: m[2]! };
    }
  }
  if (problems.length > 0) throw new CstorError('invalid', `create replica: ${problems.join('; ')}`);
  return {
    volume: b.volume as string,
    size: b.size as number,
    ...(blockSize !== undefined ? { blockSize } : {}),
    ...(cloneOf ? { cloneOf } : {}),
  };
}
