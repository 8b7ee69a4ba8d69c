// The baseline iSCSI targets that the conformance run and the benchmarks compare ours with: Debian's
// tgtd and istgt (cStor's ancestor). One launcher starts either as a plain child process serving one
// sparse file from its own temp dir on 127.0.0.1 (free ports), waits for its portal, and stops it by
// PID (SIGKILL), removing the dir. What differs between the two (argv, config files, the set-up once
// it listens, files to remove outside the dir, the IQN and LUN) is the data of a BaselineKind.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { runTool } from './run-tool.ts';

export interface BaselineTarget {
  readonly port: number;
  readonly iqn: string;
  /** iscsi:// URL of the LUN. */
  readonly url: string;
  stop(): Promise<void>;
}

export interface BaselineOptions {
  sizeBytes: number;
  /** Serve this file instead of a fresh sparse one of sizeBytes in the temp dir. */
  backingFile?: string;
}

interface Launch {
  args: string[];
  iqn: string;
  lun: number;
  /** Run once the portal accepts connections. */
  setUp?: () => Promise<void>;
  /** Files outside the temp dir to remove on stop. */
  leftovers?: string[];
}

interface BaselineKind {
  program: string;
  /** Writes what the program needs into `dir` and says how to run it. */
  prepare(ctx: { dir: string; file: string; port: number; sizeBytes: number }): Promise<Launch>;
}

const tgtd: BaselineKind = {
  program: 'tgtd',
  // `tgtd -f -C <control port> --iscsi portal=…`, then tgtadm on that control port. tgtd takes a
  // control port below 32768 (it names its control socket after it).
  prepare: ({ file, port }) => {
    const control = 10000 + Math.floor(Math.random() * 20000);
    const iqn = 'iqn.2001-04.com.example:cstor-baseline';
    const tgtadm = async (args: string[]): Promise<void> => {
      const r = await runTool('tgtadm', ['-C', String(control), '--lld', 'iscsi', ...args], 20_000);
      if (r.code !== 0) throw new Error(`tgtadm ${args.join(' ')} failed (${r.code}): ${r.stderr || r.stdout}`);
    };
    return Promise.resolve({
      args: ['-f', '-C', String(control), '--iscsi', `portal=127.0.0.1:${port}`],
      iqn,
      lun: 1,
      setUp: async () => {
        await tgtadm(['--mode', 'target', '--op', 'new', '--tid', '1', '--targetname', iqn]);
        await tgtadm(['--mode', 'logicalunit', '--op', 'new', '--tid', '1', '--lun', '1', '--backing-store', file]);
        await tgtadm(['--mode', 'target', '--op', 'bind', '--tid', '1', '--initiator-address', 'ALL']);
      },
      leftovers: [`/var/run/tgtd/socket.${control}`, `/var/run/tgtd/socket.${control}.lock`],
    });
  },
};

const istgt: BaselineKind = {
  program: 'istgt',
  // `istgt -c istgt.conf -D` with a generated config (and an empty auth file) in the temp dir.
  prepare: async ({ dir, file, port, sizeBytes }) => {
    const confPath = path.join(dir, 'istgt.conf');
    await fs.writeFile(path.join(dir, 'auth.conf'), '');
    await fs.writeFile(confPath, istgtConfig({ dir, file, port, unitControlPort: await freePort(), sizeMiB: Math.floor(sizeBytes / (1 << 20)) }));
    return { args: ['-c', confPath, '-D'], iqn: 'iqn.2007-09.jp.ne.peach.istgt:disk1', lun: 0 };
  },
};

function istgtConfig(c: { dir: string; file: string; port: number; unitControlPort: number; sizeMiB: number }): string {
  return `[Global]
  NodeBase "iqn.2007-09.jp.ne.peach.istgt"
  PidFile ${c.dir}/istgt.pid
  AuthFile ${c.dir}/auth.conf
  MediaDirectory ${c.dir}
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
  Portal UC1 127.0.0.1:${c.unitControlPort}
  Netmask 127.0.0.1
[PortalGroup1]
  Portal DA1 127.0.0.1:${c.port}
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
  LUN0 Storage ${c.file} ${c.sizeMiB}MB
`;
}

/** tgtd serving the file as LUN 1. */
export function startTgtd(opts: BaselineOptions): Promise<BaselineTarget> {
  return startBaseline(tgtd, opts);
}

/** istgt serving the file as LUN 0. */
export function startIstgt(opts: BaselineOptions): Promise<BaselineTarget> {
  return startBaseline(istgt, opts);
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

/** Starts `kind`; tries again (three times in all) on a failure such as a port taken meanwhile. */
async function startBaseline(kind: BaselineKind, opts: BaselineOptions): Promise<BaselineTarget> {
  let last: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(kind, opts);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

async function startOnce(kind: BaselineKind, opts: BaselineOptions): Promise<BaselineTarget> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `${kind.program}-`));
  const file = opts.backingFile ?? path.join(dir, 'lun.img');
  if (!opts.backingFile) {
    const fh = await fs.open(file, 'w');
    await fh.truncate(opts.sizeBytes);
    await fh.close();
  }
  const port = await freePort();
  let launch: Launch;
  try {
    launch = await kind.prepare({ dir, file, port, sizeBytes: opts.sizeBytes });
  } catch (err) {
    await fs.rm(dir, { recursive: true, force: true });
    throw err;
  }
  const child = spawn(kind.program, launch.args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', (err) => reject(new Error(`cannot run ${kind.program}: ${err.message}`, { cause: err })));
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(child.pid, 'SIGKILL');
      await exited;
    }
    await fs.rm(dir, { recursive: true, force: true });
    for (const f of launch.leftovers ?? []) await fs.rm(f, { force: true }).catch(() => undefined);
  };
  try {
    await spawned;
    await waitForPort(port, child, 10_000);
    await launch.setUp?.();
    return { port, iqn: launch.iqn, url: `iscsi://127.0.0.1:${port}/${launch.iqn}/${launch.lun}`, stop };
  } catch (err) {
    await stop();
    throw new Error(`${kind.program} did not start: ${(err as Error).message}; stderr: ${stderr.slice(-500)}`, { cause: err });
  }
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
