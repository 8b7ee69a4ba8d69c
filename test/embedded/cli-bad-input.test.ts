// Every `cstor` command as a real process given bad input: a clear one-line message, a non-zero
// exit code, and nothing started (no "listening" line, no file written where it should not be).
// And `cstor up` refusing a data dir another `up` holds, and stopping cleanly on SIGTERM during start-up.
import { expect } from 'chai';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { cstorBin, repoRoot, startDaemon, stopAll } from '../support/daemon.ts';
import { isProcessAlive, type EmbeddedState } from '../../lib/embedded/state.ts';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cstorBin, ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Live processes whose command line names `dir` (Linux /proc). */
function pidsUsing(dir: string): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir)) out.push(Number(entry));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

describe('cstor commands given bad input (real processes)', function () {
  this.timeout(180_000);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-cli-bad-'));
  const aFile = path.join(root, 'a-file');
  fs.writeFileSync(aFile, 'keep me');
  const killMe: number[] = [];

  after(async () => {
    await stopAll();
    for (const pid of killMe) if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
    for (const pid of pidsUsing(root)) process.kill(pid, 'SIGKILL');
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('flag problems: exit 2, one line naming each problem once, with one "cstor X:" prefix and no repeated cause', async () => {
    const table: { args: string[]; stderr: string }[] = [
      { args: ['nope'], stderr: 'cstor: unknown command "nope"' },
      { args: ['pool', '--name', 'p', '--data-dir', root, '--bogus'], stderr: "cstor pool: Unknown option '--bogus' (see --help)" },
      { args: ['pool', '--name', 'p', '--data-dir'], stderr: "cstor pool: Option '--data-dir <value>' argument missing (see --help)" },
      { args: ['pool', '--name', 'p', '--data-dir', root, 'extra'], stderr: "cstor pool: Unexpected argument 'extra'. This command does not take positional arguments (see --help)" },
      {
        args: ['pool', '--name', 'p', '--data-dir', root, '--listen', '127.0.0.1:70000', '--mgmt', ':'],
        stderr: 'cstor pool: --listen: "127.0.0.1:70000" is not HOST:PORT; --mgmt: ":" is not HOST:PORT',
      },
      { args: ['pool', '--name', 'p', '--data-dir', root, '--listen', '127.0.0.1:0', '--listen', '127.0.0.1:1'], stderr: 'cstor pool: --listen is given more than once (see --help)' },
      { args: ['target', '--mgmt', '127.0.0.1:0', '--mgmt', '127.0.0.1:1'], stderr: 'cstor target: --mgmt is given more than once (see --help)' },
      { args: ['up', '--data-dir', root, '--ports', 'some', '--stop-grace=-1'], stderr: 'cstor up: --ports must be default or any, not "some"; --stop-grace must be an integer number of ms in 100..120000' },
      { args: ['mapi', '--bogus'], stderr: "cstor mapi: Unknown option '--bogus' (see --help)" },
      { args: ['kube-lite', '--bogus'], stderr: "cstor kube-lite: Unknown option '--bogus' (see --help)" },
      { args: ['volume-provisioner', '--bogus'], stderr: "cstor volume-provisioner: Unknown option '--bogus' (see --help)" },
      { args: ['snapshot-controller', '--bogus'], stderr: "cstor snapshot-controller: Unknown option '--bogus' (see --help)" },
      { args: ['snapshot-provisioner', '--bogus'], stderr: "cstor snapshot-provisioner: Unknown option '--bogus' (see --help)" },
      { args: ['kube-lite', '--data-dir', root, '--log-level', 'loud'], stderr: 'cstor kube-lite: log level "loud" is not one of error, warn, info, debug (see --help)' },
      { args: ['snapshot-controller', '--log-level', 'loud'], stderr: 'cstor snapshot-controller: log level "loud" is not one of error, warn, info, debug' },
    ];
    const results = await Promise.all(table.map((c) => run(c.args)));
    table.forEach((c, i) => {
      const r = results[i]!;
      expect(r.code, `${c.args.join(' ')}: ${r.stderr}`).to.equal(2);
      expect(r.stderr.split('\n')[0], c.args.join(' ')).to.equal(c.stderr);
      expect(r.stderr).to.not.include('caused by');
      expect(r.stdout).to.not.include('"listening"');
    });
  });

  it('an unusable --data-dir (under a file): exit 2 naming flag, path and errno, before listening; the file is untouched', async () => {
    const dir = path.join(aFile, 'sub');
    const [pool, target, up] = await Promise.all([
      run(['pool', '--name', 'p', '--data-dir', dir, '--listen', '127.0.0.1:0', '--mgmt', '127.0.0.1:0']),
      run(['target', '--data-dir', dir, '--iscsi', '127.0.0.1:0', '--mgmt', '127.0.0.1:0']),
      run(['up', '--data-dir', dir, '--ports', 'any']),
    ]);
    expect({ code: pool.code, stderr: pool.stderr }).to.deep.equal({ code: 2, stderr: `cstor pool: --data-dir ${dir}: not a writable directory (ENOTDIR)\n` });
    expect({ code: target.code, stderr: target.stderr }).to.deep.equal({ code: 2, stderr: `cstor target: --data-dir ${dir}: not a writable directory (ENOTDIR)\n` });
    expect({ code: up.code, stderr: up.stderr }).to.deep.equal({ code: 2, stderr: `cstor up: --data-dir ${dir}: not a directory that can be created (ENOTDIR)\n` });
    for (const r of [pool, target]) expect(r.stdout).to.not.include('"listening"');
    expect(fs.readFileSync(aFile, 'utf8')).to.equal('keep me');
  });

  it('a target state file of the wrong shape: exit 1 naming the file and the field, before listening; the file is kept', async () => {
    const dir = path.join(root, 'target-bad-state');
    fs.mkdirSync(dir);
    const content = '{"version":1,"volumes":{"vol1":{}}}';
    fs.writeFileSync(path.join(dir, 'volumes.json'), content);
    const r = await run(['target', '--data-dir', dir, '--iscsi', '127.0.0.1:0', '--mgmt', '127.0.0.1:0']);
    expect(r.code, r.stderr).to.equal(1);
    expect(r.stderr).to.equal(`cstor target: state file ${path.join(dir, 'volumes.json')} is not a target state file: "volumes" is not a list; fix or move it away\n`);
    expect(r.stdout).to.not.include('"listening"');
    expect(fs.readFileSync(path.join(dir, 'volumes.json'), 'utf8')).to.equal(content);
  });

  it('a second pool or target on a data dir a live one uses: exit 1 naming its pid, before listening; the first keeps serving', async () => {
    const poolDir = path.join(root, 'pool-twice');
    const targetDir = path.join(root, 'target-twice');
    const first = await Promise.all([
      startDaemon(['pool', '--name', 'p1', '--data-dir', poolDir, '--listen', '127.0.0.1:0', '--mgmt', '127.0.0.1:0'], { listeners: ['replica', 'mgmt'] }),
      startDaemon(['target', '--data-dir', targetDir, '--iscsi', '127.0.0.1:0', '--mgmt', '127.0.0.1:0'], { listeners: ['iscsi', 'mgmt'] }),
    ]);
    try {
      const [pool, target] = await Promise.all([
        run(['pool', '--name', 'p1', '--data-dir', poolDir, '--listen', '127.0.0.1:0', '--mgmt', '127.0.0.1:0']),
        run(['target', '--data-dir', targetDir, '--iscsi', '127.0.0.1:0', '--mgmt', '127.0.0.1:0']),
      ]);
      expect({ code: pool.code, stderr: pool.stderr }).to.deep.equal({
        code: 1,
        stderr: `cstor pool: another cstor pool (pid ${first[0].pid}) is running on ${poolDir} (${path.join(poolDir, 'pool.lock')}); stop it first\n`,
      });
      expect({ code: target.code, stderr: target.stderr }).to.deep.equal({
        code: 1,
        stderr: `cstor target: another cstor target (pid ${first[1].pid}) is running on ${targetDir} (${path.join(targetDir, 'target.lock')}); stop it first\n`,
      });
      for (const r of [pool, target]) expect(r.stdout).to.not.include('"listening"');
      const health = await fetch(`http://${first[0].addresses.mgmt!}/v1/pool`);
      expect(health.status).to.equal(200);
    } finally {
      for (const d of first) expect(await d.stop(), `${d.proc.spawnargs.join(" ")}\n${d.lines.slice(-8).join("\n")}`).to.equal(0);
    }
    // Stopped cleanly: the locks are gone, and a kill -9 leaves one that the next start takes over.
    expect(fs.existsSync(path.join(poolDir, 'pool.lock'))).to.equal(false);
    const again = await startDaemon(['pool', '--name', 'p1', '--data-dir', poolDir, '--listen', '127.0.0.1:0', '--mgmt', '127.0.0.1:0'], { listeners: ['replica', 'mgmt'] });
    await again.kill();
    expect(fs.readFileSync(path.join(poolDir, 'pool.lock'), 'utf8')).to.equal(`${again.pid}\n`);
    const third = await startDaemon(['pool', '--name', 'p1', '--data-dir', poolDir, '--listen', '127.0.0.1:0', '--mgmt', '127.0.0.1:0'], { listeners: ['replica', 'mgmt'] });
    expect(await third.stop()).to.equal(0);
  });

  it('a second kube-lite on a data dir a live one uses: exit 1 naming its pid, before listening; the first keeps its log', async () => {
    const dir = path.join(root, 'kube-lite-twice');
    const first = await startDaemon(['kube-lite', '--data-dir', dir, '--listen', '127.0.0.1:0'], { listeners: ['api'] });
    try {
      const second = await run(['kube-lite', '--data-dir', dir, '--listen', '127.0.0.1:0']);
      expect({ code: second.code, stderr: second.stderr }).to.deep.equal({
        code: 1,
        stderr: `cstor kube-lite: another cstor kube-lite (pid ${first.pid}) is running on ${dir} (${path.join(dir, 'kube-lite.lock')}); stop it first\n`,
      });
      expect(second.stdout).to.not.include('"listening"');
      expect(fs.readdirSync(dir).filter((f) => /^wal-\d+\.log$/.test(f)), 'the first one\'s write-ahead log is still there').to.have.length(1);
    } finally {
      expect(await first.stop()).to.equal(0);
    }
    expect(fs.existsSync(path.join(dir, 'kube-lite.lock'))).to.equal(false);
  });

  it('cstor up on a dir another live `cstor up` holds: exit 1 naming its pid, nothing started, the lock kept', async () => {
    const dir = path.join(root, 'up-held');
    fs.mkdirSync(dir);
    // A live process whose command line reads like `cstor up` holds the lock.
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 120000)', 'cstor', 'up'], { stdio: 'ignore' });
    killMe.push(holder.pid!);
    fs.writeFileSync(path.join(dir, 'up.lock'), `${holder.pid!}\n`);
    const r = await run(['up', '--data-dir', dir, '--ports', 'any']);
    holder.kill('SIGKILL');
    expect(r.code, r.stderr).to.equal(1);
    expect(r.stderr).to.include(`another cstor up (pid ${holder.pid!}) is running on ${dir}`);
    expect(fs.readdirSync(dir)).to.deep.equal(['up.lock']);
    expect(fs.readFileSync(path.join(dir, 'up.lock'), 'utf8')).to.equal(`${holder.pid!}\n`);
  });

  it('SIGTERM while cstor up is starting: exit 0, "stopped during start-up", no component left, the lock released', async () => {
    const dir = path.join(root, 'up-sigterm');
    const proc = spawn(process.execPath, [cstorBin, 'up', '--data-dir', dir, '--ports', 'any', '--log-format', 'json', '--stop-grace', '5000'], {
      cwd: repoRoot,
      env: { ...process.env, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    killMe.push(proc.pid!);
    const lines: string[] = [];
    readline.createInterface({ input: proc.stdout! }).on('line', (l) => lines.push(l));
    readline.createInterface({ input: proc.stderr! }).on('line', (l) => lines.push(l));
    const exit = once(proc, 'exit') as Promise<[number | null, string | null]>;
    // The first component is started once state.json names a pid.
    const pids = new Set<number>();
    for (let i = 0; i < 600; i++) {
      try {
        const s = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as EmbeddedState;
        for (const c of Object.values(s.components)) if (c.pid !== null) pids.add(c.pid);
      } catch {
        /* not written yet */
      }
      if (pids.size > 0 || proc.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(pids.size, lines.slice(-20).join('\n')).to.be.greaterThan(0);
    proc.kill('SIGTERM');
    const [code, signal] = await exit;
    expect({ code, signal }, lines.slice(-20).join('\n')).to.deep.equal({ code: 0, signal: null });
    expect(lines.some((l) => l.includes('"stopped during start-up"')), lines.slice(-20).join('\n')).to.equal(true);
    expect([...pids].filter(isProcessAlive)).to.deep.equal([]);
    expect(pidsUsing(dir)).to.deep.equal([]);
    expect(fs.existsSync(path.join(dir, 'up.lock'))).to.equal(false);
    const s = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as EmbeddedState;
    expect(s.upPid).to.equal(null);
  });
});
