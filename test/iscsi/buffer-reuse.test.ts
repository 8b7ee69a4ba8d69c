// Pooled IO buffers end to end through the portal: 1 MiB writes (256 KiB immediate data, then
// R2T-solicited Data-Out read straight into a leased buffer) and 1 MiB reads (read into a leased
// buffer, given back once the socket has written it), many in flight at once, rounds after rounds,
// over a device that keeps each write's data a while after acknowledging it (as the replicated
// volume does for its slowest replica). Every byte must come back as written: a buffer given back
// too early would show up as another command's data.
import { expect } from 'chai';
import { MemoryBlockDevice } from '../../lib/block-device.ts';
import { IscsiPortal } from '../../cstor-target/iscsi/portal.ts';
import { ioBuffers } from '../../cstor-target/scsi/buffer-pool.ts';
import type { LeasingBlockDevice } from '../../cstor-target/scsi/disk.ts';
import type { RawPdu } from '../../cstor-target/iscsi/pdu/bhs.ts';
import { RawInitiator, buildBhs, pad } from './raw-initiator.ts';

const MiB = 1 << 20;

/** A memory device that copies writes only after acknowledging them, then releases, like a slow replica. */
class LaggingDevice extends MemoryBlockDevice implements LeasingBlockDevice {
  readonly releasesWriteData = true;
  released = 0;
  readsInto = 0;

  override writeAt(offset: number, data: Buffer, released?: () => void): Promise<void> {
    const copy = Buffer.from(data);
    // Check, some time after the ack, that nobody reused the buffer meanwhile; then give it back.
    setTimeout(
      () => {
        if (!copy.equals(data)) this.corrupted++;
        this.released++;
        released?.();
      },
      1 + (offset % 7),
    );
    return super.writeAt(offset, copy);
  }

  corrupted = 0;

  async readInto(offset: number, into: Buffer): Promise<void> {
    this.readsInto++;
    (await this.readAt(offset, into.length)).copy(into);
  }
}

function cdb10(op: number, lba: number, blocks: number): Buffer {
  const c = Buffer.alloc(10);
  c[0] = op;
  c.writeUInt32BE(lba, 2);
  c.writeUInt16BE(blocks, 7);
  return c;
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE(((i * 2654435761) ^ (seed * 40503)) >>> 0, i);
  return b;
}

function dataOut(itt: number, ttt: number, offset: number, data: Buffer, expStatSN: number): Buffer {
  return Buffer.concat([buildBhs({ opcode: 0x05, flags: 0x80, dataLength: data.length, itt, words: [ttt, 0, expStatSN, 0, 0, offset] }), pad(data)]);
}

async function next(c: RawInitiator): Promise<RawPdu> {
  const p = await c.next(5000);
  if (typeof p === 'string') throw new Error(`target: ${p}`);
  return p;
}

