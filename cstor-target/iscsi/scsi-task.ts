// The state of one SCSI command on a connection: its data-out collection (immediate data,
// unsolicited Data-Out, R2T-solicited bursts) and its Data-In/R2T sequence numbers.
import type { ScsiCommand } from './pdu/scsi-command.ts';
import { ioBuffers, type Lease } from '../scsi/buffer-pool.ts';

export interface OutstandingR2t {
  readonly ttt: number;
  readonly offset: number;
  readonly length: number;
  received: number;
  nextDataSN: number;
}

const settled = Promise.resolve();

export class ScsiTask {
  readonly itt: number;
  readonly cmd: ScsiCommand;
  /** Data-out collected so far; allocated once data arrives in more than one piece. */
  buffer: Buffer | undefined;
  /** Where `buffer` came from when it is pooled (large writes): given back once the device is done with it. */
  lease: Lease | undefined;
  received = 0;
  /** Unsolicited data allowed (immediate + unsolicited Data-Out), bytes. */
  unsolicitedLimit = 0;
  unsolicitedDone = true;
  unsolicitedDataSN = 0;
  /** Next offset not yet asked for by an R2T. */
  nextR2tOffset = 0;
  r2tSN = 0;
  private r2tMap: Map<number, OutstandingR2t> | undefined;
  aborted = false;
  executing = false;
  private finished = false;
  private donePromise: Promise<void> | undefined;
  private doneResolve: (() => void) | undefined;

  /** `placed`: where the PDU reader already put the immediate data (at offset 0), expectedLength long. */
  constructor(cmd: ScsiCommand, placed?: { buffer: Buffer; lease: Lease | undefined }) {
    this.itt = cmd.itt;
    this.cmd = cmd;
    if (placed && placed.buffer.length === cmd.expectedLength) {
      this.buffer = placed.buffer;
      this.lease = placed.lease;
    }
  }

  /**
   * The data-out buffer's release for ScsiDisk (releaseDataOut), when it is pooled: the lease goes
   * back once the device is done with the data. Never for a task that was aborted (the reader may
   * still be placing a Data-Out into it).
   */
  releaser(): (() => void) | undefined {
    const lease = this.lease;
    if (lease === undefined || this.buffer !== lease.buffer) return undefined;
    return () => {
      if (!this.aborted) lease.release();
    };
  }

  /**
   * Once the command is executing: settles when it has finished (responded or dropped). Made on
   * first ask (an abort, a logout, a close): most commands are never waited on.
   */
  get done(): Promise<void> | undefined {
    if (!this.executing) return undefined;
    if (this.finished) return settled;
    return (this.donePromise ??= new Promise((resolve) => (this.doneResolve = resolve)));
  }

  /** The command has finished: `done` settles. */
  finish(): void {
    this.finished = true;
    this.doneResolve?.();
  }

  /** Outstanding R2Ts by TTT (made on first use: most writes come whole as immediate data). */
  get r2ts(): Map<number, OutstandingR2t> {
    return (this.r2tMap ??= new Map());
  }

  get dataComplete(): boolean {
    return this.received >= this.cmd.expectedLength;
  }

  /** Where the PDU reader may assemble `length` bytes of data-out at `offset` (saves a copy). */
  placement(offset: number, length: number): Buffer {
    return this.ensureBuffer().subarray(offset, offset + length);
  }

  /** Takes a piece of data-out at `offset`: keeps the view when it is all the data there is, else copies it in (unless the reader already placed it there). */
  accept(offset: number, data: Buffer): void {
    const total = this.cmd.expectedLength;
    if (offset === 0 && data.length === total && !this.buffer) {
      this.buffer = data;
    } else {
      const buf = this.ensureBuffer();
      const inPlace = data.buffer === buf.buffer && data.byteOffset === buf.byteOffset + offset;
      if (!inPlace) data.copy(buf, offset);
    }
    this.received += data.length;
  }

  private ensureBuffer(): Buffer {
    const total = this.cmd.expectedLength;
    if (!this.buffer || this.buffer.length !== total) {
      const lease = ioBuffers.acquire(total);
      const b = lease ? lease.buffer : Buffer.allocUnsafe(total);
      if (this.buffer) this.buffer.copy(b, 0, 0, Math.min(this.buffer.length, total));
      this.buffer = b;
      this.lease = lease;
    }
    return this.buffer;
  }
}
