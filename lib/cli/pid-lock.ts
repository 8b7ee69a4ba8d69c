// One daemon per directory: DIR/<name>.lock, created with O_EXCL and holding the owner's pid, so
// a second `cstor pool` (or target, or up) on the same data dir is refused instead of opening the
// same files twice. A lock is stale, and taken over, when its pid is gone, is no longer a
// `cstor <subcommand>` (pid reuse), or is this very process without having taken it here (a
// restarted container often gets the pid its previous incarnation had). flock(2) would be
// simpler, but node has no binding for it.
import fs from 'node:fs';
import path from 'node:path';
import { CstorError } from '../errors.ts';

export interface PidLock {
  readonly file: string;
  /** Removes the lock if this process still holds it (idempotent). */
  release(): void;
}

/** Lock files this process holds (a second take in the same process is a conflict too). */
const held = new Set<string>();

function holderOf(file: string): number | null {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** The argv of a live process (Linux /proc), or null when it is gone or unreadable. */
function argvOf(pid: number): string[] | null {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return null;
  }
}

function isRecent(file: string): boolean {
  try {
    return Date.now() - fs.statSync(file).mtimeMs < 10_000;
  } catch {
    return false;
  }
}

/**
 * Takes DIR/<subcommand>.lock for `cstor <subcommand>`, or throws `conflict` naming the pid that
 * holds it. `dir` must exist.
 */
export function takePidLock(dir: string, subcommand: string): PidLock {
  const file = path.join(dir, `${subcommand}.lock`);
  const isLiveHolder = (pid: number): boolean => {
    if (pid === process.pid) return held.has(file);
    const argv = argvOf(pid);
    return argv !== null && argv.some((a) => a.includes('cstor')) && argv.includes(subcommand);
  };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx');
      try {
        fs.writeSync(fd, `${process.pid}\n`);
      } finally {
        fs.closeSync(fd);
      }
      held.add(file);
      return {
        file,
        release() {
          if (!held.delete(file)) return;
          if (holderOf(file) === process.pid) fs.rmSync(file, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new CstorError('invalid', `cannot create the lock ${file}: ${(err as Error).message}`, { cause: err });
      }
    }
    const holder = holderOf(file);
    // No pid yet: the holder is between its create and its write (stale only once old).
    if (holder === null ? isRecent(file) : isLiveHolder(holder)) {
      throw new CstorError('conflict', `another cstor ${subcommand} (pid ${holder ?? 'unknown'}) is running on ${dir} (${file}); stop it first`);
    }
    fs.rmSync(file, { force: true });
  }
  throw new CstorError('conflict', `another cstor ${subcommand} took ${file} at the same time; stop it first`);
}
