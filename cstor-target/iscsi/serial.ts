// 32-bit serial number arithmetic (RFC 1982) for CmdSN, StatSN and DataSN comparisons.
export function snAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** a < b in serial arithmetic. */
export function snLess(a: number, b: number): boolean {
  return a !== b && ((a < b && b - a < 0x80000000) || (a > b && a - b > 0x80000000));
}

/** a within [lo, hi] in serial arithmetic. */
export function snInRange(a: number, lo: number, hi: number): boolean {
  return !snLess(a, lo) && !snLess(hi, a);
}
