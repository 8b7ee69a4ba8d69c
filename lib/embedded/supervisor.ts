// Runs child processes and keeps them running: each child's output goes to its own log file
// (and to an optional line callback), its {"message":"listening"} lines are collected as
// addresses, a child that dies is started again with backoff (restart-policy.ts) and the log
// says so (name, exit code or signal, restart count, delay). stop() ends everything: children
// of the highest stage first, SIGTERM, then SIGKILL after the grace period, and resolves only
// when every child has exited.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { CstorError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { decideRestart, defaultRestartPolicy, type RestartPolicy } from './restart-policy.ts';

export interface ChildCommand {
  file: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface ChildSpec {
  name: string;
  /** Evaluated at every (re)start, so a restart sees the current addresses and pinned ports. */
  command: () => ChildCommand;
  /** Children of higher stages are stopped first (default 0). */
  stage?: number;
}

export const childStates = ['starting', 'running', 'backoff', 'stopping', 'stopped', 'failed'] as const;
export type ChildState = (typeof childStates)[number];

export interface ChildExit {
  code: number | null;
  signal: string | null;
  at: string;
}

export interface ChildStatus {
  name: string;
  pid: number | null;
  state: ChildState;
  /** How many times the supervisor started it again after it died. */
  restarts: number;
  /** listener name → host:port, from the child's "listening" lines (kept across restarts). */
  addresses: Record<string, string>;
  startedAt: string | null;
  lastExit: ChildExit | null;
  logFile: string | null;
}

export interface SupervisorOptions {
  logger: Logger;
  /** Where <child>.log files go; none: output only reaches onLine. */
  logDir?: string;
  policy?: RestartPolicy;
  /** SIGTERM → SIGKILL delay on stop (default 10 s). */
  stopGraceMs?: number;
  /** Every output line of every child (after it is written to the child's log file). */
  onLine?: (child: string, line: string, entry: Record<string, unknown> | null) => void;
}

interface Child {
  spec: ChildSpec;
  status: ChildStatus;
  proc: ChildProcess | null;
  exited: Promise<void>;
  startedMs: number;
  failures: number;
  timer: NodeJS.Timeout | null;
  log: fs.WriteStream | null;
}

export interface SupervisorEvents {
  change: [status: ChildStatus];
  listening: [child: string, listener: string, address: string];
}

export class Supervisor extends EventEmitter<SupervisorEvents> {
  private readonly children = new Map<string, Child>();
  private readonly policy: RestartPolicy;
  private readonly stopGraceMs: number;
  private stopping = false;

  constructor(private readonly options: SupervisorOptions) {
    super();
    this.policy = options.policy ?? defaultRestartPolicy;
    this.stopGraceMs = options.stopGraceMs ?? 10_000;
    if (options.logDir) fs.mkdirSync(options.logDir, { recursive: true });
    process.on('exit', this.killOnExit);
  }

