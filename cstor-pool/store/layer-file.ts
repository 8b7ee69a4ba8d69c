// One layer on disk: `<id>.data`, a sparse file holding block b at offset b*blockSize, and
// `<id>.map`, its persisted allocation bitmap.
//
// Map file layout (little-endian):
//   [0, 64) and [512, 576): two header slots, written alternately (the valid one with the highest
//     generation wins, so a torn header write never loses the other):
//       0  magic "CSTRLYR1" (8 bytes)
//       8  generation   u64
//       16 blockSize    u32
//       20 blocks       u32
//       24 checkpointedIoSeq u64 (meaningful for a head: highest io_seq made durable by sync)
//       32 maxIoSeq     u64 (highest io_seq of any block in the persisted bitmap, >= checkpoint)
//       40 crc32 of bytes [0, 40) u32
//   [1024, 1024+R): the seal record, zero until this layer, a head, is sealed as a snapshot by the
//     two-step snapshot (see SealRecord below); R <= 299, inside one 512-byte sector
//   [4096, 4096+B): allocated bitset (bit b: block b holds data in this layer)
//   [4096+B, 4096+2B): zero bitset (bit b: block b reads zeros here, hiding lower layers)
//   B = ceil(blocks/32)*4 rounded up to 4096. A block never has both bits set.
// New maps are ftruncated to full size, so empty bitsets are holes on disk. Files never change
// size after creation, so fdatasync (no journal commit for a timestamp) is enough after a write.
//
// Seal record layout (little-endian), at offset 1024 of the map file:
//   0  magic "CSTRSEAL" (8 bytes)
//   8  successor layer id (8 bytes: the 16 hex digits of the id, as bytes)
//   16 snapshot ioSeq u64
//   24 snapshot createdAt u64 (ms since the epoch)
//   32 checkpoint u64 (io_seq made durable by the seal: everything at or below it is in the chain)
//   40 name length u16 (1..253), then the snapshot name (ASCII)
//   42+n crc32 of bytes [0, 42+n) u32
import { randomBytes } from 'node:crypto';
import fsCb from 'node:fs';
import fs, { type FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { CstorError } from '../../lib/errors.ts';
import { bitsetWords, countBits } from './bitset.ts';
import { inlineReads, inlineWrites } from './inline-io.ts';
import { childPath } from './names.ts';

const magic = Buffer.from('CSTRLYR1', 'latin1');
const headerBytes = 44;
const slotOffsets = [0, 512] as const;
export const mapPageBytes = 4096;
/** Blocks covered by one 4 KiB page of a bitset. */
export const blocksPerMapPage = mapPageBytes * 8;
const bitsOffset = 4096;
const sealMagic = Buffer.from('CSTRSEAL', 'latin1');
const sealOffset = 1024;
const sealMaxBytes = 512;

/**
 * Written into a head's map file when a snapshot seals it: "this layer is snapshot `name`, and the
 * chain goes on with head `successor`". The commit point of a snapshot (one pwrite + fdatasync in a
 * block allocated at creation, so no filesystem journal commit): the pool follows seal records from
 * the head its chain file names, so the chain file itself is rewritten later, off the snapshot's
 * critical path (docs/pool-storage.md, "Two-step snapshot").
 */
export interface SealRecord {
  name: string;
  ioSeq: number;
  createdAt: number;
  successor: string;
  checkpoint: number;
}

export function encodeSeal(seal: SealRecord): Buffer {
  const name = Buffer.from(seal.name, 'latin1');
  if (name.length < 1 || name.length > 253 || !isLayerId(seal.successor)) throw new CstorError('internal', 'bad seal record');
  const b = Buffer.alloc(42 + name.length + 4);
  sealMagic.copy(b, 0);
  Buffer.from(seal.successor, 'hex').copy(b, 8);
  b.writeBigUInt64LE(BigInt(seal.ioSeq), 16);
  b.writeBigUInt64LE(BigInt(seal.createdAt), 24);
  b.writeBigUInt64LE(BigInt(seal.checkpoint), 32);
  b.writeUInt16LE(name.length, 40);
  name.copy(b, 42);
  b.writeUInt32LE(crc32(b.subarray(0, 42 + name.length)), 42 + name.length);
  return b;
}

/** The seal record in `b` (bytes from offset 1024 of a map file), or null when there is none or it is torn. */
export function decodeSeal(b: Buffer): SealRecord | null {
  if (b.length < 46 || !b.subarray(0, 8).equals(sealMagic)) return null;
  const n = b.readUInt16LE(40);
  if (n < 1 || n > 253 || b.length < 42 + n + 4) return null;
  if (b.readUInt32LE(42 + n) !== crc32(b.subarray(0, 42 + n))) return null;
  const nums = [16, 24, 32].map((o) => Number(b.readBigUInt64LE(o)));
  if (!nums.every((x) => Number.isSafeInteger(x))) return null;
  return {
    successor: b.subarray(8, 16).toString('hex'),
    ioSeq: nums[0]!,
    createdAt: nums[1]!,
    checkpoint: nums[2]!,
    name: b.subarray(42, 42 + n).toString('latin1'),
  };
}

/**
 * Removes layer `id`'s seal record durably (zeros + fdatasync): after a seal whose fdatasync failed,
 * so that the layer can go on as the head and a later open does not follow a stale seal.
 */
export async function clearSeal(dir: string, id: string): Promise<void> {
  const fh = await fs.open(childPath(dir, `${id}.map`), 'r+');
  try {
    await fh.write(Buffer.alloc(sealMaxBytes), 0, sealMaxBytes, sealOffset);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/** Reads layer `id`'s seal record (null: none, or no such layer). */
export async function readSeal(dir: string, id: string): Promise<SealRecord | null> {
  let fh: FileHandle;
  try {
    fh = await fs.open(childPath(dir, `${id}.map`), 'r');
  } catch {
    return null;
  }
  try {
    const buf = Buffer.alloc(sealMaxBytes);
    const { bytesRead } = await fh.read(buf, 0, sealMaxBytes, sealOffset);
    return decodeSeal(buf.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

export interface LayerBits {
  alloc: Uint32Array;
  zero: Uint32Array;
}

export function newLayerId(): string {
  return randomBytes(8).toString('hex');
}

export function isLayerId(id: string): boolean {
  return /^[0-9a-f]{16}$/.test(id);
}


function bitsetBytes(blocks: number): number {
  const raw = bitsetWords(blocks) * 4;
  return Math.max(mapPageBytes, Math.ceil(raw / mapPageBytes) * mapPageBytes);
}

interface Header {
  gen: number;
  blockSize: number;
  blocks: number;
  checkpoint: number;
  maxSeq: number;
}

function encodeHeader(h: Header): Buffer {
  const b = Buffer.alloc(headerBytes);
  magic.copy(b, 0);
  b.writeBigUInt64LE(BigInt(h.gen), 8);
  b.writeUInt32LE(h.blockSize, 16);
  b.writeUInt32LE(h.blocks, 20);
  b.writeBigUInt64LE(BigInt(h.checkpoint), 24);
  b.writeBigUInt64LE(BigInt(h.maxSeq), 32);
  b.writeUInt32LE(crc32(b.subarray(0, 40)), 40);
  return b;
}

function decodeHeader(b: Buffer): Header | null {
  if (b.length < headerBytes || !b.subarray(0, 8).equals(magic)) return null;
  if (b.readUInt32LE(40) !== crc32(b.subarray(0, 40))) return null;
  return {
    gen: Number(b.readBigUInt64LE(8)),
    blockSize: b.readUInt32LE(16),
    blocks: b.readUInt32LE(20),
    checkpoint: Number(b.readBigUInt64LE(24)),
    maxSeq: Number(b.readBigUInt64LE(32)),
  };
}

/**
 * Inline data writes (`writeNow`) are issued in pieces of at most this many bytes. Linux 6.x ext4
 * keeps what one write() brings into the page cache as one large folio (up to the write's size),
 * and a later 4 KiB write into a folio costs time linear in the folio's size (its buffer heads are
 * walked): ~29 µs into a 1 MiB folio against ~2.5 µs into a 4 KiB one and ~10 µs into a 256 KiB
 * one, here. Pieces of 256 KiB cost a 1 MiB write 3 more syscalls (~8-30 µs of ~120-210 µs).
 * The thread-pool `write` does not split (each piece would be another round trip to a worker).
 */
export const writeChunkBytes = 256 * 1024;

export class LayerFile {
  private data: FileHandle | null = null;
  /** Reads in flight on the data file's fd (close waits for them: they bypass FileHandle's refs). */
  private readsInFlight = 0;
  private readonly drainWaiters: (() => void)[] = [];
  private opening: Promise<FileHandle> | null = null;
  private map: FileHandle | null = null;
  private isClosed = false;
  private gen: number;
  readonly bitsetBytes: number;

  private constructor(
    readonly dir: string,
    readonly id: string,
    readonly blockSize: number,
    readonly blocks: number,
    header: Header,
  ) {
    this.gen = header.gen;
    this.checkpoint = header.checkpoint;
    this.maxSeq = header.maxSeq;
    this.bitsetBytes = bitsetBytes(blocks);
  }

  /** Checkpoint stored in the header (see the layout above). */
  checkpoint: number;
  /** Highest io_seq of a block in the persisted bitmap (see the layout above). */
  maxSeq: number;

  get dataPath(): string {
    return childPath(this.dir, `${this.id}.data`);
  }
  get mapPath(): string {
    return childPath(this.dir, `${this.id}.map`);
  }
  get words(): number {
    return this.bitsetBytes / 4;
  }

  /** Creates both files (the caller fsyncs the directory before referencing the layer). */
  static async create(options: {
    dir: string;
    id?: string;
    blockSize: number;
    blocks: number;
    checkpoint?: number;
  }): Promise<LayerFile> {
    const id = options.id ?? newLayerId();
    const checkpoint = options.checkpoint ?? 0;
    const header: Header = { gen: 1, blockSize: options.blockSize, blocks: options.blocks, checkpoint, maxSeq: checkpoint };
    const layer = new LayerFile(options.dir, id, options.blockSize, options.blocks, header);
    const data = await fs.open(layer.dataPath, 'wx+');
    layer.data = data;
    await data.truncate(options.blocks * options.blockSize);
    const map = await fs.open(layer.mapPath, 'wx+');
    layer.map = map;
    await map.truncate(bitsOffset + 2 * layer.bitsetBytes);
    await map.write(encodeHeader(header), 0, headerBytes, slotOffsets[1]);
    await map.sync();
    return layer;
  }

  static async open(dir: string, id: string): Promise<LayerFile> {
    const mapPath = childPath(dir, `${id}.map`);
    let map: FileHandle;
    try {
      map = await fs.open(mapPath, 'r+');
    } catch (err) {
      throw new CstorError('io', `layer ${id}: cannot open its map file`, { cause: err });
    }
    try {
      const buf = Buffer.alloc(1024);
      await map.read(buf, 0, 1024, 0);
      const headers = slotOffsets
        .map((off) => decodeHeader(buf.subarray(off, off + headerBytes)))
        .filter((h): h is Header => h !== null);
      headers.sort((a, b) => b.gen - a.gen);
      const header = headers[0];
      if (!header) throw new CstorError('io', `layer ${id}: map file has no valid header`);
      const layer = new LayerFile(dir, id, header.blockSize, header.blocks, header);
      layer.map = map;
      return layer;
    } catch (err) {
      await map.close();
      throw err;
    }
  }

  private async dataHandle(): Promise<FileHandle> {
    if (this.data) return this.data;
    if (this.isClosed) throw new CstorError('aborted', `layer ${this.id} is closed`);
    // One open at a time: concurrent reads of a layer must not each open (and leak) a handle.
    this.opening ??= fs.open(this.dataPath, 'r+').then(
      (fh) => {
        this.data = fh;
        this.opening = null;
        return fh;
      },
      (err: unknown) => {
        this.opening = null;
        throw new CstorError('io', `layer ${this.id}: cannot open its data file`, { cause: err });
      },
    );
    return this.opening;
  }

  private mapHandle(): FileHandle {
    if (!this.map) throw new CstorError('internal', `layer ${this.id} is closed`);
    return this.map;
  }

  /**
   * Reads `length` bytes at `position` into `buf[offset..]`; past the end of file reads zeros.
   * Once the data file is open this is one callback `pread` and one promise per call (no async
   * function, no FileHandle.read result object): it is on every read's path.
   */
  read(buf: Buffer, offset: number, length: number, position: number): Promise<void> {
    const fh = this.data;
    if (fh === null) return this.dataHandle().then(() => this.read(buf, offset, length, position));
    if (length === 0) return Promise.resolve();
    const fd = fh.fd;
    this.readsInFlight++;
    return new Promise<void>((resolve, reject) => {
      let done = 0;
      const finish = (err: NodeJS.ErrnoException | null): void => {
        if (--this.readsInFlight === 0 && this.drainWaiters.length > 0) for (const w of this.drainWaiters.splice(0)) w();
        if (err) reject(err);
        else resolve();
      };
      const step = (): void => {
        fsCb.read(fd, buf, offset + done, length - done, position + done, onRead);
      };
      const onRead = (err: NodeJS.ErrnoException | null, bytesRead: number): void => {
        if (err) return finish(err);
        if (bytesRead === 0) {
          buf.fill(0, offset + done, offset + length);
          return finish(null);
        }
        done += bytesRead;
        if (done < length) step();
        else finish(null);
      };
      step();
    });
  }

  /**
   * The hot path's read (a replica READ): done synchronously on the event loop when the data file
   * is open and the inline-IO policy admits it (inline-io.ts); returns false, having done nothing,
   * otherwise (then use `read`). Past the end of file reads zeros. Throws the syscall's error.
   */
  readNow(buf: Buffer, offset: number, length: number, position: number): boolean {
    const fh = this.data;
    if (fh === null) return false;
    const t0 = performance.now();
    if (!inlineReads.admits(length, t0)) return false;
    const fd = fh.fd;
    let done = 0;
    try {
      while (done < length) {
        const n = fsCb.readSync(fd, buf, offset + done, length - done, position + done);
        if (n === 0) {
          buf.fill(0, offset + done, offset + length);
          break;
        }
        done += n;
      }
    } finally {
      const t1 = performance.now();
      inlineReads.record(length, t1 - t0, t1);
    }
    return true;
  }

  /**
   * The hot path's write (a replica WRITE): done synchronously on the event loop when the data
   * file is open and the inline-IO policy admits it (inline-io.ts); returns false, having done
   * nothing, otherwise (then use `write`). Throws the syscall's error.
   */
  writeNow(buf: Buffer, offset: number, length: number, position: number): boolean {
    const fh = this.data;
    if (fh === null) return false;
    const t0 = performance.now();
    if (!inlineWrites.admits(length, t0)) return false;
    const fd = fh.fd;
    let done = 0;
    try {
      while (done < length) done += fsCb.writeSync(fd, buf, offset + done, Math.min(length - done, writeChunkBytes), position + done);
    } finally {
      const t1 = performance.now();
      inlineWrites.record(length, t1 - t0, t1);
    }
    return true;
  }

  async write(buf: Buffer, offset: number, length: number, position: number): Promise<void> {
    const fh = await this.dataHandle();
    let done = 0;
    while (done < length) {
      const { bytesWritten } = await fh.write(buf, offset + done, length - done, position + done);
      done += bytesWritten;
    }
  }

  async syncData(): Promise<void> {
    await (await this.dataHandle()).datasync();
  }

  /** Writes the seal record (see SealRecord) and fdatasyncs: the commit point of a snapshot. */
  async writeSeal(seal: SealRecord): Promise<void> {
    const map = this.mapHandle();
    const b = encodeSeal(seal);
    await map.write(b, 0, b.length, sealOffset);
    await map.datasync();
  }

  async loadBits(): Promise<LayerBits> {
    const alloc = new Uint32Array(this.words);
    const zero = new Uint32Array(this.words);
    const map = this.mapHandle();
    await readFully(map, Buffer.from(alloc.buffer), bitsOffset);
    await readFully(map, Buffer.from(zero.buffer), bitsOffset + this.bitsetBytes);
    return { alloc, zero };
  }

  /**
   * A head's dirty state made durable, the checkpoint aside: its data (if `dataDirty`), then the
   * bitmap `pages`. The header's max io_seq is raised to `maxSeq` before the pages are written,
   * alongside the data's fdatasync: a reload gives every head block that io_seq, so it must bound
   * every block the persisted bitmap names (or readHeadSince would skip them after a crash).
   */
  async persistDirty(dataDirty: boolean, pages: ReadonlyMap<number, { alloc: Buffer; zero: Buffer }>, maxSeq: number): Promise<void> {
    const raise = pages.size > 0 && maxSeq > this.maxSeq;
    await Promise.all([dataDirty ? this.syncData() : null, raise ? this.writeCheckpoint(this.checkpoint, maxSeq) : null]);
    await this.writePages(pages);
  }

  /**
   * Writes the given 4 KiB pages of both bitsets (copies taken by the caller) and fsyncs (nothing
   * when there are none).
   *
   * A crash may stop between any two page writes, and a block's state spans two pages (alloc
   * wins over zero: data D = 1/x, zero marker Z = 0/1, nothing N = 0/0, which reads the layers
   * below). Every state seen in between must be the block's old or new one: Z→D must set alloc
   * before it clears zero, and D→Z must set zero before it clears alloc. So bits are only ever
   * set before any is cleared: alloc as (on disk | new), then zero, then (if some alloc bit
   * goes) alloc as it is to be; an fdatasync orders a clearing write after the writes before it,
   * for power loss (the common case, blocks only gaining data, needs just the final one). Each
   * page write is one page-aligned pwrite, which a kill -9 does not tear.
   */
  async writePages(pages: ReadonlyMap<number, { alloc: Buffer; zero: Buffer }>): Promise<void> {
    if (pages.size === 0) return;
    const map = this.mapHandle();
    const alloc = Buffer.alloc(mapPageBytes);
    const zero = Buffer.alloc(mapPageBytes);
    for (const [page, p] of pages) {
      const allocAt = bitsOffset + page * mapPageBytes;
      const zeroAt = bitsOffset + this.bitsetBytes + page * mapPageBytes;
      const a = alloc.subarray(0, p.alloc.length);
      const z = zero.subarray(0, p.zero.length);
      await readFully(map, a, allocAt);
      await readFully(map, z, zeroAt);
      let allocClears = false;
      let zeroClears = false;
      for (let i = 0; i < a.length; i++) {
        if ((a[i]! & ~p.alloc[i]!) !== 0) allocClears = true;
        a[i] = a[i]! | p.alloc[i]!;
      }
      for (let i = 0; i < z.length; i++) if ((z[i]! & ~p.zero[i]!) !== 0) zeroClears = true;
      // (Without alloc clears, `a` now equals the new alloc page: one write of it suffices.)
      await map.write(a, 0, a.length, allocAt);
      if (zeroClears) await map.datasync();
      await map.write(p.zero, 0, p.zero.length, zeroAt);
      if (allocClears) {
        await map.datasync();
        await map.write(p.alloc, 0, p.alloc.length, allocAt);
      }
    }
    await map.datasync();
  }

  /** Writes whole bitsets and fsyncs. */
  async writeBits(bits: LayerBits): Promise<void> {
    const map = this.mapHandle();
    await map.write(Buffer.from(bits.alloc.buffer, 0, this.bitsetBytes), 0, this.bitsetBytes, bitsOffset);
    await map.write(Buffer.from(bits.zero.buffer, 0, this.bitsetBytes), 0, this.bitsetBytes, bitsOffset + this.bitsetBytes);
    await map.datasync();
  }

  /** Persists a new checkpoint (and max io_seq) in the next header slot and fsyncs. */
  async writeCheckpoint(checkpoint: number, maxSeq: number): Promise<void> {
    const gen = this.gen + 1;
    const map = this.mapHandle();
    const header: Header = { gen, blockSize: this.blockSize, blocks: this.blocks, checkpoint, maxSeq: Math.max(maxSeq, checkpoint) };
    await map.write(encodeHeader(header), 0, headerBytes, slotOffsets[gen % 2]);
    await map.datasync();
    this.gen = gen;
    this.checkpoint = checkpoint;
    this.maxSeq = header.maxSeq;
  }

  async close(): Promise<void> {
    this.isClosed = true;
    if (this.opening) await this.opening.catch(() => undefined);
    const handles = [this.data, this.map];
    this.data = null;
    this.map = null;
    if (this.readsInFlight > 0) await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    for (const h of handles) await h?.close();
  }

  async remove(): Promise<void> {
    await this.close();
    await removeLayerFiles(this.dir, this.id);
  }
}

export async function removeLayerFiles(dir: string, id: string): Promise<void> {
  for (const ext of ['data', 'map']) {
    await fs.rm(childPath(dir, `${id}.${ext}`), { force: true });
  }
}

async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) {
      buf.fill(0, done);
      return;
    }
    done += bytesRead;
  }
}

/** Allocated blocks in a layer's map file, read from disk (for space accounting of unloaded replicas). */
export async function countAllocated(layer: LayerFile): Promise<number> {
  const bits = await layer.loadBits();
  return countBits(bits.alloc);
}
