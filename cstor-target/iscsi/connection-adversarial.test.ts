// Adversarial review of the iSCSI connection, PDU by PDU over a real socket: Data-In sequences
// within MaxBurstLength, tags reused while an aborted command still runs, ABORT TASK for commands
// held behind a CmdSN gap (or never received), resets in the middle of a write's Data-Out, a
// connection dropped with pooled Data-In queued, two sessions on one LBA, residuals of a WRITE
// sent without its data.
import { expect } from 'chai';
import { MemoryBlockDevice } from '../../lib/block-device.ts';
import { IscsiPortal } from './portal.ts';
import type { RawPdu } from './pdu/bhs.ts';
import { ioBuffers } from '../scsi/buffer-pool.ts';
import type { LeasingBlockDevice } from '../scsi/disk.ts';
import { RawInitiator, buildBhs, pad, type ScsiReply } from '../../test/iscsi/raw-initiator.ts';

const BS = 512;
const MiB = 1 << 20;

/** A memory device whose writes can be held (they complete when let go), reading into pooled buffers. */
class HoldingDevice extends MemoryBlockDevice implements LeasingBlockDevice {
  readonly releasesWriteData = true;
  hold = false;
  private held: Array<() => void> = [];
  writes = 0;

  override writeAt(offset: number, data: Buffer, released?: () => void): Promise<void> {
    this.writes++;
    const copy = Buffer.from(data);
    const run = (): Promise<void> =>
      super.writeAt(offset, copy).then(() => {
        released?.();
      });
    if (!this.hold) return run();
    return new Promise<void>((resolve, reject) => this.held.push(() => void run().then(resolve, reject)));
  }

  async readInto(offset: number, into: Buffer): Promise<void> {
    (await this.readAt(offset, into.length)).copy(into);
  }

  letGo(): void {
    this.hold = false;
    this.held.splice(0).forEach((f) => f());
  }

