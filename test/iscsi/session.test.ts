// Full feature phase details driven PDU by PDU: R2T and Data-Out, unsolicited data, Data-In
// sequencing, NOP ping both ways, task management, SendTargets, digests, reinstatement, logout.
import { expect } from 'chai';
import { MemoryBlockDevice } from '../../lib/block-device.ts';
import { IscsiPortal } from '../../cstor-target/iscsi/portal.ts';
import { decodeKeys, encodeKeys } from '../../cstor-target/iscsi/text-keys.ts';
import type { RawPdu } from '../../cstor-target/iscsi/pdu/bhs.ts';
import { RawInitiator, buildBhs, pad } from './raw-initiator.ts';

const IQN = IscsiPortal.iqnFor('vol1');

function write10(lba: number, blocks: number): Buffer {
  const c = Buffer.alloc(10);
  c[0] = 0x2a;
  c.writeUInt32BE(lba, 2);
  c.writeUInt16BE(blocks, 7);
  return c;
}

function read10(lba: number, blocks: number): Buffer {
  const c = write10(lba, blocks);
  c[0] = 0x28;
  return c;
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed + (i >> 8)) & 0xff;
  return b;
}

async function nextOf(c: RawInitiator, opcode: number, timeoutMs = 3000): Promise<RawPdu> {
  for (;;) {
    const p = await c.next(timeoutMs);
    if (typeof p === 'string') throw new Error(`waiting for opcode 0x${opcode.toString(16)}: ${p}`);
    if ((p.bhs[0]! & 0x3f) === opcode) return p;
  }
}

function dataOut(itt: number, ttt: number, dataSN: number, offset: number, data: Buffer, final: boolean, expStatSN: number): Buffer {
  return Buffer.concat([buildBhs({ opcode: 0x05, flags: final ? 0x80 : 0, dataLength: data.length, itt, words: [ttt, 0, expStatSN, 0, dataSN, offset] }), pad(data)]);
}

