// A SCSI direct-access block device (SBC-3) over a BlockDevice: LUN 0 of an iSCSI target. It parses
// CDBs, checks them, runs them against the device and answers data or CHECK CONDITION with sense.
// Transport-independent: the iSCSI layer hands it a CDB and the data-out it received.
import type { BlockDevice } from '../../lib/block-device.ts';
import { CstorError, describeError, hasErrorCode } from '../../lib/errors.ts';
import { SUPPORTED_VPD_PAGES, standardInquiry, vpdPage, type BlockLimits, type DiskIdentity } from './inquiry.ts';
import { modeSense, type ModeState } from './mode-pages.ts';
import { Asc, ScsiSenseError, ScsiStatus, SenseKey, descriptorSense, fixedSense, invalidFieldInCdb, invalidFieldInParameterList, lbaOutOfRange } from './sense.ts';
import { IoStats } from './io-stats.ts';
import { reportSupportedOpcodes } from './supported-opcodes.ts';
import { PersistentReservations, ReservationConflictError, type AccessKind } from './persistent-reservations.ts';
import { ioBuffers } from './buffer-pool.ts';

export interface ScsiRequest {
  readonly lun: number;
  readonly cdb: Buffer;
  /** The data-out the initiator sent (maybe shorter than the CDB asks: then only whole blocks of it are used). */
  readonly dataOut: Buffer | undefined;
  /** Identifies the I_T nexus (initiator name + ISID), for reservations. */
  readonly nexus: string;
  /**
   * For a pooled data-out buffer: the disk calls it once neither it nor the device references
   * `dataOut` any more (a WRITE(10/16) on a device that says so, see LeasingBlockDevice). It may
   * never be called (other commands, a failed write): the caller then drops the buffer.
   */
  readonly releaseDataOut?: () => void;
}

export interface ScsiResult {
  readonly status: number;
  /** Data-in (already cut to the CDB's allocation length). */
  readonly data?: Buffer;
  readonly sense?: Buffer;
  /**
   * Set when `data` is a pooled buffer (large READs): the transport calls it once, when nothing
   * references `data` any more (the socket write that carried it completed, or it was never sent).
   */
  readonly release?: () => void;
}

/**
 * What a device may offer beyond BlockDevice for large IO without a fresh Buffer per command (the
 * replicated volume does): a write that says when the device is done with the data, and a read
 * into the caller's buffer (after a rejection the buffer must be dropped, not reused).
 */
export interface LeasingBlockDevice extends BlockDevice {
  /** True when writeAt takes `released` (called once the device no longer references the data, or never). */
  readonly releasesWriteData?: boolean;
  writeAt(offset: number, data: Buffer, released?: () => void): Promise<void>;
  readInto?(offset: number, into: Buffer): Promise<void>;
}

/**
 * The callback form of a device's block IO (the replicated volume has it): `done` runs once,
 * never before the call returned, exactly when the promise form would settle.
 */
export interface CallbackBlockDevice {
  writeCb(offset: number, data: Buffer, released: (() => void) | undefined, done: (err: Error | null) => void): void;
  readCb(offset: number, length: number, done: (err: Error | null, data: Buffer | undefined) => void): void;
}

/** READs of at least this many bytes go into a pooled buffer when the device can read into one. */
const LEASED_READ_MIN = 128 * 1024;

export interface ScsiDiskOptions {
  readonly device: BlockDevice;
  readonly identity: DiskIdentity;
  /** Where the write-cache setting outlives this process (none: on at every start). */
  readonly writeCache?: WriteCacheStore;
}

/**
 * A volume's write-cache setting (caching mode page, WCE). An initiator that turned the cache off
 * sends no SYNCHRONIZE CACHE; if a restarted target forgot the setting, it would answer writes
 * before they are durable. MODE SELECT answers once a change is saved.
 */
export interface WriteCacheStore {
  readonly enabled: boolean;
  save(enabled: boolean): Promise<void>;
}

export const Op = {
  testUnitReady: 0x00,
  requestSense: 0x03,
  read6: 0x08,
  write6: 0x0a,
  inquiry: 0x12,
  modeSelect6: 0x15,
  reserve6: 0x16,
  release6: 0x17,
  modeSense6: 0x1a,
  startStopUnit: 0x1b,
  preventAllow: 0x1e,
  readCapacity10: 0x25,
  read10: 0x28,
  write10: 0x2a,
  writeVerify10: 0x2e,
  verify10: 0x2f,
  prefetch10: 0x34,
  syncCache10: 0x35,
  readDefectData10: 0x37,
  writeSame10: 0x41,
  unmap: 0x42,
  modeSelect10: 0x55,
  modeSense10: 0x5a,
  persistentReserveIn: 0x5e,
  persistentReserveOut: 0x5f,
  read16: 0x88,
  compareAndWrite: 0x89,
  write16: 0x8a,
  writeVerify16: 0x8e,
  verify16: 0x8f,
  prefetch16: 0x90,
  syncCache16: 0x91,
  writeSame16: 0x93,
  serviceActionIn16: 0x9e,
  reportLuns: 0xa0,
  maintenanceIn: 0xa3,
  read12: 0xa8,
  write12: 0xaa,
  writeVerify12: 0xae,
  verify12: 0xaf,
  readDefectData12: 0xb7,
} as const;

