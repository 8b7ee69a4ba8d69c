// The SCSI disk over a MemoryBlockDevice: data commands against a flat model, and sense data for
// bad requests.
import { expect } from 'chai';
import { MemoryBlockDevice } from '../../lib/block-device.ts';
import { CstorError } from '../../lib/errors.ts';
import { ScsiDisk, type ScsiResult } from './disk.ts';

const BS = 512;
const BLOCKS = 2048;

function newDisk(): { disk: ScsiDisk; dev: MemoryBlockDevice } {
  const dev = new MemoryBlockDevice(BLOCKS * BS);
  return { disk: new ScsiDisk({ device: dev, identity: { serial: 'SN1', vendor: 'OpenEBS', product: 'cstor-target', revision: '0001' } }), dev };
}

function cdb10(op: number, lba: number, blocks: number, flags = 0): Buffer {
  const c = Buffer.alloc(10);
  c[0] = op;
  c[1] = flags;
  c.writeUInt32BE(lba, 2);
  c.writeUInt16BE(blocks, 7);
  return c;
}

function cdb16(op: number, lba: number, blocks: number, flags = 0): Buffer {
  const c = Buffer.alloc(16);
  c[0] = op;
  c[1] = flags;
  c.writeBigUInt64BE(BigInt(lba), 2);
  c.writeUInt32BE(blocks, 10);
  return c;
}

function senseOf(r: ScsiResult): [number, number, number] {
  expect(r.status).to.equal(2);
  return [r.sense![2]! & 0x0f, r.sense![12]!, r.sense![13]!];
}

