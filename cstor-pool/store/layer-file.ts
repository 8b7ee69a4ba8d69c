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
//   [4096, 4096+B): allocated bitset (bit b: block b holds data in this layer)
//   [4096+B, 4096+2B): zero bitset (bit b: block b reads zeros here, hiding lower layers)
//   B = ceil(blocks/32)*4 rounded up to 4096. A block never has both bits set.
// New maps are ftruncated to full size, so empty bitsets are holes on disk.
import { randomBytes } from 'node:crypto';
import fs, { type FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { CstorError } from '../../lib/errors.ts';
import { bitsetWords, countBits } from './bitset.ts';
import { childPath } from './names.ts';

const magic = Buffer.from('CSTRLYR1', 'latin1');
const headerBytes = 44;
const slotOffsets = [0, 512] as const;
export const mapPageBytes = 4096;
/** Blocks covered by one 4 KiB page of a bitset. */
export const blocksPerMapPage = mapPageBytes * 8;
const bitsOffset = 4096;

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

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
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

export class LayerFile {
  private data: FileHandle | null = null;
  private opening: Promise<FileHandle> | null = null;
  private map: FileHandle | null = null;
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

  /** Reads `length` bytes at `position` into `buf[offset..]`; past the end of file reads zeros. */
  async read(buf: Buffer, offset: number, length: number, position: number): Promise<void> {
    const fh = await this.dataHandle();
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(buf, offset + done, length - done, position + done);
      if (bytesRead === 0) {
        buf.fill(0, offset + done, offset + length);
        return;
      }
      done += bytesRead;
    }
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
    await (await this.dataHandle()).sync();
  }

  async loadBits(): Promise<LayerBits> {
    const alloc = new Uint32Array(this.words);
    const zero = new Uint32Array(this.words);
    const map = this.mapHandle();
    await readFully(map, Buffer.from(alloc.buffer), bitsOffset);
    await readFully(map, Buffer.from(zero.buffer), bitsOffset + this.bitsetBytes);
    return { alloc, zero };
  }

  /** Writes the given 4 KiB pages of both bitsets (copies taken by the caller) and fsyncs. */
  async writePages(pages: ReadonlyMap<number, { alloc: Buffer; zero: Buffer }>): Promise<void> {
    const map = this.mapHandle();
    for (const [page, p] of pages) {
      await map.write(p.alloc, 0, p.alloc.length, bitsOffset + page * mapPageBytes);
      await map.write(p.zero, 0, p.zero.length, bitsOffset + this.bitsetBytes + page * mapPageBytes);
    }
    await map.sync();
  }

  /** Writes whole bitsets and fsyncs. */
  async writeBits(bits: LayerBits): Promise<void> {
    const map = this.mapHandle();
    await map.write(Buffer.from(bits.alloc.buffer, 0, this.bitsetBytes), 0, this.bitsetBytes, bitsOffset);
    await map.write(Buffer.from(bits.zero.buffer, 0, this.bitsetBytes), 0, this.bitsetBytes, bitsOffset + this.bitsetBytes);
    await map.sync();
  }

  /** Persists a new checkpoint (and max io_seq) in the next header slot and fsyncs. */
  async writeCheckpoint(checkpoint: number, maxSeq: number): Promise<void> {
    const gen = this.gen + 1;
    const map = this.mapHandle();
    const header: Header = { gen, blockSize: this.blockSize, blocks: this.blocks, checkpoint, maxSeq: Math.max(maxSeq, checkpoint) };
    await map.write(encodeHeader(header), 0, headerBytes, slotOffsets[gen % 2]);
    await map.sync();
    this.gen = gen;
    this.checkpoint = checkpoint;
    this.maxSeq = header.maxSeq;
  }

  async close(): Promise<void> {
    if (this.opening) await this.opening.catch(() => undefined);
    const handles = [this.data, this.map];
    this.data = null;
    this.map = null;
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