describe('iSCSI full feature phase', function () {
  this.timeout(30_000);
  let portal: IscsiPortal;
  let port = 0;
  const dev = new MemoryBlockDevice(16 << 20);
  const open: RawInitiator[] = [];

  async function session(overrides: Array<[string, string]> = []): Promise<RawInitiator> {
    const c = await RawInitiator.connect(port);
    open.push(c);
    await c.loginNormal(IQN, overrides);
    return c;
  }

  before(async () => {
    portal = new IscsiPortal({ connection: { nopInIntervalMs: 300, nopInTimeoutMs: 900 } });
    portal.addTarget({ volume: 'vol1', device: dev });
    port = (await portal.listen('127.0.0.1', 0)).port;
  });
  afterEach(() => open.splice(0).forEach((c) => c.close()));
  after(() => portal.close());

  it('collects a write through immediate data and R2T-solicited Data-Out bursts', async () => {
    const c = await session([['InitialR2T', 'Yes']]);
    const data = pattern(600 * 1024, 1);
    const itt = 1000;
    c.send(c.scsiCommand(write10(100, data.length / 512), { write: true, edtl: data.length, data: data.subarray(0, 65536), itt }));
    const r2ts: Array<{ ttt: number; offset: number; length: number; r2tSN: number }> = [];
    let received = 65536;
    while (received < data.length) {
      const r2t = await nextOf(c, 0x31);
      const x = { ttt: r2t.bhs.readUInt32BE(20), r2tSN: r2t.bhs.readUInt32BE(36), offset: r2t.bhs.readUInt32BE(40), length: r2t.bhs.readUInt32BE(44) };
      r2ts.push(x);
      for (let off = 0, sn = 0; off < x.length; off += 65536, sn++) {
        const n = Math.min(65536, x.length - off);
        c.send(dataOut(itt, x.ttt, sn, x.offset + off, data.subarray(x.offset + off, x.offset + off + n), off + n >= x.length, c.expStatSN));
      }
      received += x.length;
    }
    expect(r2ts.map((r) => [r.r2tSN, r.offset, r.length])).to.deep.equal([
      [0, 65536, 262144],
      [1, 327680, 262144],
      [2, 589824, 24576],
    ]);
    const res = await c.collect(itt);
    if (typeof res === 'string') throw new Error(res);
    expect(res.status).to.equal(0);
    expect((await dev.readAt(100 * 512, data.length)).equals(data)).to.equal(true);
  });

  it('assembles large immediate data of commands sent back to back, each in its own buffer, then R2T data', async () => {
    // 256 KiB of immediate data spans socket reads, so the reader places it straight into the
    // command's buffer; three commands in one send check each claims its own buffer (and that a
    // command left without placement still gets its bytes).
    const c = await session([['FirstBurstLength', '262144'], ['MaxRecvDataSegmentLength', '262144']]);
    const cmds = [
      { itt: 1500, lba: 2000, data: pattern(512 * 1024, 11) },
      { itt: 1501, lba: 3200, data: pattern(300 * 1024, 12) },
      { itt: 1502, lba: 4000, data: pattern(256 * 1024, 13) },
    ];
    c.send(...cmds.map((x) => c.scsiCommand(write10(x.lba, x.data.length / 512), { write: true, edtl: x.data.length, data: x.data.subarray(0, 262144), itt: x.itt })));
    const pending = new Map(cmds.filter((x) => x.data.length > 262144).map((x) => [x.itt, x]));
    while (pending.size > 0) {
      const r2t = await nextOf(c, 0x31);
      const x = pending.get(r2t.bhs.readUInt32BE(16))!;
      const offset = r2t.bhs.readUInt32BE(40);
      const length = r2t.bhs.readUInt32BE(44);
      expect(offset).to.equal(262144);
      c.send(dataOut(x.itt, r2t.bhs.readUInt32BE(20), 0, offset, x.data.subarray(offset, offset + length), true, c.expStatSN));
      if (offset + length >= x.data.length) pending.delete(x.itt);
    }
    const statuses = new Map<number, number>();
    while (statuses.size < cmds.length) {
      const p = await nextOf(c, 0x21);
      statuses.set(p.bhs.readUInt32BE(16), p.bhs[3]!);
    }
    expect([...statuses.values()]).to.deep.equal([0, 0, 0]);
    for (const x of cmds) expect((await dev.readAt(x.lba * 512, x.data.length)).equals(x.data), `itt ${x.itt}`).to.equal(true);
  });

  it('takes unsolicited Data-Out up to FirstBurstLength, then asks for the rest', async () => {
    const c = await session([['FirstBurstLength', '16384'], ['MaxRecvDataSegmentLength', '8192']]);
    const data = pattern(40960, 2);
    const itt = 2000;
    c.send(c.scsiCommand(write10(300, 80), { write: true, edtl: data.length, data: data.subarray(0, 4096), itt, final: false }));
    c.send(dataOut(itt, 0xffffffff, 0, 4096, data.subarray(4096, 12288), false, c.expStatSN));
    c.send(dataOut(itt, 0xffffffff, 1, 12288, data.subarray(12288, 16384), true, c.expStatSN));
    const r2t = await nextOf(c, 0x31);
    expect([r2t.bhs.readUInt32BE(40), r2t.bhs.readUInt32BE(44)]).to.deep.equal([16384, 24576]);
    const ttt = r2t.bhs.readUInt32BE(20);
    for (let off = 16384, sn = 0; off < data.length; off += 8192, sn++) c.send(dataOut(itt, ttt, sn, off, data.subarray(off, off + 8192), off + 8192 >= data.length, c.expStatSN));
    const res = await c.collect(itt);
    if (typeof res === 'string') throw new Error(res);
    expect(res.status).to.equal(0);
    expect((await dev.readAt(300 * 512, data.length)).equals(data)).to.equal(true);
  });

  it('asks by R2T for what a short unsolicited burst left out', async () => {
    const c = await session([['FirstBurstLength', '16384']]);
    const data = pattern(8192, 5);
    const itt = 2500;
    c.send(c.scsiCommand(write10(400, 16), { write: true, edtl: data.length, itt, final: false }));
    c.send(dataOut(itt, 0xffffffff, 0, 0, data.subarray(0, 2048), true, c.expStatSN));
    const r2t = await nextOf(c, 0x31);
    expect([r2t.bhs.readUInt32BE(40), r2t.bhs.readUInt32BE(44)]).to.deep.equal([2048, 6144]);
    c.send(dataOut(itt, r2t.bhs.readUInt32BE(20), 0, 2048, data.subarray(2048), true, c.expStatSN));
    const res = await c.collect(itt);
    if (typeof res === 'string') throw new Error(res);
    expect(res.status).to.equal(0);
    expect((await dev.readAt(400 * 512, data.length)).equals(data)).to.equal(true);
  });

  it("splits Data-In to the initiator's MaxRecvDataSegmentLength with DataSN and offsets, status in the last", async () => {
    const data = pattern(64 * 1024, 3);
    await dev.writeAt(1000 * 512, data);
    const c = await session([['MaxRecvDataSegmentLength', '4096']]);
    const itt = 3000;
    c.send(c.scsiCommand(read10(1000, 128), { read: true, edtl: data.length, itt }));
    const pdus: RawPdu[] = [];
    for (;;) {
      const p = await nextOf(c, 0x25);
      pdus.push(p);
      if (p.bhs[1]! & 0x01) break;
    }
    expect(pdus).to.have.length(16);
    pdus.forEach((p, i) => {
      expect(p.bhs.readUInt32BE(36)).to.equal(i);
      expect(p.bhs.readUInt32BE(40)).to.equal(i * 4096);
      expect(p.data.length).to.equal(4096);
    });
    expect(pdus[15]!.bhs[1]! & 0x81).to.equal(0x81);
    expect(Buffer.concat(pdus.map((p) => p.data)).equals(data)).to.equal(true);
  });

  it('answers NOP-Out pings, and pings an idle initiator (dropping it when it never answers)', async () => {
    const c = await session();
    const ping = Buffer.from('ping-data-1234');
    c.send(buildBhs({ opcode: 0x00, immediate: true, dataLength: ping.length, itt: 77, words: [0xffffffff, c.cmdSN, c.expStatSN] }), pad(ping));
    const reply = await nextOf(c, 0x20);
    expect(reply.bhs.readUInt32BE(16)).to.equal(77);
    expect(reply.data.equals(ping)).to.equal(true);
    // Idle: the target pings with its own TTT; we answer once, then stay silent.
    const ours = await nextOf(c, 0x20, 3000);
    expect(ours.bhs.readUInt32BE(16)).to.equal(0xffffffff);
    const ttt = ours.bhs.readUInt32BE(20);
    expect(ttt).to.not.equal(0xffffffff);
    c.send(buildBhs({ opcode: 0x00, immediate: true, itt: 0xffffffff, words: [ttt, c.cmdSN, c.expStatSN] }));
    await nextOf(c, 0x20, 3000);
    expect(await c.waitClosed(5000)).to.equal(true);
  });

  it('aborts a task waiting for data (no response for it), and LUN RESET leaves a unit attention', async () => {
    const c = await session([['InitialR2T', 'Yes'], ['ImmediateData', 'No']]);
    const itt = 4000;
    c.send(c.scsiCommand(write10(0, 8), { write: true, edtl: 4096, itt }));
    await nextOf(c, 0x31);
    const cmdSN = c.cmdSN;
    c.send(buildBhs({ opcode: 0x02, immediate: true, flags: 0x81, itt: 4001, words: [itt, cmdSN, c.expStatSN, cmdSN - 1, 0] }));
    const tmf = await nextOf(c, 0x22);
    expect(tmf.bhs.readUInt32BE(16)).to.equal(4001);
    expect(tmf.bhs[2]).to.equal(0); // function complete
    // A late Data-Out for the aborted task is dropped quietly; the next command works.
    c.send(dataOut(itt, 1, 0, 0, Buffer.alloc(4096), true, c.expStatSN));
    const tur = await c.scsi(Buffer.alloc(6));
    if (typeof tur === 'string') throw new Error(tur);
    expect(tur.status).to.equal(0);
    c.send(buildBhs({ opcode: 0x02, immediate: true, flags: 0x85, itt: 4002, words: [0xffffffff, c.cmdSN, c.expStatSN, 0, 0] }));
    expect((await nextOf(c, 0x22)).bhs[2]).to.equal(0);
    // The reset leaves a unit attention (29h/03h) for the next command, once.
    const ua = await c.scsi(Buffer.alloc(6));
    if (typeof ua === 'string') throw new Error(ua);
    expect(ua.status).to.equal(2);
    expect([ua.sense![2]! & 0x0f, ua.sense![12], ua.sense![13]]).to.deep.equal([6, 0x29, 0x03]);
    const after = await c.scsi(Buffer.alloc(6));
    if (typeof after === 'string') throw new Error(after);
    expect(after.status).to.equal(0);
    c.send(buildBhs({ opcode: 0x02, immediate: true, flags: 0x81, itt: 4003, words: [999999, c.cmdSN, c.expStatSN, c.cmdSN + 5, 0] }));
    expect((await nextOf(c, 0x22)).bhs[2]).to.equal(1); // task does not exist
  });

  it('answers SendTargets in a discovery session and logs out cleanly', async () => {
    const c = await RawInitiator.connect(port);
    open.push(c);
    const r = await c.login([['InitiatorName', 'iqn.2026-01.test:disc'], ['SessionType', 'Discovery']]);
    expect(r.statusClass).to.equal(0);
    const body = encodeKeys([['SendTargets', 'All']]);
    c.send(buildBhs({ opcode: 0x04, immediate: true, flags: 0x80, dataLength: body.length, itt: 5, words: [0xffffffff, c.cmdSN, c.expStatSN] }), pad(body));
    const text = await nextOf(c, 0x24);
    expect(decodeKeys(text.data)).to.deep.equal([['TargetName', IQN], ['TargetAddress', `127.0.0.1:${port},1`]]);
    c.send(buildBhs({ opcode: 0x06, immediate: true, flags: 0x80, itt: 6, words: [0, c.cmdSN, c.expStatSN] }));
    const lo = await nextOf(c, 0x26);
    expect(lo.bhs[2]).to.equal(0);
    expect(await c.waitClosed()).to.equal(true);
  });

  it('negotiates CRC32C header and data digests and checks them', async () => {
    const c = await RawInitiator.connect(port);
    open.push(c);
    const keys = Object.fromEntries(await c.loginNormal(IQN, [['HeaderDigest', 'CRC32C'], ['DataDigest', 'CRC32C']]));
    expect(keys).to.include({ HeaderDigest: 'CRC32C', DataDigest: 'CRC32C' });
    c.enableDigests(true, true);
    const data = pattern(8192, 4);
    const w = await c.scsi(write10(2000, 16), { write: true, edtl: data.length, data });
    if (typeof w === 'string') throw new Error(w);
    expect(w.status).to.equal(0);
    const r = await c.scsi(read10(2000, 16), { read: true, edtl: data.length });
    if (typeof r === 'string') throw new Error(r);
    expect(r.data.equals(data)).to.equal(true);
  });

  it('reinstates a session logged in again with the same initiator and ISID', async () => {
    const a = await session();
    const b = await session();
    expect(await a.waitClosed()).to.equal(true);
    const r = await b.scsi(Buffer.alloc(6));
    if (typeof r === 'string') throw new Error(r);
    expect(r.status).to.equal(0);
  });

  it('runs many commands in flight on one session', async () => {
    const c = await session();
    const n = 64;
    const itts: number[] = [];
    for (let i = 0; i < n; i++) {
      itts.push(c.itt);
      c.send(c.scsiCommand(write10(4000 + i * 8, 8), { write: true, edtl: 4096, data: pattern(4096, i) }));
    }
    const pending = new Set(itts);
    while (pending.size > 0) {
      const p = await nextOf(c, 0x21);
      expect(p.bhs[3]).to.equal(0);
      pending.delete(p.bhs.readUInt32BE(16));
    }
    for (let i = 0; i < n; i++) expect((await dev.readAt((4000 + i * 8) * 512, 4096)).equals(pattern(4096, i))).to.equal(true);
  });

  it('removeTarget drops sessions with commands in flight; the volume can be served again', async () => {
    const slow = new MemoryBlockDevice(1 << 20);
    const realWrite = slow.writeAt.bind(slow);
    slow.writeAt = async (off, data) => {
      await new Promise((r) => setTimeout(r, 200));
      return realWrite(off, data);
    };
    portal.addTarget({ volume: 'slow', device: slow });
    const c = await RawInitiator.connect(port);
    open.push(c);
    await c.loginNormal(IscsiPortal.iqnFor('slow'));
    for (let i = 0; i < 8; i++) c.send(c.scsiCommand(write10(i * 8, 8), { write: true, edtl: 4096, data: Buffer.alloc(4096, i) }));
    await new Promise((r) => setTimeout(r, 50));
    expect(portal.targetInfo('slow')!.inFlight).to.be.greaterThan(0);
    await portal.removeTarget('slow');
    expect(await c.waitClosed()).to.equal(true);
    expect(portal.hasTarget('slow')).to.equal(false);
    portal.addTarget({ volume: 'slow', device: new MemoryBlockDevice(1 << 20) });
    const d = await session();
    const again = await RawInitiator.connect(port);
    open.push(again);
    await again.loginNormal(IscsiPortal.iqnFor('slow'));
    const r = await again.scsi(Buffer.alloc(6));
    if (typeof r === 'string') throw new Error(r);
    expect(r.status).to.equal(0);
    d.close();
    await portal.removeTarget('slow');
  });
});
