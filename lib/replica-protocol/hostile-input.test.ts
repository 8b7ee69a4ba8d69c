// Hostile input to the decoders: every split of a frame stream (with a tiny slab, so every
// compaction path runs), random chunkings, and random or mangled payloads fed to every message
// decoder. The only acceptable failure is a CstorError; never a crash, a RangeError or a hang.
import { expect } from 'chai';
import { CstorError } from '../errors.ts';
import { DirectFrameDecoder } from './direct-frame-decoder.ts';
import { FrameDecoder } from './frame-decoder.ts';
import { encodeFrame } from './frame.ts';
import { headerSize, type Frame, type FrameHeader } from './header.ts';
import * as errorReply from './messages/error-reply.ts';
import * as ilb from './messages/import-layer-begin.ts';
import * as ile from './messages/import-layer-end.ts';
import * as ilw from './messages/import-layer-write.ts';
import * as keepalive from './messages/keepalive.ts';
import * as markHealthy from './messages/mark-healthy.ts';
import * as open from './messages/open.ts';
import * as rhs from './messages/read-head-since.ts';
import * as rl from './messages/read-layer.ts';
import * as read from './messages/read.ts';
import * as rebuildDone from './messages/rebuild-done.ts';
import * as rs from './messages/rebuild-start.ts';
import * as runPage from './messages/run-page.ts';
import * as status from './messages/replica-status.ts';
import * as sc from './messages/snapshot-create.ts';
import * as sd from './messages/snapshot-destroy.ts';
import * as sl from './messages/snapshot-list.ts';
import * as stats from './messages/stats.ts';
import * as sync from './messages/sync.ts';
import * as unmap from './messages/unmap.ts';
import * as win from './messages/write-if-newer.ts';
import * as write from './messages/write.ts';

/** A deterministic PRNG (mulberry32), so a failure replays. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function frameBytes(seq: number, payload: Buffer): Buffer {
  return Buffer.concat(encodeFrame({ opcode: 2, seq, reply: true }, { payload: [payload] }));
}

/** Feeds `stream` into the decoder, cutting reads at the given stream offsets (and at what each buffer offered). */
function feedCuts(d: DirectFrameDecoder, stream: Buffer, cuts: readonly number[]): Frame[] {
  const out: Frame[] = [];
  let pos = 0;
  let next = 0;
  for (let guard = 0; pos < stream.length; guard++) {
    if (guard > 10 * stream.length + 100) throw new Error('decoder made no progress');
    while (next < cuts.length && cuts[next]! <= pos) next++;
    const limit = next < cuts.length ? cuts[next]! : stream.length;
    const target = d.nextBuffer();
    expect(target.length, 'offered an empty buffer').to.be.above(0);
    const n = Math.min(target.length, limit - pos);
    stream.copy(target, 0, pos, pos + n);
    pos += n;
    // Copy payloads out at once: the check below is that no later read overwrote them.
    for (const f of d.commit(n)) out.push(f);
  }
  return out;
}

function expectFrames(frames: Frame[], want: Buffer[]): void {
  expect(frames.map((f) => f.header.seq)).to.deep.equal(want.map((_, i) => i + 1));
  frames.forEach((f, i) => expect(f.payload.equals(want[i]!), `frame ${i + 1} payload`).to.equal(true));
}

