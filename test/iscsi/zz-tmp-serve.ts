import { MemoryBlockDevice } from '/work/main/lib/block-device.ts';
import { IscsiPortal } from '/work/main/cstor-target/iscsi/portal.ts';
const p = new IscsiPortal();
const d = new MemoryBlockDevice(64 << 20, Number(process.argv[2] ?? 4096));
await d.writeAt(0, Buffer.alloc(1 << 20, 0xa1));
p.addTarget({ volume: 'vol1', device: d });
const a = await p.listen('127.0.0.1', 13267);
console.log('serving', a.port);
