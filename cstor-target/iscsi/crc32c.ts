// CRC32C (Castagnoli), the iSCSI header/data digest (RFC 7143 §13.1): reflected, init and final xor ~0.
const table = (() => {
  const t = new Uint32Array(256 * 4);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 4; s++) {
      const prev = t[(s - 1) * 256 + i] ?? 0;
      t[s * 256 + i] = ((prev >>> 8) ^ (t[prev & 0xff] ?? 0)) >>> 0;
    }
  }
  return t;
})();

/** CRC32C of `bufs` taken as one byte string. */
export function crc32c(...bufs: Buffer[]): number {
  let c = 0xffffffff;
  for (const b of bufs) {
    let i = 0;
    const n = b.length;
    for (; i + 4 <= n; i += 4) {
      c ^= (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;
      c = (table[768 + (c & 0xff)]! ^ table[512 + ((c >>> 8) & 0xff)]! ^ table[256 + ((c >>> 16) & 0xff)]! ^ table[c >>> 24]!) >>> 0;
    }
    for (; i < n; i++) c = (table[(c ^ b[i]!) & 0xff]! ^ (c >>> 8)) >>> 0;
  }
  return (c ^ 0xffffffff) >>> 0;
}
