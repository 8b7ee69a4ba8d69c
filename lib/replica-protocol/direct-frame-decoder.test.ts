import { expect } from 'chai';
import { CstorError } from '../errors.ts';
import { DirectFrameDecoder } from './direct-frame-decoder.ts';
import { encodeFrame } from './frame.ts';
import { maxPayload, type Frame } from './header.ts';

function frameBytes(seq: number, payload: Buffer): Buffer {
  return Buffer.concat(encodeFrame({ opcode: 2, seq, reply: true }, { payload: [payload] }));
}

/** Feeds `stream` the way a socket would: at most `max` bytes into each buffer the decoder offers. */
function feed(d: DirectFrameDecoder, stream: Buffer, max: (i: number) => number): Frame[] {
  const out: Frame[] = [];
  let pos = 0;
  for (let i = 0; pos < stream.length; i++) {
    const target = d.nextBuffer();
    expect(target.length).to.be.above(0);
    const n = Math.min(target.length, max(i), stream.length - pos);
    stream.copy(target, 0, pos, pos + n);
    pos += n;
    out.push(...d.commit(n));
  }
  return out;
}

describe('lib/replica-protocol/direct-frame-decoder', () => {
  const sizes = [0, 1, 100, 4096, 65536, 65537, 200_000, 1 << 20, 3, 70_000];
  const payloads = sizes.map((n, i) => Buffer.alloc(n, i + 1));
  const stream = Buffer.concat(payloads.map((p, i) => frameBytes(i + 1, p)));

  for (const [label, max] of [
    ['whole buffers', () => Infinity],
    ['1-byte reads', () => 1],
    ['ragged reads', (i: number) => 1 + ((i * 7919) % 70_000)],
  ] as const) {
    it(`decodes small and large frames from ${label}`, function () {
      if (label === '1-byte reads') this.timeout(60_000);
      const s = label === '1-byte reads' ? Buffer.concat(payloads.slice(0, 5).map((p, i) => frameBytes(i + 1, p))) : stream;
      const frames = feed(new DirectFrameDecoder(), s, max);
      const want = label === '1-byte reads' ? payloads.slice(0, 5) : payloads;
      expect(frames.map((f) => f.header.seq)).to.deep.equal(want.map((_, i) => i + 1));
      frames.forEach((f, i) => expect(f.payload.equals(want[i]!), `frame ${i}`).to.equal(true));
    });
  }

  it('reads a large payload in place: the buffers offered are views of the payload', () => {
    const d = new DirectFrameDecoder();
    const f = frameBytes(1, Buffer.alloc(1 << 20, 9));
    const first = d.nextBuffer();
    f.copy(first, 0, 0, 1000);
    expect(d.commit(1000)).to.deep.equal([]);
    const second = d.nextBuffer();
    expect(second.length).to.equal((1 << 20) - (1000 - 40));
    f.copy(second, 0, 1000);
    const [frame] = d.commit(f.length - 1000);
    expect(frame!.payload.buffer).to.equal(second.buffer);
    expect(frame!.payload.equals(Buffer.alloc(1 << 20, 9))).to.equal(true);
  });

  it('keeps every small payload it handed out intact while it reads on (views of a slab never reused)', () => {
    const small = Array.from({ length: 3000 }, (_, i) => Buffer.alloc(1 + ((i * 37) % 5000), i % 251));
    const s = Buffer.concat(small.map((p, i) => frameBytes(i + 1, p)));
    const frames = feed(new DirectFrameDecoder({ slabSize: 160 * 1024 }), s, (i) => 1 + ((i * 7919) % 100_000));
    expect(frames).to.have.length(small.length);
    // Checked only now, after all of the stream went through the decoder's buffers.
    frames.forEach((f, i) => expect(f.payload.equals(small[i]!), `frame ${i}`).to.equal(true));
  });

  it('reads a large payload into the Buffer allocPayload gives for its header, then offers the next header alone', () => {
    const given: Buffer[] = [];
    const d = new DirectFrameDecoder({
      allocPayload: (h) => {
        expect(h.seq).to.equal(5);
        const b = Buffer.alloc(h.length);
        given.push(b);
        return b;
      },
    });
    const f = frameBytes(5, Buffer.alloc(300_000, 3));
    const frames = feed(d, f, () => 100_000);
    expect(frames).to.have.length(1);
    expect(frames[0]!.payload).to.equal(given[0]);
    expect(frames[0]!.payload.equals(Buffer.alloc(300_000, 3))).to.equal(true);
    expect(d.nextBuffer().length).to.equal(40);
  });

  it('refuses an oversized length and garbage, and stays failed', () => {
    const big = frameBytes(1, Buffer.alloc(0));
    big.writeUInt32LE(maxPayload + 1, 12);
    const d = new DirectFrameDecoder();
    big.copy(d.nextBuffer());
    expect(() => d.commit(big.length)).to.throw(CstorError, /exceeds the limit/);
    expect(() => d.commit(0)).to.throw(CstorError, /exceeds the limit/);
    const g = new DirectFrameDecoder();
    g.nextBuffer().fill(0x5a, 0, 64);
    expect(() => g.commit(64)).to.throw(CstorError, /bad magic/);
  });
});
