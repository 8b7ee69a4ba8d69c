import { expect } from 'chai';
import { crc32c } from './crc32c.ts';

describe('crc32c', () => {
  it('matches the standard check value and the RFC 3720 B.4 vectors', () => {
    expect(crc32c(Buffer.from('123456789'))).to.equal(0xe3069283);
    expect(crc32c(Buffer.alloc(32))).to.equal(0x8a9136aa);
    expect(crc32c(Buffer.alloc(32, 0xff))).to.equal(0x62a8ab43);
    const inc = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
    expect(crc32c(inc)).to.equal(0x46dd794e);
  });

  it('treats several buffers as one byte string', () => {
    const all = Buffer.from('the quick brown fox jumps over the lazy dog');
    expect(crc32c(all.subarray(0, 7), all.subarray(7, 30), all.subarray(30))).to.equal(crc32c(all));
  });
});
