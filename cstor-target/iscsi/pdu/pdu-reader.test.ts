import { expect } from 'chai';
import { hasErrorCode } from '../../../lib/errors.ts';
import { PduReader, framePdu } from './pdu-reader.ts';

function frame(op: number, data: Buffer, digests = { header: false, data: false }): Buffer {
  const h = Buffer.alloc(48);
  h[0] = op;
  h.writeUIntBE(data.length, 5, 3);
  return Buffer.concat(framePdu(h, data, digests));
}

describe('PduReader', () => {
  it('reassembles PDUs split at every byte boundary, dropping padding', () => {
    const stream = Buffer.concat([frame(1, Buffer.from('abcde')), frame(2, Buffer.alloc(0)), frame(3, Buffer.alloc(4, 7))]);
    for (let cut = 1; cut < stream.length; cut++) {
      const r = new PduReader({ headerDigest: false, dataDigest: false, maxDataSegmentLength: 1024 });
      const out = [...r.push(stream.subarray(0, cut)), ...r.push(stream.subarray(cut))];
      expect(out.map((p) => p.bhs[0])).to.deep.equal([1, 2, 3]);
      expect(out[0]!.data.toString()).to.equal('abcde');
      expect(out[2]!.data.length).to.equal(4);
      expect(r.bufferedBytes).to.equal(0);
    }
  });

  it('reads PDUs fed one byte at a time through append/next (lengths spanning many chunks)', () => {
    const big = Buffer.alloc(9000);
    for (let i = 0; i < big.length; i++) big[i] = i & 0xff;
    const stream = Buffer.concat([frame(1, Buffer.from('abcde')), frame(5, big), frame(3, Buffer.alloc(0))]);
    const r = new PduReader({ headerDigest: false, dataDigest: false, maxDataSegmentLength: 1 << 17 });
    const out = [];
    for (let i = 0; i < stream.length; i++) {
      r.append(stream.subarray(i, i + 1));
      for (let p = r.next(); p; p = r.next()) out.push(p);
    }
    expect(out.map((p) => [p.bhs[0], p.data.length])).to.deep.equal([
      [1, 5],
      [5, 9000],
      [3, 0],
    ]);
    expect(out[1]!.data.equals(big)).to.equal(true);
    expect(r.bufferedBytes).to.equal(0);
  });

  it('hands data that sits in one chunk on as a view, not a copy', () => {
    const chunk = frame(5, Buffer.alloc(4096, 1));
    const r = new PduReader({ headerDigest: false, dataDigest: false, maxDataSegmentLength: 8192 });
    const [p] = r.push(chunk);
    expect(p!.data.buffer).to.equal(chunk.buffer);
  });

  it('refuses a data segment past the limit before buffering it', () => {
    const h = Buffer.alloc(48);
    h.writeUIntBE(1 << 20, 5, 3);
    const r = new PduReader({ headerDigest: false, dataDigest: false, maxDataSegmentLength: 65536 });
    let err: unknown;
    try {
      r.push(h);
    } catch (e) {
      err = e;
    }
    expect(hasErrorCode(err, 'too_large')).to.equal(true);
  });

  it('checks header and data digests', () => {
    const d = { header: true, data: true };
    const good = frame(1, Buffer.from('xyz'), d);
    const r = new PduReader({ headerDigest: true, dataDigest: true, maxDataSegmentLength: 1024 });
    expect(r.push(good)[0]!.data.toString()).to.equal('xyz');
    const bad = Buffer.from(good);
    bad[bad.length - 1]! ^= 1;
    expect(() => new PduReader({ headerDigest: true, dataDigest: true, maxDataSegmentLength: 1024 }).push(bad)).to.throw(/data digest/);
    const badHeader = Buffer.from(good);
    badHeader[10]! ^= 1;
    expect(() => new PduReader({ headerDigest: true, dataDigest: true, maxDataSegmentLength: 1024 }).push(badHeader)).to.throw(/header digest/);
  });
});

describe('PduReader data placement', () => {
  it('assembles a segment that spans chunks straight into the buffer placeData gives', () => {
    const payload = Buffer.alloc(10000);
    for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
    const stream = frame(5, payload, { header: true, data: true });
    const target = Buffer.alloc(20000);
    const r = new PduReader({ headerDigest: true, dataDigest: true, maxDataSegmentLength: 65536, placeData: (_bhs, n) => target.subarray(100, 100 + n) });
    const out = [...r.push(stream.subarray(0, 3000)), ...r.push(stream.subarray(3000, 7000)), ...r.push(stream.subarray(7000))];
    expect(out).to.have.length(1);
    expect(out[0]!.data.buffer).to.equal(target.buffer);
    expect(out[0]!.data.equals(payload)).to.equal(true);
    expect(target.subarray(100, 10100).equals(payload)).to.equal(true);
    expect(r.bufferedBytes).to.equal(0);
  });
});