describe('iSCSI pooled data buffers (1 MiB writes and reads, many in flight)', function () {
  this.timeout(60_000);
  let portal: IscsiPortal;
  let port = 0;
  const dev = new LaggingDevice(64 * MiB, 4096);
  let c: RawInitiator;

  before(async () => {
    portal = new IscsiPortal({});
    portal.addTarget({ volume: 'vol1', device: dev });
    port = (await portal.listen('127.0.0.1', 0)).port;
    c = await RawInitiator.connect(port);
    await c.loginNormal(IscsiPortal.iqnFor('vol1'), [
      ['FirstBurstLength', '262144'],
      ['MaxBurstLength', '262144'],
      ['MaxRecvDataSegmentLength', '262144'],
    ]);
  });
  after(async () => {
    c?.close();
    await portal.close();
  });

  it('reuses buffers across rounds and returns every byte as written', async () => {
    const inFlight = 8;
    const rounds = 4;
    const reused0 = ioBuffers.reused;
    let itt = 5000;
    for (let round = 0; round < rounds; round++) {
      // Writes: each slot gets new data every round, at a place that moves.
      const writes = Array.from({ length: inFlight }, (_, i) => ({ itt: itt++, lba: ((round * 3 + i * 5) % 56) * 256, data: pattern(MiB, round * 100 + i) }));
      const latest = new Map<number, Buffer>();
      for (const w of writes) latest.set(w.lba, w.data);
      // Keep only the last write per LBA (rounds reuse places; writes in one round never overlap).
      const byItt = new Map(writes.map((w) => [w.itt, w]));
      c.send(...writes.map((w) => c.scsiCommand(cdb10(0x2a, w.lba, MiB / 4096), { write: true, edtl: MiB, data: w.data.subarray(0, 262144), itt: w.itt })));
      let done = 0;
      while (done < writes.length) {
        const p = await next(c);
        const op = p.bhs[0]! & 0x3f;
        const w = byItt.get(p.bhs.readUInt32BE(16));
        if (op === 0x31 && w) {
          const offset = p.bhs.readUInt32BE(40);
          const length = p.bhs.readUInt32BE(44);
          c.send(dataOut(w.itt, p.bhs.readUInt32BE(20), offset, w.data.subarray(offset, offset + length), c.expStatSN));
        } else if (op === 0x21 && w) {
          expect(p.bhs[3], `write itt ${w.itt} status`).to.equal(0);
          c.expStatSN = (p.bhs.readUInt32BE(24) + 1) >>> 0;
          done++;
        }
      }
      // Reads of everything just written, all in flight at once.
      const reads = writes.map((w) => ({ itt: itt++, w, chunks: [] as Buffer[] }));
      const readByItt = new Map(reads.map((r) => [r.itt, r]));
      c.send(...reads.map((r) => c.scsiCommand(cdb10(0x28, r.w.lba, MiB / 4096), { read: true, edtl: MiB, itt: r.itt })));
      let got = 0;
      while (got < reads.length) {
        const p = await next(c);
        const r = readByItt.get(p.bhs.readUInt32BE(16));
        if ((p.bhs[0]! & 0x3f) !== 0x25 || !r) continue;
        r.chunks.push(Buffer.from(p.data));
        if (p.bhs[1]! & 0x01) {
          expect(p.bhs[3], `read itt ${r.itt} status`).to.equal(0);
          c.expStatSN = (p.bhs.readUInt32BE(24) + 1) >>> 0;
          got++;
        }
      }
      for (const r of reads) expect(Buffer.concat(r.chunks).equals(latest.get(r.w.lba)!), `round ${round} lba ${r.w.lba}`).to.equal(true);
    }
    // Let the device give back the last round's buffers, then check nothing was reused too early.
    await new Promise((r) => setTimeout(r, 50));
    expect(dev.corrupted, 'write buffers reused while the device still held them').to.equal(0);
    expect(dev.released).to.equal(inFlight * rounds);
    expect(dev.readsInto).to.equal(inFlight * rounds);
    expect(ioBuffers.reused - reused0, 'pooled buffers were reused').to.be.greaterThan(inFlight);
  });

  it('keeps a read buffer until the socket has written it, even when the initiator reads slowly', async () => {
    // The initiator stops reading: Data-In piles up in the target's socket queue, and a buffer
    // given back before its write completed would be refilled by a later read while still queued.
    const n = 24;
    const expected = Array.from({ length: n }, (_, i) => pattern(MiB, 7000 + i));
    for (let i = 0; i < n; i++) await dev.writeAt(i * MiB, expected[i]!);
    const chunks = new Map<number, Buffer[]>();
    let itt = 9000;
    c.socket.pause();
    for (let i = 0; i < n; i++) {
      chunks.set(itt, []);
      c.send(c.scsiCommand(cdb10(0x28, i * 256, MiB / 4096), { read: true, edtl: MiB, itt: itt++ }));
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 100));
    c.socket.resume();
    let got = 0;
    while (got < n) {
      const p = await next(c);
      const list = chunks.get(p.bhs.readUInt32BE(16));
      if ((p.bhs[0]! & 0x3f) !== 0x25 || !list) continue;
      list.push(Buffer.from(p.data));
      if (p.bhs[1]! & 0x01) {
        c.expStatSN = (p.bhs.readUInt32BE(24) + 1) >>> 0;
        got++;
      }
    }
    [...chunks.values()].forEach((list, i) => expect(Buffer.concat(list).equals(expected[i]!), `read ${i}`).to.equal(true));
  });
});