describe('ScsiDisk', () => {
  const run = (disk: ScsiDisk, cdb: Buffer, dataOut?: Buffer, lun = 0): Promise<ScsiResult> => disk.execute({ lun, cdb, dataOut, nexus: 'i1' });

  it('writes and reads back through WRITE/READ 6, 10, 12 and 16, FUA included', async () => {
    const { disk, dev } = newDisk();
    const data = Buffer.alloc(4 * BS);
    for (let i = 0; i < data.length; i++) data[i] = i & 0xff;
    expect((await run(disk, cdb10(0x2a, 8, 4, 0x08), data)).status).to.equal(0);
    expect((await dev.readAt(8 * BS, 4 * BS)).equals(data)).to.equal(true);
    const r10 = await run(disk, cdb10(0x28, 8, 4));
    expect(r10.data!.equals(data)).to.equal(true);
    const r16 = await run(disk, cdb16(0x88, 9, 2));
    expect(r16.data!.equals(data.subarray(BS, 3 * BS))).to.equal(true);
    const w6 = Buffer.from([0x0a, 0, 0, 100, 1, 0]);
    expect((await run(disk, w6, Buffer.alloc(BS, 0xee))).status).to.equal(0);
    const r6 = await run(disk, Buffer.from([0x08, 0, 0, 100, 1, 0]));
    expect(r6.data!.every((b) => b === 0xee)).to.equal(true);
    const r12 = Buffer.alloc(12);
    r12[0] = 0xa8;
    r12.writeUInt32BE(100, 2);
    r12.writeUInt32BE(1, 6);
    expect((await run(disk, r12)).data!.every((b) => b === 0xee)).to.equal(true);
  });

  it('writes only the whole blocks it received when data-out is short', async () => {
    const { disk, dev } = newDisk();
    await run(disk, cdb10(0x2a, 0, 2), Buffer.alloc(BS + 100, 0x11));
    expect((await dev.readAt(0, BS)).every((b) => b === 0x11)).to.equal(true);
    expect((await dev.readAt(BS, BS)).every((b) => b === 0)).to.equal(true);
  });

  it('answers LBA OUT OF RANGE past the end, and INVALID FIELD for protection bits', async () => {
    const { disk } = newDisk();
    expect(senseOf(await run(disk, cdb10(0x28, BLOCKS - 1, 2)))).to.deep.equal([5, 0x21, 0]);
    expect(senseOf(await run(disk, cdb16(0x88, 2 ** 60, 1)))).to.deep.equal([5, 0x21, 0]);
    expect((await run(disk, cdb10(0x28, BLOCKS, 0))).status).to.equal(0);
    expect(senseOf(await run(disk, cdb10(0x28, 0, 1, 0x20)))).to.deep.equal([5, 0x24, 0]);
  });

  it('answers INVALID OPERATION CODE for unknown opcodes and LUN NOT SUPPORTED for other LUNs', async () => {
    const { disk } = newDisk();
    const r = await run(disk, Buffer.from([0xc5, 0, 0, 0, 0, 0]));
    expect(senseOf(r)).to.deep.equal([5, 0x20, 0]);
    expect(r.sense![15]! & 0xc0).to.equal(0xc0); // SKSV, C/D: the CDB, byte 0
    expect(senseOf(await run(disk, Buffer.from([0, 0, 0, 0, 0, 0]), undefined, 3))).to.deep.equal([5, 0x25, 0]);
    const inq = await run(disk, Buffer.from([0x12, 0, 0, 0, 36, 0]), undefined, 3);
    expect(inq.data![0]).to.equal(0x7f);
  });

  it('serves INQUIRY cut to the allocation length, and the VPD pages', async () => {
    const { disk } = newDisk();
    const std = await run(disk, Buffer.from([0x12, 0, 0, 0, 36, 0]));
    expect(std.data!.length).to.equal(36);
    expect(std.data!.subarray(8, 16).toString()).to.equal('OpenEBS ');
    const pages = await run(disk, Buffer.from([0x12, 1, 0, 0, 255, 0]));
    expect([...pages.data!.subarray(4)]).to.deep.equal([0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2]);
    const serial = await run(disk, Buffer.from([0x12, 1, 0x80, 0, 255, 0]));
    expect(serial.data!.subarray(4).toString()).to.equal('SN1');
    const b0 = await run(disk, Buffer.from([0x12, 1, 0xb0, 0, 255, 0]));
    expect(b0.data!.readUInt32BE(24)).to.equal(256); // max unmap descriptors
    const b2 = await run(disk, Buffer.from([0x12, 1, 0xb2, 0, 255, 0]));
    expect(b2.data![5]! & 0xc0).to.equal(0xc0); // LBPU, LBPWS
    expect(senseOf(await run(disk, Buffer.from([0x12, 1, 0x99, 0, 255, 0])))).to.deep.equal([5, 0x24, 0]);
    expect(senseOf(await run(disk, Buffer.from([0x12, 0, 0x80, 0, 255, 0])))).to.deep.equal([5, 0x24, 0]);
  });

  it('reports capacity (READ CAPACITY 10/16 with LBPME) and one LUN', async () => {
    const { disk } = newDisk();
    const rc10 = await run(disk, Buffer.alloc(10, 0).fill(0x25, 0, 1));
    expect(rc10.data!.readUInt32BE(0)).to.equal(BLOCKS - 1);
    expect(rc10.data!.readUInt32BE(4)).to.equal(BS);
    const c16 = Buffer.alloc(16);
    c16[0] = 0x9e;
    c16[1] = 0x10;
    c16.writeUInt32BE(32, 10);
    const rc16 = await run(disk, c16);
    expect(Number(rc16.data!.readBigUInt64BE(0))).to.equal(BLOCKS - 1);
    expect(rc16.data![14]! & 0x80).to.equal(0x80);
    const rl = Buffer.alloc(12);
    rl[0] = 0xa0;
    rl.writeUInt32BE(64, 6);
    const luns = await run(disk, rl);
    expect(luns.data!.readUInt32BE(0)).to.equal(8);
    expect(luns.data!.subarray(8, 16).equals(Buffer.alloc(8))).to.equal(true);
  });

  it('unmaps with UNMAP and WRITE SAME (UNMAP bit), and fills with WRITE SAME', async () => {
    const { disk, dev } = newDisk();
    await dev.writeAt(0, Buffer.alloc(64 * BS, 0xaa));
    const param = Buffer.alloc(24);
    param.writeUInt16BE(22, 0);
    param.writeUInt16BE(16, 2);
    param.writeBigUInt64BE(4n, 8);
    param.writeUInt32BE(4, 16);
    const unmap = Buffer.alloc(10);
    unmap[0] = 0x42;
    unmap.writeUInt16BE(24, 7);
    expect((await run(disk, unmap, param)).status).to.equal(0);
    expect((await dev.readAt(4 * BS, 4 * BS)).every((b) => b === 0)).to.equal(true);
    expect((await dev.readAt(8 * BS, BS)).every((b) => b === 0xaa)).to.equal(true);
    expect((await run(disk, cdb16(0x93, 16, 8, 0x08), Buffer.alloc(BS))).status).to.equal(0);
    expect((await dev.readAt(16 * BS, 8 * BS)).every((b) => b === 0)).to.equal(true);
    const pat = Buffer.alloc(BS, 0x3c);
    expect((await run(disk, cdb10(0x41, 100, 10), pat)).status).to.equal(0);
    expect((await dev.readAt(100 * BS, 10 * BS)).every((b) => b === 0x3c)).to.equal(true);
    expect(senseOf(await run(disk, cdb10(0x41, 100, 0), pat))).to.deep.equal([5, 0x24, 0]);
    param.writeBigUInt64BE(BigInt(BLOCKS), 8);
    expect(senseOf(await run(disk, unmap, param))).to.deep.equal([5, 0x21, 0]);
  });

  it('COMPARE AND WRITE writes on a match and reports MISCOMPARE with the offset otherwise', async () => {
    const { disk, dev } = newDisk();
    await dev.writeAt(10 * BS, Buffer.alloc(BS, 1));
    const c = Buffer.alloc(16);
    c[0] = 0x89;
    c.writeBigUInt64BE(10n, 2);
    c[13] = 1;
    const ok = Buffer.concat([Buffer.alloc(BS, 1), Buffer.alloc(BS, 2)]);
    expect((await run(disk, c, ok)).status).to.equal(0);
    expect((await dev.readAt(10 * BS, BS)).every((b) => b === 2)).to.equal(true);
    const wrong = Buffer.concat([Buffer.alloc(BS, 2), Buffer.alloc(BS, 3)]);
    wrong[100] = 9;
    const r = await run(disk, c, wrong);
    expect(senseOf(r)).to.deep.equal([0x0e, 0x1d, 0]);
    expect(r.sense!.readUInt32BE(3)).to.equal(100);
    expect((await dev.readAt(10 * BS, BS)).every((b) => b === 2)).to.equal(true);
  });

  it('serves MODE SENSE pages and refuses unknown ones', async () => {
    const { disk } = newDisk();
    const all = await run(disk, Buffer.from([0x1a, 0, 0x3f, 0, 255, 0]));
    expect(all.data![0]).to.equal(all.data!.length - 1);
    expect(all.data![3]).to.equal(8); // block descriptor
    const caching = await run(disk, Buffer.from([0x1a, 0x08, 0x08, 0, 255, 0]));
    expect(caching.data![4]).to.equal(0x08);
    expect(caching.data![6]! & 0x04).to.equal(0x04); // WCE
    const ms10 = Buffer.alloc(10);
    ms10[0] = 0x5a;
    ms10[2] = 0x0a;
    ms10.writeUInt16BE(255, 7);
    const control = await run(disk, ms10);
    expect(control.data![8 + 8]).to.equal(0x0a);
    expect(senseOf(await run(disk, Buffer.from([0x1a, 0, 0x33, 0, 255, 0])))).to.deep.equal([5, 0x24, 0]);
  });

  it('RESERVE(6) makes other nexuses see RESERVATION CONFLICT until RELEASE', async () => {
    const { disk } = newDisk();
    expect((await disk.execute({ lun: 0, cdb: Buffer.from([0x16, 0, 0, 0, 0, 0]), dataOut: undefined, nexus: 'a' })).status).to.equal(0);
    expect((await disk.execute({ lun: 0, cdb: cdb10(0x28, 0, 1), dataOut: undefined, nexus: 'b' })).status).to.equal(0x18);
    expect((await disk.execute({ lun: 0, cdb: Buffer.from([0x12, 0, 0, 0, 36, 0]), dataOut: undefined, nexus: 'b' })).status).to.equal(0);
    expect((await disk.execute({ lun: 0, cdb: cdb10(0x28, 0, 1), dataOut: undefined, nexus: 'a' })).status).to.equal(0);
    await disk.execute({ lun: 0, cdb: Buffer.from([0x17, 0, 0, 0, 0, 0]), dataOut: undefined, nexus: 'a' });
    expect((await disk.execute({ lun: 0, cdb: cdb10(0x28, 0, 1), dataOut: undefined, nexus: 'b' })).status).to.equal(0);
  });

  it('turns a device error into MEDIUM ERROR sense, never a throw', async () => {
    const dev = new MemoryBlockDevice(BLOCKS * BS);
    dev.readAt = () => Promise.reject(new Error('replica gone'));
    const disk = new ScsiDisk({ device: dev, identity: { serial: 's', vendor: 'v', product: 'p', revision: 'r' } });
    expect(senseOf(await disk.execute({ lun: 0, cdb: cdb10(0x28, 0, 1), dataOut: undefined, nexus: 'a' }))).to.deep.equal([3, 0x11, 0]);
  });

  it('answers BUSY while the device is unavailable, so initiators retry', async () => {
    const dev = new MemoryBlockDevice(BLOCKS * BS);
    dev.writeAt = () => Promise.reject(new CstorError('unavailable', 'volume offline'));
    const disk = new ScsiDisk({ device: dev, identity: { serial: 's', vendor: 'v', product: 'p', revision: 'r' } });
    const r = await disk.execute({ lun: 0, cdb: cdb10(0x2a, 0, 1), dataOut: Buffer.alloc(BS), nexus: 'a' });
    expect(r.status).to.equal(0x08);
  });

  it('reports a unit attention once per nexus after a reset, not to INQUIRY', async () => {
    const { disk } = newDisk();
    disk.raiseUnitAttention(['a', 'b'], [0x29, 0x03]);
    const tur = Buffer.alloc(6);
    expect((await disk.execute({ lun: 0, cdb: Buffer.from([0x12, 0, 0, 0, 36, 0]), dataOut: undefined, nexus: 'a' })).status).to.equal(0);
    expect(senseOf(await disk.execute({ lun: 0, cdb: tur, dataOut: undefined, nexus: 'a' }))).to.deep.equal([6, 0x29, 0x03]);
    expect((await disk.execute({ lun: 0, cdb: tur, dataOut: undefined, nexus: 'a' })).status).to.equal(0);
    const rs = await disk.execute({ lun: 0, cdb: Buffer.from([0x03, 0, 0, 0, 18, 0]), dataOut: undefined, nexus: 'b' });
    expect(rs.status).to.equal(0);
    expect([rs.data![2]! & 0x0f, rs.data![12], rs.data![13]]).to.deep.equal([6, 0x29, 0x03]);
    expect((await disk.execute({ lun: 0, cdb: tur, dataOut: undefined, nexus: 'b' })).status).to.equal(0);
  });

  it('reports its supported operation codes, all or one', async () => {
    const { disk } = newDisk();
    const rsoc = (options: number, opcode: number, sa: number, rctd = false): Buffer => {
      const c = Buffer.alloc(12);
      c[0] = 0xa3;
      c[1] = 0x0c;
      c[2] = (rctd ? 0x80 : 0) | options;
      c[3] = opcode;
      c.writeUInt16BE(sa, 4);
      c.writeUInt32BE(8192, 6);
      return c;
    };
    const all = (await run(disk, rsoc(0, 0, 0))).data!;
    const n = all.readUInt32BE(0) / 8;
    const descs = Array.from({ length: n }, (_, i) => all.subarray(4 + i * 8, 12 + i * 8));
    const read10 = descs.find((d) => d[0] === 0x28)!;
    expect(read10.readUInt16BE(6)).to.equal(10);
    expect(read10[5]! & 0x01).to.equal(0);
    const rc16 = descs.find((d) => d[0] === 0x9e && d.readUInt16BE(2) === 0x10)!;
    expect(rc16[5]! & 0x01).to.equal(1);
    const withTimeouts = (await run(disk, rsoc(0, 0, 0, true))).data!;
    expect(withTimeouts.readUInt32BE(0)).to.equal(n * 20);
    const one = (await run(disk, rsoc(1, 0x28, 0))).data!;
    expect(one[1]! & 0x07).to.equal(3);
    expect(one.readUInt16BE(2)).to.equal(10);
    expect(one[4]).to.equal(0x28);
    expect(senseOf(await run(disk, rsoc(1, 0x9e, 0x10)))).to.deep.equal([5, 0x24, 0]);
    expect((await run(disk, rsoc(2, 0x9e, 0x10))).data![1]! & 0x07).to.equal(3);
    expect(senseOf(await run(disk, rsoc(2, 0x28, 0)))).to.deep.equal([5, 0x24, 0]);
    expect((await run(disk, rsoc(1, 0xc5, 0))).data![1]! & 0x07).to.equal(1);
  });
});
