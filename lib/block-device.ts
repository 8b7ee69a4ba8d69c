// The one narrow block-IO interface of the data path. The iSCSI frontend calls it, the
// replication engine implements it over replicas, each replica implements it over its layer
// chain; so every layer is testable over a fake of the one below.
import { CstorError } from './errors.ts';

export interface BlockDevice {
  /** Size in bytes; a multiple of blockSize. */
  readonly size: number;
  /** Logical block size in bytes (512 or 4096). */
  readonly blockSize: number;
  /** Reads `length` bytes at `offset`; never-written ranges read as zeros. */
  readAt(offset: number, length: number): Promise<Buffer>;
  writeAt(offset: number, data: Buffer): Promise<void>;
  /** Deallocates a range: it then reads as zeros (thin provisioning). */
  unmap(offset: number, length: number): Promise<void>;
  /** Resolves once every write acknowledged before the call is durable. */
  sync(): Promise<void>;
}

/** Whether [offset, offset+length) lies inside a device of `size` bytes, block aligned. */
export function inRange(dev: Pick<BlockDevice, 'size' | 'blockSize'>, offset: number, length: number): boolean {
  return (
    Number.isSafeInteger(offset) &&
    Number.isSafeInteger(length) &&
    offset >= 0 &&
    length >= 0 &&
    offset + length <= dev.size &&
    offset % dev.blockSize === 0 &&
    length % dev.blockSize === 0
  );
}

/** Throws `invalid` unless [offset, offset+length) lies inside a device of `size` bytes, block aligned. */
export function checkRange(dev: Pick<BlockDevice, 'size' | 'blockSize'>, offset: number, length: number): void {
  if (!inRange(dev, offset, length)) {
    throw new CstorError(
      'invalid',
      `range offset=${offset} length=${length} is not block-aligned (${dev.blockSize}) inside a device of ${dev.size} bytes`,
    );
  }
}

/** A BlockDevice in memory, allocated lazily per 1 MiB chunk: for unit tests and fakes. */
export class MemoryBlockDevice implements BlockDevice {
  private readonly chunks = new Map<number, Buffer>();
  private static readonly chunkSize = 1 << 20;

  constructor(
    readonly size: number,
    readonly blockSize = 512,
  ) {}

  async readAt(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    const out = Buffer.alloc(length);
    this.each(offset, length, (chunk, chunkOff, outOff, n) => {
      chunk?.copy(out, outOff, chunkOff, chunkOff + n);
    });
    return out;
  }

  async writeAt(offset: number, data: Buffer): Promise<void> {
    checkRange(this, offset, data.length);
    this.each(offset, data.length, (_chunk, chunkOff, dataOff, n, index) => {
      let chunk = this.chunks.get(index);
      if (!chunk) {
        chunk = Buffer.alloc(MemoryBlockDevice.chunkSize);
        this.chunks.set(index, chunk);
      }
      data.copy(chunk, chunkOff, dataOff, dataOff + n);
    });
  }

  async unmap(offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    this.each(offset, length, (chunk, chunkOff, _o, n) => {
      chunk?.fill(0, chunkOff, chunkOff + n);
    });
  }

  async sync(): Promise<void> {}

  private each(
    offset: number,
    length: number,
    fn: (chunk: Buffer | undefined, chunkOff: number, bufOff: number, n: number, index: number) => void,
  ): void {
    const cs = MemoryBlockDevice.chunkSize;
    let done = 0;
    while (done < length) {
      const pos = offset + done;
      const index = Math.floor(pos / cs);
      const chunkOff = pos % cs;
      const n = Math.min(cs - chunkOff, length - done);
      fn(this.chunks.get(index), chunkOff, done, n, index);
      done += n;
    }
  }
}
