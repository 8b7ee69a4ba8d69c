import { expect } from 'chai';
import { CstorError } from '../errors.ts';
import { FrameDecoder } from './frame-decoder.ts';
import { encodeFrame } from './frame.ts';
import { maxPayload } from './header.ts';

function frameBytes(seq: number, payload: Buffer): Buffer {
  return Buffer.concat(encodeFrame({ opcode: 3, seq, reply: false }, { ioSeq: seq, offset: seq * 512, payload: [payload] }));
}

describe('lib/replica-protocol/frame-decoder', () => {
  const payloads = Array.from({ length: 20 }, (_, i) => Buffer.alloc(i * 97, i + 1));
  const stream = Buffer.concat(payloads.map((p, i) => frameBytes(i + 1, p)));

  it('decodes coalesced frames from one chunk', () => {
    const frames = new FrameDecoder().push(stream);
    expect(frames.map((f) => f.header.seq)).to.deep.equal(payloads.map((_, i) => i + 1));
    frames.forEach((f, i) => expect(f.payload).to.deep.equal(payloads[i]));
  });

  for (const size of [1, 3, 40, 41, 1000]) {
    it(`decodes the same frames fed in ${size}-byte chunks`, () => {
      const d = new FrameDecoder();
      const got = [];
      for (let o = 0; o < stream.length; o += size) got.push(...d.push(stream.subarray(o, o + size)));
      expect(got.map((f) => f.header.offset)).to.deep.equal(payloads.map((_, i) => (i + 1) * 512));
      got.forEach((f, i) => expect(f.payload).to.deep.equal(payloads[i]));
      expect(d.bufferedBytes).to.equal(0);
    });
  }

  it('returns a view, not a copy, when the payload lies in one chunk', () => {
    const chunk = frameBytes(1, Buffer.alloc(4096, 7));
    const [f] = new FrameDecoder().push(chunk);
    expect(f!.payload.buffer).to.equal(chunk.buffer);
  });

  it('waits for the rest of a truncated frame and returns nothing yet', () => {
    const d = new FrameDecoder();
    const one = frameBytes(5, Buffer.alloc(100, 5));
    expect(d.push(one.subarray(0, 45))).to.deep.equal([]);
    expect(d.bufferedBytes).to.equal(5);
    const [f] = d.push(one.subarray(45));
    expect(f!.payload).to.deep.equal(Buffer.alloc(100, 5));
  });

  it('refuses an oversized length before its payload arrives, and stays failed', () => {
    const h = frameBytes(9, Buffer.alloc(0));
    h.writeUInt32LE(maxPayload + 1, 12);
    const d = new FrameDecoder();
    expect(() => d.push(h)).to.throw(CstorError, /exceeds the limit/);
    expect(() => d.push(stream)).to.throw(CstorError, /exceeds the limit/);
  });

  it('refuses garbage', () => {
    expect(() => new FrameDecoder().push(Buffer.alloc(64, 0xab))).to.throw(CstorError, /bad magic/);
  });

  it('is linear: 64 MiB in 1 KiB chunks of 1 MiB frames decodes quickly', () => {
    const big = frameBytes(1, Buffer.alloc(1 << 20, 1));
    const d = new FrameDecoder();
    const t0 = Date.now();
    let n = 0;
    for (let i = 0; i < 64; i++) for (let o = 0; o < big.length; o += 1024) n += d.push(big.subarray(o, o + 1024)).length;
    expect(n).to.equal(64);
    expect(Date.now() - t0).to.be.below(5000);
  });
});
