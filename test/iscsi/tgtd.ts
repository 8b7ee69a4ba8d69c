// Starts Debian's tgtd as a plain child process serving one file-backed LUN, for the conformance
// and speed comparisons: `tgtd -f -C <control port> --iscsi portal=127.0.0.1:<port>` in its own
// temp dir, then tgtadm on that control port. Stopped by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { runTool } from './run-tool.ts';

export interface Tgtd {
  readonly port: number;
  readonly iqn: string;
  /** iscsi:// URL of the LUN. */
  readonly url: string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`process exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms`);
}

async function tgtadm(control: number, args: string[]): Promise<void> {
  const r = await runTool('tgtadm', ['-C', String(control), '--lld', 'iscsi', ...args], 20_000);
  if (r.code !== 0) throw new Error(`tgtadm ${args.join(' ')} failed (${r.code}): ${r.stderr || r.stdout}`);
}

/** Starts tgtd serving a sparse file of `sizeBytes` (or `backingFile`) as LUN 1; retries on a port clash. */
export async function startTgtd(opts: { sizeBytes: number; backingFile?: string }): Promise<Tgtd> {
  let last: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startTgtdOnce(opts);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

async function startTgtdOnce(opts: { sizeBytes: number; backingFile?: string }): Promise<Tgtd> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tgtd-'));
  const file = opts.backingFile ?? path.join(dir, 'lun.img');
  if (!opts.backingFile) {
    const fh = await fs.open(file, 'w');
    await fh.truncate(opts.sizeBytes);
    await fh.close();
  }
  const port = await freePort();
  // tgtd takes a control port number below 32768 (it names its control socket after it).
  const control = 10000 + Math.floor(Math.random() * 20000);
  const child = spawn('tgtd', ['-f', '-C', String(control), '--iscsi', `portal=127.0.0.1:${port}`], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', (err) => reject(new Error(`cannot run tgtd: ${err.message}`, { cause: err })));
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(child.pid, 'SIGKILL');
      await exited;
    }
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rm(`/var/run/tgtd/socket.${control}`, { force: true }).catch(() => undefined);
    await fs.rm(`/var/run/tgtd/socket.${control}.lock`, { force: true }).catch(() => undefined);
  };
  try {
    await spawned;
    await waitForPort(port, child, 10_000);
    const iqn = 'iqn.2001-04.com.example:cstor-baseline';
    await tgtadm(control, ['--mode', 'target', '--op', 'new', '--tid', '1', '--targetname', iqn]);
    await tgtadm(control, ['--mode', 'logicalunit', '--op', 'new', '--tid', '1', '--lun', '1', '--backing-store', file]);
    await tgtadm(control, ['--mode', 'target', '--op', 'bind', '--tid', '1', '--initiator-address', 'ALL']);
    return { port, iqn, url: `iscsi://127.0.0.1:${port}/${iqn}/1`, stop };
  } catch (err) {
    await stop();
    throw new Error(`tgtd did not start: ${(err as Error).message}; stderr: ${stderr.slice(-500)}`, { cause: err });
  }
}
