// Starts istgt (cStor's ancestor target) as a plain child process serving one file as LUN 0, with a
// generated config in its own temp dir. A second baseline for the benchmarks.
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './tgtd.ts';

export interface Istgt {
  readonly url: string;
  stop(): Promise<void>;
}

export async function startIstgt(opts: { sizeBytes: number }): Promise<Istgt> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'istgt-'));
  const lun = path.join(dir, 'lun.img');
  await fs.writeFile(path.join(dir, 'auth.conf'), '');
  const fh = await fs.open(lun, 'w');
  await fh.truncate(opts.sizeBytes);
  await fh.close();
  const port = await freePort();
  const uport = await freePort();
  const conf = `[Global]
  NodeBase "iqn.2007-09.jp.ne.peach.istgt"
  PidFile ${dir}/istgt.pid
  AuthFile ${dir}/auth.conf
  MediaDirectory ${dir}
  Timeout 30
  NopInInterval 20
  DiscoveryAuthMethod None
  MaxSessions 16
  MaxConnections 4
  MaxR2T 32
  MaxOutstandingR2T 16
  DefaultTime2Wait 2
  DefaultTime2Retain 60
  FirstBurstLength 262144
  MaxBurstLength 1048576
  MaxRecvDataSegmentLength 262144
  InitialR2T Yes
  ImmediateData Yes
  DataPDUInOrder Yes
  DataSequenceInOrder Yes
  ErrorRecoveryLevel 0
[UnitControl]
  AuthMethod None
  Portal UC1 127.0.0.1:${uport}
  Netmask 127.0.0.1
[PortalGroup1]
  Portal DA1 127.0.0.1:${port}
[InitiatorGroup1]
  InitiatorName "ALL"
  Netmask 127.0.0.1
[LogicalUnit1]
  TargetName disk1
  Mapping PortalGroup1 InitiatorGroup1
  AuthMethod None
  UseDigest Auto
  UnitType Disk
  QueueDepth 32
  LUN0 Storage ${lun} ${Math.floor(opts.sizeBytes / (1 << 20))}MB
`;
  const confPath = path.join(dir, 'istgt.conf');
  await fs.writeFile(confPath, conf);
  const child = spawn('istgt', ['-c', confPath, '-D'], { cwd: dir, stdio: 'ignore' });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', (err) => reject(new Error(`cannot run istgt: ${err.message}`, { cause: err })));
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(child.pid, 'SIGKILL');
      await exited;
    }
    await fs.rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error('istgt did not start listening');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: `iscsi://127.0.0.1:${port}/iqn.2007-09.jp.ne.peach.istgt:disk1/0`, stop };
}
