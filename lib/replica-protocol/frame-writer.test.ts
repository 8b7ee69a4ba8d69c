import { expect } from 'chai';
import type { Socket } from 'node:net';
import { CstorError } from '../errors.ts';
import { FrameDecoder } from './frame-decoder.ts';
import { FrameWriter } from './frame-writer.ts';
import { headerSize, maxPayload, type FrameHeader } from './header.ts';

/** Records what would go to the socket: each write, and the batches cork/uncork delimit. */
class FakeSocket {
  writes: Buffer[] = [];
  batches: Buffer[][] = [];
  private corked: Buffer[] | null = null;
  destroyed = false;
  writableEnded = false;
  writableLength = 0;
  cork(): void {
    this.corked = [];
  }
  uncork(): void {
    this.batches.push(this.corked!);
    this.corked = null;
  }
  write(b: Buffer): boolean {
    this.writes.push(b);
    if (this.corked) this.corked.push(b);
    else this.batches.push([b]);
    return true;
  }
}

const header = (seq: number): FrameHeader => ({ opcode: 3, status: 0, flags: 0, seq, ioSeq: seq, offset: seq * 4096, length: 0 });
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function setup(options = {}): { sock: FakeSocket; w: FrameWriter } {
  const sock = new FakeSocket();
  return { sock, w: new FrameWriter(sock as unknown as Socket, options) };
}

describe('lib/replica-protocol/frame-writer', () => {
  it('packs the small frames of one turn into one buffer, which decodes to the same frames', async () => {
    const { sock, w } = setup();
    const payloads = Array.from({ length: 10 }, (_, i) => Buffer.alloc(i * 100, i + 1));
    payloads.forEach((p, i) => w.send(header(i + 1), [p]));
    expect(sock.writes).to.have.length(0);
    await tick();
    expect(sock.writes).to.have.length(1);
    const frames = new FrameDecoder().push(sock.writes[0]!);
    expect(frames.map((f) => f.header.seq)).to.deep.equal(payloads.map((_, i) => i + 1));
    frames.forEach((f, i) => {
      expect(f.payload.equals(payloads[i]!)).to.equal(true);
      expect(f.header.offset).to.equal((i + 1) * 4096);
    });
  });

  it('hands a large payload to the socket as it is (no copy), between its header and the next frame', async () => {
    const { sock, w } = setup();
    const big = Buffer.alloc(1 << 20, 7);
    w.send(header(1), [big]);
    w.send(header(2), [Buffer.from('small')]);
    await tick();
    expect(sock.batches).to.have.length(1);
    const [h1, payload, rest] = sock.writes;
    expect(h1!.length).to.equal(headerSize);
    expect(payload).to.equal(big);
    expect(rest!.length).to.equal(headerSize + 5);
    const frames = new FrameDecoder().push(Buffer.concat(sock.writes));
    expect(frames.map((f) => f.payload.length)).to.deep.equal([1 << 20, 5]);
  });

  it('never writes again into bytes handed to the socket', async () => {
    const { sock, w } = setup({ slabSize: 1024, copyBelow: 256 });
    const copies: Buffer[] = [];
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 7; i++) w.send(header(round * 7 + i + 1), [Buffer.alloc(200, round)]);
      await tick();
      for (const b of sock.writes.slice(copies.length)) copies.push(Buffer.from(b));
    }
    expect(sock.writes.length).to.equal(copies.length);
    sock.writes.forEach((b, i) => expect(b.equals(copies[i]!), `write ${i}`).to.equal(true));
    const frames = new FrameDecoder().push(Buffer.concat(sock.writes));
    expect(frames).to.have.length(140);
    frames.forEach((f, i) => expect(f.payload.equals(Buffer.alloc(200, Math.floor(i / 7)))).to.equal(true));
  });

  it('refuses an oversized payload without queueing anything', async () => {
    const { sock, w } = setup();
    const parts = [Buffer.alloc(maxPayload), Buffer.alloc(1)];
    expect(() => w.send(header(1), parts)).to.throw(CstorError, /exceeds the limit/);
    w.send(header(2), []);
    await tick();
    const frames = new FrameDecoder().push(Buffer.concat(sock.writes));
    expect(frames.map((f) => f.header.seq)).to.deep.equal([2]);
  });

  it('drops what is queued when the socket is gone', async () => {
    const { sock, w } = setup();
    w.send(header(1), [Buffer.alloc(10)]);
    sock.destroyed = true;
    await tick();
    expect(sock.writes).to.have.length(0);
    expect(w.pendingBytes).to.equal(0);
  });
});
