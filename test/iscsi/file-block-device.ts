// A BlockDevice over a regular file (pread/pwrite on one fd through libuv's thread pool), for the
// iSCSI tests and benchmarks: the same backing tgtd and istgt get, so comparisons are fair.
// Raise UV_THREADPOOL_SIZE (default 4) for deep queues: each in-flight IO holds a pool thread.
import fs from 'node:fs';
import { checkRange, type BlockDevice } from '../../lib/block-device.ts';

function pread(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n))));
}

function pwrite(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => fs.write(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n))));
}

export class FileBlockDevice implements BlockDevice {
  private constructor(
    private readonly fd: number,
    readonly size: number,
    readonly blockSize: number,
    /** IOs up to this many bytes use pread/pwrite on the event loop (no thread-pool hop): 0 = never. */
    private readonly inlineMax: number,
  ) {}

  /** Opens (creating, sparse, when missing) a file of at least `size` bytes. */
  static async open(path: string, size: number, blockSize = 512, opts: { inlineMax?: number } = {}): Promise<FileBlockDevice> {
    const fd = await new Promise<number>((resolve, reject) => fs.open(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644, (err, f) => (err ? reject(err) : resolve(f))));
    const st = await fs.promises.stat(path);
    if (st.size < size) await fs.promises.truncate(path, size);
    return new FileBlockDevice(fd, size, blockSize, opts.inlineMax ?? 0);
  }

  async readAt(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    const buf = Buffer.allocUnsafe(length);
    if (length <= this.inlineMax) {
      const n = fs.readSync(this.fd, buf, 0, length, offset);
      if (n < length) buf.fill(0, n);
      return buf;
    }
    let done = 0;
    while (done < length) {
      const n = await pread(this.fd, buf, done, length - done, offset + done);
      if (n === 0) {
        buf.fill(0, done);
        break;
      }
      done += n;
    }
    return buf;
  }

  async writeAt(offset: number, data: Buffer): Promise<void> {
    checkRange(this, offset, data.length);
    if (data.length <= this.inlineMax) {
      for (let done = 0; done < data.length; ) done += fs.writeSync(this.fd, data, done, data.length - done, offset + done);
      return;
    }
    let done = 0;
    while (done < data.length) done += await pwrite(this.fd, data, done, data.length - done, offset + done);
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

  sync(): Promise<void> {
    return new Promise((resolve, reject) => fs.fdatasync(this.fd, (err) => (err ? reject(err) : resolve())));
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => fs.close(this.fd, (err) => (err ? reject(err) : resolve())));
  }
}