/** Commands a reservation holder's peers may still run (SPC-4 table of allowed commands, abridged). */
const allowedUnderReservation: ReadonlySet<number> = new Set([
  Op.inquiry,
  Op.reportLuns,
  Op.requestSense,
  Op.readCapacity10,
  Op.serviceActionIn16,
  Op.maintenanceIn,
  Op.persistentReserveIn,
  Op.persistentReserveOut,
  Op.release6,
  Op.testUnitReady,
]);

const GOOD: ScsiResult = { status: ScsiStatus.good };

function check(err: ScsiSenseError): ScsiResult {
  return { status: ScsiStatus.checkCondition, sense: err.sense };
}

export class ScsiDisk {
  readonly device: BlockDevice;
  readonly identity: DiskIdentity;
  readonly blockSize: number;
  readonly blocks: number;
  readonly limits: BlockLimits;
  readonly stats = new IoStats();
  private readonly modeState: ModeState;
  private readonly writeCacheStore: WriteCacheStore | undefined;
  /** RESERVE(6) holder. */
  private reservedBy: string | undefined;
  readonly pr = new PersistentReservations();
  /** Pending unit attention (ASC/ASCQ) per I_T nexus, reported once on its next command. */
  private readonly unitAttentions = new Map<string, readonly [number, number]>();
  /** Serializes COMPARE AND WRITE so its read-compare-write is atomic against other CAWs. */
  private cawChain: Promise<unknown> = Promise.resolve();
  /** The device's LeasingBlockDevice abilities (pooled buffers for large IO). */
  private readonly leasing: boolean;
  private readonly readInto: ((offset: number, into: Buffer) => Promise<void>) | undefined;
  /** The device's callback form, when it has one (executeCb's direct path). */
  private readonly cbDevice: CallbackBlockDevice | undefined;

  constructor(opts: ScsiDiskOptions) {
    this.device = opts.device;
    this.writeCacheStore = opts.writeCache;
    this.modeState = { writeCacheEnabled: opts.writeCache?.enabled ?? true };
    const dev = opts.device as LeasingBlockDevice;
    this.leasing = dev.releasesWriteData === true;
    this.readInto = typeof dev.readInto === 'function' ? dev.readInto : undefined;
    const cbDev = opts.device as Partial<CallbackBlockDevice>;
    this.cbDevice = typeof cbDev.writeCb === 'function' && typeof cbDev.readCb === 'function' ? (opts.device as unknown as CallbackBlockDevice) : undefined;
    this.identity = opts.identity;
    this.blockSize = opts.device.blockSize;
    this.blocks = Math.floor(opts.device.size / opts.device.blockSize);
    const bs = this.blockSize;
    this.limits = {
      maxTransferBlocks: Math.floor((16 << 20) / bs),
      optimalTransferBlocks: Math.floor((1 << 20) / bs),
      // libiscsi's BlockLimits check wants at most 1 Mi blocks per UNMAP.
      maxUnmapBlocks: Math.min(1 << 20, Math.floor((1 << 30) / bs)),
      maxUnmapDescriptors: 256,
      // Below 65536 so a WRITE SAME never covers more than a 16-bit count (32 MiB at 512-byte blocks).
      maxWriteSameBlocks: 65535,
      maxCompareAndWriteBlocks: 255,
      // Unmapped blocks do read as zeros, but qemu (7.2) asserts in iscsi_co_block_status when a
      // 4 KiB-block LUN reports LBPRZ (it asks for BDRV_REQUEST_MAX_BYTES, 512-aligned only), so
      // 4 KiB LUNs do not claim it: initiators then just do not rely on it.
      lbprz: bs === 512,
    };
  }

  /** Bytes of data-out the CDB asks for (for iSCSI residual accounting); 0 when it takes none. */
  dataOutLength(cdb: Buffer): number {
    const bs = this.blockSize;
    try {
      switch (cdb[0]) {
        case Op.write6:
          return (cdb[4] === 0 ? 256 : cdb[4]!) * bs;
        case Op.write10:
        case Op.writeVerify10:
          return cdb.readUInt16BE(7) * bs;
        case Op.write12:
        case Op.writeVerify12:
          return cdb.readUInt32BE(6) * bs;
        case Op.write16:
        case Op.writeVerify16:
          return cdb.readUInt32BE(10) * bs;
        case Op.verify10:
          return (cdb[1]! & 0x06) === 0x02 ? cdb.readUInt16BE(7) * bs : (cdb[1]! & 0x06) === 0x06 ? bs : 0;
        case Op.verify12:
          return (cdb[1]! & 0x06) === 0x02 ? cdb.readUInt32BE(6) * bs : (cdb[1]! & 0x06) === 0x06 ? bs : 0;
        case Op.verify16:
          return (cdb[1]! & 0x06) === 0x02 ? cdb.readUInt32BE(10) * bs : (cdb[1]! & 0x06) === 0x06 ? bs : 0;
        case Op.writeSame10:
          return bs;
        case Op.writeSame16:
          return cdb[1]! & 0x01 ? 0 : bs;
        case Op.compareAndWrite:
          return 2 * cdb[13]! * bs;
        case Op.unmap:
          return cdb.readUInt16BE(7);
        case Op.modeSelect6:
          return cdb[4]!;
        case Op.modeSelect10:
          return cdb.readUInt16BE(7);
        case Op.persistentReserveOut:
          return cdb.readUInt32BE(5);
        default:
          return 0;
      }
    } catch {
      return 0;
    }
  }

