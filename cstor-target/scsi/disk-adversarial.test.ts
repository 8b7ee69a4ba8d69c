// Adversarial review of the SCSI disk: device failures at every step of multi-step commands must
// end in CHECK CONDITION (or BUSY), never GOOD; a device that answers with fewer bytes than asked
// is an error; bad lengths get the right sense (key, ASC, field pointer) without the disk asking
// the device for more than a command may move.
import { expect } from 'chai';
import { MemoryBlockDevice } from '../../lib/block-device.ts';
import { CstorError } from '../../lib/errors.ts';
import { ScsiDisk, type CallbackBlockDevice, type ScsiResult } from './disk.ts';

const BS = 512;
const IDENTITY = { serial: 'SN1', vendor: 'OpenEBS', product: 'cstor-target', revision: '0001' };

/** A memory device with failures to inject per operation, recording the largest read asked for. */
class FaultyDevice extends MemoryBlockDevice {
  failWriteAfter = Infinity;
  failSync: Error | undefined;
  failUnmap: Error | undefined;
  shortRead = false;
  largestRead = 0;
  writes = 0;

  override readAt(offset: number, length: number): Promise<Buffer> {
    this.largestRead = Math.max(this.largestRead, length);
    if (length > 64 << 20) return Promise.reject(new CstorError('invalid', `read of ${length} bytes`));
    return super.readAt(offset, length).then((d) => (this.shortRead ? d.subarray(0, d.length - BS) : d));
  }
  override writeAt(offset: number, data: Buffer): Promise<void> {
    if (this.writes++ >= this.failWriteAfter) return Promise.reject(new Error('replica write failed'));
    return super.writeAt(offset, data);
  }
  override sync(): Promise<void> {
    return this.failSync ? Promise.reject(this.failSync) : super.sync();
  }
  override unmap(offset: number, length: number): Promise<void> {
    return this.failUnmap ? Promise.reject(this.failUnmap) : super.unmap(offset, length);
  }
}

/** The same with the callback forms (executeCb's direct path). */
class FaultyCallbackDevice extends FaultyDevice implements CallbackBlockDevice {
  writeCb(offset: number, data: Buffer, _released: (() => void) | undefined, done: (err: Error | null) => void): void {
    this.writeAt(offset, data).then(() => done(null), (err: Error) => done(err));
  }
  readCb(offset: number, length: number, done: (err: Error | null, data: Buffer | undefined) => void): void {
    this.readAt(offset, length).then((d) => done(null, d), (err: Error) => done(err, undefined));
  }
}

function cdb10(op: number, lba: number, blocks: number, flags = 0): Buffer {
  const c = Buffer.alloc(16);
  c[0] = op;
  c[1] = flags;
  c.writeUInt32BE(lba, 2);
  c.writeUInt16BE(blocks, 7);
  return c;
}

function cdb12(op: number, lba: number, blocks: number): Buffer {
  const c = Buffer.alloc(16);
  c[0] = op;
  c.writeUInt32BE(lba, 2);
  c.writeUInt32BE(blocks, 6);
  return c;
}

function cdb16(op: number, lba: bigint | number, blocks: number, flags = 0): Buffer {
  const c = Buffer.alloc(16);
  c[0] = op;
  c[1] = flags;
  c.writeBigUInt64BE(BigInt(lba), 2);
  c.writeUInt32BE(blocks, 10);
  return c;
}

/** [sense key, ASC, ASCQ, field pointer byte or -1]. */
function senseOf(r: ScsiResult): [number, number, number, number] {
  expect(r.status, 'status').to.equal(2);
  const s = r.sense!;
  return [s[2]! & 0x0f, s[12]!, s[13]!, s[15]! & 0x80 ? s.readUInt16BE(16) : -1];
}

function run(disk: ScsiDisk, cdb: Buffer, dataOut?: Buffer, nexus = 'i1'): Promise<ScsiResult> {
  return disk.execute({ lun: 0, cdb, dataOut, nexus });
}

function runCb(disk: ScsiDisk, cdb: Buffer, dataOut?: Buffer, nexus = 'i1'): Promise<ScsiResult> {
  return new Promise((resolve) => disk.executeCb({ lun: 0, cdb, dataOut, nexus }, resolve));
}

