// Helpers for the target's cross-process tests: pools, a target, qemu-io, the mgmt API.
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import axios, { type AxiosResponse } from 'axios';
import { connectReplica } from '../../lib/replica-protocol/client.ts';
import type { ReplicaClient } from '../../lib/replica-protocol/types.ts';
import { startDaemon, type Daemon } from '../support/daemon.ts';

export async function tempDir(prefix: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

export function http(base: string, method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, data?: unknown): Promise<AxiosResponse> {
  return axios.request({ baseURL: `http://${base}`, method, url, data, validateStatus: () => true, timeout: 30_000 });
}

/** Polls `fn` every 100 ms until it returns true (bounded by timeoutMs). */
export async function until(fn: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 100_000; i++) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface PoolProc {
  name: string;
  dir: string;
  replicaAddress: string;
  daemon: Daemon;
}

export async function startPool(name: string, dir: string, replicaAddress = '127.0.0.1:0'): Promise<PoolProc> {
  const daemon = await startDaemon(['pool', '--name', name, '--data-dir', dir, '--listen', replicaAddress, '--mgmt', '127.0.0.1:0'], {
    listeners: ['replica', 'mgmt'],
  });
  return { name, dir, replicaAddress: daemon.addresses.replica!, daemon };
}

export async function startTarget(dataDir: string, extraArgs: readonly string[] = []): Promise<Daemon> {
  return startDaemon(['target', '--iscsi', '127.0.0.1:0', '--mgmt', '127.0.0.1:0', '--data-dir', dataDir, ...extraArgs], { listeners: ['iscsi', 'mgmt'] });
}

export interface QemuRun {
  /** Resolves with the exit code (or signal) and every stdout/stderr line. */
  done: Promise<{ code: number | string; lines: string[] }>;
  lines: string[];
  /** Resolves once `n` lines match `re`. */
  waitLines(re: RegExp, n: number, timeoutMs: number): Promise<void>;
  kill(): void;
}

/** Runs qemu-io with commands against iscsi://portal/iqn/0. Fails (never skips) when qemu-io is missing. */
export function qemuIo(portal: string, volume: string, commands: string[]): QemuRun {
  const url = `iscsi://${portal}/iqn.2016-09.com.openebs.cstor:${volume}/0`;
  const proc = spawn('qemu-io', ['-f', 'raw', ...commands.flatMap((c) => ['-c', c]), url], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const watchers: (() => void)[] = [];
  const onLine = (l: string): void => {
    lines.push(l);
    for (const w of [...watchers]) w();
  };
  readline.createInterface({ input: proc.stdout }).on('line', onLine);
  readline.createInterface({ input: proc.stderr }).on('line', onLine);
  const done = new Promise<{ code: number | string; lines: string[] }>((resolve, reject) => {
    proc.on('error', (err) => reject(new Error(`qemu-io could not run (is qemu-utils installed?): ${err.message}`)));
    proc.on('exit', (code, signal) => resolve({ code: code ?? signal ?? 0, lines }));
  });
  return {
    done,
    lines,
    waitLines(re, n, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (lines.filter((l) => re.test(l)).length < n) return;
          clearTimeout(timer);
          watchers.splice(watchers.indexOf(check), 1);
          resolve();
        };
        const timer = setTimeout(() => {
          watchers.splice(watchers.indexOf(check), 1);
          reject(new Error(`qemu-io: fewer than ${n} lines matching ${re} in ${timeoutMs} ms:\n${lines.slice(-20).join('\n')}`));
        }, timeoutMs);
        watchers.push(check);
        check();
      });
    },
    kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    },
  };
}

/** What a replica holds, read through the replica protocol: the head, and each snapshot's point-in-time view. */
export async function replicaImage(address: string, volume: string, size: number, blockSize: number): Promise<{ head: Buffer; snapshots: Map<string, Buffer> }> {
  const client: ReplicaClient = await connectReplica(address, { timeoutMs: 10_000 });
  try {
    await client.open({ volume, size, blockSize, replicationFactor: 3, targetId: 'test-compare' });
    const head = Buffer.alloc(size);
    for (let off = 0; off < size; off += 1 << 20) (await client.read(off, 1 << 20)).copy(head, off);
    const snapshots = new Map<string, Buffer>();
    const view = Buffer.alloc(size);
    for (const s of await client.snapshotList()) {
      let cursor = 0;
      for (let page = 0; page < 100_000; page++) {
        const got = await client.readLayer(s.name, cursor, 1 << 20);
        for (const run of got.runs) run.data.copy(view, run.offset);
        if (got.next === null) break;
        cursor = got.next;
      }
      snapshots.set(s.name, Buffer.from(view));
    }
    return { head, snapshots };
  } finally {
    await client.close();
  }
}
