// The seed walkthrough on the real embedded stack, through kubectl (DESIGN.md §1, issue 6 "Show"):
// `cstor up` as a real process on a temp dir (ports picked by the OS); `kubectl apply` a PVC on
// openebs-cstor-default, data written over iSCSI to the PV's spec.iscsi portal/IQN (qemu-io), a
// VolumeSnapshot, more data, a promoter PVC; `kubectl get`/`describe` show them and the Ready
// condition; the clone's bytes equal the source's at snapshot time. Then the snapshot and the
// source PVC are deleted while the clone exists: the clone keeps all its data. Bad input gets a
// condition or an Event naming the problem. `cstor up` is stopped with SIGINT (always) and no
// child it started is left alive.
import { expect } from 'chai';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { promisify } from 'node:util';
import { hasPattern, iscsiUrl, readRecord, writePattern, writeRecord } from '../../lib/demo/iscsi-io.ts';
import { isProcessAlive, type EmbeddedState } from '../../lib/embedded/state.ts';
import type { IscsiVolumeSource } from '../../lib/kube/types/core.ts';
import { cstorBin, repoRoot } from '../support/daemon.ts';
import { kubectl as kubectlIn } from '../support/kubectl.ts';
import { until } from './stack.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const volumeBytes = 64 * MiB;

interface KubeEvent {
  type?: string;
  reason?: string;
  message?: string;
  involvedObject: { kind?: string; name?: string; namespace?: string };
}

