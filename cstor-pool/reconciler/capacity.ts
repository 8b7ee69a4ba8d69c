// CStorVolumeReplica.spec.capacity → the replica size in bytes. A Kubernetes quantity
// (resource.Quantity grammar): a decimal number with a binary suffix (Ki Mi Gi Ti Pi Ei), a
// decimal suffix (k M G T P E, or none), or a decimal exponent (e3, E9). Parsed exactly
// (BigInt), then rounded UP to the replica block size, so "5G" (5,000,000,000 bytes) becomes
// 5,000,003,584 with 4 KiB blocks: a replica is never smaller than asked. The target computes
// a volume's size from the same capacity string with the same rule (it must match at OPEN).
import { CstorError } from '../../lib/errors.ts';

const binary: Readonly<Record<string, bigint>> = { Ki: 1n << 10n, Mi: 1n << 20n, Gi: 1n << 30n, Ti: 1n << 40n, Pi: 1n << 50n, Ei: 1n << 60n };
const decimal: Readonly<Record<string, number>> = { '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const grammar = /^\+?(\d+)?(?:\.(\d*))?(?:(Ki|Mi|Gi|Ti|Pi|Ei)|([eE][+-]?\d{1,3})|(k|M|G|T|P|E))?$/;

/** Bytes of a quantity, rounded up to a whole byte (e.g. "1.5Ki" → 1536, "0.5" → 1). */
export function quantityBytes(value: unknown): bigint {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value <= 0) throw new CstorError('invalid', `capacity ${value} must be a positive number of bytes`);
    return BigInt(Math.ceil(value));
  }
  if (typeof value !== 'string' || value.trim() === '') {
    throw new CstorError('invalid', `capacity must be a quantity like "5G", "5Gi" or "1073741824", got ${JSON.stringify(value ?? null)}`);
  }
  const text = value.trim();
  const m = grammar.exec(text);
  const whole = m?.[1] ?? '';
  const frac = m?.[2] ?? '';
  if (!m || (whole === '' && frac === '')) {
    throw new CstorError('invalid', `capacity "${text}" is not a quantity (examples: 5G, 5Gi, 1.5Ti, 1073741824)`);
  }
  // value = digits / 10^frac.length × multiplier
  let numerator = BigInt(`${whole}${frac}` || '0');
  let denominator = 10n ** BigInt(frac.length);
  if (m[3]) numerator *= binary[m[3]] ?? 1n;
  else {
    const exp = m[4] ? Number(m[4].slice(1)) : (decimal[m[5] ?? ''] ?? 0);
    if (exp >= 0) numerator *= 10n ** BigInt(exp);
    else denominator *= 10n ** BigInt(-exp);
  }
  if (numerator === 0n) throw new CstorError('invalid', `capacity "${text}" must be more than zero`);
  return (numerator + denominator - 1n) / denominator;
}

/** The replica size for a capacity: its bytes rounded up to a multiple of `blockSize`. */
export function replicaSize(capacity: unknown, blockSize: number): number {
  const bytes = quantityBytes(capacity);
  const bs = BigInt(blockSize);
  const size = ((bytes + bs - 1n) / bs) * bs;
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new CstorError('too_large', `capacity ${JSON.stringify(capacity)} is too large (${size} bytes)`);
  return Number(size);
}