  /**
   * Runs one command. Never throws: errors become CHECK CONDITION. No async wrapper: commands
   * answered at once resolve at once, and a READ or WRITE is the device's promise chained once.
   */
  execute(req: ScsiRequest): Promise<ScsiResult> {
    const { cdb } = req;
    if (cdb.length < 6) return Promise.resolve(check(new ScsiSenseError(SenseKey.illegalRequest, Asc.invalidOpcode, 'CDB too short')));
    const op = cdb[0]!;
    if (req.lun !== 0) {
      if (op === Op.inquiry) return Promise.resolve(this.inquiry(cdb, false));
      if (op === Op.reportLuns) return Promise.resolve(this.reportLuns(cdb));
      if (op === Op.requestSense) return Promise.resolve(this.requestSense(cdb, [SenseKey.illegalRequest, Asc.lunNotSupported]));
      return Promise.resolve(check(new ScsiSenseError(SenseKey.illegalRequest, Asc.lunNotSupported, `LUN ${req.lun} does not exist`)));
    }
    if (this.unitAttentions.size > 0) {
      const ua = this.unitAttentions.get(req.nexus);
      if (ua && op !== Op.inquiry && op !== Op.reportLuns) {
        this.unitAttentions.delete(req.nexus);
        if (op === Op.requestSense) return Promise.resolve(this.requestSense(req.cdb, [SenseKey.unitAttention, ua]));
        return Promise.resolve(check(new ScsiSenseError(SenseKey.unitAttention, ua, 'unit attention')));
      }
    }
    if (this.reservedBy !== undefined && this.reservedBy !== req.nexus && !allowedUnderReservation.has(op)) {
      return Promise.resolve({ status: ScsiStatus.reservationConflict });
    }
    if (this.pr.hasReservation) {
      if (!this.pr.allows(req.nexus, accessKind(op))) return Promise.resolve({ status: ScsiStatus.reservationConflict });
      if ((op === Op.reserve6 || op === Op.release6) && !this.pr.allows(req.nexus, 'write')) return Promise.resolve({ status: ScsiStatus.reservationConflict });
    }
    let result: ScsiResult | Promise<ScsiResult>;
    try {
      // READ and WRITE (10/16): their promises answer errors themselves (never reject).
      if (op === Op.write10) return this.write(req, op, cdb.readUInt32BE(2), cdb.readUInt16BE(7), true);
      if (op === Op.read10) return this.read(cdb, op, cdb.readUInt32BE(2), cdb.readUInt16BE(7), true);
      if (op === Op.write16) return this.write(req, op, lba64(cdb), cdb.readUInt32BE(10), true);
      if (op === Op.read16) return this.read(cdb, op, lba64(cdb), cdb.readUInt32BE(10), true);
      result = this.dispatch(op, req);
    } catch (err) {
      return Promise.resolve(errorResult(op, err));
    }
    if (!(result instanceof Promise)) return Promise.resolve(result);
    return result.then(undefined, (err: unknown) => errorResult(op, err));
  }

  /**
   * execute() with a callback, for the transport's hot path: a plain READ or WRITE (10/16) on LUN
   * 0 (no protection bits, no FUA, for writes the write cache on, in range, nothing pending: no
   * unit attention, no reservation)
   * goes straight to the device's callback form, without a promise; everything else is execute().
   * `done` runs once with what execute() would resolve to, never before executeCb returned.
   */
  executeCb(req: ScsiRequest, done: (result: ScsiResult) => void): void {
    const cdb = req.cdb;
    const dev = this.cbDevice;
    const op = cdb.length >= 16 ? cdb[0]! : -1;
    if (dev !== undefined && req.lun === 0 && (cdb[1]! & 0xe8) === 0 && this.unitAttentions.size === 0 && this.reservedBy === undefined && !this.pr.hasReservation) {
      const bs = this.blockSize;
      // With the write cache off (WCE=0) a write syncs before GOOD: execute's path.
      if ((op === Op.write10 || op === Op.write16) && this.modeState.writeCacheEnabled) {
        const lba = op === Op.write10 ? cdb.readUInt32BE(2) : lba64(cdb);
        const blocks = op === Op.write10 ? cdb.readUInt16BE(7) : cdb.readUInt32BE(10);
        const dataOut = req.dataOut;
        const n = dataOut === undefined ? 0 : Math.min(blocks, Math.floor(dataOut.length / bs));
        if (n > 0 && lba + blocks <= this.blocks && blocks <= this.limits.maxTransferBlocks) {
          const bytes = n * bs;
          const data = dataOut!.length === bytes ? dataOut! : dataOut!.subarray(0, bytes);
          const t0 = performance.now();
          // Only a device that says when it is done with the data gets the release (others: dropped).
          dev.writeCb(lba * bs, data, this.leasing ? req.releaseDataOut : undefined, (err) => {
            if (err !== null) {
              done(errorResult(op, err));
              return;
            }
            this.stats.record('write', bytes, t0);
            done(GOOD);
          });
          return;
        }
      } else if (op === Op.read10 || op === Op.read16) {
        const lba = op === Op.read10 ? cdb.readUInt32BE(2) : lba64(cdb);
        const blocks = op === Op.read10 ? cdb.readUInt16BE(7) : cdb.readUInt32BE(10);
        const length = blocks * bs;
        if (blocks > 0 && lba + blocks <= this.blocks && blocks <= this.limits.maxTransferBlocks && (length < LEASED_READ_MIN || this.readInto === undefined)) {
          const t0 = performance.now();
          dev.readCb(lba * bs, length, (err, data) => {
            if (err !== null || data === undefined || data.length !== length) {
              done(errorResult(op, err ?? shortRead(length, data?.length ?? 0)));
              return;
            }
            this.stats.record('read', data.length, t0);
            done({ status: ScsiStatus.good, data });
          });
          return;
        }
      }
    }
    this.execute(req).then(done, (err: unknown) => done(errorResult(op, err)));
  }

