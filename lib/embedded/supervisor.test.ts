import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createLogger, type Logger } from '../logger.ts';
import { decideRestart, type RestartPolicy } from './restart-policy.ts';
import { isProcessAlive } from './state.ts';
import { Supervisor, type ChildSpec } from './supervisor.ts';

const fakeChild = fileURLToPath(new URL('../../test/embedded/fixtures/fake-child.mjs', import.meta.url));

function captureLogger(): { logger: Logger; entries: Record<string, unknown>[] } {
  const entries: Record<string, unknown>[] = [];
  const stream = new PassThrough();
  let buf = '';
  stream.on('data', (chunk: Buffer) => {
    buf += chunk.toString('utf8');
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      entries.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
      buf = buf.slice(i + 1);
    }
  });
  return { logger: createLogger({ component: 'test', stream }), entries };
}

function fake(name: string, args: string[], env: Record<string, string> = {}): ChildSpec {
  return { name, command: () => ({ file: process.execPath, args: [fakeChild, ...args], env: { ...process.env, ...env } }) };
}

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const fastPolicy: RestartPolicy = { initialDelayMs: 50, maxDelayMs: 400, resetAfterMs: 60_000, maxConsecutiveFailures: 50 };

describe('embedded/restart-policy', () => {
  const policy: RestartPolicy = { initialDelayMs: 100, maxDelayMs: 1000, resetAfterMs: 5000, maxConsecutiveFailures: 4 };
  it('doubles the delay per quick failure, capped, and gives up past the limit', () => {
    const delays: number[] = [];
    let failures = 0;
    for (let i = 0; i < 4; i++) {
      const d = decideRestart(policy, failures, 10);
      if (!d.restart) throw new Error('expected a restart');
      delays.push(d.delayMs);
      failures = d.consecutiveFailures;
    }
    expect(delays).to.deep.equal([100, 200, 400, 800]);
    expect(decideRestart(policy, failures, 10)).to.deep.equal({ restart: false, consecutiveFailures: 5 });
    expect(decideRestart({ ...policy, maxConsecutiveFailures: 100 }, 10, 10)).to.deep.include({ delayMs: 1000 });
  });
  it('starts afresh after a child ran long enough', () => {
    expect(decideRestart(policy, 4, 6000)).to.deep.equal({ restart: true, delayMs: 100, consecutiveFailures: 1 });
  });
});

