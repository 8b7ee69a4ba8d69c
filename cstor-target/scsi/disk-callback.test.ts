// ScsiDisk.executeCb: plain READ/WRITE (10/16) go to a device's callback form; everything else
// (FUA, protection bits, out of range, a pending unit attention, a reservation, other commands)
// takes execute()'s path, with the same results.
import { expect } from 'chai';
import { MemoryBlockDevice } from '../../lib/block-device.ts';
import { ScsiDisk, type CallbackBlockDevice, type ScsiResult } from './disk.ts';

const BS = 512;
const BLOCKS = 2048;

/** A MemoryBlockDevice with the callback forms, counting how often each path is taken. */
class CallbackMemoryDevice extends MemoryBlockDevice implements CallbackBlockDevice {
  cbWrites = 0;
  cbReads = 0;
  promiseWrites = 0;
  failNext: Error | undefined;
  writeCb(offset: number, data: Buffer, _released: (() => void) | undefined, done: (err: Error | null) => void): void {
    this.cbWrites++;
    const fail = this.failNext;
    this.failNext = undefined;
    void super.writeAt(offset, data).then(() => done(fail ?? null), (err: Error) => done(err));
  }
  readCb(offset: number, length: number, done: (err: Error | null, data: Buffer | undefined) => void): void {
    this.cbReads++;
    void super.readAt(offset, length).then((d) => done(null, d), (err: Error) => done(err, undefined));
  }
  override writeAt(offset: number, data: Buffer): Promise<void> {
    this.promiseWrites++;
    return super.writeAt(offset, data);
  }
}

function cdb(op: number, lba: number, blocks: number, flags = 0, len = 16): Buffer {
  const c = Buffer.alloc(16);
  c[0] = op;
  c[1] = flags;
  if (len === 10) {
    c.writeUInt32BE(lba, 2);
    c.writeUInt16BE(blocks, 7);
  } else {
    c.writeBigUInt64BE(BigInt(lba), 2);
    c.writeUInt32BE(blocks, 10);
  }
  return c;
}

describe('ScsiDisk.executeCb', () => {
  const setup = (): { disk: ScsiDisk; dev: CallbackMemoryDevice } => {
    const dev = new CallbackMemoryDevice(BLOCKS * BS, BS);
    return { disk: new ScsiDisk({ device: dev, identity: { serial: 'SN1', vendor: 'OpenEBS', product: 'cstor-target', revision: '0001' } }), dev };
  };
  const run = (disk: ScsiDisk, c: Buffer, dataOut?: Buffer, nexus = 'i1'): Promise<ScsiResult> =>
    new Promise((resolve, reject) => {
      let returned = false;
      disk.executeCb({ lun: 0, cdb: c, dataOut, nexus }, (r) => (returned ? resolve(r) : reject(new Error('called back inside executeCb'))));
      returned = true;
    });

  it('runs WRITE/READ 10 and 16 through the callback form and reads back the data; stats count them', async () => {
    const { disk, dev } = setup();
    const data = Buffer.alloc(4 * BS);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
    expect((await run(disk, cdb(0x2a, 8, 4, 0, 10), data)).status).to.equal(0);
    expect((await run(disk, cdb(0x8a, 100, 4), data)).status).to.equal(0);
    const r10 = await run(disk, cdb(0x28, 8, 4, 0, 10));
    const r16 = await run(disk, cdb(0x88, 100, 4));
    expect(r10.data!.equals(data) && r16.data!.equals(data)).to.equal(true);
    expect([dev.cbWrites, dev.cbReads, dev.promiseWrites]).to.deep.equal([2, 2, 0]);
    const s = disk.stats.snapshot();
    expect([s.writes, s.reads, s.writeBytes, s.readBytes]).to.deep.equal([2, 2, 2 * data.length, 2 * data.length]);
    // A short data-out writes its whole blocks only, as execute does.
    expect((await run(disk, cdb(0x8a, 200, 4), data.subarray(0, BS + 10))).status).to.equal(0);
    expect((await dev.readAt(200 * BS, 2 * BS)).equals(Buffer.concat([data.subarray(0, BS), Buffer.alloc(BS)]))).to.equal(true);
  });

  it('answers a device failure with the sense execute gives (MEDIUM ERROR / write error)', async () => {
    const { disk, dev } = setup();
    dev.failNext = new Error('disk on fire');
    const r = await run(disk, cdb(0x8a, 0, 1), Buffer.alloc(BS));
    expect(r.status).to.equal(2);
    expect([r.sense![2]! & 0x0f, r.sense![12]!]).to.deep.equal([0x03, 0x0c]);
  });

  it('leaves FUA, protection bits, out-of-range and zero-length commands to execute, with its results', async () => {
    const { disk, dev } = setup();
    expect((await run(disk, cdb(0x8a, 0, 1, 0x08), Buffer.alloc(BS, 1))).status).to.equal(0); // FUA
    expect(dev.promiseWrites).to.equal(1);
    const prot = await run(disk, cdb(0x8a, 0, 1, 0x20), Buffer.alloc(BS));
    expect([prot.status, prot.sense![2]! & 0x0f, prot.sense![12]!]).to.deep.equal([2, 0x05, 0x24]);
    const range = await run(disk, cdb(0x88, BLOCKS - 1, 2));
    expect([range.status, range.sense![12]!]).to.deep.equal([2, 0x21]);
    expect((await run(disk, cdb(0x88, 0, 0))).data).to.equal(undefined);
    expect(dev.cbWrites + dev.cbReads).to.equal(0);
  });

  it('reports a pending unit attention and honours a reservation (execute path)', async () => {
    const { disk, dev } = setup();
    disk.raiseUnitAttention(['i1'], [0x29, 0x00]);
    const ua = await run(disk, cdb(0x88, 0, 1));
    expect([ua.status, ua.sense![2]! & 0x0f, ua.sense![12]!]).to.deep.equal([2, 0x06, 0x29]);
    expect((await run(disk, cdb(0x88, 0, 1))).status).to.equal(0);
    expect(dev.cbReads).to.equal(1);
    expect((await run(disk, Buffer.from([0x16, 0, 0, 0, 0, 0]))).status).to.equal(0); // RESERVE(6) by i1
    expect((await run(disk, cdb(0x8a, 0, 1), Buffer.alloc(BS), 'i2')).status).to.equal(0x18);
    expect((await run(disk, cdb(0x8a, 0, 1), Buffer.alloc(BS), 'i1')).status).to.equal(0);
    expect(dev.cbWrites).to.equal(0);
  });
});
