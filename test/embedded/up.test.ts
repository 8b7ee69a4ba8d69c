// `cstor up` as a real process on a temporary data dir: kubeconfig printed, deploy/ applied to
// kube-lite (both StorageClasses, every CRD), every component running (pids from state.json),
// a component killed with -9 restarted (and logged), SIGINT → exit 0 with no child left, and a
// second `up` on the same dir resuming with the same objects and ports.
import { expect } from 'chai';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { promisify } from 'node:util';
import { cstorBin, repoRoot } from '../support/daemon.ts';
import { isProcessAlive, type EmbeddedState } from '../../lib/embedded/state.ts';
import { kubectl } from '../support/kubectl.ts';

const run = promisify(execFile);

interface Up {
  proc: ChildProcess;
  lines: string[];
  entries: Record<string, unknown>[];
  waitFor(pred: (e: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>>;
  exit: Promise<[number | null, string | null]>;
}

const ups: Up[] = [];

function startUp(dataDir: string): Up {
  const proc = spawn(process.execPath, [cstorBin, 'up', '--data-dir', dataDir, '--ports', 'any', '--log-format', 'json', '--stop-grace', '8000'], {
    cwd: repoRoot,
    env: { ...process.env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const entries: Record<string, unknown>[] = [];
  const onLine = (line: string): void => {
    lines.push(line);
    if (!line.startsWith('{')) return;
    try {
      entries.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      /* not a log line */
    }
  };
  readline.createInterface({ input: proc.stdout! }).on('line', onLine);
  readline.createInterface({ input: proc.stderr! }).on('line', onLine);
  const exit = once(proc, 'exit') as Promise<[number | null, string | null]>;
  const up: Up = {
    proc,
    lines,
    entries,
    exit,
    async waitFor(pred, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = entries.find(pred);
        if (found) return found;
        if (proc.exitCode !== null) throw new Error(`cstor up exited (${proc.exitCode}):\n${lines.slice(-40).join('\n')}`);
        if (Date.now() > deadline) throw new Error(`cstor up: no matching line in ${timeoutMs} ms; last lines:\n${lines.slice(-40).join('\n')}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
  ups.push(up);
  return up;
}

function readStateFile(dataDir: string): EmbeddedState {
  return JSON.parse(fs.readFileSync(path.join(dataDir, 'state.json'), 'utf8')) as EmbeddedState;
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

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('cstor up (the embedded default, real processes)', function () {
  this.timeout(300_000);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-up-'));
  const kubeconfig = path.join(dataDir, 'kubeconfig');
  const allPids = new Set<number>();
  let first: Up;
  let firstState: EmbeddedState;
  let scUids: string;

  const remember = (s: EmbeddedState): void => {
    for (const c of Object.values(s.components)) if (c.pid !== null) allPids.add(c.pid);
  };

  after(async () => {
    // a failed test may leave an `up` running: stop it properly, then make sure, by pid and by
    // scanning /proc for anything started on this data dir, that nothing is left
    for (const up of ups) {
      if (up.proc.exitCode !== null || up.proc.signalCode !== null) continue;
      up.proc.kill('SIGTERM');
      const timer = setTimeout(() => up.proc.kill('SIGKILL'), 30_000);
      await up.exit;
      clearTimeout(timer);
    }
    for (const pid of allPids) if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
    for (const pid of pidsUsing(dataDir)) process.kill(pid, 'SIGKILL');
    if (process.env.KEEP_UP_DIR !== '1') fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('starts, prints the kubeconfig path and the kubectl commands', async () => {
    first = startUp(dataDir);
    const ready = await first.waitFor((e) => e.message === 'embedded system ready', 240_000);
    expect(ready.kubeconfig).to.equal(kubeconfig);
    await until('the banner', () => first.lines.some((l) => l.includes('kubectl --kubeconfig')), 5000);
    expect(first.lines).to.include(`  kubeconfig: ${kubeconfig}`);
    expect(first.lines.some((l) => l.includes(`kubectl --kubeconfig ${kubeconfig} get sc,pvc,volumesnapshot`))).to.equal(true);
    expect(fs.existsSync(kubeconfig)).to.equal(true);
  });

  it('kubectl lists both StorageClasses and every CRD of deploy/crds', async () => {
    const sc = await kubectl(kubeconfig, 'get', 'sc', '-o', 'custom-columns=NAME:.metadata.name,PROVISIONER:.provisioner,RECLAIM:.reclaimPolicy,REPLICAS:.parameters.replicaCount', '--no-headers');
    expect(sc).to.match(/openebs-cstor-default\s+openebs\.io\/provisioner-iscsi\s+Delete\s+3/);
    expect(sc).to.match(/openebs-snapshot-promoter\s+volumesnapshot\.external-storage\.k8s\.io\/snapshot-promoter\s+Delete/);
    const crds = (await kubectl(kubeconfig, 'get', 'crd', '-o', 'name')).trim().split('\n').map((l) => l.replace(/^.*\//, ''));
    const expected = fs.readdirSync(path.join(repoRoot, 'deploy', 'crds')).map((f) => f.replace(/\.yaml$/, ''));
    expect(expected.length).to.be.at.least(7);
    expect(crds).to.include.members(expected);
    const ep = JSON.parse(await kubectl(kubeconfig, '-n', 'openebs', 'get', 'endpoints', 'maya-apiserver-service', '-o', 'json')) as {
      subsets: { addresses: { ip: string }[]; ports: { port: number }[] }[];
    };
    firstState = readStateFile(dataDir);
    expect(`http://${ep.subsets[0]!.addresses[0]!.ip}:${ep.subsets[0]!.ports[0]!.port}`).to.equal(firstState.endpoints.mapi);
    scUids = await kubectl(kubeconfig, 'get', 'sc', '-o', 'jsonpath={.items[*].metadata.uid}');
    // `up` records kubectl's last-applied annotation byte for byte: kubectl apply agrees nothing changed
    const applied = await kubectl(kubeconfig, 'apply', '-f', path.join(repoRoot, 'deploy', '50-storageclasses.yaml'), '-f', path.join(repoRoot, 'deploy', '00-namespace.yaml'), '-f', path.join(repoRoot, 'deploy', 'crds'));
    const lines = applied.trim().split('\n');
    expect(lines.length).to.be.at.least(10);
    expect(lines.filter((l) => !l.endsWith(' unchanged'))).to.deep.equal([]);
    const cm = path.join(dataDir, '..', `${path.basename(dataDir)}-cm.json`);
    fs.writeFileSync(cm, JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'resume-check', namespace: 'default' }, data: { a: '1' } }));
    await kubectl(kubeconfig, 'create', '-f', cm);
    fs.rmSync(cm);
  });

  let volume: { portal: string; iqn: string };
  it('provisions a cStor volume for a PVC end to end, and takes data over iSCSI', async () => {
    const pvc = path.join(dataDir, '..', `${path.basename(dataDir)}-pvc.json`);
    fs.writeFileSync(pvc, JSON.stringify({
      apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'resume-pvc', namespace: 'default' },
      spec: { storageClassName: 'openebs-cstor-default', accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '16Mi' } } },
    }));
    await kubectl(kubeconfig, 'create', '-f', pvc);
    fs.rmSync(pvc);
    const pv = await until('the claim Bound', async () => {
      const out = await kubectl(kubeconfig, 'get', 'pvc', 'resume-pvc', '-o', 'jsonpath={.status.phase} {.spec.volumeName}');
      const [phase, name] = out.split(' ');
      return phase === 'Bound' && name;
    }, 150_000);
    await until('the volume Healthy', async () => (await kubectl(kubeconfig, '-n', 'openebs', 'get', 'cstorvolume', pv, '-o', 'jsonpath={.status.phase}')) === 'Healthy', 60_000);
    const iscsi = JSON.parse(await kubectl(kubeconfig, 'get', 'pv', pv, '-o', 'jsonpath={.spec.iscsi}')) as { targetPortal: string; iqn: string };
    volume = { portal: iscsi.targetPortal, iqn: iscsi.iqn };
    expect(volume.portal).to.equal(readStateFile(dataDir).endpoints.targetPortal);
    await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 1M', `iscsi://${volume.portal}/${volume.iqn}/0`], { timeout: 60_000 });
  });

