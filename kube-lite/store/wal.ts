// Append-only write-ahead log with group commit.
//
// File grammar (text, one record a line):  <crc32 of json, 8 lowercase hex> <space> <json> <\n>
// A record is acknowledged only after the batch holding it is on disk: the file is opened with
// O_DSYNC, so each batch is one write() that returns once the data is durable (an fdatasync
// without a second thread-pool round trip); writes
// that arrive while a batch is syncing form the next batch, so N concurrent writers share one
// fsync. Reading stops at the first line that is torn or fails its checksum (a crash mid-write).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { fsyncDir } from '../../lib/fsync-dir.ts';
import { CstorError } from '../../lib/errors.ts';

interface PendingRecord {
  kind: 'record';
  buf: Buffer;
  resolve: () => void;
  reject: (err: Error) => void;
}

interface PendingRotate {
  kind: 'rotate';
  path: string;
  resolve: () => void;
  reject: (err: Error) => void;
}

type Pending = PendingRecord | PendingRotate;

export function encodeRecord(json: string): Buffer {
  const body = Buffer.from(json, 'utf8');
  const crc = crc32(body).toString(16).padStart(8, '0');
  return Buffer.concat([Buffer.from(`${crc} `, 'latin1'), body, Buffer.from('\n', 'latin1')]);
}

export interface ReadResult {
  records: unknown[];
  /** True when the file ended in a torn or corrupt record (ignored). */
  torn: boolean;
}

/** Reads every intact record of one WAL file. */
export function readWalFile(file: string): ReadResult {
  const data = fs.readFileSync(file);
  const records: unknown[] = [];
  let pos = 0;
  while (pos < data.length) {
    const nl = data.indexOf(0x0a, pos);
    if (nl < 0) return { records, torn: true };
    const line = data.subarray(pos, nl);
    pos = nl + 1;
    if (line.length < 10 || line[8] !== 0x20) return { records, torn: true };
    const crc = line.subarray(0, 8).toString('latin1');
    const body = line.subarray(9);
    if (crc32(body).toString(16).padStart(8, '0') !== crc) return { records, torn: true };
    try {
      records.push(JSON.parse(body.toString('utf8')));
    } catch {
      return { records, torn: true };
    }
  }
  return { records, torn: false };
}

/** Append, create, and O_DSYNC: a write returns once its data is durable. */
const walFlags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_APPEND | fs.constants.O_DSYNC;

export class Wal {
  private fh: fsp.FileHandle;
  private currentPath: string;
  private pending: Pending[] = [];
  private flushing: Promise<void> | null = null;
  private failed: Error | null = null;
  private closed = false;
  /** Batches and records written so far (for the bench and logs). */
  readonly stats = { batches: 0, records: 0, bytes: 0 };

  private constructor(fh: fsp.FileHandle, file: string) {
    this.fh = fh;
    this.currentPath = file;
  }

  static async open(file: string): Promise<Wal> {
    const fh = await fsp.open(file, walFlags, 0o644);
    await fsyncDir(path.dirname(file));
    return new Wal(fh, file);
  }

  get path(): string {
    return this.currentPath;
  }

  /** Appends one record; resolves once it is on disk. */
  append(json: string): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.closed) return Promise.reject(new CstorError('aborted', 'write-ahead log is closed'));
    return new Promise((resolve, reject) => {
      this.pending.push({ kind: 'record', buf: encodeRecord(json), resolve, reject });
      this.schedule();
    });
  }

  /** Records appended before this call go to the current file, later ones to `file`. */
  rotate(file: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ kind: 'rotate', path: file, resolve, reject });
      this.schedule();
    });
  }

  /** Waits for everything appended so far to be durable, then closes the file. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.flushing) await this.flushing;
    await this.fh.close().catch(() => {});
  }

  private schedule(): void {
    if (!this.flushing) this.flushing = this.flushLoop().finally(() => (this.flushing = null));
  }

  private async flushLoop(): Promise<void> {
    while (this.pending.length > 0) {
      const rotateAt = this.pending.findIndex((p) => p.kind === 'rotate');
      const batch = (rotateAt < 0 ? this.pending.splice(0) : this.pending.splice(0, rotateAt)) as PendingRecord[];
      if (batch.length > 0) {
        try {
          const buf = batch.length === 1 ? batch[0]!.buf : Buffer.concat(batch.map((b) => b.buf));
          await this.writeAll(buf);
          this.stats.batches++;
          this.stats.records += batch.length;
          this.stats.bytes += buf.length;
        } catch (err) {
          this.fail(new CstorError('io', `write-ahead log ${this.currentPath}: ${(err as Error).message}`, { cause: err }), batch);
          return;
        }
        for (const b of batch) b.resolve();
      }
      const head = this.pending[0];
      if (head?.kind === 'rotate') {
        this.pending.shift();
        try {
          const next = await fsp.open(head.path, walFlags, 0o644);
          await fsyncDir(path.dirname(head.path));
          await this.fh.close();
          this.fh = next;
          this.currentPath = head.path;
          head.resolve();
        } catch (err) {
          head.reject(err as Error);
        }
      }
    }
  }

  /**
   * write() may write fewer bytes than asked (a nearly full disk): the rest is written before the
   * batch is acknowledged. A write that makes no progress fails the log (its torn tail is ignored
   * when the log is read).
   */
  private async writeAll(buf: Buffer): Promise<void> {
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await this.fh.write(buf.subarray(off));
      if (bytesWritten <= 0) throw new CstorError('io', `wrote 0 of ${buf.length - off} bytes`);
      off += bytesWritten;
    }
  }

  private fail(err: Error, batch: PendingRecord[]): void {
    this.failed = err;
    for (const b of batch) b.reject(err);
    for (const p of this.pending.splice(0)) p.reject(err);
  }
}
