import { expect } from 'chai';
import { CstorError } from '../errors.ts';
import { decodeHeader, encodeHeader, headerSize, maxPayload } from './header.ts';

// Golden bytes: a WRITE request, seq 7, io_seq 0x0102, offset 4096, 512 payload bytes.
const goldenWriteHeader = Buffer.from(
  [
    '43 53 52 50', // magic "CSRP"
    '01', // version
    '03', // opcode WRITE
    '00 00', // status
    '00 00', // flags
    '00 00', // reserved
    '00 02 00 00', // length 512
    '07 00 00 00 00 00 00 00', // seq
    '02 01 00 00 00 00 00 00', // io_seq
    '00 10 00 00 00 00 00 00', // offset 4096
  ]
    .join(' ')
    .split(' ')
    .map((h) => parseInt(h, 16)),
);

describe('lib/replica-protocol/header', () => {
  it('encodes the golden WRITE header byte for byte', () => {
    const h = { opcode: 3, status: 0, flags: 0, seq: 7, ioSeq: 0x0102, offset: 4096, length: 512 };
    expect(goldenWriteHeader.length).to.equal(headerSize);
    expect(encodeHeader(h)).to.deep.equal(goldenWriteHeader);
    expect(decodeHeader(goldenWriteHeader)).to.deep.equal(h);
  });

  it('round-trips a reply header with a status and large values', () => {
    const h = { opcode: 19, status: 2, flags: 1, seq: 2 ** 40 + 3, ioSeq: Number.MAX_SAFE_INTEGER, offset: 2 ** 50, length: maxPayload };
    expect(decodeHeader(encodeHeader(h))).to.deep.equal(h);
  });

  it('refuses a bad magic, a bad version, a truncated header', () => {
    const bad = Buffer.from(goldenWriteHeader);
    bad[0] = 0x58;
    expect(() => decodeHeader(bad)).to.throw(CstorError, /bad magic 0x50525358/);
    const v2 = Buffer.from(goldenWriteHeader);
    v2[4] = 2;
    expect(() => decodeHeader(v2)).to.throw(CstorError, /unsupported version 2/);
    expect(() => decodeHeader(goldenWriteHeader.subarray(0, 39))).to.throw(CstorError, /replica header truncated/);
  });

  it('refuses an oversized length as too_large, keeping the seq so the server can answer', () => {
    const big = Buffer.from(goldenWriteHeader);
    big.writeUInt32LE(maxPayload + 1, 12);
    try {
      decodeHeader(big);
      expect.fail('should throw');
    } catch (err) {
      expect(err).to.be.instanceOf(CstorError);
      const e = err as CstorError;
      expect(e.code).to.equal('too_large');
      expect(e.message).to.match(/payload length 16842753 exceeds the limit/);
      expect(e.details).to.deep.equal({ seq: 7, opcode: 3 });
    }
  });
});
