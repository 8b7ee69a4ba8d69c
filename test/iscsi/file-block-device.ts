// A BlockDevice over a regular file (pread/pwrite through one FileHandle), for the iSCSI tests and
// benchmarks: the same backing tgtd and istgt get, so comparisons are fair.
import fs from 'node:fs/promises';
import { checkRange, type BlockDevice } from '../../lib/block-device.ts';

export class FileBlockDevice implements BlockDevice {
  private constructor(
    private readonly fh: fs.FileHandle,
    readonly size: number,
    readonly blockSize: number,
  ) {}

  /** Opens (creating, sparse, when missing) a file of `size` bytes. */
  static async open(path: string, size: number, blockSize = 512): Promise<FileBlockDevice> {
    const fh = await fs.open(path, 'a+').then(async (h) => {
      await h.close();
      return fs.open(path, 'r+');
    });
    const st = await fh.stat();
    if (st.size < size) await fh.truncate(size);
    return new FileBlockDevice(fh, size, blockSize);
  }

  async readAt(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.fh.read(buf, done, length - done, offset + done);
      if (bytesRead === 0) {
        buf.fill(0, done);
        break;
      }
      done += bytesRead;
    }
    return buf;
  }

  async writeAt(offset: number, data: Buffer): Promise<void> {
    checkRange(this, offset, data.length);
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, offset + done);
      done += bytesWritten;
    }
  }

  async unmap(offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    // Zero-fill (portable); a real pool punches holes.
    const chunk = Buffer.alloc(Math.min(length, 1 << 20));
    for (let done = 0; done < length; ) {
      const n = Math.min(chunk.length, length - done);
      await this.writeAt(offset + done, chunk.subarray(0, n));
      done += n;
    }
  }

  async sync(): Promise<void> {
    await this.fh.datasync();
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