describe('embedded/supervisor', function () {
  this.timeout(40_000);
  let dir: string;
  let sup: Supervisor | undefined;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-sup-'));
  });
  afterEach(async () => {
    await sup?.stop();
    sup = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('restarts a child that keeps dying, with growing delays, logging name, exit code and restart count', async () => {
    const { logger, entries } = captureLogger();
    sup = new Supervisor({ logger, logDir: path.join(dir, 'logs'), policy: fastPolicy });
    const broken = path.join(dir, 'broken');
    fs.writeFileSync(broken, '');
    sup.start(fake('flaky', ['--exit-if-file', broken, '--listen', 'api']));
    const exits = await until('4 exits', () => {
      const e = entries.filter((x) => x.message === 'child exited: restarting it');
      return e.length >= 4 && e;
    });
    expect(exits.every((e) => e.child === 'flaky' && e.code === 3)).to.equal(true);
    const delays = exits.slice(0, 4).map((e) => e.restartInMs);
    expect(delays).to.deep.equal([50, 100, 200, 400]);
    expect(exits.slice(0, 4).map((e) => e.restarts)).to.deep.equal([0, 1, 2, 3]);
    fs.rmSync(broken);
    const addresses = await sup.waitForListeners('flaky', ['api'], 10_000);
    expect(addresses.api).to.match(/^127\.0\.0\.1:\d+$/);
    const status = sup.statusOf('flaky')!;
    expect(status.state).to.equal('running');
    expect(status.restarts).to.be.at.least(4);
    expect(status.lastExit?.code).to.equal(3);
    expect(entries.some((e) => e.message === 'child restarted' && e.child === 'flaky' && e.lastExitCode === 3)).to.equal(true);
    const log = fs.readFileSync(path.join(dir, 'logs', 'flaky.log'), 'utf8');
    expect(log).to.include('fake-child: failing because');
    expect(log).to.match(/exited: code 3/);
  });

  it('restarts a child killed with SIGKILL and keeps its addresses', async () => {
    const { logger, entries } = captureLogger();
    sup = new Supervisor({ logger, policy: fastPolicy });
    sup.start(fake('victim', ['--listen', 'mgmt']));
    await sup.waitForListeners('victim', ['mgmt'], 10_000);
    const pid = sup.statusOf('victim')!.pid!;
    process.kill(pid, 'SIGKILL');
    const restarted = await until('a restart', () => entries.find((e) => e.message === 'child restarted' && e.child === 'victim'));
    expect(restarted.lastSignal).to.equal('SIGKILL');
    expect(restarted.restarts).to.equal(1);
    const status = await until('running again', () => {
      const s = sup!.statusOf('victim')!;
      return s.state === 'running' && s.pid !== null && s.pid !== pid && s;
    });
    expect(isProcessAlive(status.pid!)).to.equal(true);
    expect(status.addresses.mgmt).to.match(/^127\.0\.0\.1:\d+$/);
  });

  it('gives up on a child that exits at once, after the capped number of tries, and says so', async () => {
    const { logger, entries } = captureLogger();
    sup = new Supervisor({ logger, policy: { ...fastPolicy, maxConsecutiveFailures: 3 } });
    sup.start(fake('hopeless', ['--exit', '2']));
    const gaveUp = await until('give up', () => entries.find((e) => e.message === 'child keeps dying: gave up restarting it'));
    expect(gaveUp).to.include({ child: 'hopeless', code: 2, restarts: 3, consecutiveFailures: 4 });
    expect(sup.statusOf('hopeless')).to.include({ state: 'failed', pid: null, restarts: 3 });
    await sup.waitForListeners('hopeless', ['api'], 1000).then(
      () => expect.fail('should reject'),
      (err: Error) => expect(err.message).to.match(/hopeless did not announce api|hopeless is failed/),
    );
  });

  it('stop() ends every child, SIGKILLing one that ignores SIGTERM, highest stage first', async () => {
    const { logger, entries } = captureLogger();
    sup = new Supervisor({ logger, policy: fastPolicy, stopGraceMs: 500 });
    sup.start({ ...fake('base', ['--listen', 'api']), stage: 0 });
    sup.start({ ...fake('mid', ['--listen', 'api']), stage: 1 });
    sup.start({ ...fake('stubborn', ['--listen', 'api', '--ignore-sigterm']), stage: 2 });
    for (const n of ['base', 'mid', 'stubborn']) await sup.waitForListeners(n, ['api'], 10_000);
    const pids = sup.status().map((s) => s.pid!);
    expect(pids.every(isProcessAlive)).to.equal(true);
    await sup.stop();
    expect(pids.filter(isProcessAlive)).to.deep.equal([]);
    expect(sup.status().map((s) => s.state)).to.deep.equal(['stopped', 'stopped', 'stopped']);
    expect(entries.some((e) => e.message === 'child did not stop in time: SIGKILL' && e.child === 'stubborn')).to.equal(true);
    const order = entries.filter((e) => e.message === 'child stopped').map((e) => e.child);
    expect(order).to.deep.equal(['stubborn', 'mid', 'base']);
    expect(entries.some((e) => e.message === 'child restarted')).to.equal(false);
  });

  it('stop() during a backoff leaves nothing to restart later', async () => {
    const { logger, entries } = captureLogger();
    sup = new Supervisor({ logger, policy: { ...fastPolicy, initialDelayMs: 300 } });
    sup.start(fake('dying', ['--exit', '1']));
    await until('an exit', () => entries.find((e) => e.message === 'child exited: restarting it'));
    await sup.stop();
    await new Promise((r) => setTimeout(r, 500));
    expect(entries.some((e) => e.message === 'child restarted')).to.equal(false);
    expect(sup.statusOf('dying')?.state).to.equal('stopped');
  });

  it('pause() stops one child and keeps it down; resume() starts it again', async () => {
    const { logger, entries } = captureLogger();
    sup = new Supervisor({ logger, policy: fastPolicy });
    sup.start(fake('held', ['--listen', 'api']));
    sup.start(fake('other', ['--listen', 'api']));
    await sup.waitForListeners('held', ['api'], 10_000);
    const pid = sup.statusOf('held')!.pid!;
    await sup.pause('held');
    expect(isProcessAlive(pid)).to.equal(false);
    await new Promise((r) => setTimeout(r, 300));
    expect(sup.statusOf('held')).to.include({ state: 'stopped', pid: null });
    expect(sup.statusOf('other')?.state).to.equal('running');
    expect(entries.some((e) => e.message === 'child restarted')).to.equal(false);
    sup.resume('held');
    const again = await until('running again', () => {
      const st = sup!.statusOf('held')!;
      return st.state === 'running' && st.pid !== null && st;
    });
    expect(again.pid).to.not.equal(pid);
    expect(isProcessAlive(again.pid!)).to.equal(true);
    await sup.pause('nosuch').then(
      () => expect.fail('should reject'),
      (err: Error) => expect(err.message).to.equal('no child named nosuch'),
    );
  });

  it('recomputes the command at each start and hands every line to onLine', async () => {
    const { logger } = captureLogger();
    const lines: string[] = [];
    let n = 0;
    sup = new Supervisor({ logger, policy: fastPolicy, onLine: (child, line) => lines.push(`${child}:${line}`) });
    sup.start({
      name: 'counted',
      command: () => ({ file: process.execPath, args: [fakeChild, '--listen', 'api'], env: { ...process.env, FAKE_ENV: `run-${++n}` } }),
    });
    await sup.waitForListeners('counted', ['api'], 10_000);
    process.kill(sup.statusOf('counted')!.pid!, 'SIGKILL');
    await until('second run', () => lines.some((l) => l.includes('"env":"run-2"')));
    expect(lines.some((l) => l.startsWith('counted:') && l.includes('"env":"run-1"'))).to.equal(true);
  });
});
