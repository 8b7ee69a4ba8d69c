// Bad input at the portal: random, truncated and oversized PDUs, out-of-order CmdSN, unknown
// opcodes and CDBs. Each gets the right Reject or sense data, or a dropped connection; the portal
// never crashes and serves a fresh initiator afterwards.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { MemoryBlockDevice } from '../../lib/block-device.ts';
import { IscsiPortal } from '../../cstor-target/iscsi/portal.ts';
import { RawInitiator, buildBhs, pad } from './raw-initiator.ts';
import { runTool } from './run-tool.ts';

const IQN = IscsiPortal.iqnFor('vol1');

function cdb(...bytes: number[]): Buffer {
  return Buffer.from(bytes);
}

describe('iSCSI portal under bad input', function () {
  this.timeout(60_000);
  let portal: IscsiPortal;
  let port = 0;
  const open: RawInitiator[] = [];

  async function session(): Promise<RawInitiator> {
    const c = await RawInitiator.connect(port);
    open.push(c);
    await c.loginNormal(IQN);
    return c;
  }

  before(async () => {
    portal = new IscsiPortal({ connection: { nopInIntervalMs: 0 } });
    portal.addTarget({ volume: 'vol1', device: new MemoryBlockDevice(8 << 20) });
    port = (await portal.listen('127.0.0.1', 0)).port;
  });

  afterEach(() => {
    open.splice(0).forEach((c) => c.close());
  });

  after(async () => {
    await portal.close();
  });

  async function assertStillServes(): Promise<void> {
    const r = await runTool('iscsi-inq', [`iscsi://127.0.0.1:${port}/${IQN}/0`], 20_000);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.contain('Vendor:OpenEBS');
  }

  it('refuses a login to a target that does not exist with status 0x0203', async () => {
    const c = await RawInitiator.connect(port);
    open.push(c);
    const r = await c.login([
      ['InitiatorName', 'iqn.2026-01.test:raw'],
      ['TargetName', IscsiPortal.iqnFor('missing')],
    ]);
    expect([r.statusClass, r.statusDetail]).to.deep.equal([2, 3]);
    expect(await c.waitClosed()).to.equal(true);
  });

  it('refuses a login without InitiatorName (0x0207) and garbled login text (0x0200)', async () => {
    const a = await RawInitiator.connect(port);
    open.push(a);
    const r = await a.login([['TargetName', IQN]]);
    expect([r.statusClass, r.statusDetail]).to.deep.equal([2, 7]);
    const b = await RawInitiator.connect(port);
    open.push(b);
    const data = Buffer.from('InitiatorName\0garbage-without-equals\0');
    b.send(buildBhs({ opcode: 0x03, immediate: true, flags: 0x87, dataLength: data.length, itt: 1, words: [0, 1, 0] }), pad(data));
    const p = await b.next();
    expect(p).to.not.be.a('string');
    if (typeof p !== 'string') expect([p.bhs[36], p.bhs[37]]).to.deep.equal([2, 0]);
  });

  it('drops a connection whose first PDU is not a Login Request', async () => {
    const c = await RawInitiator.connect(port);
    open.push(c);
    c.send(c.scsiCommand(cdb(0, 0, 0, 0, 0, 0)));
    expect(await c.waitClosed()).to.equal(true);
  });

  it('answers an unknown opcode with Reject (command not supported) echoing the header', async () => {
    const c = await session();
    const bad = buildBhs({ opcode: 0x1c, itt: 77, words: [0, c.cmdSN, c.expStatSN] });
    c.send(bad);
    const p = await c.next();
    expect(p).to.not.be.a('string');
    if (typeof p === 'string') return;
    expect(p.bhs[0]! & 0x3f).to.equal(0x3f);
    expect(p.bhs[2]).to.equal(0x05);
    expect(p.data.equals(bad)).to.equal(true);
    // The session goes on.
    const r = await c.scsi(cdb(0, 0, 0, 0, 0, 0));
    expect(r).to.not.be.a('string');
    if (typeof r !== 'string') expect(r.status).to.equal(0);
  });

  it('answers unknown CDBs, bad LUNs and out-of-range LBAs with the right sense data', async () => {
    const c = await session();
    const unknown = await c.scsi(cdb(0xc5, 0, 0, 0, 0, 0, 0, 0, 0, 0));
    expect(unknown).to.not.be.a('string');
    if (typeof unknown === 'string') return;
    expect(unknown.status).to.equal(0x02);
    expect(unknown.sense![0]! & 0x7f).to.equal(0x70);
    expect(unknown.sense![2]! & 0x0f).to.equal(0x05);
    expect([unknown.sense![12], unknown.sense![13]]).to.deep.equal([0x20, 0x00]);

    const beyond = await c.scsi(cdb(0x28, 0, 0, 0, 0x40, 0, 0, 0, 8, 0), { read: true, edtl: 4096 });
    if (typeof beyond === 'string') throw new Error(beyond);
    expect(beyond.status).to.equal(0x02);
    expect([beyond.sense![12], beyond.sense![13]]).to.deep.equal([0x21, 0x00]);

    const lun = await c.scsi(cdb(0, 0, 0, 0, 0, 0), { lun: 5 });
    if (typeof lun === 'string') throw new Error(lun);
    expect(lun.status).to.equal(0x02);
    expect([lun.sense![12], lun.sense![13]]).to.deep.equal([0x25, 0x00]);

    const badField = await c.scsi(cdb(0x12, 0x01, 0x99, 0, 255, 0), { read: true, edtl: 255 });
    if (typeof badField === 'string') throw new Error(badField);
    expect(badField.status).to.equal(0x02);
    expect([badField.sense![12], badField.sense![13]]).to.deep.equal([0x24, 0x00]);
  });

  it('reports residual underflow and overflow against the expected data transfer length', async () => {
    const c = await session();
    const under = await c.scsi(cdb(0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0), { read: true, edtl: 1024 });
    if (typeof under === 'string') throw new Error(under);
    expect(under.status).to.equal(0);
    expect(under.data.length).to.equal(512);
    expect(under.flags & 0x02).to.equal(0x02);
    expect(under.residual).to.equal(512);
    const over = await c.scsi(cdb(0x28, 0, 0, 0, 0, 0, 0, 0, 2, 0), { read: true, edtl: 512 });
    if (typeof over === 'string') throw new Error(over);
    expect(over.data.length).to.equal(512);
    expect(over.flags & 0x04).to.equal(0x04);
    expect(over.residual).to.equal(512);
  });

  it('ignores a CmdSN outside the window, and runs one ahead of ExpCmdSN once the gap fills', async () => {
    const c = await session();
    // Too high: silently dropped.
    const first = c.cmdSN;
    c.send(c.scsiCommand(cdb(0, 0, 0, 0, 0, 0), { cmdSN: first + 1000, itt: 500 }));
    expect(await c.collect(500, 500)).to.equal('timeout');
    // Too low (already used): dropped too.
    c.send(c.scsiCommand(cdb(0, 0, 0, 0, 0, 0), { cmdSN: first - 1, itt: 501 }));
    expect(await c.collect(501, 500)).to.equal('timeout');
    // One ahead: held until ExpCmdSN arrives, then both run.
    c.send(c.scsiCommand(cdb(0, 0, 0, 0, 0, 0), { cmdSN: first + 1, itt: 601 }));
    expect(await c.collect(601, 300)).to.equal('timeout');
    c.send(c.scsiCommand(cdb(0, 0, 0, 0, 0, 0), { cmdSN: first, itt: 600 }));
    const a = await c.collect(600);
    const b = await c.collect(601);
    expect(a).to.not.be.a('string');
    expect(b).to.not.be.a('string');
  });

  it('drops the connection on an oversized data segment, and on Data-Out past the transfer length', async () => {
    const c = await session();
    c.send(buildBhs({ opcode: 0x00, immediate: true, dataLength: 0xffffff, itt: 9, words: [0xffffffff, c.cmdSN, c.expStatSN] }));
    expect(await c.waitClosed()).to.equal(true);

    const d = await session();
    // WRITE(10) of 1 block with F=0 (unsolicited data follows), then a Data-Out at offset 4096.
    d.send(d.scsiCommand(cdb(0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0), { write: true, edtl: 512, final: false, itt: 42 }));
    d.send(buildBhs({ opcode: 0x05, flags: 0x80, dataLength: 512, itt: 42, words: [0xffffffff, 0, d.expStatSN, 0, 0, 4096] }), Buffer.alloc(512));
    expect(await d.waitClosed()).to.equal(true);
  });

  it('drops the connection when Data-Out skips ahead (a gap would write unset bytes)', async () => {
    const c = await session();
    c.send(c.scsiCommand(cdb(0x2a, 0, 0, 0, 0, 0, 0, 0, 4, 0), { write: true, edtl: 2048, final: false, itt: 43 }));
    c.send(buildBhs({ opcode: 0x05, flags: 0x00, dataLength: 512, itt: 43, words: [0xffffffff, 0, c.expStatSN, 0, 0, 0] }), Buffer.alloc(512, 1));
    c.send(buildBhs({ opcode: 0x05, flags: 0x80, dataLength: 512, itt: 43, words: [0xffffffff, 0, c.expStatSN, 0, 1, 1536] }), Buffer.alloc(512, 2));
    expect(await c.waitClosed()).to.equal(true);
  });

  it('refuses a write whose expected data transfer length is absurd, without buffering it', async () => {
    const c = await session();
    const r = await c.scsi(cdb(0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0), { write: true, edtl: 0xfffffff0, data: Buffer.alloc(512), final: true });
    if (typeof r === 'string') throw new Error(r);
    expect(r.status).to.equal(0x02);
    expect([r.sense![12], r.sense![13]]).to.deep.equal([0x24, 0x00]);
  });

  it('rejects Data-Out for a task that does not exist', async () => {
    const c = await session();
    c.send(buildBhs({ opcode: 0x05, flags: 0x80, dataLength: 512, itt: 4242, words: [0xffffffff, 0, c.expStatSN, 0, 0, 0] }), Buffer.alloc(512));
    const p = await c.next();
    if (typeof p === 'string') throw new Error(p);
    expect(p.bhs[0]! & 0x3f).to.equal(0x3f);
    expect(p.bhs[2]).to.equal(0x09);
  });

  it('survives truncated PDUs and connections cut mid-header', async () => {
    for (let i = 0; i < 10; i++) {
      const c = await RawInitiator.connect(port);
      c.send(randomBytes(1 + (i * 13) % 47));
      c.close();
    }
    const c = await session();
    c.send(c.scsiCommand(cdb(0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0), { read: true, edtl: 512 }).subarray(0, 30));
    c.close();
    await assertStillServes();
  });

  it('survives random PDUs before and after login, then serves a fresh initiator', async () => {
    for (let round = 0; round < 40; round++) {
      const c = await RawInitiator.connect(port);
      open.push(c);
      if (round % 2 === 1) await c.loginNormal(IQN);
      for (let i = 0; i < 20 && !c.closed; i++) {
        const len = Math.floor(Math.random() * 64);
        const bhs = randomBytes(48);
        bhs[4] = round % 4 === 0 ? bhs[4]! : 0; // some with AHS lengths, most without
        bhs.writeUIntBE(len, 5, 3);
        c.send(bhs, pad(randomBytes(len)));
      }
      // Every connection ends up either answered or dropped; none hangs the portal.
      await c.next(50);
      c.close();
    }
    await assertStillServes();
    const c = await session();
    const r = await c.scsi(cdb(0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0), { read: true, edtl: 8 });
    if (typeof r === 'string') throw new Error(r);
    expect(r.status).to.equal(0);
    expect(r.data.readUInt32BE(0)).to.equal((8 << 20) / 512 - 1);
  });
});