  /** Runs a command: a result now, or a promise of one (which may reject: execute maps the error). */
  private dispatch(op: number, req: ScsiRequest): ScsiResult | Promise<ScsiResult> {
    const { cdb } = req;
    switch (op) {
      case Op.testUnitReady:
        return GOOD;
      case Op.inquiry:
        return this.inquiry(cdb, true);
      case Op.requestSense:
        return this.requestSense(cdb, [SenseKey.noSense, Asc.noAdditional]);
      case Op.reportLuns:
        return this.reportLuns(cdb);
      case Op.readCapacity10:
        return this.readCapacity10(cdb);
      case Op.serviceActionIn16:
        return this.serviceActionIn(cdb);
      case Op.read6:
        return this.read(cdb, op, ((cdb[1]! & 0x1f) << 16) | cdb.readUInt16BE(2), cdb[4] === 0 ? 256 : cdb[4]!, false);
      case Op.read10:
        return this.read(cdb, op, cdb.readUInt32BE(2), cdb.readUInt16BE(7), true);
      case Op.read12:
        return this.read(cdb, op, cdb.readUInt32BE(2), cdb.readUInt32BE(6), true);
      case Op.read16:
        return this.read(cdb, op, lba64(cdb), cdb.readUInt32BE(10), true);
      case Op.write6:
        return this.write(req, op, ((cdb[1]! & 0x1f) << 16) | cdb.readUInt16BE(2), cdb[4] === 0 ? 256 : cdb[4]!, false);
      case Op.write10:
      case Op.writeVerify10:
        return this.write(req, op, cdb.readUInt32BE(2), cdb.readUInt16BE(7), true);
      case Op.write12:
      case Op.writeVerify12:
        return this.write(req, op, cdb.readUInt32BE(2), cdb.readUInt32BE(6), true);
      case Op.write16:
      case Op.writeVerify16:
        return this.write(req, op, lba64(cdb), cdb.readUInt32BE(10), true);
      case Op.verify10:
        return this.verify(req, cdb.readUInt32BE(2), cdb.readUInt16BE(7));
      case Op.verify12:
        return this.verify(req, cdb.readUInt32BE(2), cdb.readUInt32BE(6));
      case Op.verify16:
        return this.verify(req, lba64(cdb), cdb.readUInt32BE(10));
      case Op.prefetch10:
        this.checkRange(cdb.readUInt32BE(2), cdb.readUInt16BE(7));
        return GOOD;
      case Op.prefetch16:
        this.checkRange(lba64(cdb), cdb.readUInt32BE(10));
        return GOOD;
      case Op.syncCache10:
        this.checkRange(cdb.readUInt32BE(2), cdb.readUInt16BE(7));
        return this.device.sync().then(good);
      case Op.syncCache16:
        this.checkRange(lba64(cdb), cdb.readUInt32BE(10));
        return this.device.sync().then(good);
      case Op.writeSame10:
        return this.writeSame(req, cdb.readUInt32BE(2), cdb.readUInt16BE(7), false);
      case Op.writeSame16:
        return this.writeSame(req, lba64(cdb), cdb.readUInt32BE(10), true);
      case Op.unmap:
        return this.unmap(req);
      case Op.compareAndWrite:
        return this.compareAndWrite(req);
      case Op.modeSense6:
      case Op.modeSense10: {
        const ten = op === Op.modeSense10;
        const data = modeSense({ ten, cdb, blocks: this.blocks, blockSize: this.blockSize, state: this.modeState });
        return { status: ScsiStatus.good, data: cut(data, ten ? cdb.readUInt16BE(7) : cdb[4]!) };
      }
      case Op.modeSelect6:
      case Op.modeSelect10:
        return this.modeSelect(req, op === Op.modeSelect10);
      case Op.startStopUnit:
        // POWER CONDITION 0 (START/LOEJ), 1 active, 2 idle, 3 standby: accepted, nothing to do.
        if (cdb[4]! >> 4 > 3) throw invalidFieldInCdb(4, `power condition ${cdb[4]! >> 4}`, 7);
        return GOOD;
      case Op.preventAllow:
        return GOOD;
      case Op.reserve6:
        if (cdb[1]! & 0x01) throw invalidFieldInCdb(1, 'third-party reservations are not supported');
        this.reservedBy = req.nexus;
        return GOOD;
      case Op.release6:
        if (this.reservedBy === req.nexus) this.reservedBy = undefined;
        return GOOD;
      case Op.readDefectData10:
      case Op.readDefectData12:
        return this.readDefectData(cdb, op === Op.readDefectData12);
      case Op.maintenanceIn:
        if ((cdb[1]! & 0x1f) !== 0x0c) throw invalidFieldInCdb(1, `MAINTENANCE IN service action 0x${(cdb[1]! & 0x1f).toString(16)}`, 4);
        return { status: ScsiStatus.good, data: cut(reportSupportedOpcodes(cdb), cdb.readUInt32BE(6)) };
      case Op.persistentReserveIn:
        return { status: ScsiStatus.good, data: cut(this.pr.in(cdb), cdb.readUInt16BE(7)) };
      case Op.persistentReserveOut:
        this.pr.out(req.nexus, cdb, req.dataOut);
        return GOOD;
      default:
        throw new ScsiSenseError(SenseKey.illegalRequest, Asc.invalidOpcode, `unsupported opcode 0x${op.toString(16)}`, { field: { cd: true, byte: 0 } });
    }
  }

