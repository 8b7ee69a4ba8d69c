// Kubernetes resource quantities (the resource.Quantity grammar) as byte counts: a decimal number
// with a binary suffix (Ki Mi Gi Ti Pi Ei), a decimal suffix (k M G T P E, or none), or a decimal
// exponent (e3, E9). Parsed exactly (BigInt) and rounded UP to a whole byte, so the pool (replica
// size), the target (volume size), kube-lite's PV binder and the promoter (clone ≥ snapshot)
// all read "5G" the same way.
import { CstorError } from './errors.ts';

const binary: Readonly<Record<string, bigint>> = { Ki: 1n << 10n, Mi: 1n << 20n, Gi: 1n << 30n, Ti: 1n << 40n, Pi: 1n << 50n, Ei: 1n << 60n };
const decimal: Readonly<Record<string, number>> = { '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const grammar = /^\+?(\d+)?(?:\.(\d*))?(?:(Ki|Mi|Gi|Ti|Pi|Ei)|([eE][+-]?\d{1,3})|(k|M|G|T|P|E))?$/;

/** Bytes (≥ 0, rounded up), or a sentence saying what is wrong. */
function parse(value: unknown): bigint | string {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) return `${value} must be a non-negative number of bytes`;
    return BigInt(Math.ceil(value));
  }
  if (typeof value !== 'string' || value.trim() === '') {
    return `must be a quantity like "5G", "5Gi" or "1073741824", got ${JSON.stringify(value ?? null)}`;
  }
  const text = value.trim();
  const m = grammar.exec(text);
  const whole = m?.[1] ?? '';
  const frac = m?.[2] ?? '';
  if (!m || (whole === '' && frac === '')) return `"${text}" is not a quantity (examples: 5G, 5Gi, 1.5Ti, 1073741824)`;
  // value = digits / 10^frac.length × multiplier
  let numerator = BigInt(`${whole}${frac}` || '0');
  let denominator = 10n ** BigInt(frac.length);
  if (m[3]) numerator *= binary[m[3]] ?? 1n;
  else {
    const exp = m[4] ? Number(m[4].slice(1)) : (decimal[m[5] ?? ''] ?? 0);
    if (exp >= 0) numerator *= 10n ** BigInt(exp);
    else denominator *= 10n ** BigInt(-exp);
  }
  return (numerator + denominator - 1n) / denominator;
}

/** Bytes of a capacity, which must be more than zero; throws `invalid` naming the problem. */
export function quantityBytes(value: unknown): bigint {
  const bytes = parse(value);
  if (typeof bytes === 'string') throw new CstorError('invalid', `capacity ${bytes}`);
  if (bytes === 0n) throw new CstorError('invalid', `capacity ${JSON.stringify(value)} must be more than zero`);
  return bytes;
}

/** Bytes of a quantity as a number, or undefined when it is not one (or past 2^53). */
export function tryQuantityBytes(value: unknown): number | undefined {
  const bytes = parse(value);
  if (typeof bytes === 'string' || bytes > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return Number(bytes);
}

/** The replica (and volume) size for a capacity: its bytes rounded up to a multiple of `blockSize`. */
export function replicaSize(capacity: unknown, blockSize: number): number {
  const bytes = quantityBytes(capacity);
  const bs = BigInt(blockSize);
  const size = ((bytes + bs - 1n) / bs) * bs;
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new CstorError('too_large', `capacity ${JSON.stringify(capacity)} is too large (${size} bytes)`);
  return Number(size);
}
