// kubectl for the tests: which binaries the kube-lite tests run (the machine's and Debian's 1.20),
// a synchronous runner that returns the exit code, and an async one that throws naming the command.
// A missing kubectl fails the test (never a skip): .ci/run installs both.
import { execFile, spawnSync } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { repoRoot } from './daemon.ts';

const run = promisify(execFile);

export interface KubectlBinary {
  label: string;
  bin: string;
  /** Short name for object names that must differ per binary. */
  tag: 'new' | 'old';
}

/** The machine's kubectl (v1.32) and Debian's 1.20 (env KUBECTL_OLD, default .ci/cache/kubectl-1.20/usr/bin/kubectl). */
export const kubectlBinaries: readonly KubectlBinary[] = [
  { label: 'kubectl (machine, v1.32)', bin: 'kubectl', tag: 'new' },
  { label: 'kubectl 1.20 (Debian)', bin: process.env.KUBECTL_OLD ?? path.join(repoRoot, '.ci/cache/kubectl-1.20/usr/bin/kubectl'), tag: 'old' },
];

export interface KubectlResult {
  code: number;
  out: string;
  err: string;
}

export interface SyncKubectl {
  /** Runs `bin --kubeconfig K ...args` (30 s at most) and returns its exit code and output. */
  k(...args: string[]): KubectlResult;
  /** As k, expecting exit code 0; returns stdout. */
  ok(...args: string[]): string;
}

/** `kubeconfig` is read at each call, so a suite can make the runner before its `before` hook starts the cluster. */
export function syncKubectl(bin: string, kubeconfig: () => string): SyncKubectl {
  const k = (...args: string[]): KubectlResult => {
    const r = spawnSync(bin, ['--kubeconfig', kubeconfig(), ...args], { encoding: 'utf8', timeout: 30_000 });
    if (r.error) throw new Error(`${bin}: ${r.error.message} (is kubectl installed? .ci/run installs it)`);
    return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
  };
  const ok = (...args: string[]): string => {
    const r = k(...args);
    expect(r.code, `kubectl ${args.join(' ')}: ${r.err}`).to.equal(0);
    return r.out;
  };
  return { k, ok };
}

/** The machine's `kubectl --kubeconfig K ...args` (60 s at most): its stdout; a failure throws naming the command and its stderr. */
export async function kubectl(kubeconfig: string, ...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('kubectl', ['--kubeconfig', kubeconfig, ...args], { timeout: 60_000 });
    return stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error('kubectl is not installed (this test needs it)', { cause: err });
    throw new Error(`kubectl ${args.join(' ')}: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}