  get heldCount(): number {
    return this.held.length;
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

function dataOut(itt: number, ttt: number, dataSN: number, offset: number, data: Buffer, final: boolean, expStatSN: number): Buffer {
  return Buffer.concat([buildBhs({ opcode: 0x05, flags: final ? 0x80 : 0, dataLength: data.length, itt, words: [ttt, 0, expStatSN, 0, dataSN, offset] }), pad(data)]);
}

/** An immediate Task Management Function Request. */
function tmf(c: RawInitiator, fn: number, itt: number, refItt: number, refCmdSN: number): Buffer {
  return buildBhs({ opcode: 0x02, immediate: true, flags: 0x80 | fn, itt, words: [refItt, c.cmdSN, c.expStatSN, refCmdSN, 0] });
}

async function nextOf(c: RawInitiator, opcode: number, timeoutMs = 3000): Promise<RawPdu> {
  for (;;) {
    const p = await c.next(timeoutMs);
    if (typeof p === 'string') throw new Error(`waiting for opcode 0x${opcode.toString(16)}: ${p}`);
    if ((p.bhs[0]! & 0x3f) === opcode) return p;
  }
}

function reply(r: ScsiReply | 'closed' | 'timeout'): ScsiReply {
  if (typeof r === 'string') throw new Error(`no SCSI response: ${r}`);
  return r;
}

describe('iSCSI connection under adversarial initiators', function () {
  this.timeout(60_000);
  let portal: IscsiPortal;
  let port = 0;
  const dev = new HoldingDevice(64 * MiB, BS);
  const IQN = IscsiPortal.iqnFor('adv1');
  const open: RawInitiator[] = [];

  async function session(overrides: Array<[string, string]> = [], isid?: number): Promise<RawInitiator> {
    const c = await RawInitiator.connect(port);
    open.push(c);
    if (isid !== undefined) c.isid = Buffer.from([0x80, 0, 0, 0, 0, isid]);
    await c.loginNormal(IQN, overrides);
    return c;
  }

  before(async () => {
    portal = new IscsiPortal({});
    portal.addTarget({ volume: 'adv1', device: dev });
    port = (await portal.listen('127.0.0.1', 0)).port;
  });
  afterEach(() => {
    dev.letGo();
    open.splice(0).forEach((c) => c.close());
  });
  after(() => portal.close());

  it('never sends a Data-In PDU past MaxBurstLength: a 256 KiB read goes into sequences of MaxBurstLength with F at each boundary', async () => {
    const c = await session([
      ['MaxRecvDataSegmentLength', '262144'],
      ['MaxBurstLength', '65536'],
    ]);
    const data = pattern(256 * 1024 + 2 * BS, 2);
    await dev.writeAt(4096 * BS, data);
    const itt = 77;
    c.send(c.scsiCommand(cdb10(0x28, 4096, data.length / BS), { read: true, edtl: data.length, itt }));
    const got = Buffer.alloc(data.length);
    let expectOffset = 0;
    let dataSN = 0;
    for (;;) {
      const p = await nextOf(c, 0x25);
      const len = p.data.length;
      const off = p.bhs.readUInt32BE(40);
      expect(p.bhs.readUInt32BE(16)).to.equal(itt);
      expect(off).to.equal(expectOffset);
      expect(p.bhs.readUInt32BE(36)).to.equal(dataSN++);
      expect(len, `Data-In at ${off}`).to.be.at.most(65536);
      // No PDU crosses a 64 KiB boundary, and F marks the end of each sequence.
      expect(Math.floor(off / 65536)).to.equal(Math.floor((off + len - 1) / 65536));
      const end = off + len;
      expect((p.bhs[1]! & 0x80) !== 0, `F at ${end}`).to.equal(end % 65536 === 0 || end === data.length);
      p.data.copy(got, off);
      expectOffset = end;
      if (p.bhs[1]! & 0x01) {
        expect(p.bhs[3]).to.equal(0);
        break;
      }
    }
    expect(got.equals(data)).to.equal(true);
  });

  it('keeps a new command that reuses the tag of an aborted one still at the device', async () => {
    const a = await session([['InitialR2T', 'Yes']], 1);
    const b = await session([], 2);
    // A's write 7 reaches the (held) device.
    dev.hold = true;
    a.send(a.scsiCommand(cdb10(0x2a, 100, 1), { write: true, edtl: BS, data: Buffer.alloc(BS, 0x11), itt: 7 }));
    for (let i = 0; i < 100 && dev.heldCount === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(dev.heldCount).to.equal(1);
    // B resets the LUN: A's task 7 is aborted (A gets no answer for it); the reset waits for it.
    b.send(tmf(b, 5, 900, 0xffffffff, 0));
    // A (which never saw an answer) reuses tag 7 for a write that needs an R2T.
    a.send(a.scsiCommand(cdb10(0x2a, 200, 2), { write: true, edtl: 2 * BS, itt: 7 }));
    const r2t = await nextOf(a, 0x31);
    // The old task 7 finishes now; the new one must survive it.
    dev.letGo();
    expect((await nextOf(b, 0x22)).bhs[2]).to.equal(0);
    const data = pattern(2 * BS, 3);
    a.send(dataOut(7, r2t.bhs.readUInt32BE(20), 0, 0, data, true, a.expStatSN));
    const r = reply(await a.collect(7));
    expect(r.status).to.equal(0x02); // the unit attention of B's reset comes first: the command did not run
    expect([r.sense![2]! & 0x0f, r.sense![12], r.sense![13]]).to.deep.equal([6, 0x29, 0x03]);
    const again = reply(await a.scsi(cdb10(0x2a, 200, 2), { write: true, edtl: 2 * BS, data }));
    expect(again.status).to.equal(0);
    expect((await dev.readAt(200 * BS, 2 * BS)).equals(data)).to.equal(true);
  });

  it('never runs a command held behind a CmdSN gap once ABORT TASK answered for it', async () => {
    const c = await session();
    const before = await dev.readAt(300 * BS, BS);
    const gap = c.cmdSN;
    // CmdSN gap+1: a write, held until gap arrives.
    c.send(c.scsiCommand(cdb10(0x2a, 300, 1), { write: true, edtl: BS, data: Buffer.alloc(BS, 0x5a), cmdSN: gap + 1, itt: 31 }));
    await new Promise((r) => setTimeout(r, 50));
    c.cmdSN = gap + 2;
    c.send(tmf(c, 1, 32, 31, gap + 1));
    expect((await nextOf(c, 0x22)).bhs[2]).to.equal(0); // function complete
    // The gap fills: the TUR runs, the aborted write does not.
    c.send(c.scsiCommand(Buffer.alloc(6), { cmdSN: gap, itt: 33 }));
    expect(reply(await c.collect(33)).status).to.equal(0);
    expect(await c.collect(31, 300)).to.equal('timeout');
    expect((await dev.readAt(300 * BS, BS)).equals(before)).to.equal(true);
    // The window moved past both: the next CmdSN works.
    const tur = reply(await c.scsi(Buffer.alloc(6), { cmdSN: gap + 2 }));
    expect(tur.status).to.equal(0);
  });

  it('never runs a command held behind a CmdSN gap once a LUN RESET sent after it answered', async () => {
    const c = await session([], 9);
    const before = await dev.readAt(320 * BS, BS);
    const gap = c.cmdSN;
    c.send(c.scsiCommand(cdb10(0x2a, 320, 1), { write: true, edtl: BS, data: Buffer.alloc(BS, 0x6b), cmdSN: gap + 1, itt: 35 }));
    await new Promise((r) => setTimeout(r, 50));
    c.cmdSN = gap + 2;
    c.send(tmf(c, 5, 36, 0xffffffff, 0));
    expect((await nextOf(c, 0x22)).bhs[2]).to.equal(0);
    // The gap fills: the TUR sees the reset's unit attention, and the write sent before the reset never runs.
    c.send(c.scsiCommand(Buffer.alloc(6), { cmdSN: gap, itt: 37 }));
    expect(reply(await c.collect(37)).status).to.equal(0x02);
    expect(await c.collect(35, 300)).to.equal('timeout');
    expect((await dev.readAt(320 * BS, BS)).equals(before)).to.equal(true);
    expect(reply(await c.scsi(Buffer.alloc(6), { cmdSN: gap + 2 })).status).to.equal(0);
  });

  it('moves ExpCmdSN past a command that was never received once ABORT TASK names it (no hang)', async () => {
    const c = await session();
    const lost = c.cmdSN;
    // CmdSN lost+1 arrives; `lost` never does (the initiator gave up on it and aborts it).
    c.send(c.scsiCommand(Buffer.alloc(6), { cmdSN: lost + 1, itt: 41 }));
    expect(await c.collect(41, 200)).to.equal('timeout');
    c.cmdSN = lost + 2;
    c.send(tmf(c, 1, 42, 40, lost));
    // Both answers come: the TMF's (function complete) and, the gap gone, the held TUR's.
    const answers = new Map<number, RawPdu>();
    for (let i = 0; i < 2; i++) {
      const p = await c.next();
      if (typeof p === 'string') throw new Error(`waiting for the answers: ${p}`);
      answers.set(p.bhs.readUInt32BE(16), p);
    }
    const tmfAnswer = answers.get(42);
    const turAnswer = answers.get(41);
    if (!tmfAnswer || !turAnswer) throw new Error(`answers for ${[...answers.keys()].join(', ')}`);
    expect(tmfAnswer.bhs[0]! & 0x3f).to.equal(0x22);
    expect(tmfAnswer.bhs[2]).to.equal(0);
    expect(turAnswer.bhs[0]! & 0x3f).to.equal(0x21);
    expect(turAnswer.bhs[3]).to.equal(0);
    c.expStatSN = Math.max(...[...answers.values()].map((p) => p.bhs.readUInt32BE(24))) + 1;
    // A late copy of the lost command is outside the window now: ignored.
    c.send(c.scsiCommand(cdb10(0x2a, 400, 1), { write: true, edtl: BS, data: Buffer.alloc(BS, 0x77), cmdSN: lost, itt: 40 }));
    expect(await c.collect(40, 300)).to.equal('timeout');
    expect((await dev.readAt(400 * BS, BS)).every((x) => x !== 0x77)).to.equal(true);
  });

  it('drops the rest of a write whose task a LUN reset aborted mid Data-Out; nothing reaches the device', async () => {
    const a = await session([['InitialR2T', 'Yes'], ['ImmediateData', 'No'], ['MaxBurstLength', '262144']], 3);
    const b = await session([], 4);
    const before = await dev.readAt(8192 * BS, MiB);
    const writesBefore = dev.writes;
    const data = pattern(MiB, 5);
    a.send(a.scsiCommand(cdb10(0x2a, 8192, MiB / BS), { write: true, edtl: MiB, itt: 51 }));
    const r2t = await nextOf(a, 0x31);
    const ttt = r2t.bhs.readUInt32BE(20);
    // Half of the first burst, then the reset from B, then the rest of the burst.
    a.send(dataOut(51, ttt, 0, 0, data.subarray(0, 131072), false, a.expStatSN));
    await new Promise((r) => setTimeout(r, 30));
    b.send(tmf(b, 5, 901, 0xffffffff, 0));
    expect((await nextOf(b, 0x22)).bhs[2]).to.equal(0);
    a.send(dataOut(51, ttt, 1, 131072, data.subarray(131072, 262144), true, a.expStatSN));
    // No answer and no further R2T for task 51; the connection still serves.
    const tur = reply(await a.scsi(Buffer.alloc(6)));
    expect(tur.status).to.equal(0x02); // the reset's unit attention
    expect(reply(await a.scsi(Buffer.alloc(6))).status).to.equal(0);
    expect(await a.collect(51, 200)).to.equal('timeout');
    expect(dev.writes).to.equal(writesBefore);
    expect((await dev.readAt(8192 * BS, MiB)).equals(before)).to.equal(true);
  });

  it('closes the CmdSN window while queueDepth commands are outstanding, and opens it as they finish', async () => {
    const small = new IscsiPortal({ connection: { queueDepth: 4 } });
    const held = new HoldingDevice(4 * MiB, BS);
    small.addTarget({ volume: 'qd4', device: held });
    const smallPort = (await small.listen('127.0.0.1', 0)).port;
    try {
      const c = await RawInitiator.connect(smallPort);
      open.push(c);
      await c.loginNormal(IscsiPortal.iqnFor('qd4'));
      const first = c.cmdSN;
      held.hold = true;
      const itts: number[] = [];
      for (let i = 0; i < 4; i++) {
        itts.push(c.itt);
        c.send(c.scsiCommand(cdb10(0x2a, i * 8, 8), { write: true, edtl: 4096, data: Buffer.alloc(4096, i + 1) }));
      }
      for (let i = 0; i < 100 && held.heldCount < 4; i++) await new Promise((r) => setTimeout(r, 10));
      expect(held.heldCount).to.equal(4);
      // An immediate NOP-Out: its NOP-In shows the window closed (MaxCmdSN = ExpCmdSN - 1).
      c.send(buildBhs({ opcode: 0x00, immediate: true, itt: 999, words: [0xffffffff, c.cmdSN, c.expStatSN] }));
      const nop = await nextOf(c, 0x20);
      expect(nop.bhs.readUInt32BE(28), 'ExpCmdSN').to.equal(first + 4);
      expect(nop.bhs.readUInt32BE(32), 'MaxCmdSN').to.equal(first + 3);
      // A fifth command past the advertised window is ignored (the initiator broke the rule).
      c.send(c.scsiCommand(Buffer.alloc(6), { itt: 555 }));
      expect(await c.collect(555, 200)).to.equal('timeout');
      // The writes finish: each answer opens the window by one more.
      held.letGo();
      const maxes: number[] = [];
      for (let i = 0; i < 4; i++) {
        const p = await nextOf(c, 0x21);
        expect(p.bhs[3]).to.equal(0);
        maxes.push(p.bhs.readUInt32BE(32));
      }
      expect(maxes.sort((x, y) => x - y)).to.deep.equal([first + 4, first + 5, first + 6, first + 7]);
      const tur = reply(await c.scsi(Buffer.alloc(6), { cmdSN: first + 4 }));
      expect(tur.status).to.equal(0);
    } finally {
      held.letGo();
      await small.close();
    }
  });

  it('gives pooled read buffers back safely when the initiator drops the connection with Data-In queued', async () => {
    const base = 16384;
    const blocks = MiB / BS;
    for (let i = 0; i < 8; i++) await dev.writeAt((base + i * blocks) * BS, pattern(MiB, 100 + i));
    for (let round = 0; round < 3; round++) {
      const c = await session([['MaxRecvDataSegmentLength', '262144']]);
      for (let i = 0; i < 8; i++) c.send(c.scsiCommand(cdb10(0x28, base + i * blocks, blocks), { read: true, edtl: MiB }));
      await new Promise((r) => setTimeout(r, 5 + round * 10));
      c.socket.destroy();
    }
    // A fresh session reads and writes 1 MiB blocks through the same pool: every byte as written.
    const c = await session([['MaxRecvDataSegmentLength', '262144'], ['FirstBurstLength', '262144'], ['MaxBurstLength', '262144']]);
    const reusedBefore = ioBuffers.reused;
    for (let round = 0; round < 3; round++) {
      const itts: number[] = [];
      for (let i = 0; i < 8; i++) {
        itts.push(c.itt);
        c.send(c.scsiCommand(cdb10(0x28, base + i * blocks, blocks), { read: true, edtl: MiB }));
      }
      for (let i = 0; i < 8; i++) {
        const r = reply(await c.collect(itts[i]!, 5000));
        expect(r.status).to.equal(0);
        expect(r.data.equals(pattern(MiB, 100 + i)), `round ${round} read ${i}`).to.equal(true);
      }
    }
    expect(ioBuffers.reused).to.be.greaterThan(reusedBefore);
  });

  it('two sessions writing the same LBA: each read returns the last acknowledged write', async () => {
    const a = await session([], 5);
    const b = await session([], 6);
    for (let i = 0; i < 20; i++) {
      const w = i % 2 === 0 ? a : b;
      const data = Buffer.alloc(4096, i + 1);
      expect(reply(await w.scsi(cdb10(0x2a, 500, 8), { write: true, edtl: 4096, data })).status).to.equal(0);
      const r = reply(await (w === a ? b : a).scsi(cdb10(0x28, 500, 8), { read: true, edtl: 4096 }));
      expect(r.data.equals(data)).to.equal(true);
    }
  });

  it('reuses a tag right after its command completed, and drops a late duplicate Data-Out for the old one', async () => {
    const c = await session([['InitialR2T', 'Yes'], ['ImmediateData', 'No']]);
    const data = pattern(4096, 9);
    c.send(c.scsiCommand(cdb10(0x2a, 600, 8), { write: true, edtl: 4096, itt: 61 }));
    const r2t = await nextOf(c, 0x31);
    const ttt = r2t.bhs.readUInt32BE(20);
    c.send(dataOut(61, ttt, 0, 0, data, true, c.expStatSN));
    expect(reply(await c.collect(61)).status).to.equal(0);
    // Tag 61 again at once, a read of what was written; then a duplicate of the old Data-Out.
    const r = reply(await c.scsi(cdb10(0x28, 600, 8), { read: true, edtl: 4096, itt: 61 }));
    expect(r.data.equals(data)).to.equal(true);
    c.send(dataOut(61, ttt, 0, 0, Buffer.alloc(4096, 0xee), true, c.expStatSN));
    expect(reply(await c.scsi(Buffer.alloc(6))).status).to.equal(0);
    expect((await dev.readAt(600 * BS, 4096)).equals(data)).to.equal(true);
  });

  it('drops the connection on an unsolicited Data-Out with DataSN -1 or 27 and writes nothing', async () => {
    for (const dataSN of [0xffffffff, 27]) {
      const c = await session([['InitialR2T', 'No'], ['ImmediateData', 'No']]);
      const before = await dev.readAt(750 * BS, BS);
      c.send(c.scsiCommand(cdb10(0x2a, 750, 1), { write: true, edtl: BS, final: false, itt: 75 }));
      c.send(dataOut(75, 0xffffffff, dataSN, 0, Buffer.alloc(BS, 0x42), true, c.expStatSN));
      expect(await c.waitClosed(), `DataSN ${dataSN}`).to.equal(true);
      expect((await dev.readAt(750 * BS, BS)).equals(before)).to.equal(true);
    }
  });

  it('drops the connection on a duplicate DataSN in a burst and writes nothing', async () => {
    const c = await session([['InitialR2T', 'Yes'], ['ImmediateData', 'No']]);
    const before = await dev.readAt(700 * BS, 4096);
    c.send(c.scsiCommand(cdb10(0x2a, 700, 8), { write: true, edtl: 4096, itt: 71 }));
    const ttt = (await nextOf(c, 0x31)).bhs.readUInt32BE(20);
    c.send(dataOut(71, ttt, 0, 0, Buffer.alloc(2048, 1), false, c.expStatSN));
    c.send(dataOut(71, ttt, 0, 2048, Buffer.alloc(2048, 2), true, c.expStatSN));
    expect(await c.waitClosed()).to.equal(true);
    expect((await dev.readAt(700 * BS, 4096)).equals(before)).to.equal(true);
  });

  it('reports the whole transfer as overflow for a WRITE sent without the W bit (nothing was written)', async () => {
    const c = await session();
    const before = await dev.readAt(800 * BS, 4096);
    const r = reply(await c.scsi(cdb10(0x2a, 800, 8), { read: true, edtl: 4096 }));
    expect(r.status).to.equal(0);
    expect(r.flags & 0x04, 'overflow').to.equal(0x04);
    expect(r.residual).to.equal(4096);
    expect((await dev.readAt(800 * BS, 4096)).equals(before)).to.equal(true);
    // With W and all the data: no residual.
    const ok = reply(await c.scsi(cdb10(0x2a, 800, 8), { write: true, edtl: 4096, data: Buffer.alloc(4096, 3) }));
    expect(ok.status).to.equal(0);
    expect(ok.flags & 0x06).to.equal(0);
    // A command that moves no data with an EDTL: underflow, as before.
    const tur = reply(await c.scsi(Buffer.alloc(6), { read: true, edtl: 512 }));
    expect(tur.flags & 0x02).to.equal(0x02);
    expect(tur.residual).to.equal(512);
  });
});