  /** Establishes a unit attention condition for these I_T nexuses (e.g. after a LUN reset). */
  raiseUnitAttention(nexuses: readonly string[], asc: readonly [number, number]): void {
    for (const n of nexuses) this.unitAttentions.set(n, asc);
  }

  /** Drops reservations held by a nexus (its session ended) or all of them (a reset). */
  releaseReservations(nexus?: string): void {
    if (nexus === undefined || this.reservedBy === nexus) this.reservedBy = undefined;
    if (nexus !== undefined) this.unitAttentions.delete(nexus);
  }

  private checkRange(lba: number, blocks: number): void {
    if (!Number.isSafeInteger(lba) || lba + blocks > this.blocks) throw lbaOutOfRange(lba, blocks);
  }

  private checkTransfer(lba: number, blocks: number, lenByte: number): void {
    this.checkRange(lba, blocks);
    if (blocks > this.limits.maxTransferBlocks) throw invalidFieldInCdb(lenByte, `transfer of ${blocks} blocks exceeds the maximum ${this.limits.maxTransferBlocks}`);
  }

  /**
   * READ: checks the CDB (throws sense), then one device read chained once; the promise resolves
   * with the data or with the error's status and sense (it never rejects).
   */
  private read(cdb: Buffer, op: number, lba: number, blocks: number, hasFlags: boolean): Promise<ScsiResult> {
    if (hasFlags && cdb[1]! & 0xe0) throw invalidFieldInCdb(1, 'RDPROTECT: no protection information', 7);
    this.checkTransfer(lba, blocks, lengthByte(op));
    if (blocks === 0) return Promise.resolve(GOOD);
    const t0 = performance.now();
    const length = blocks * this.blockSize;
    const lease = length >= LEASED_READ_MIN && this.readInto !== undefined ? ioBuffers.acquire(length) : undefined;
    if (lease !== undefined) {
      // Into a pooled buffer, given back by the transport once sent; after a failure it is dropped.
      const data = lease.buffer;
      return this.readInto!.call(this.device, lba * this.blockSize, data).then(
        (): ScsiResult => {
          this.stats.record('read', length, t0);
          return { status: ScsiStatus.good, data, release: () => lease.release() };
        },
        (err: unknown) => errorResult(op, err),
      );
    }
    return this.device.readAt(lba * this.blockSize, length).then(
      (data): ScsiResult => {
        if (data.length !== length) return errorResult(op, shortRead(length, data.length));
        this.stats.record('read', data.length, t0);
        return { status: ScsiStatus.good, data };
      },
      (err: unknown) => errorResult(op, err),
    );
  }

  /** WRITE: as read; only whole blocks of the data-out are written; FUA syncs after. */
  private write(req: ScsiRequest, op: number, lba: number, blocks: number, hasFlags: boolean): Promise<ScsiResult> {
    const { cdb } = req;
    if (hasFlags && cdb[1]! & 0xe0) throw invalidFieldInCdb(1, 'WRPROTECT: no protection information', 7);
    this.checkTransfer(lba, blocks, lengthByte(op));
    const bs = this.blockSize;
    const dataOut = req.dataOut;
    const have = dataOut === undefined ? 0 : Math.floor(dataOut.length / bs);
    const n = Math.min(blocks, have);
    if (n === 0) return Promise.resolve(GOOD);
    const bytes = n * bs;
    const data = dataOut!.length === bytes ? dataOut! : dataOut!.subarray(0, bytes);
    const t0 = performance.now();
    // Only a device that says when it is done with the data gets the release (others: dropped).
    const release = req.releaseDataOut;
    const written = release !== undefined && this.leasing ? (this.device as LeasingBlockDevice).writeAt(lba * bs, data, release) : this.device.writeAt(lba * bs, data);
    // FUA, or the write cache turned off (MODE SELECT, WCE=0): durable before GOOD.
    const fua = (hasFlags && (cdb[1]! & 0x08) !== 0) || !this.modeState.writeCacheEnabled;
    return (fua ? written.then(() => this.device.sync()) : written).then(
      (): ScsiResult => {
        this.stats.record('write', bytes, t0);
        return GOOD;
      },
      (err: unknown) => errorResult(op, err),
    );
  }

