// DIR/state.json: what `cstor up` started and where it listens, rewritten (tmp file + rename) on
// every change. `cstor demo` and the tests read it to find the system's addresses and pids; the
// next `cstor up` on the same DIR reads it to reuse the ports (so volumes keep their portal) and
// to refuse to run twice on one DIR.
import fs from 'node:fs';
import path from 'node:path';
import { CstorError } from '../errors.ts';
import type { ChildStatus } from './supervisor.ts';

export const stateFileName = 'state.json';

export interface ComponentState extends ChildStatus {
  subcommand: string;
}

export interface EmbeddedEndpoints {
  /** https://host:port of kube-lite. */
  kubeApi?: string;
  /** http://host:port of m-apiserver (MAPI_ADDR). */
  mapi?: string;
  /** host:port of the target's iSCSI portal. */
  targetPortal?: string;
  /** host:port of the target's mgmt API. */
  targetMgmt?: string;
  /** pool name → its replica and mgmt addresses. */
  pools: Record<string, { replica?: string; mgmt?: string }>;
}

export interface EmbeddedState {
  version: 1;
  /** The `cstor up` process; null once it stopped. */
  upPid: number | null;
  dataDir: string;
  listenHost: string;
  kubeconfig: string;
  startedAt: string;
  stoppedAt: string | null;
  endpoints: EmbeddedEndpoints;
  components: Record<string, ComponentState>;
  /** Components not started, and why (e.g. a subcommand that does not exist yet). */
  skipped: Record<string, string>;
}

export function statePath(dataDir: string): string {
  return path.join(dataDir, stateFileName);
}

/** The state left by an earlier `cstor up` on this DIR, or null. */
export function readState(dataDir: string): EmbeddedState | null {
  let text: string;
  try {
    text = fs.readFileSync(statePath(dataDir), 'utf8');
  } catch {
    return null;
  }
  try {
    const parsed = JSON.parse(text) as EmbeddedState;
    if (parsed.version !== 1 || typeof parsed.components !== 'object') throw new Error('unknown shape');
    return parsed;
  } catch (err) {
    throw new CstorError('invalid', `${statePath(dataDir)} is not a cstor up state file (${err instanceof Error ? err.message : String(err)}); move it away to start afresh`, { cause: err });
  }
}

export function writeState(state: EmbeddedState): void {
  const file = statePath(state.dataDir);
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  fs.renameSync(tmp, file);
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The command line of a live process (Linux /proc), or null. */
export function commandLineOf(pid: number): string | null {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return null;
  }
}

/** True for a process that exited but was not reaped yet (Linux /proc state Z). */
export function isZombie(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}