describe('ScsiDisk under adversarial requests and failing devices', () => {
  it('points INVALID FIELD IN CDB at the TRANSFER LENGTH byte of READ/WRITE 10, 12 and 16 past the maximum', async () => {
    const dev = new FaultyDevice(64 << 20);
    const disk = new ScsiDisk({ device: dev, identity: IDENTITY });
    const over = disk.limits.maxTransferBlocks + 1; // in range on this 128 Ki-block device
    expect(senseOf(await run(disk, cdb10(0x28, 0, over)))).to.deep.equal([5, 0x24, 0, 7]);
    expect(senseOf(await run(disk, cdb10(0x2a, 0, over), Buffer.alloc(BS)))).to.deep.equal([5, 0x24, 0, 7]);
    expect(senseOf(await run(disk, cdb12(0xa8, 0, over)))).to.deep.equal([5, 0x24, 0, 6]);
    expect(senseOf(await run(disk, cdb12(0xaa, 0, over), Buffer.alloc(BS)))).to.deep.equal([5, 0x24, 0, 6]);
    expect(senseOf(await run(disk, cdb16(0x88, 0, over)))).to.deep.equal([5, 0x24, 0, 10]);
    expect(senseOf(await run(disk, cdb16(0x8a, 0, over), Buffer.alloc(BS)))).to.deep.equal([5, 0x24, 0, 10]);
    expect(dev.largestRead).to.equal(0);
  });

  it('never reads more than the maximum transfer for a VERIFY with BYTCHK (the whole volume otherwise)', async () => {
    const dev = new FaultyDevice(8 * 2 ** 30); // lazily allocated: nothing is held
    const disk = new ScsiDisk({ device: dev, identity: IDENTITY });
    const blocks = 2 ** 24; // the whole 8 GiB, one block of data-out compared with each (BYTCHK=11b)
    const r = await run(disk, cdb16(0x8f, 0, blocks, 0x06), Buffer.alloc(BS));
    expect(senseOf(r)).to.deep.equal([5, 0x24, 0, 10]);
    expect(dev.largestRead).to.equal(0);
    // BYTCHK=0 reads nothing: any length in range is fine; and a VERIFY within the limit compares.
    expect((await run(disk, cdb16(0x8f, 0, blocks, 0))).status).to.equal(0);
    expect((await run(disk, cdb16(0x8f, 0, 8, 0x06), Buffer.alloc(BS))).status).to.equal(0);
    expect(senseOf(await run(disk, cdb16(0x8f, 0, 8, 0x06), Buffer.alloc(BS, 1))).slice(0, 3)).to.deep.equal([0x0e, 0x1d, 0]);
  });

  it('answers MEDIUM ERROR, not GOOD with short data, when the device returns fewer bytes than asked', async () => {
    for (const Device of [FaultyDevice, FaultyCallbackDevice]) {
      const dev = new Device(1 << 20);
      const disk = new ScsiDisk({ device: dev, identity: IDENTITY });
      dev.shortRead = true;
      for (const r of [await run(disk, cdb10(0x28, 0, 8)), await runCb(disk, cdb10(0x28, 0, 8)), await runCb(disk, cdb16(0x88, 0, 8))]) {
        expect(senseOf(r).slice(0, 3), Device.name).to.deep.equal([3, 0x11, 0]);
        expect(r.data).to.equal(undefined);
      }
    }
  });

  it('never answers GOOD when a step of a multi-step command fails (FUA sync, WRITE SAME chunk, COMPARE AND WRITE, UNMAP, SYNCHRONIZE CACHE)', async () => {
    const dev = new FaultyCallbackDevice(16 << 20);
    const disk = new ScsiDisk({ device: dev, identity: IDENTITY });
    // FUA: the write lands, the sync fails.
    dev.failSync = new Error('sync failed on a replica');
    expect(senseOf(await runCb(disk, cdb10(0x2a, 0, 1, 0x08), Buffer.alloc(BS, 1))).slice(0, 3)).to.deep.equal([3, 0x0c, 0]);
    expect(senseOf(await run(disk, cdb10(0x35, 0, 0))).slice(0, 3)).to.deep.equal([3, 0x0c, 0]);
    dev.failSync = new CstorError('unavailable', 'below quorum');
    expect((await runCb(disk, cdb16(0x8a, 0, 1, 0x08), Buffer.alloc(BS, 1))).status).to.equal(0x08); // BUSY
    expect((await run(disk, cdb16(0x91, 0, 0))).status).to.equal(0x08);
    dev.failSync = undefined;
    // WRITE SAME of 3 MiB: three 1 MiB writes, the second fails.
    dev.writes = 0;
    dev.failWriteAfter = 1;
    expect(senseOf(await run(disk, cdb16(0x93, 0, 6144), Buffer.alloc(BS, 7))).slice(0, 3)).to.deep.equal([3, 0x0c, 0]);
    // COMPARE AND WRITE: the compare matches, the write fails.
    dev.writes = 0;
    dev.failWriteAfter = 0;
    const caw = Buffer.alloc(16);
    caw[0] = 0x89;
    caw.writeBigUInt64BE(100n, 2);
    caw[13] = 1;
    expect(senseOf(await run(disk, caw, Buffer.concat([Buffer.alloc(BS, 7), Buffer.alloc(BS, 9)]))).slice(0, 3)).to.deep.equal([3, 0x0c, 0]);
    dev.failWriteAfter = Infinity;
    // UNMAP below quorum: BUSY (initiators retry), never GOOD.
    dev.failUnmap = new CstorError('unavailable', 'below quorum');
    const list = Buffer.alloc(24);
    list.writeUInt16BE(22, 0);
    list.writeUInt16BE(16, 2);
    list.writeBigUInt64BE(8n, 8);
    list.writeUInt32BE(8, 16);
    const unmap = Buffer.alloc(16);
    unmap[0] = 0x42;
    unmap.writeUInt16BE(24, 7);
    expect((await run(disk, unmap, list)).status).to.equal(0x08);
    dev.failUnmap = new Error('pool gone');
    expect(senseOf(await run(disk, unmap, list)).slice(0, 3)).to.deep.equal([3, 0x0c, 0]);
  });

  it('makes every write durable before GOOD once MODE SELECT turned the write cache off (WCE=0)', async () => {
    class CountingDevice extends FaultyCallbackDevice {
      syncs = 0;
      override sync(): Promise<void> {
        this.syncs++;
        return super.sync();
      }
    }
    const dev = new CountingDevice(16 << 20);
    const disk = new ScsiDisk({ device: dev, identity: IDENTITY });
    const modeSelect = (wce: boolean): Promise<ScsiResult> => {
      const list = Buffer.alloc(4 + 20);
      list[4] = 0x08; // caching page
      list[5] = 18;
      list[6] = wce ? 0x04 : 0;
      return run(disk, Buffer.from([0x15, 0x10, 0, 0, list.length, 0]), list);
    };
    // Write cache on (the default): plain writes do not sync (SYNCHRONIZE CACHE does).
    await runCb(disk, cdb10(0x2a, 0, 1), Buffer.alloc(BS, 1));
    expect(dev.syncs).to.equal(0);
    expect((await modeSelect(false)).status).to.equal(0);
    const syncsFor = async (r: Promise<ScsiResult>): Promise<number> => {
      const before = dev.syncs;
      expect((await r).status).to.equal(0);
      return dev.syncs - before;
    };
    expect(await syncsFor(runCb(disk, cdb10(0x2a, 0, 1), Buffer.alloc(BS, 2)))).to.equal(1);
    expect(await syncsFor(runCb(disk, cdb16(0x8a, 8, 1), Buffer.alloc(BS, 2)))).to.equal(1);
    expect(await syncsFor(run(disk, cdb12(0xaa, 16, 1), Buffer.alloc(BS, 2)))).to.equal(1);
    expect(await syncsFor(run(disk, cdb16(0x93, 32, 4), Buffer.alloc(BS, 2)))).to.equal(1);
    const caw = Buffer.alloc(16);
    caw[0] = 0x89;
    caw[13] = 1;
    expect(await syncsFor(run(disk, caw, Buffer.concat([Buffer.alloc(BS, 2), Buffer.alloc(BS, 3)])))).to.equal(1);
    // A write whose sync fails is not GOOD.
    dev.failSync = new Error('fsync failed');
    expect(senseOf(await runCb(disk, cdb10(0x2a, 0, 1), Buffer.alloc(BS, 4))).slice(0, 3)).to.deep.equal([3, 0x0c, 0]);
    dev.failSync = undefined;
    // Back on: no sync per write again.
    expect((await modeSelect(true)).status).to.equal(0);
    expect(await syncsFor(runCb(disk, cdb10(0x2a, 0, 1), Buffer.alloc(BS, 5)))).to.equal(0);
  });

  it('keeps the write-cache setting in its store: answered once saved, restored at start, unchanged by a failed save or a refused list', async () => {
    const saved: boolean[] = [];
    let failSave = false;
    const store = {
      enabled: true,
      save: async (enabled: boolean): Promise<void> => {
        if (failSave) throw new CstorError('io', 'state file unwritable');
        saved.push(enabled);
        store.enabled = enabled;
      },
    };
    const dev = new FaultyCallbackDevice(16 << 20);
    const disk = new ScsiDisk({ device: dev, identity: IDENTITY, writeCache: store });
    const list = (wce: boolean, extraPage?: number): Buffer => {
      const b = Buffer.alloc(4 + 20 + (extraPage === undefined ? 0 : 4));
      b[4] = 0x08; // caching page
      b[5] = 18;
      b[6] = wce ? 0x04 : 0;
      if (extraPage !== undefined) {
        b[24] = extraPage;
        b[25] = 2;
      }
      return b;
    };
    const modeSelect = (b: Buffer): Promise<ScsiResult> => run(disk, Buffer.from([0x15, 0x10, 0, 0, b.length, 0]), b);
    const wceNow = async (d: ScsiDisk): Promise<boolean> => {
      const r = await run(d, Buffer.from([0x1a, 0x08, 0x08, 0, 255, 0]));
      return (r.data![4 + 2]! & 0x04) !== 0; // MODE SENSE(6), DBD: header then the caching page
    };
    // A list with a bad page after the caching page changes nothing.
    expect(senseOf(await modeSelect(list(false, 0x30))).slice(0, 2)).to.deep.equal([5, 0x26]);
    expect(saved).to.deep.equal([]);
    expect(await wceNow(disk)).to.equal(true);
    expect((await modeSelect(list(false))).status).to.equal(0);
    expect(saved).to.deep.equal([false]);
    expect(await wceNow(disk)).to.equal(false);
    // A disk made from the same store (a restarted target) starts with the cache off.
    const again = new ScsiDisk({ device: dev, identity: IDENTITY, writeCache: store });
    expect(await wceNow(again)).to.equal(false);
    // A save that fails: CHECK CONDITION, and the setting stays off.
    failSave = true;
    expect((await modeSelect(list(true))).status).to.equal(2);
    expect(await wceNow(disk)).to.equal(false);
    failSave = false;
    expect((await modeSelect(list(true))).status).to.equal(0);
    expect(saved).to.deep.equal([false, true]);
    expect(await wceNow(disk)).to.equal(true);
  });

  it('refuses LBAs and lengths that overflow past the capacity, in 32 and 64 bits, on both paths', async () => {
    const dev = new FaultyCallbackDevice(1 << 20);
    const disk = new ScsiDisk({ device: dev, identity: IDENTITY });
    const blocks = (1 << 20) / BS;
    const cases: Buffer[] = [
      cdb10(0x28, 0xffffffff, 1),
      cdb10(0x28, blocks - 1, 2),
      cdb16(0x88, 0xffffffffffffffffn, 1),
      cdb16(0x88, 2n ** 53n, 1),
      cdb16(0x88, 1, 0xffffffff),
      cdb16(0x8a, 0xfffffffffffffff0n, 0x20),
      cdb10(0x2a, blocks, 1),
    ];
    for (const c of cases) {
      for (const r of [await run(disk, c, Buffer.alloc(BS)), await runCb(disk, c, Buffer.alloc(BS))]) {
        expect(senseOf(r).slice(0, 3), c.toString('hex')).to.deep.equal([5, 0x21, 0]);
      }
    }
    expect(dev.largestRead).to.equal(0);
    expect(dev.writes).to.equal(0);
    // Zero-length transfers: GOOD at the last LBA + 1, LBA OUT OF RANGE past it; no device IO.
    expect((await runCb(disk, cdb10(0x28, blocks, 0))).status).to.equal(0);
    expect(senseOf(await runCb(disk, cdb10(0x28, blocks + 1, 0))).slice(0, 3)).to.deep.equal([5, 0x21, 0]);
    expect((await runCb(disk, cdb10(0x2a, 0, 0))).status).to.equal(0);
    expect(dev.writes).to.equal(0);
  });

  it('applies a persistent reservation on the callback path: the holder writes, others conflict on writes and read', async () => {
    const dev = new FaultyCallbackDevice(1 << 20);
    const disk = new ScsiDisk({ device: dev, identity: IDENTITY });
    const prOut = (sa: number, type: number): Buffer => {
      const c = Buffer.alloc(16);
      c[0] = 0x5f;
      c[1] = sa;
      c[2] = type;
      c.writeUInt32BE(24, 5);
      return c;
    };
    const params = (key: bigint, saKey: bigint): Buffer => {
      const p = Buffer.alloc(24);
      p.writeBigUInt64BE(key, 0);
      p.writeBigUInt64BE(saKey, 8);
      return p;
    };
    expect((await run(disk, prOut(0, 0), params(0n, 0xaan), 'holder')).status).to.equal(0);
    expect((await run(disk, prOut(1, 1), params(0xaan, 0n), 'holder')).status).to.equal(0); // WRITE EXCLUSIVE
    expect((await runCb(disk, cdb10(0x2a, 0, 1), Buffer.alloc(BS, 3), 'holder')).status).to.equal(0);
    expect((await runCb(disk, cdb10(0x2a, 0, 1), Buffer.alloc(BS, 4), 'other')).status).to.equal(0x18);
    expect((await runCb(disk, cdb16(0x8a, 0, 1), Buffer.alloc(BS, 4), 'other')).status).to.equal(0x18);
    const caw = Buffer.alloc(16);
    caw[0] = 0x89;
    caw[13] = 1;
    expect((await run(disk, caw, Buffer.concat([Buffer.alloc(BS, 3), Buffer.alloc(BS, 5)]), 'other')).status).to.equal(0x18);
    const read = await runCb(disk, cdb10(0x28, 0, 1), undefined, 'other');
    expect(read.status).to.equal(0);
    expect(read.data!.every((b) => b === 3)).to.equal(true);
  });
});
