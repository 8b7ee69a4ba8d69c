// Starts `cstor <subcommand>` as a real child process for tests, waits for its "listening"
// log lines, and stops it by PID (always, even when a test fails: see stopAll()).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import readline from 'node:readline';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const cstorBin = path.join(repoRoot, 'bin', 'cstor.js');

export interface Daemon {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** listener name → "host:port", from the daemon's {msg: "listening"} lines. */
  readonly addresses: Record<string, string>;
  /** Every stdout/stderr line so far (for assertions and failure dumps). */
  readonly lines: string[];
  /** Resolves with the first parsed JSON log line matching `pred` (past or future). */
  waitForLog(pred: (entry: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGTERM, then SIGKILL after graceMs; resolves with the exit code (or signal name). */
  stop(graceMs?: number): Promise<number | string>;
  /** kill -9. */
  kill(): Promise<void>;
}

const running = new Set<Daemon>();

export interface StartOptions {
  /** Listener names to wait for before resolving. */
  listeners?: string[];
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  cwd?: string;
}

export async function startDaemon(args: string[], options: StartOptions = {}): Promise<Daemon> {
  const proc = spawn(process.execPath, [cstorBin, ...args], {
    cwd: options.cwd ?? repoRoot,
    env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const entries: Record<string, unknown>[] = [];
  const waiters: { pred: (e: Record<string, unknown>) => boolean; resolve: (e: Record<string, unknown>) => void }[] = [];
  const addresses: Record<string, string> = {};
  const onLine = (line: string): void => {
    lines.push(line);
    if (lines.length > 5000) lines.shift();
    if (!line.startsWith('{')) return;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if (entry.message === 'listening' && typeof entry.listener === 'string' && typeof entry.address === 'string') {
      addresses[entry.listener] = entry.address;
    }
    entries.push(entry);
    if (entries.length > 5000) entries.shift();
    for (const w of [...waiters]) {
      if (w.pred(entry)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(entry);
      }
    }
  };
  readline.createInterface({ input: proc.stdout! }).on('line', onLine);
  readline.createInterface({ input: proc.stderr! }).on('line', onLine);
  const exited = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;

  const daemon: Daemon = {
    proc,
    pid: proc.pid!,
    addresses,
    lines,
    waitForLog(pred, timeoutMs = 30_000) {
      const found = entries.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const w = { pred, resolve: (e: Record<string, unknown>) => (clearTimeout(timer), resolve(e)) };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`cstor ${args.join(' ')}: no matching log line in ${timeoutMs} ms; last lines:\n${lines.slice(-30).join('\n')}`));
        }, timeoutMs);
        waiters.push(w);
      });
    },
    async stop(graceMs = 5000) {
      running.delete(daemon);
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode ?? proc.signalCode ?? 0;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      const [code, signal] = await exited;
      clearTimeout(timer);
      return code ?? signal ?? 0;
    },
    async kill() {
      running.delete(daemon);
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGKILL');
      await exited;
    },
  };
  running.add(daemon);

  const wanted = options.listeners ?? [];
  const timeoutMs = options.timeoutMs ?? 30_000;
  const ready = Promise.all(wanted.map((l) => daemon.waitForLog((e) => e.message === 'listening' && e.listener === l, timeoutMs)));
  const died = exited.then(([code, signal]) => {
    throw new Error(`cstor ${args.join(' ')} exited (${code ?? signal}) before listening:\n${lines.slice(-40).join('\n')}`);
  });
  try {
    await Promise.race([ready, died]);
  } catch (err) {
    await daemon.kill();
    throw err;
  }
  died.catch(() => {});
  return daemon;
}

/** Stops every daemon still running; call from an `after`/`afterEach` hook. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((d) => d.stop(2000)));
}

process.on('exit', () => {
  for (const d of running) d.proc.kill('SIGKILL');
});
