import { expect } from 'chai';
import { Reader, Writer } from './binary.ts';
import { CstorError } from './errors.ts';

describe('lib/binary', () => {
  it('round-trips both endiannesses', () => {
    const w = new Writer(29).u8(7).u16be(0x0102).u16le(0x0102).u32be(0xdeadbeef).u32le(1).u64be(2 ** 40 + 5).u64le(9);
    expect(w.buf.subarray(0, 5)).to.deep.equal(Buffer.from([7, 1, 2, 2, 1]));
    const r = new Reader(w.buf, 'test frame');
    expect([r.u8(), r.u16be(), r.u16le(), r.u32be(), r.u32le(), r.u64be(), r.u64le()]).to.deep.equal([
      7, 0x0102, 0x0102, 0xdeadbeef, 1, 2 ** 40 + 5, 9,
    ]);
    expect(r.remaining).to.equal(0);
  });
  it('refuses to read past the end, naming the frame', () => {
    const r = new Reader(Buffer.alloc(3), 'iSCSI BHS');
    expect(() => r.u32be()).to.throw(CstorError, /iSCSI BHS truncated: need 4 bytes at offset 0, have 3/);
  });
  it('refuses 64-bit values past the safe integer range', () => {
    const b = Buffer.alloc(8, 0xff);
    expect(() => new Reader(b).u64le()).to.throw(CstorError, /too large/);
  });
});