  it('runs every component as its own process, with pids and addresses in state.json', () => {
    const s = readStateFile(dataDir);
    remember(s);
    expect(s.upPid).to.equal(first.proc.pid);
    const required = ['kube-lite', 'pool-1', 'pool-2', 'pool-3', 'target', 'mapi'];
    const optional = ['volume-provisioner', 'snapshot-controller', 'snapshot-provisioner'];
    for (const name of required) expect(s.components, name).to.have.property(name);
    for (const name of optional) expect(Object.hasOwn(s.components, name) || Object.hasOwn(s.skipped, name), name).to.equal(true);
    for (const c of Object.values(s.components)) {
      expect(c.pid, `${c.name} pid`).to.be.a('number');
      expect(isProcessAlive(c.pid!), `${c.name} alive`).to.equal(true);
      const cmd = fs.readFileSync(`/proc/${c.pid!}/cmdline`, 'utf8').split('\0');
      expect(cmd, c.name).to.include(c.subcommand);
    }
    expect(new Set(Object.values(s.components).map((c) => c.pid)).size).to.equal(Object.keys(s.components).length);
    expect(s.endpoints.kubeApi).to.match(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(s.endpoints.mapi).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(s.endpoints.targetPortal).to.match(/^127\.0\.0\.1:\d+$/);
    expect(Object.keys(s.endpoints.pools)).to.deep.equal(['pool-1', 'pool-2', 'pool-3']);
  });

  it('restarts a component killed with -9 and says so', async () => {
    const before = readStateFile(dataDir).components['pool-2']!;
    process.kill(before.pid!, 'SIGKILL');
    // (a restart for another reason, e.g. a crash at start on this busy machine, may come first)
    const line = await first.waitFor((e) => e.message === 'child restarted' && e.child === 'pool-2' && e.lastSignal === 'SIGKILL', 60_000);
    expect(line.restarts).to.equal(before.restarts + 1);
    expect(first.entries.some((e) => e.message === 'child exited: restarting it' && e.child === 'pool-2' && e.signal === 'SIGKILL')).to.equal(true);
    const after = await until('pool-2 running again', () => {
      const c = readStateFile(dataDir).components['pool-2']!;
      return c.state === 'running' && c.pid !== null && c.pid !== before.pid && c;
    }, 30_000);
    allPids.add(after.pid!);
    expect(isProcessAlive(after.pid!)).to.equal(true);
    // it comes back on the same ports (pinned), so the target's connections find it again:
    // the new process's own "listening" lines in its log file name the same addresses
    const relisted = await until('pool-2 listening again', () => {
      const log = fs.readFileSync(path.join(dataDir, 'logs', 'pool-2.log'), 'utf8');
      const run = log.slice(log.lastIndexOf(`started pid ${after.pid!}:`));
      const found: Record<string, string> = {};
      for (const l of run.split('\n').filter((x) => x.includes('"listening"'))) {
        const e = JSON.parse(l) as { listener: string; address: string };
        found[e.listener] = e.address;
      }
      return found.replica && found.mgmt && found;
    }, 60_000);
    expect(relisted).to.deep.equal(before.addresses);
  });

  it('SIGINT stops everything: exit code 0, no component left running', async () => {
    remember(readStateFile(dataDir));
    first.proc.kill('SIGINT');
    const [code, signal] = await first.exit;
    expect({ code, signal }).to.deep.equal({ code: 0, signal: null });
    expect([...allPids].filter(isProcessAlive)).to.deep.equal([]);
    const s = readStateFile(dataDir);
    expect(s.upPid).to.equal(null);
    expect(Object.values(s.components).every((c) => c.state === 'stopped' && c.pid === null)).to.equal(true);
    expect(first.entries.some((e) => e.message === 'everything stopped')).to.equal(true);
  });

  let second: Up;
  it('a second up on the same dir resumes: same objects, same ports', async () => {
    second = startUp(dataDir);
    await second.waitFor((e) => e.message === 'embedded system ready', 240_000);
    const s = readStateFile(dataDir);
    remember(s);
    expect(s.endpoints.kubeApi).to.equal(firstState.endpoints.kubeApi);
    expect(s.endpoints.mapi).to.equal(firstState.endpoints.mapi);
    expect(s.endpoints.targetPortal).to.equal(firstState.endpoints.targetPortal);
    expect(await kubectl(kubeconfig, 'get', 'sc', '-o', 'jsonpath={.items[*].metadata.uid}')).to.equal(scUids);
    expect(await kubectl(kubeconfig, 'get', 'configmap', 'resume-check', '-o', 'jsonpath={.data.a}')).to.equal('1');
    const applied = second.entries.find((e) => e.message === 'manifests applied')!;
    expect(applied.created).to.equal(0);
    // the same volume, with its data, at the same portal
    const { stdout } = await until('the volume served again', async () => {
      try {
        return await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0x5a 0 1M', `iscsi://${volume.portal}/${volume.iqn}/0`], { timeout: 60_000 });
      } catch {
        return undefined;
      }
    }, 90_000);
    expect(stdout).to.include('read 1048576/1048576 bytes at offset 0');
    expect(stdout).to.not.include('Pattern verification failed');
  });

  it('after `up` itself is killed with -9, the next `up` on the dir kills the components it left, resumes, and stops cleanly', async () => {
    const left = readStateFile(dataDir);
    remember(left);
    second.proc.kill('SIGKILL');
    await second.exit;
    const orphans = Object.values(left.components).map((c) => c.pid!).filter(isProcessAlive);
    const third = startUp(dataDir);
    await third.waitFor((e) => e.message === 'embedded system ready', 240_000);
    // (an orphan may also die by itself meanwhile: its stdout pipe is gone, a log write fails)
    const killed = third.entries.filter((e) => e.message === 'killing a component left running by an earlier cstor up').map((e) => e.pid);
    expect(orphans.filter((pid) => !killed.includes(pid) && isProcessAlive(pid))).to.deep.equal([]);
    for (const pid of killed) expect(orphans, `killed pid ${String(pid)} was one of the components left`).to.include(pid);
    const now = readStateFile(dataDir);
    remember(now);
    expect(Object.values(left.components).map((c) => c.pid!).filter(isProcessAlive)).to.deep.equal([]);
    expect(Object.values(now.components).every((c) => c.pid !== null && isProcessAlive(c.pid))).to.equal(true);
    expect(now.endpoints.kubeApi).to.equal(firstState.endpoints.kubeApi);
    expect(await kubectl(kubeconfig, 'get', 'configmap', 'resume-check', '-o', 'jsonpath={.data.a}')).to.equal('1');
    third.proc.kill('SIGTERM');
    expect(await third.exit).to.deep.equal([0, null]);
    expect([...allPids].filter(isProcessAlive)).to.deep.equal([]);
    expect(pidsUsing(dataDir)).to.deep.equal([]);
  });
});
