// Serves one volume on an iSCSI portal by hand, for poking with iscsi-ls / qemu-io / iscsi-test-cu:
//   node --import tsx bench/iscsi/serve.ts [--port 3260] [--file PATH | --size-mib 256] [--volume vol1]
import { MemoryBlockDevice, type BlockDevice } from '../../lib/block-device.ts';
import { createLogger } from '../../lib/logger.ts';
import { IscsiPortal } from '../../cstor-target/iscsi/portal.ts';
import { FileBlockDevice } from '../../test/iscsi/file-block-device.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const port = Number(arg('port') ?? 3260);
const sizeMiB = Number(arg('size-mib') ?? 256);
const volume = arg('volume') ?? 'vol1';
const file = arg('file');
const device: BlockDevice = file ? await FileBlockDevice.open(file, sizeMiB << 20, 512, { inlineMax: Number(arg('inline-max') ?? 0) }) : new MemoryBlockDevice(sizeMiB << 20);
const portal = new IscsiPortal({ logger: createLogger({ component: 'iscsi', format: 'text', level: arg('log') ?? 'info' }) });
portal.addTarget({ volume, device });
const addr = await portal.listen('127.0.0.1', port);
console.log(`serving iscsi://127.0.0.1:${addr.port}/${IscsiPortal.iqnFor(volume)}/0`);
process.on('SIGINT', () => void portal.close().then(() => process.exit(0)));
process.on('SIGTERM', () => void portal.close().then(() => process.exit(0)));