  private async verify(req: ScsiRequest, lba: number, blocks: number): Promise<ScsiResult> {
    const { cdb } = req;
    if (cdb[1]! & 0xe0) throw invalidFieldInCdb(1, 'VRPROTECT: no protection information', 7);
    this.checkRange(lba, blocks);
    const bytchk = (cdb[1]! >> 1) & 3;
    if (bytchk === 0 || blocks === 0) return GOOD;
    if (bytchk === 2) throw invalidFieldInCdb(1, 'BYTCHK 10b is reserved', 2);
    // The medium is read to compare: never more than a READ may move (not the whole volume at once).
    this.checkTransfer(lba, blocks, lengthByte(cdb[0]!));
    const bs = this.blockSize;
    const medium = await this.device.readAt(lba * bs, blocks * bs);
    const data = req.dataOut ?? Buffer.alloc(0);
    for (let i = 0; i < blocks; i++) {
      const want = bytchk === 3 ? data.subarray(0, bs) : data.subarray(i * bs, (i + 1) * bs);
      if (want.length < bs) break;
      const got = medium.subarray(i * bs, (i + 1) * bs);
      if (!want.equals(got)) {
        let off = 0;
        while (off < bs && want[off] === got[off]) off++;
        return check(new ScsiSenseError(SenseKey.miscompare, Asc.miscompareDuringVerify, 'verify miscompare', { information: i * bs + off }));
      }
    }
    return GOOD;
  }

  private async writeSame(req: ScsiRequest, lba: number, blocks: number, sixteen: boolean): Promise<ScsiResult> {
    const { cdb } = req;
    const flags = cdb[1]!;
    if (flags & 0xe0) throw invalidFieldInCdb(1, 'WRPROTECT: no protection information', 7);
    if (flags & 0x10) throw invalidFieldInCdb(1, 'ANCHOR is not supported', 4);
    if (!sixteen && flags & 0x01) throw invalidFieldInCdb(1, 'reserved bit', 0);
    const ndob = sixteen && (flags & 0x01) !== 0;
    const unmapBit = (flags & 0x08) !== 0;
    if (blocks === 0) throw invalidFieldInCdb(sixteen ? 10 : 7, 'WRITE SAME of 0 blocks (WSNZ)');
    this.checkRange(lba, blocks);
    if (blocks > this.limits.maxWriteSameBlocks) throw invalidFieldInCdb(sixteen ? 10 : 7, `WRITE SAME of ${blocks} blocks exceeds the maximum`);
    const bs = this.blockSize;
    let pattern: Buffer;
    if (ndob) pattern = Buffer.alloc(bs);
    else {
      if (!req.dataOut || req.dataOut.length < bs) throw new ScsiSenseError(SenseKey.illegalRequest, Asc.parameterListLengthError, 'WRITE SAME without a data block');
      pattern = req.dataOut.subarray(0, bs);
    }
    const t0 = performance.now();
    if (unmapBit && isZero(pattern)) {
      await this.device.unmap(lba * bs, blocks * bs);
    } else {
      const chunkBlocks = Math.max(1, Math.floor((1 << 20) / bs));
      const chunk = Buffer.alloc(Math.min(blocks, chunkBlocks) * bs);
      for (let i = 0; i < chunk.length; i += bs) pattern.copy(chunk, i);
      for (let done = 0; done < blocks; ) {
        const n = Math.min(chunkBlocks, blocks - done);
        await this.device.writeAt((lba + done) * bs, chunk.subarray(0, n * bs));
        done += n;
      }
    }
    if (!this.modeState.writeCacheEnabled) await this.device.sync();
    this.stats.record('write', blocks * bs, t0);
    return GOOD;
  }

  private async unmap(req: ScsiRequest): Promise<ScsiResult> {
    const { cdb } = req;
    if (cdb[1]! & 0x01) throw invalidFieldInCdb(1, 'ANCHOR is not supported', 0);
    const listLen = cdb.readUInt16BE(7);
    if (listLen === 0) return GOOD;
    const p = req.dataOut ?? Buffer.alloc(0);
    if (listLen < 8 || p.length < 8) throw new ScsiSenseError(SenseKey.illegalRequest, Asc.parameterListLengthError, 'UNMAP parameter list shorter than its header');
    const descLen = p.readUInt16BE(2);
    const count = Math.floor(Math.min(descLen, p.length - 8) / 16);
    if (count > this.limits.maxUnmapDescriptors) throw invalidFieldInCdb(7, 'too many UNMAP block descriptors');
    const ranges: Array<[number, number]> = [];
    for (let i = 0; i < count; i++) {
      const at = 8 + i * 16;
      const lba = Number(p.readBigUInt64BE(at));
      const n = p.readUInt32BE(at + 8);
      this.checkRange(lba, n);
      if (n > this.limits.maxUnmapBlocks) throw invalidFieldInParameterList(at + 8, 'UNMAP range exceeds the maximum unmap LBA count');
      ranges.push([lba, n]);
    }
    const bs = this.blockSize;
    for (const [lba, n] of ranges) if (n > 0) await this.device.unmap(lba * bs, n * bs);
    return GOOD;
  }

