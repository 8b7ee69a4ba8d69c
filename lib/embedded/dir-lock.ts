// One `cstor up` per data dir: DIR/up.lock (lib/cli/pid-lock.ts). The state file's upPid only
// appears once the first component starts, so two `up`s started together on a fresh dir would
// both pass that check and run two kube-lites on one store; the lock closes that window.
import { takePidLock, type PidLock } from '../cli/pid-lock.ts';

export type DirLock = PidLock;

/** Takes DIR/up.lock or throws `conflict` naming the pid that holds it. */
export function lockDataDir(dataDir: string): DirLock {
  return takePidLock(dataDir, 'up');
}