describe('PduReader with direct reads (readBuffer/commitRead)', () => {
  /** Feeds `stream` as a socket would: reads of at most the offered room, cut at the given sizes. */
  function feed(r: PduReader, stream: Buffer, cuts: number[], onPdu: (p: ReturnType<PduReader['next']>) => void): number[] {
    const offered: number[] = [];
    let at = 0;
    for (let i = 0; at < stream.length; i++) {
      const room = r.readBuffer();
      offered.push(room.length);
      const n = Math.min(room.length, stream.length - at, cuts[i % cuts.length]!);
      stream.copy(room, 0, at, at + n);
      at += n;
      r.commitRead(n);
      for (let p = r.next(); p; p = r.next()) onPdu(p);
    }
    return offered;
  }

  for (const digests of [
    { header: false, data: false },
    { header: true, data: true },
  ]) {
    it(`reads large data segments in place where placeData says, small ones as views (digests ${digests.header})`, () => {
      const big = Buffer.alloc(70_000);
      for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
      const small = Buffer.from('abcdefg');
      const stream = Buffer.concat([frame(1, small, digests), frame(5, big, digests), frame(5, big.subarray(1, 20_001), digests), frame(3, Buffer.alloc(0), digests), frame(5, big, digests)]);
      for (const cuts of [[1 << 20], [1000, 48, 5000, 7], [3]]) {
        const dests: Buffer[] = [];
        const r = new PduReader({
          headerDigest: digests.header,
          dataDigest: digests.data,
          maxDataSegmentLength: 1 << 17,
          slabSize: 256 * 1024,
          placeData: (_bhs, length) => {
            const d = Buffer.alloc(length);
            dests.push(d);
            return d;
          },
        });
        const out: Array<{ op: number; data: Buffer }> = [];
        const offered = feed(r, stream, cuts, (p) => out.push({ op: p!.bhs[0]!, data: p!.data }));
        expect(out.map((p) => [p.op, p.data.length])).to.deep.equal([
          [1, 7],
          [5, 70_000],
          [5, 20_000],
          [3, 0],
          [5, 70_000],
        ]);
        expect(out[0]!.data.toString()).to.equal('abcdefg');
        expect(out[1]!.data.equals(big)).to.equal(true);
        expect(out[2]!.data.equals(big.subarray(1, 20_001))).to.equal(true);
        expect(out[4]!.data.equals(big)).to.equal(true);
        expect(r.placing).to.equal(false);
        if (cuts[0] === 1 << 20) {
          // One read took the whole stream: every segment is a view of it, nothing to place.
          expect(dests.length).to.equal(0);
          continue;
        }
        // The three large segments are the placeData buffers themselves (read in place, no copy out).
        expect(dests.length).to.equal(3);
        expect(out[1]!.data).to.equal(dests[0]);
        expect(out[2]!.data).to.equal(dests[1]);
        expect(out[4]!.data).to.equal(dests[2]);
        // After a segment read in place, the next read asks for a header only.
        expect(offered).to.include(48);
      }
    });
  }

  it('keeps views of earlier reads intact: a slab is never written again once handed out', () => {
    const pdus = Array.from({ length: 200 }, (_, i) => frame(1, Buffer.alloc(4096, i & 0xff)));
    const stream = Buffer.concat(pdus);
    const r = new PduReader({ headerDigest: false, dataDigest: false, maxDataSegmentLength: 1 << 17 });
    const out: Buffer[] = [];
    feed(r, stream, [65_536, 10_000, 333], (p) => out.push(p!.data));
    expect(out.length).to.equal(200);
    out.forEach((d, i) => expect(d.equals(Buffer.alloc(4096, i & 0xff)), `PDU ${i}`).to.equal(true));
  });

  it('refuses an oversized data segment before reading it', () => {
    const r = new PduReader({ headerDigest: false, dataDigest: false, maxDataSegmentLength: 1024 });
    const s = frame(1, Buffer.alloc(2048));
    const room = r.readBuffer();
    s.copy(room, 0, 0, 48);
    r.commitRead(48);
    try {
      r.next();
      expect.fail('accepted');
    } catch (err) {
      expect(hasErrorCode(err, 'too_large')).to.equal(true);
    }
  });
});