  private compareAndWrite(req: ScsiRequest): Promise<ScsiResult> {
    const { cdb } = req;
    if (cdb[1]! & 0xe0) throw invalidFieldInCdb(1, 'WRPROTECT: no protection information', 7);
    const lba = lba64(cdb);
    const n = cdb[13]!;
    if (n > this.limits.maxCompareAndWriteBlocks) throw invalidFieldInCdb(13, 'COMPARE AND WRITE length exceeds the maximum');
    this.checkRange(lba, n);
    const bs = this.blockSize;
    const data = req.dataOut ?? Buffer.alloc(0);
    // NUMBER OF LOGICAL BLOCKS 0 transfers nothing; data-out with it means the count overflowed its byte.
    if (n === 0) return Promise.resolve(data.length > 0 ? check(invalidFieldInCdb(13, 'NUMBER OF LOGICAL BLOCKS 0 with data-out')) : GOOD);
    if (data.length < 2 * n * bs) {
      return Promise.resolve(check(new ScsiSenseError(SenseKey.illegalRequest, Asc.parameterListLengthError, 'COMPARE AND WRITE data-out is shorter than 2 × NUMBER OF BLOCKS')));
    }
    const run = async (): Promise<ScsiResult> => {
      const medium = await this.device.readAt(lba * bs, n * bs);
      const verify = data.subarray(0, n * bs);
      if (!verify.equals(medium)) {
        let off = 0;
        while (off < medium.length && verify[off] === medium[off]) off++;
        return check(new ScsiSenseError(SenseKey.miscompare, Asc.miscompareDuringVerify, 'compare and write miscompare', { information: off }));
      }
      await this.device.writeAt(lba * bs, data.subarray(n * bs, 2 * n * bs));
      if (cdb[1]! & 0x08 || !this.modeState.writeCacheEnabled) await this.device.sync();
      return GOOD;
    };
    const p = this.cawChain.then(run, run);
    this.cawChain = p.catch(() => undefined);
    return p;
  }

  private modeSelect(req: ScsiRequest, ten: boolean): ScsiResult | Promise<ScsiResult> {
    const { cdb } = req;
    const listLen = ten ? cdb.readUInt16BE(7) : cdb[4]!;
    if ((cdb[1]! & 0x10) === 0 && listLen > 0) throw invalidFieldInCdb(1, 'PF must be set', 4);
    if (cdb[1]! & 0x01) throw invalidFieldInCdb(1, 'saving pages is not supported', 0);
    if (listLen === 0) return GOOD;
    const p = req.dataOut ?? Buffer.alloc(0);
    const hdr = ten ? 8 : 4;
    if (p.length < hdr) throw new ScsiSenseError(SenseKey.illegalRequest, Asc.parameterListLengthError, 'MODE SELECT list shorter than its header');
    const bdLen = ten ? p.readUInt16BE(6) : p[3]!;
    let at = hdr + bdLen;
    // Every page is checked before any is applied: a list refused halfway changes nothing.
    let wce: boolean | undefined;
    for (let guard = 0; at < p.length && guard < 64; guard++) {
      if (at + 2 > p.length) throw new ScsiSenseError(SenseKey.illegalRequest, Asc.parameterListLengthError, 'truncated mode page');
      const page = p[at]! & 0x3f;
      const len = p[at + 1]! + 2;
      if (at + len > p.length) throw new ScsiSenseError(SenseKey.illegalRequest, Asc.parameterListLengthError, 'truncated mode page');
      if (page === 0x08) wce = (p[at + 2]! & 0x04) !== 0;
      else if (page !== 0x0a && page !== 0x1c) throw invalidFieldInParameterList(at, `mode page 0x${page.toString(16)}`);
      at += len;
    }
    if (wce === undefined || wce === this.modeState.writeCacheEnabled) return GOOD;
    const store = this.writeCacheStore;
    if (store === undefined) {
      this.modeState.writeCacheEnabled = wce;
      return GOOD;
    }
    // Off takes effect at once (stricter); on only once saved, so no restart can lose "off" while
    // the initiator relies on it. A failed save leaves the old setting (the error maps to sense).
    if (!wce) this.modeState.writeCacheEnabled = false;
    return store.save(wce).then(
      () => {
        this.modeState.writeCacheEnabled = wce;
        return GOOD;
      },
      (err: unknown) => {
        if (!wce) this.modeState.writeCacheEnabled = true;
        throw err;
      },
    );
  }

  private inquiry(cdb: Buffer, present: boolean): ScsiResult {
    const evpd = (cdb[1]! & 0x01) !== 0;
    const page = cdb[2]!;
    const alloc = cdb.readUInt16BE(3);
    if (cdb[1]! & 0x02) return check(invalidFieldInCdb(1, 'CMDDT is obsolete', 1));
    if (!evpd) {
      if (page !== 0) return check(invalidFieldInCdb(2, 'page code without EVPD'));
      return { status: ScsiStatus.good, data: cut(standardInquiry(this.identity, present), alloc) };
    }
    const data = vpdPage(page, this.identity, this.limits);
    if (!data || !(SUPPORTED_VPD_PAGES as readonly number[]).includes(page)) return check(invalidFieldInCdb(2, `VPD page 0x${page.toString(16)}`));
    if (!present) data[0] = 0x7f;
    return { status: ScsiStatus.good, data: cut(data, alloc) };
  }

  private requestSense(cdb: Buffer, [key, asc]: [number, readonly [number, number]]): ScsiResult {
    const desc = (cdb[1]! & 0x01) !== 0;
    const data = desc ? descriptorSense(key, asc) : fixedSense(key, asc);
    return { status: ScsiStatus.good, data: cut(data, cdb[4]!) };
  }

  private reportLuns(cdb: Buffer): ScsiResult {
    const select = cdb[2]!;
    const alloc = cdb.readUInt32BE(6);
    if (select > 2 && !(select >= 0x10 && select <= 0x12)) return check(invalidFieldInCdb(2, `SELECT REPORT ${select}`));
    if (alloc < 16) return check(invalidFieldInCdb(6, 'allocation length below 16'));
    const b = Buffer.alloc(16);
    b.writeUInt32BE(8, 0); // one LUN: 0
    return { status: ScsiStatus.good, data: cut(b, alloc) };
  }

