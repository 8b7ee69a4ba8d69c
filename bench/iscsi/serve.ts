// Serves one volume on an iSCSI portal by hand, for poking with iscsi-ls / qemu-io / iscsi-test-cu:
//   node --import tsx bench/iscsi/serve.ts [--port 3260] [--file PATH | --null] [--size-mib 256] [--volume vol1]
// --null serves a device that discards writes and reads zeros without storing anything: with it, a
// run's CPU is the iSCSI and SCSI layers' own (what bench/iscsi/cpu.ts measures).
import { argValue, hasFlag } from '../args.ts';
import { MemoryBlockDevice, checkRange, type BlockDevice } from '../../lib/block-device.ts';
import { createLogger } from '../../lib/logger.ts';
import { IscsiPortal } from '../../cstor-target/iscsi/portal.ts';
import { FileBlockDevice } from '../../test/iscsi/file-block-device.ts';

const port = Number(argValue('port') ?? 3260);
const sizeMiB = Number(argValue('size-mib') ?? 256);
const volume = argValue('volume') ?? 'vol1';
const file = argValue('file');
/** Discards writes; reads are views of one zeroed buffer. Costs (nearly) nothing per IO. */
class NullBlockDevice implements BlockDevice {
  private readonly zeros = Buffer.alloc(32 << 20);
  readonly blockSize = 512;
  constructor(readonly size: number) {}
  readAt(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    return Promise.resolve(this.zeros.subarray(0, length));
  }
  writeAt(offset: number, data: Buffer): Promise<void> {
    checkRange(this, offset, data.length);
    return Promise.resolve();
  }
  unmap(offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    return Promise.resolve();
  }
  sync(): Promise<void> {
    return Promise.resolve();
  }
}

const device: BlockDevice = file
  ? await FileBlockDevice.open(file, sizeMiB << 20, 512, { inlineMax: Number(argValue('inline-max') ?? 0) })
  : hasFlag('null')
    ? new NullBlockDevice(sizeMiB << 20)
    : new MemoryBlockDevice(sizeMiB << 20);
const portal = new IscsiPortal({ logger: createLogger({ component: 'iscsi', format: 'text', level: argValue('log') ?? 'info' }) });
portal.addTarget({ volume, device });
const addr = await portal.listen('127.0.0.1', port);
console.log(`serving iscsi://127.0.0.1:${addr.port}/${IscsiPortal.iqnFor(volume)}/0`);
process.on('SIGINT', () => void portal.close().then(() => process.exit(0)));
process.on('SIGTERM', () => void portal.close().then(() => process.exit(0)));