  /** If this process exits without stop() (a crash), no child is left running. */
  private readonly killOnExit = (): void => {
    for (const c of this.children.values()) if (c.proc && c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  };

  /** SIGKILL every running child now (a second Ctrl-C); stop() still resolves when they are gone. */
  killAll(): void {
    this.stopping = true;
    this.killOnExit();
  }

  /** Starts a child (names are unique). */
  start(spec: ChildSpec): ChildStatus {
    if (this.stopping) throw new CstorError('aborted', `cannot start ${spec.name}: the supervisor is stopping`);
    if (this.children.has(spec.name)) throw new CstorError('already_exists', `a child named ${spec.name} is already supervised`);
    const logFile = this.options.logDir ? path.join(this.options.logDir, `${spec.name}.log`) : null;
    const child: Child = {
      spec,
      status: { name: spec.name, pid: null, state: 'starting', restarts: 0, addresses: {}, startedAt: null, lastExit: null, logFile },
      proc: null,
      exited: Promise.resolve(),
      startedMs: 0,
      failures: 0,
      timer: null,
      log: logFile ? fs.createWriteStream(logFile, { flags: 'a' }) : null,
    };
    this.children.set(spec.name, child);
    this.spawnChild(child);
    return { ...child.status };
  }

  /** A copy of every child's status, in start order. */
  status(): ChildStatus[] {
    return [...this.children.values()].map((c) => ({ ...c.status, addresses: { ...c.status.addresses } }));
  }

  statusOf(name: string): ChildStatus | undefined {
    const c = this.children.get(name);
    return c ? { ...c.status, addresses: { ...c.status.addresses } } : undefined;
  }

  /** Resolves with the child's addresses once every named listener was announced. */
  waitForListeners(name: string, listeners: readonly string[], timeoutMs: number): Promise<Record<string, string>> {
    const child = this.children.get(name);
    if (!child) return Promise.reject(new CstorError('not_found', `no child named ${name}`));
    const done = (): boolean => listeners.every((l) => child.status.addresses[l] !== undefined);
    if (done()) return Promise.resolve({ ...child.status.addresses });
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off('change', onChange);
      };
      const onChange = (s: ChildStatus): void => {
        if (s.name !== name) return;
        if (done()) {
          cleanup();
          resolve({ ...child.status.addresses });
        } else if (s.state === 'failed' || s.state === 'stopped' || s.state === 'stopping') {
          cleanup();
          reject(new CstorError('unavailable', `${name} is ${s.state} before announcing ${listeners.join(', ')}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        const missing = listeners.filter((l) => child.status.addresses[l] === undefined);
        reject(new CstorError('timeout', `${name} did not announce ${missing.join(', ')} within ${timeoutMs} ms (state ${child.status.state}, restarts ${child.status.restarts}; see ${child.status.logFile ?? 'its output'})`));
      }, timeoutMs);
      this.on('change', onChange);
    });
  }

  /** Stops every child (highest stage first) and resolves once all have exited. Idempotent. */
  async stop(): Promise<void> {
    this.stopping = true;
    const byStage = new Map<number, Child[]>();
    for (const c of this.children.values()) {
      if (c.timer) {
        clearTimeout(c.timer);
        c.timer = null;
        if (c.status.state === 'backoff') this.setState(c, 'stopped');
      }
      const stage = c.spec.stage ?? 0;
      byStage.set(stage, [...(byStage.get(stage) ?? []), c]);
    }
    for (const stage of [...byStage.keys()].sort((a, b) => b - a)) {
      await Promise.all((byStage.get(stage) ?? []).map((c) => this.stopChild(c)));
    }
    process.off('exit', this.killOnExit);
    await Promise.all([...this.children.values()].map((c) => new Promise<void>((resolve) => (c.log ? c.log.end(resolve) : resolve()))));
  }

  /**
   * Stops one child (SIGTERM, SIGKILL after the grace) and keeps it stopped, not restarted, until
   * resume(name). For tests and tools that take one component down on purpose.
   */
  async pause(name: string): Promise<void> {
    const c = this.children.get(name);
    if (!c) throw new CstorError('not_found', `no child named ${name}`);
    if (c.timer) {
      clearTimeout(c.timer);
      c.timer = null;
    }
    if (c.proc) await this.stopChild(c);
    if (c.status.state !== 'stopped') this.setState(c, 'stopped');
    this.options.logger.info('child paused', { child: name });
  }

  /** Starts a child stopped by pause() (or one that gave up) again; a running child is left alone. */
  resume(name: string): void {
    const c = this.children.get(name);
    if (!c) throw new CstorError('not_found', `no child named ${name}`);
    if (this.stopping) throw new CstorError('aborted', `cannot resume ${name}: the supervisor is stopping`);
    if (c.proc || c.timer) return;
    c.failures = 0;
    this.spawnChild(c);
    this.options.logger.info('child resumed', { child: name, pid: c.status.pid });
  }

  private async stopChild(c: Child): Promise<void> {
    const proc = c.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    this.setState(c, 'stopping');
    proc.kill('SIGTERM');
    const timer = setTimeout(() => {
      this.options.logger.warn('child did not stop in time: SIGKILL', { child: c.spec.name, pid: proc.pid, graceMs: this.stopGraceMs });
      proc.kill('SIGKILL');
    }, this.stopGraceMs);
    await c.exited;
    clearTimeout(timer);
  }

  private spawnChild(c: Child): void {
    const { file, args, env, cwd } = c.spec.command();
    // detached: the child gets its own process group, so a Ctrl-C on the terminal reaches only the
    // supervising process, which then stops the children in order (not all at once, by the tty).
    const proc = spawn(file, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    c.proc = proc;
    c.startedMs = Date.now();
    c.status.pid = proc.pid ?? null;
    c.status.startedAt = new Date().toISOString();
    c.log?.write(`--- ${c.status.startedAt} started pid ${proc.pid ?? '?'}: ${[file, ...args].join(' ')}\n`);
    const onLine = (line: string): void => this.handleLine(c, line);
    readline.createInterface({ input: proc.stdout! }).on('line', onLine);
    readline.createInterface({ input: proc.stderr! }).on('line', onLine);
    c.exited = new Promise<void>((resolve) => {
      let settled = false;
      const finish = (code: number | null, signal: string | null): void => {
        if (settled) return;
        settled = true;
        resolve();
        this.handleExit(c, proc, code, signal);
      };
      proc.once('exit', (code, signal) => finish(code, signal));
      proc.once('error', (err) => {
        this.options.logger.error('cannot start child', { child: c.spec.name, error: err.message });
        if (proc.pid === undefined) finish(null, null);
      });
    });
    this.setState(c, proc.pid === undefined ? 'starting' : 'running');
  }

  private handleLine(c: Child, line: string): void {
    c.log?.write(line + '\n');
    let entry: Record<string, unknown> | null = null;
    if (line.startsWith('{')) {
      try {
        const parsed: unknown = JSON.parse(line);
        if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) entry = parsed as Record<string, unknown>;
      } catch {
        entry = null;
      }
    }
    if (entry && entry.message === 'listening' && typeof entry.listener === 'string' && typeof entry.address === 'string') {
      c.status.addresses[entry.listener] = entry.address;
      this.emit('listening', c.spec.name, entry.listener, entry.address);
      this.emit('change', { ...c.status });
    }
    this.options.onLine?.(c.spec.name, line, entry);
  }

  private handleExit(c: Child, proc: ChildProcess, code: number | null, signal: string | null): void {
    if (c.proc !== proc) return;
    c.proc = null;
    c.status.pid = null;
    c.status.lastExit = { code, signal, at: new Date().toISOString() };
    c.log?.write(`--- ${c.status.lastExit.at} exited: ${signal ? `signal ${signal}` : `code ${code}`}\n`);
    const logger = this.options.logger;
    if (this.stopping || c.status.state === 'stopping') {
      logger.info('child stopped', { child: c.spec.name, pid: proc.pid, code, signal });
      this.setState(c, 'stopped');
      return;
    }
    const decision = decideRestart(this.policy, c.failures, Date.now() - c.startedMs);
    c.failures = decision.consecutiveFailures;
    if (!decision.restart) {
      logger.error('child keeps dying: gave up restarting it', {
        child: c.spec.name, pid: proc.pid, code, signal, restarts: c.status.restarts, consecutiveFailures: c.failures, log: c.status.logFile,
      });
      this.setState(c, 'failed');
      return;
    }
    logger.warn('child exited: restarting it', {
      child: c.spec.name, pid: proc.pid, code, signal, restarts: c.status.restarts, restartInMs: decision.delayMs, log: c.status.logFile,
    });
    this.setState(c, 'backoff');
    c.timer = setTimeout(() => {
      c.timer = null;
      if (this.stopping) return;
      c.status.restarts += 1;
      this.spawnChild(c);
      logger.warn('child restarted', { child: c.spec.name, pid: c.status.pid, restarts: c.status.restarts, lastExitCode: code, lastSignal: signal });
    }, decision.delayMs);
  }

  private setState(c: Child, state: ChildState): void {
    c.status.state = state;
    this.emit('change', { ...c.status, addresses: { ...c.status.addresses } });
  }
}