  private readCapacity10(cdb: Buffer): ScsiResult {
    const pmi = (cdb[8]! & 0x01) !== 0;
    if (!pmi && cdb.readUInt32BE(2) !== 0) return check(invalidFieldInCdb(2, 'LBA without PMI'));
    const b = Buffer.alloc(8);
    b.writeUInt32BE(Math.min(this.blocks - 1, 0xffffffff), 0);
    b.writeUInt32BE(this.blockSize, 4);
    return { status: ScsiStatus.good, data: b };
  }

  private serviceActionIn(cdb: Buffer): ScsiResult {
    const sa = cdb[1]! & 0x1f;
    const alloc = cdb.readUInt32BE(10);
    if (sa === 0x10) {
      const b = Buffer.alloc(32);
      b.writeBigUInt64BE(BigInt(this.blocks - 1), 0);
      b.writeUInt32BE(this.blockSize, 8);
      b[14] = 0x80 | (this.limits.lbprz ? 0x40 : 0); // LBPME, LBPRZ
      return { status: ScsiStatus.good, data: cut(b, alloc) };
    }
    if (sa === 0x12) {
      // GET LBA STATUS: one descriptor, everything from the LBA to the end reported mapped.
      const lba = lba64(cdb);
      if (lba >= this.blocks) return check(lbaOutOfRange(lba, 0));
      const b = Buffer.alloc(24);
      b.writeUInt32BE(20, 0);
      b.writeBigUInt64BE(BigInt(lba), 8);
      b.writeUInt32BE(Math.min(this.blocks - lba, 0xffffffff), 16);
      b[20] = 0; // mapped
      return { status: ScsiStatus.good, data: cut(b, alloc) };
    }
    return check(invalidFieldInCdb(1, `service action 0x${sa.toString(16)}`, 4));
  }

  private readDefectData(cdb: Buffer, twelve: boolean): ScsiResult {
    const alloc = twelve ? cdb.readUInt32BE(6) : cdb.readUInt16BE(7);
    const format = twelve ? cdb[1]! & 0x1f : cdb[2]! & 0x1f;
    const b = Buffer.alloc(twelve ? 8 : 4);
    b[1] = format & 0x07;
    return { status: ScsiStatus.good, data: cut(b, alloc) };
  }
}

function good(): ScsiResult {
  return GOOD;
}

/** What a command that failed answers: the error as status and sense data. */
function errorResult(op: number, err: unknown): ScsiResult {
  if (err instanceof ReservationConflictError) return { status: ScsiStatus.reservationConflict };
  if (err instanceof ScsiSenseError) return check(err);
  if (err instanceof RangeError) return check(invalidFieldInCdb(0, `CDB too short for opcode 0x${op.toString(16)}`));
  // The volume cannot serve IO right now (replicas down, quorum lost, quiesced too long):
  // BUSY makes initiators (Linux, qemu) retry with backoff instead of failing the IO.
  if (hasErrorCode(err, 'unavailable', 'not_ready', 'timeout')) return { status: ScsiStatus.busy };
  const key = isRead(op) ? Asc.unrecoveredReadError : Asc.writeError;
  return check(new ScsiSenseError(SenseKey.mediumError, key, describeError(err)));
}

/** The CDB byte where a READ/WRITE/VERIFY's TRANSFER LENGTH starts (the sense field pointer). */
function lengthByte(op: number): number {
  if (op === Op.read6 || op === Op.write6) return 4;
  if (op === Op.read12 || op === Op.write12 || op === Op.writeVerify12 || op === Op.verify12) return 6;
  if (op === Op.read16 || op === Op.write16 || op === Op.writeVerify16 || op === Op.verify16) return 10;
  return 7;
}

/** A device that answered a read with fewer (or more) bytes than asked: never GOOD with them. */
function shortRead(asked: number, got: number): CstorError {
  return new CstorError('protocol', `device read of ${asked} bytes returned ${got}`);
}

function lba64(cdb: Buffer): number {
  const v = cdb.readBigUInt64BE(2);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

function cut(b: Buffer, alloc: number): Buffer {
  return b.length > alloc ? b.subarray(0, alloc) : b;
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

const readOps: ReadonlySet<number> = new Set([Op.read6, Op.read10, Op.read12, Op.read16, Op.verify10, Op.verify12, Op.verify16, Op.prefetch10, Op.prefetch16]);
const writeOps: ReadonlySet<number> = new Set([
  Op.write6,
  Op.write10,
  Op.write12,
  Op.write16,
  Op.writeVerify10,
  Op.writeVerify12,
  Op.writeVerify16,
  Op.writeSame10,
  Op.writeSame16,
  Op.unmap,
  Op.compareAndWrite,
  Op.syncCache10,
  Op.syncCache16,
  Op.modeSelect6,
  Op.modeSelect10,
]);

/** How a command touches the medium, for persistent reservation conflicts. */
function accessKind(op: number): AccessKind {
  return readOps.has(op) ? 'read' : writeOps.has(op) ? 'write' : 'other';
}

function isRead(op: number): boolean {
  return op === Op.read6 || op === Op.read10 || op === Op.read12 || op === Op.read16;
}
