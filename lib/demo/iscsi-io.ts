// Data over iSCSI for the demo, the end-to-end test and the bench: qemu-io (qemu-utils with
// qemu-block-extra's libiscsi driver) against a PV's spec.iscsi portal and IQN. A tool that is
// missing is an `unavailable` error naming it, never a silent skip.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CstorError } from '../errors.ts';
import type { IscsiVolumeSource, PersistentVolume } from '../kube/types/core.ts';

const run = promisify(execFile);

/** The block size records are padded to (one SCSI block). */
export const recordBytes = 512;

/** iscsi://portal/iqn/lun for a PV's spec.iscsi. */
export function iscsiUrl(source: IscsiVolumeSource): string {
  return `iscsi://${source.targetPortal}/${source.iqn}/${source.lun}`;
}

export function pvIscsiUrl(pv: PersistentVolume): string {
  const source = pv.spec.iscsi;
  if (!source) throw new CstorError('invalid', `PersistentVolume ${pv.metadata.name ?? '?'} has no spec.iscsi`);
  return iscsiUrl(source);
}

async function qemuIo(url: string, commands: string[], timeoutMs = 60_000): Promise<string> {
  const args = ['-f', 'raw'];
  for (const c of commands) args.push('-c', c);
  args.push(url);
  try {
    const { stdout, stderr } = await run('qemu-io', args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
    return stdout + stderr;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new CstorError('unavailable', 'qemu-io is not installed (Debian: qemu-utils qemu-block-extra)', { cause: err });
    throw new CstorError('io', `qemu-io ${commands.join('; ')} on ${url} failed: ${(e.stderr ?? '').trim() || e.message}`, { cause: err });
  }
}

/** Fails when qemu-io reported a failed command (it exits 0 for a failed pattern check). */
function checkOutput(out: string, what: string): void {
  const bad = out.split('\n').find((l) => !/^[0-9a-f]{8}:/.test(l) && /failed|error|Pattern verification/i.test(l));
  if (bad) throw new CstorError('io', `${what}: ${bad.trim()}`);
}

export interface PatternRange {
  /** One byte, 0..255. */
  pattern: number;
  offset: number;
  length: number;
}

export async function writePattern(url: string, range: PatternRange): Promise<void> {
  const out = await qemuIo(url, [`write -P ${range.pattern} ${range.offset} ${range.length}`]);
  checkOutput(out, `write of pattern 0x${range.pattern.toString(16)} at ${range.offset} on ${url}`);
}

/** True when every byte of the range is the pattern. */
export async function hasPattern(url: string, range: PatternRange): Promise<boolean> {
  const out = await qemuIo(url, [`read -P ${range.pattern} ${range.offset} ${range.length}`]);
  if (/Pattern verification failed/.test(out)) return false;
  checkOutput(out, `read at ${range.offset} on ${url}`);
  return true;
}

/** Writes a text record (at most 511 bytes, NUL-padded to one block) at `offset`. */
export async function writeRecord(url: string, text: string, offset = 0): Promise<void> {
  const bytes = Buffer.alloc(recordBytes);
  const body = Buffer.from(text, 'utf8');
  if (body.length >= recordBytes) throw new CstorError('invalid', `record of ${body.length} bytes does not fit in ${recordBytes - 1}`);
  body.copy(bytes);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-record-'));
  const file = path.join(dir, 'record.bin');
  try {
    fs.writeFileSync(file, bytes);
    const out = await qemuIo(url, [`write -s ${file} ${offset} ${recordBytes}`]);
    checkOutput(out, `write of a record at ${offset} on ${url}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Reads the block at `offset` (qemu-io's hex dump) and returns the text before the first NUL. */
export async function readRecord(url: string, offset = 0): Promise<string> {
  const out = await qemuIo(url, [`read -v ${offset} ${recordBytes}`]);
  checkOutput(out, `read of a record at ${offset} on ${url}`);
  const bytes: number[] = [];
  for (const line of out.split('\n')) {
    // "00000000:  61 62 63 ...  abc..."
    const m = /^[0-9a-f]{8}:\s+((?:[0-9a-f]{2}\s){1,16})/.exec(line);
    if (!m?.[1]) continue;
    for (const h of m[1].trim().split(/\s+/)) bytes.push(parseInt(h, 16));
  }
  if (bytes.length !== recordBytes) throw new CstorError('protocol', `qemu-io read -v gave ${bytes.length} bytes, not ${recordBytes}`);
  const buf = Buffer.from(bytes);
  const end = buf.indexOf(0);
  return buf.subarray(0, end < 0 ? buf.length : end).toString('utf8');
}
