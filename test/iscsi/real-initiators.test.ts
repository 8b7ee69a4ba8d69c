// Real initiators (libiscsi's tools, qemu-io, qemu-img) against a portal started in this process.
import { expect } from 'chai';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MemoryBlockDevice } from '../../lib/block-device.ts';
import { IscsiPortal } from '../../cstor-target/iscsi/portal.ts';
import { FileBlockDevice } from './file-block-device.ts';
import { runTool } from './run-tool.ts';

describe('iSCSI portal with real initiators', function () {
  this.timeout(120_000);
  let portal: IscsiPortal;
  let port = 0;
  let dir = '';
  const mem = new MemoryBlockDevice(64 << 20);
  const big = new MemoryBlockDevice(32 << 20, 4096);
  let file: FileBlockDevice;
  const url = (volume: string, auth = ''): string => `iscsi://${auth}127.0.0.1:${port}/${IscsiPortal.iqnFor(volume)}/0`;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'iscsi-test-'));
    file = await FileBlockDevice.open(path.join(dir, 'vol2.img'), 32 << 20);
    portal = new IscsiPortal();
    portal.addTarget({ volume: 'vol1', device: mem, serial: 'SERIAL-VOL1' });
    portal.addTarget({ volume: 'vol2', device: file });
    portal.addTarget({ volume: 'vol4k', device: big });
    portal.addTarget({ volume: 'secure', device: new MemoryBlockDevice(8 << 20), chap: { user: 'alice', secret: 'secret-12345' } });
    port = (await portal.listen('127.0.0.1', 0)).port;
  });

  after(async () => {
    await portal.close();
    await file.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('lists every target with its address through iscsi-ls discovery', async () => {
    const r = await runTool('iscsi-ls', [`iscsi://127.0.0.1:${port}`]);
    expect(r.code, r.stderr).to.equal(0);
    for (const v of ['vol1', 'vol2', 'vol4k', 'secure']) {
      expect(r.stdout).to.contain(`Target:${IscsiPortal.iqnFor(v)} Portal:127.0.0.1:${port},1`);
    }
  });

  it('answers standard INQUIRY and the VPD pages through iscsi-inq', async () => {
    const std = await runTool('iscsi-inq', [url('vol1')]);
    expect(std.code, std.stderr).to.equal(0);
    expect(std.stdout).to.contain('Peripheral Device Type:DIRECT_ACCESS');
    expect(std.stdout).to.contain('Vendor:OpenEBS');
    expect(std.stdout).to.contain('CmdQue:1');
    const pages = await runTool('iscsi-inq', ['-e', '1', '-c', '0', url('vol1')]);
    for (const p of ['0x80 UNIT_SERIAL_NUMBER', '0x83 DEVICE_IDENTIFICATION', '0xb0 BLOCK_LIMITS', '0xb1 BLOCK_DEVICE_CHARACTERISTICS', '0xb2 LOGICAL_BLOCK_PROVISIONING']) {
      expect(pages.stdout).to.contain(p);
    }
    const serial = await runTool('iscsi-inq', ['-e', '1', '-c', String(0x80), url('vol1')]);
    expect(serial.stdout).to.contain('Unit Serial Number:[SERIAL-VOL1]');
    const ident = await runTool('iscsi-inq', ['-e', '1', '-c', String(0x83), url('vol1')]);
    expect(ident.stdout).to.contain('Designator Type:(3) NAA');
    expect(ident.stdout).to.contain('Designator:[OpenEBS SERIAL-VOL1]');
    const limits = await runTool('iscsi-inq', ['-e', '1', '-c', String(0xb0), url('vol1')]);
    expect(limits.stdout).to.contain('maximum unmap block descriptor count:256');
    const lbp = await runTool('iscsi-inq', ['-e', '1', '-c', String(0xb2), url('vol1')]);
    expect(lbp.stdout).to.contain('lbpu:1');
    expect(lbp.stdout).to.contain('lbpws:1');
  });

  it('reports the capacity through iscsi-readcapacity16', async () => {
    const r = await runTool('iscsi-readcapacity16', [url('vol1')]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.contain(`RETURNED LOGICAL BLOCK ADDRESS:${(64 << 20) / 512 - 1}`);
    expect(r.stdout).to.contain('LOGICAL BLOCK LENGTH IN BYTES:512');
    expect(r.stdout).to.contain('LBPME:1');
  });

  it('stores what qemu-io writes and reads it back', async () => {
    const r = await runTool('qemu-io', ['-f', 'raw', '-c', 'write -P 0xab 0 1M', '-c', 'read -P 0xab 0 1M', '-c', 'write -P 0x5c 3M 3M', '-c', 'read -P 0x5c 3M 3M', url('vol1')]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.not.contain('Pattern verification failed');
    expect(r.stdout).to.contain('read 1048576/1048576 bytes at offset 0');
    const onDevice = await mem.readAt(0, 1 << 20);
    expect(onDevice.every((b) => b === 0xab)).to.equal(true);
    const second = await mem.readAt(3 << 20, 3 << 20);
    expect(second.every((b) => b === 0x5c)).to.equal(true);
  });

  it('interoperates with CRC32C header digests (qemu-io, header-digest=crc32c)', async () => {
    const opts = `driver=iscsi,transport=tcp,portal=127.0.0.1:${port},target=${IscsiPortal.iqnFor('vol1')},lun=0,header-digest=crc32c`;
    const r = await runTool('qemu-io', ['--image-opts', '-c', 'write -P 0x6d 8M 256k', '-c', 'read -P 0x6d 8M 256k', opts]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.contain('read 262144/262144 bytes at offset 8388608');
    expect(r.stdout).to.not.contain('Pattern verification failed');
    expect((await mem.readAt(8 << 20, 256 << 10)).every((b) => b === 0x6d)).to.equal(true);
  });

  it('serves 4 KiB-block LUNs to qemu (no LBPRZ there: qemu 7.2 asserts on it)', async () => {
    const cap = await runTool('iscsi-readcapacity16', [url('vol4k')]);
    expect(cap.stdout).to.contain('LOGICAL BLOCK LENGTH IN BYTES:4096');
    expect(cap.stdout).to.contain('LBPRZ:0');
    const r = await runTool('qemu-io', ['-f', 'raw', '-c', 'write -P 0x4b 1M 2M', '-c', 'read -P 0x4b 1M 2M', '-c', 'read -P 0 8M 1M', url('vol4k')]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.not.contain('Pattern verification failed');
    expect((await big.readAt(1 << 20, 2 << 20)).every((b) => b === 0x4b)).to.equal(true);
  });

  it('qemu-img convert of the LUN equals the device byte for byte', async () => {
    const pattern = Buffer.alloc(1 << 20);
    for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 7 + (i >> 9)) & 0xff;
    await file.writeAt(5 << 20, pattern);
    await file.writeAt(31 << 20, pattern);
    const out = path.join(dir, 'converted.raw');
    const r = await runTool('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', url('vol2'), out]);
    expect(r.code, r.stderr).to.equal(0);
    const got = await fs.readFile(out);
    const want = await file.readAt(0, file.size);
    expect(got.length).to.equal(want.length);
    expect(got.equals(want)).to.equal(true);
  });

  it('logs in with CHAP when the target has a secret, and refuses a wrong one', async () => {
    const ok = await runTool('iscsi-inq', [url('secure', 'alice%secret-12345@')]);
    expect(ok.code, ok.stderr).to.equal(0);
    expect(ok.stdout).to.contain('Vendor:OpenEBS');
    const bad = await runTool('iscsi-inq', [url('secure', 'alice%wrong@')]);
    expect(bad.code).to.not.equal(0);
    const none = await runTool('iscsi-inq', [url('secure')]);
    expect(none.code).to.not.equal(0);
  });

  it('refuses a login to a target that does not exist', async () => {
    const r = await runTool('iscsi-inq', [url('nope')]);
    expect(r.code).to.not.equal(0);
    expect(r.stderr + r.stdout).to.match(/not.?found|0x0203|Target not found|login/i);
  });

  it('counts IO per target and drops sessions on removeTarget', async () => {
    const info = portal.targetInfo('vol1')!;
    expect(info.stats.writes).to.be.greaterThan(0);
    expect(info.stats.writeBytes).to.be.at.least(4 << 20);
    expect(info.stats.reads).to.be.greaterThan(0);
    await portal.removeTarget('vol2');
    const r = await runTool('iscsi-inq', [url('vol2')]);
    expect(r.code).to.not.equal(0);
    portal.addTarget({ volume: 'vol2', device: file });
  });
});
