// Bitsets over Uint32Array words (bit i lives in word i >>> 5, bit i & 31). The layer store keeps
// two per layer (allocated, zero-marked) and one per replica (the sealed chain holds data).

export function bitsetWords(bits: number): number {
  return Math.ceil(bits / 32);
}

export function getBit(a: Uint32Array, i: number): boolean {
  return ((a[i >>> 5]! >>> (i & 31)) & 1) === 1;
}

export function setBit(a: Uint32Array, i: number): void {
  a[i >>> 5] = a[i >>> 5]! | (1 << (i & 31));
}

export function clearBit(a: Uint32Array, i: number): void {
  a[i >>> 5] = a[i >>> 5]! & ~(1 << (i & 31));
}

export function popcount32(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

export function countBits(a: Uint32Array): number {
  let n = 0;
  for (let w = 0; w < a.length; w++) {
    const x = a[w]!;
    if (x !== 0) n += popcount32(x);
  }
  return n;
}

/** Index of the lowest set bit of a non-zero word. */
export function lowestBit(x: number): number {
  return 31 - Math.clz32(x & -x);
}