describe('replica protocol: hostile input', () => {
  // A tiny threshold and slab: large payloads, in-place reads, compaction and fresh slabs all
  // happen within a few hundred bytes.
  const small = { directThreshold: 64, slabSize: 2 * (headerSize + 64) };
  const payloads = [0, 10, 64, 65, 300, 5, 0, 63, 129].map((n, i) => Buffer.alloc(n, 0x10 + i).fill(i, 0, Math.min(n, 3)));
  const stream = Buffer.concat(payloads.map((p, i) => frameBytes(i + 1, p)));

  it('DirectFrameDecoder: the same frames whatever single cut splits the stream, payloads intact to the end', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const frames = feedCuts(new DirectFrameDecoder(small), stream, [cut]);
      expectFrames(frames, payloads);
    }
  });

  it('DirectFrameDecoder: the same frames from 1-byte reads and from 300 random chunkings', () => {
    expectFrames(
      feedCuts(
        new DirectFrameDecoder(small),
        stream,
        Array.from({ length: stream.length }, (_, i) => i + 1),
      ),
      payloads,
    );
    const rnd = prng(7);
    for (let t = 0; t < 300; t++) {
      const cuts = Array.from({ length: 1 + Math.floor(rnd() * 20) }, () => Math.floor(rnd() * stream.length)).sort((a, b) => a - b);
      expectFrames(feedCuts(new DirectFrameDecoder(small), stream, cuts), payloads);
    }
  });

  it('FrameDecoder: the same frames whatever single cut splits the stream', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new FrameDecoder();
      const frames = [...d.push(Buffer.from(stream.subarray(0, cut))), ...d.push(Buffer.from(stream.subarray(cut)))];
      expectFrames(frames, payloads);
      expect(d.bufferedBytes).to.equal(0);
    }
  });

  it('both decoders refuse random garbage with a CstorError and stay failed', () => {
    const rnd = prng(11);
    for (let t = 0; t < 500; t++) {
      const junk = Buffer.from(Array.from({ length: 41 + Math.floor(rnd() * 200) }, () => Math.floor(rnd() * 256)));
      // Half the time, a valid magic and version so the length and u64 checks are reached.
      if (t % 2 === 0) {
        junk.writeUInt32LE(0x50525343, 0);
        junk[4] = 1;
      }
      const d = new DirectFrameDecoder(small);
      let threw: unknown;
      try {
        feedCuts(d, junk, []);
      } catch (err) {
        threw = err;
      }
      if (threw !== undefined) {
        expect(threw, String(threw)).to.be.instanceOf(CstorError);
        expect(() => d.commit(0)).to.throw(CstorError);
      }
      const f = new FrameDecoder();
      try {
        f.push(junk);
      } catch (err) {
        expect(err, String(err)).to.be.instanceOf(CstorError);
        expect(() => f.push(Buffer.alloc(0))).to.throw(CstorError);
      }
    }
  });

  it('every message decoder answers random, truncated and extended payloads with a value or a CstorError', () => {
    const modules = { errorReply, ilb, ile, ilw, keepalive, markHealthy, open, rhs, rl, read, rebuildDone, rs, status, sc, sd, sl, stats, sync, unmap, win, write };
    const decoders: [string, (frame: Frame) => unknown][] = [];
    for (const [m, mod] of Object.entries(modules)) {
      for (const [name, fn] of Object.entries(mod)) {
        if (!name.startsWith('decode') || typeof fn !== 'function') continue;
        const f = fn as (...args: unknown[]) => unknown;
        // decodeReplicaStatus takes the payload itself; the rest take the frame.
        decoders.push([`${m}.${name}`, (frame) => (name === 'decodeReplicaStatus' ? f(frame.payload, 'status') : f(frame, name === 'decodeReadReply' ? 4096 : 'context'))]);
      }
    }
    decoders.push(['runPage.decodeRunPage', (frame) => runPage.decodeRunPage(frame.payload, 'page')]);
    expect(decoders.length).to.be.above(35);
    // Seeds: valid payloads of the richer messages, to mangle.
    const seeds: Buffer[] = [
      Buffer.concat(open.encodeOpenRequest({ volume: 'vol-1', size: 1 << 30, blockSize: 4096, replicationFactor: 3, targetId: 't' }).payload),
      Buffer.concat(runPage.encodeRunPage({ next: 9, runs: [{ offset: 0, data: Buffer.alloc(8, 1), ioSeq: 3 }, { offset: 4096, data: Buffer.alloc(3, 2) }] })),
      Buffer.concat(sl.encodeSnapshotListReply([{ name: 's1', ioSeq: 1, createdAt: 2, usedBytes: 3 }]).payload),
      Buffer.concat(status.encodeStatusReply({ volume: 'v', mode: 'Healthy', checkpointedIoSeq: 1, size: 2, blockSize: 512, inflightRead: 0, inflightWrite: 0, upTime: 1 }).payload),
    ];
    const rnd = prng(23);
    const header: FrameHeader = { opcode: 1, status: 0, flags: 1, seq: 1, ioSeq: 0, offset: 0, length: 0 };
    const inputs: Buffer[] = [Buffer.alloc(0)];
    for (const s of seeds) {
      for (let n = 0; n <= s.length; n++) inputs.push(s.subarray(0, n));
      inputs.push(Buffer.concat([s, Buffer.from([0xff, 0xff, 0xff, 0xff])]));
      for (let t = 0; t < 50; t++) {
        const m = Buffer.from(s);
        m[Math.floor(rnd() * m.length)] = Math.floor(rnd() * 256);
        inputs.push(m);
      }
    }
    for (let t = 0; t < 200; t++) inputs.push(Buffer.from(Array.from({ length: Math.floor(rnd() * 64) }, () => (rnd() < 0.3 ? 0xff : Math.floor(rnd() * 256)))));
    let refused = 0;
    for (const [name, decode] of decoders) {
      for (const payload of inputs) {
        try {
          decode({ header: { ...header, length: payload.length }, payload });
        } catch (err) {
          refused++;
          if (!(err instanceof CstorError)) throw new Error(`${name} threw a non-CstorError on ${payload.toString('hex')}: ${String(err)}`);
        }
      }
    }
    expect(refused).to.be.above(1000);
  });
});