describe('seed walkthrough through kubectl on `cstor up` (real processes)', function () {
  this.timeout(180_000);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-e2e-'));
  const manifests = path.join(dataDir, 'manifests');
  const kubeconfig = path.join(dataDir, 'kubeconfig');
  const pids = new Set<number>();
  const upLines: string[] = [];
  let up: ChildProcess | undefined;
  let upExit: Promise<[number | null, string | null]> | undefined;
  let sourceUrl = '';
  let cloneUrl = '';
  let sourcePv = '';
  let snapshotDataName = '';

  const kubectl = (...args: string[]): Promise<string> => kubectlIn(kubeconfig, ...args);
  const getJson = async <T>(...args: string[]): Promise<T> => JSON.parse(await kubectl('get', ...args, '-o', 'json')) as T;
  const apply = async (name: string, yaml: string): Promise<string> => {
    const file = path.join(manifests, `${name}.yaml`);
    fs.writeFileSync(file, yaml);
    return kubectl('apply', '-f', file);
  };
  const waitBound = async (ns: string, claim: string): Promise<{ pv: string; iscsi: IscsiVolumeSource }> => {
    const pvName = await until(
      `claim ${ns}/${claim} Bound`,
      async () => {
        const c = await getJson<{ status?: { phase?: string }; spec: { volumeName?: string } }>('pvc', '-n', ns, claim);
        return c.status?.phase === 'Bound' ? c.spec.volumeName : undefined;
      },
      60_000,
    );
    const pv = await getJson<{ spec: { iscsi?: IscsiVolumeSource } }>('pv', pvName);
    expect(pv.spec.iscsi, `PV ${pvName} spec.iscsi`).to.be.an('object');
    return { pv: pvName, iscsi: pv.spec.iscsi! };
  };
  const conditionsOf = async (ns: string, name: string): Promise<{ type: string; status: string; reason?: string; message?: string }[]> => {
    const s = await getJson<{ status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] } }>('volumesnapshot', '-n', ns, name);
    return s.status?.conditions ?? [];
  };
  const warningsAbout = async (ns: string, name: string): Promise<KubeEvent[]> => {
    const list = await getJson<{ items: KubeEvent[] }>('events', '-n', ns);
    return list.items.filter((e) => e.type === 'Warning' && e.involvedObject.name === name);
  };
  const claimYaml = (o: { ns: string; name: string; cls: string; size: string; snapshot?: string }): string =>
    [
      'apiVersion: v1',
      'kind: PersistentVolumeClaim',
      'metadata:',
      `  name: ${o.name}`,
      `  namespace: ${o.ns}`,
      ...(o.snapshot ? ['  annotations:', `    snapshot.alpha.kubernetes.io/snapshot: ${o.snapshot}`] : []),
      'spec:',
      `  storageClassName: ${o.cls}`,
      '  accessModes: [ReadWriteOnce]',
      `  resources: {requests: {storage: ${o.size}}}`,
      '',
    ].join('\n');
  const snapshotYaml = (ns: string, name: string, claim: string): string =>
    ['apiVersion: volumesnapshot.external-storage.k8s.io/v1', 'kind: VolumeSnapshot', `metadata: {name: ${name}, namespace: ${ns}}`, `spec: {persistentVolumeClaimName: ${claim}}`, ''].join('\n');

  before(async function () {
    fs.mkdirSync(manifests);
    up = spawn(process.execPath, [cstorBin, 'up', '--data-dir', dataDir, '--ports', 'any', '--log-format', 'json', '--stop-grace', '8000'], {
      cwd: repoRoot,
      env: { ...process.env, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    upExit = once(up, 'exit') as Promise<[number | null, string | null]>;
    readline.createInterface({ input: up.stdout! }).on('line', (l) => upLines.push(l));
    readline.createInterface({ input: up.stderr! }).on('line', (l) => upLines.push(l));
    await until(
      'cstor up: "embedded system ready"',
      async () => {
        if (up!.exitCode !== null) throw new Error(`cstor up exited ${up!.exitCode}:\n${upLines.slice(-30).join('\n')}`);
        return upLines.some((l) => l.includes('"embedded system ready"'));
      },
      150_000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\nlast lines of cstor up:\n${upLines.slice(-30).join('\n')}`);
    });
    const state = JSON.parse(fs.readFileSync(path.join(dataDir, 'state.json'), 'utf8')) as EmbeddedState;
    for (const c of Object.values(state.components)) if (c.pid !== null) pids.add(c.pid);
    expect(Object.keys(state.skipped), 'components skipped by cstor up').to.deep.equal([]);
  });

  after(async () => {
    // Always stop: SIGINT first (the last test asserts on it), then SIGKILL whatever is left.
    if (up && up.exitCode === null && up.signalCode === null) {
      up.kill('SIGINT');
      await Promise.race([upExit, new Promise((r) => setTimeout(r, 30_000))]);
      if (up.exitCode === null && up.signalCode === null) up.kill('SIGKILL');
    }
    for (const pid of pids) if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
    if (process.env.KEEP_E2E_DIR !== '1') fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('kubectl apply a PVC on openebs-cstor-default → Bound to an iSCSI PV; data written over iSCSI', async () => {
    const out = await apply('pvc', claimYaml({ ns: 'default', name: 'openebs-pvc', cls: 'openebs-cstor-default', size: '64Mi' }));
    expect(out).to.match(/persistentvolumeclaim\/openebs-pvc created/);
    const bound = await waitBound('default', 'openebs-pvc');
    sourcePv = bound.pv;
    expect(bound.iscsi.iqn).to.equal(`iqn.2016-09.com.openebs.cstor:${bound.pv}`);
    expect(bound.iscsi.lun).to.equal(0);
    sourceUrl = iscsiUrl(bound.iscsi);
    await writePattern(sourceUrl, { pattern: 0xa1, offset: 0, length: MiB });
    await writeRecord(sourceUrl, 'date.txt: before the snapshot', 4 * MiB);
    expect(await hasPattern(sourceUrl, { pattern: 0xa1, offset: 0, length: MiB })).to.equal(true);
  });

  it('kubectl apply a VolumeSnapshot → Ready with a VolumeSnapshotData', async () => {
    const out = await apply('snapshot', snapshotYaml('default', 'snapshot-demo', 'openebs-pvc'));
    expect(out).to.match(/volumesnapshot\.volumesnapshot\.external-storage\.k8s\.io\/snapshot-demo created/);
    const ready = await until(
      'snapshot-demo Ready',
      async () => {
        const conds = await conditionsOf('default', 'snapshot-demo');
        const err = conds.find((c) => c.type === 'Error' && c.status === 'True');
        if (err) throw new Error(`snapshot-demo Error: ${err.reason}: ${err.message}`);
        return conds.find((c) => c.type === 'Ready' && c.status === 'True');
      },
      30_000,
    );
    expect(ready.message).to.equal('Snapshot created successfully');
    const snap = await getJson<{ spec: { snapshotDataName?: string }; metadata: { labels?: Record<string, string> } }>('volumesnapshot', '-n', 'default', 'snapshot-demo');
    expect(snap.metadata.labels?.['SnapshotMetadata-PVName']).to.equal(sourcePv);
    snapshotDataName = snap.spec.snapshotDataName ?? '';
    expect(snapshotDataName).to.match(/^k8s-volume-snapshot-[0-9a-f-]{36}$/);
    const data = await getJson<{ spec: { openebsVolume?: { snapshotId?: string }; persistentVolumeRef?: { name?: string } } }>('volumesnapshotdata', snapshotDataName);
    expect(data.spec.persistentVolumeRef?.name).to.equal(sourcePv);
    expect(data.spec.openebsVolume?.snapshotId).to.match(new RegExp(`^${sourcePv}_snapshot-demo_\\d+$`));
  });

  it('more data after the snapshot; kubectl apply a promoter PVC → Bound to a clone PV', async () => {
    await writePattern(sourceUrl, { pattern: 0xb2, offset: 0, length: MiB });
    await writePattern(sourceUrl, { pattern: 0xb3, offset: 2 * MiB, length: MiB });
    await writeRecord(sourceUrl, 'date.txt: after the snapshot', 4 * MiB);
    const out = await apply('clone', claimYaml({ ns: 'default', name: 'demo-snap-vol-claim', cls: 'openebs-snapshot-promoter', size: '64Mi', snapshot: 'snapshot-demo' }));
    expect(out).to.match(/persistentvolumeclaim\/demo-snap-vol-claim created/);
    const bound = await waitBound('default', 'demo-snap-vol-claim');
    expect(bound.pv).to.not.equal(sourcePv);
    expect(bound.iscsi.iqn).to.equal(`iqn.2016-09.com.openebs.cstor:${bound.pv}`);
    cloneUrl = iscsiUrl(bound.iscsi);
  });

  it('kubectl get volumesnapshot,volumesnapshotdata lists them; kubectl describe shows the Ready condition', async () => {
    const list = await kubectl('get', 'volumesnapshot,volumesnapshotdata', '-A');
    expect(list).to.include('snapshot-demo');
    expect(list).to.include(snapshotDataName);
    const described = await kubectl('describe', 'volumesnapshot', '-n', 'default', 'snapshot-demo');
    expect(described).to.match(/Type:\s+Ready/);
    expect(described).to.match(/Status:\s+True/);
    expect(described).to.include('Snapshot created successfully');
  });

  it("the clone's bytes equal the source's at snapshot time; the source has the newer data", async () => {
    // The whole clone: the first MiB as at the snapshot, the rest zero (the later 0xb3 MiB is not there).
    expect(await hasPattern(cloneUrl, { pattern: 0xa1, offset: 0, length: MiB }), 'clone MiB 0 = 0xa1').to.equal(true);
    expect(await hasPattern(cloneUrl, { pattern: 0, offset: MiB, length: 3 * MiB }), 'clone MiB 1..3 zero').to.equal(true);
    expect(await readRecord(cloneUrl, 4 * MiB)).to.equal('date.txt: before the snapshot');
    expect(await hasPattern(cloneUrl, { pattern: 0, offset: 4 * MiB + 512, length: volumeBytes - 4 * MiB - 512 }), 'clone rest zero').to.equal(true);
    expect(await hasPattern(sourceUrl, { pattern: 0xb2, offset: 0, length: MiB })).to.equal(true);
    expect(await hasPattern(sourceUrl, { pattern: 0xb3, offset: 2 * MiB, length: MiB })).to.equal(true);
    expect(await readRecord(sourceUrl, 4 * MiB)).to.equal('date.txt: after the snapshot');
  });

  it('deleting the VolumeSnapshot and then the source PVC leaves the clone whole', async () => {
    await kubectl('delete', 'volumesnapshot', '-n', 'default', 'snapshot-demo', '--timeout=60s');
    await until('the VolumeSnapshotData gone', async () => !(await kubectl('get', 'volumesnapshotdata', '-o', 'name')).includes(snapshotDataName), 30_000);
    await kubectl('delete', 'pvc', '-n', 'default', 'openebs-pvc', '--timeout=60s');
    await until('the source PV gone', async () => !(await kubectl('get', 'pv', '-o', 'name')).includes(sourcePv), 60_000);
    await until('the source CStorVolume gone', async () => !(await kubectl('get', 'cstorvolume', '-n', 'openebs', '-o', 'name')).includes(sourcePv), 60_000);
    const clone = await getJson<{ status?: { phase?: string } }>('pvc', '-n', 'default', 'demo-snap-vol-claim');
    expect(clone.status?.phase).to.equal('Bound');
    expect(await hasPattern(cloneUrl, { pattern: 0xa1, offset: 0, length: MiB })).to.equal(true);
    expect(await hasPattern(cloneUrl, { pattern: 0, offset: MiB, length: 3 * MiB })).to.equal(true);
    expect(await readRecord(cloneUrl, 4 * MiB)).to.equal('date.txt: before the snapshot');
    // ... and it is still a working volume.
    await writePattern(cloneUrl, { pattern: 0xc4, offset: 8 * MiB, length: MiB });
    expect(await hasPattern(cloneUrl, { pattern: 0xc4, offset: 8 * MiB, length: MiB })).to.equal(true);
  });

  // Bad input: a condition or an Event naming the problem. (Tests, not a nested describe: mocha
  // runs a suite's own tests before its child suites, and the SIGINT test must come last.)
  it('a snapshot of the clone → Ready (the live snapshot for the bad clone cases)', async () => {
    await apply('snap-of-clone', snapshotYaml('default', 'snap-of-clone', 'demo-snap-vol-claim'));
    await until('snap-of-clone Ready', async () => (await conditionsOf('default', 'snap-of-clone')).some((c) => c.type === 'Ready' && c.status === 'True'), 30_000);
  });

    it('a VolumeSnapshot of a missing PVC: Error condition and Warning Event naming the claim', async () => {
      await apply('snap-missing', snapshotYaml('default', 'snap-missing-pvc', 'no-such-pvc'));
      const err = await until('an Error condition', async () => (await conditionsOf('default', 'snap-missing-pvc')).find((c) => c.type === 'Error' && c.status === 'True'), 30_000);
      expect(err.message).to.include('no-such-pvc');
      expect(err.message).to.match(/not found/);
      const events = await until('a Warning Event', async () => (await warningsAbout('default', 'snap-missing-pvc')).at(-1), 30_000);
      expect(events.message).to.include('no-such-pvc');
      const described = await kubectl('describe', 'volumesnapshot', '-n', 'default', 'snap-missing-pvc');
      expect(described).to.match(/Type:\s+Error/);
    });

    it('a promoter PVC whose annotation names a missing snapshot: ProvisioningFailed naming it, no PV', async () => {
      await apply('clone-missing', claimYaml({ ns: 'default', name: 'clone-missing-snap', cls: 'openebs-snapshot-promoter', size: '64Mi', snapshot: 'no-such-snapshot' }));
      const ev = await until('a Warning Event', async () => (await warningsAbout('default', 'clone-missing-snap')).find((e) => e.reason === 'ProvisioningFailed'), 30_000);
      expect(ev.message).to.include('no-such-snapshot');
      expect(ev.message).to.match(/not found/);
      const claim = await getJson<{ status?: { phase?: string } }>('pvc', '-n', 'default', 'clone-missing-snap');
      expect(claim.status?.phase).to.equal('Pending');
    });

    it('a VolumeSnapshot of an unbound (Pending) PVC: Error condition naming the claim', async () => {
    // clone-missing-snap (above) stays Pending: its snapshot does not exist.
    await apply('snap-unbound', snapshotYaml('default', 'snap-of-unbound', 'clone-missing-snap'));
    const err = await until('an Error condition', async () => (await conditionsOf('default', 'snap-of-unbound')).find((c) => c.type === 'Error' && c.status === 'True'), 30_000);
    expect(err.message).to.include('clone-missing-snap');
    expect(err.message).to.match(/not bound|unbound|Pending/i);
  });

  it('a promoter PVC smaller than its snapshot: ProvisioningFailed saying so', async () => {
      await apply('clone-small', claimYaml({ ns: 'default', name: 'clone-too-small', cls: 'openebs-snapshot-promoter', size: '32Mi', snapshot: 'snap-of-clone' }));
      const ev = await until('a Warning Event', async () => (await warningsAbout('default', 'clone-too-small')).find((e) => e.reason === 'ProvisioningFailed'), 30_000);
      expect(ev.message).to.include('32Mi');
      expect(ev.message).to.match(/smaller/);
      expect(ev.message).to.include('snap-of-clone');
    });

    it('a cross-namespace snapshot reference: ProvisioningFailed naming both namespaces', async () => {
      // `kubectl apply`, not `kubectl create namespace` (that one sends protobuf, which kube-lite refuses).
      await apply('ns-other', 'apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n');
      await apply('clone-cross', claimYaml({ ns: 'other', name: 'clone-cross-ns', cls: 'openebs-snapshot-promoter', size: '64Mi', snapshot: 'default/snap-of-clone' }));
      const ev = await until('a Warning Event', async () => (await warningsAbout('other', 'clone-cross-ns')).find((e) => e.reason === 'ProvisioningFailed'), 30_000);
      expect(ev.message).to.match(/cross-namespace/);
      expect(ev.message).to.include('default');
      expect(ev.message).to.include('other');
    });

  it('`cstor demo` tells the story on the same system: every step timed, the clone as at the snapshot, cleaned up', async () => {
    const { stdout } = await run(process.execPath, [cstorBin, 'demo', '--data-dir', dataDir], { cwd: repoRoot, timeout: 120_000 });
    expect(stdout).to.match(/1\. create PVC default\/demo-pvc-[0-9a-f]{6} .*→ Bound/);
    expect(stdout).to.match(/3\. create VolumeSnapshot .*→ Ready/);
    expect(stdout).to.include('"Snapshot created successfully"; VolumeSnapshotData k8s-volume-snapshot-');
    expect(stdout).to.match(/6\. read date\.txt from the clone.*\n\s+done in \d+(\.\d+)? m?s: yes: "date\.txt: .* \(written before the snapshot\)"/);
    expect(stdout).to.match(/7\. read date\.txt from the source.*\n\s+done in \d+(\.\d+)? m?s: yes: "date\.txt: .* \(written after the snapshot\)"/);
    expect(stdout).to.match(/^#\s+step\s+time$/m);
    expect(stdout).to.include('cleaned up');
    const left = await kubectl('get', 'pvc,volumesnapshot', '-A', '-o', 'name');
    expect(left).to.not.match(/demo-(pvc|snap|clone)-[0-9a-f]{6}$/m);
  });

  it('`cstor demo` on a data dir with no cstor up: exit 1 and says how to start one', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-e2e-none-'));
    try {
      const err = await run(process.execPath, [cstorBin, 'demo', '--data-dir', empty], { cwd: repoRoot, timeout: 60_000 }).then(
        () => null,
        (e: unknown) => e as { code?: number; stderr?: string },
      );
      expect(err?.code).to.equal(1);
      expect(err?.stderr).to.include('no cstor up has run on');
      expect(err?.stderr).to.include('cstor.js up --data-dir');
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });

  it('cstor up stops on SIGINT with exit 0 and leaves no child alive', async () => {
    expect(up, 'cstor up started').to.not.equal(undefined);
    // Components restarted meanwhile have new pids: take them from state.json too.
    const state = JSON.parse(fs.readFileSync(path.join(dataDir, 'state.json'), 'utf8')) as EmbeddedState;
    for (const c of Object.values(state.components)) if (c.pid !== null) pids.add(c.pid);
    up!.kill('SIGINT');
    const [code, signal] = await Promise.race([upExit!, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('cstor up did not exit within 60 s of SIGINT')), 60_000))]);
    expect({ code, signal }).to.deep.equal({ code: 0, signal: null });
    const alive = [...pids].filter(isProcessAlive);
    expect(alive, 'pids still alive').to.deep.equal([]);
  });
});
