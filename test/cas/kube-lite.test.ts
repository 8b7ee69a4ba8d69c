// The CAS engine against a real kube-lite process: the CRDs of deploy/crds are accepted and keep
// every field the templates write, the templates install, volume create and snapshot create run
// over lib/kube (TransportKubeObjects) and NodeHttpCaller to an HTTP target mgmt stand-in,
// an edit of a RunTask through the API changes the next run, and kubectl prints our columns.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { loadAll } from 'js-yaml';
import { CstorError, hasErrorCode } from '../../lib/errors.ts';
import { loadKubeConfig } from '../../lib/kube/kubeconfig.ts';
import { HttpKubeTransport } from '../../lib/kube/transport.ts';
import { silentLogger } from '../../lib/logger.ts';
import { NodeHttpCaller } from '../../maya-apiserver/cas/node-http-caller.ts';
import { CasEngine } from '../../maya-apiserver/cas/engine.ts';
import type { FakeTargetMgmt } from '../../maya-apiserver/cas/fakes.ts';
import { installTemplates } from '../../maya-apiserver/cas/install.ts';
import type { KubeObject } from '../../maya-apiserver/cas/ports.ts';
import { TransportKubeObjects } from '../../maya-apiserver/cas/transport-kube-objects.ts';
import { CasFlows } from '../../maya-apiserver/flows/cas-flows.ts';
import { repoRoot, stopAll } from '../support/daemon.ts';
import { startKubeLiteProc, type KubeLiteProc } from '../kube-lite/support.ts';
import { startFakeTarget, type FakeTargetServer } from '../mapi/support.ts';
import { kubectl } from '../support/kubectl.ts';

const ns = 'openebs';

async function eventually<T>(fn: () => Promise<T>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      return await fn();
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`${what}: ${last instanceof Error ? last.message : String(last)}`);
}

describe('CAS engine on kube-lite', function () {
  this.timeout(60_000);
  let kl: KubeLiteProc;
  let kube: TransportKubeObjects;
  let target: FakeTargetMgmt;
  let fakeTarget: FakeTargetServer | undefined;
  let targetAddress: string;
  let flows: CasFlows;
  let controller: NodeJS.Timeout | undefined;

  before(async () => {
    kl = await startKubeLiteProc();
    const { kubeConfig } = loadKubeConfig({ kubeconfigPath: kl.kubeconfig, env: {} });
    kube = new TransportKubeObjects(new HttpKubeTransport(kubeConfig));
    fakeTarget = await startFakeTarget();
    ({ target, address: targetAddress } = fakeTarget);
    await kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    const crdDir = path.join(repoRoot, 'deploy', 'crds');
    for (const file of readdirSync(crdDir).filter((f) => f.endsWith('.yaml'))) {
      for (const doc of loadAll(readFileSync(path.join(crdDir, file), 'utf8'))) await kube.create(doc as KubeObject);
    }
    await eventually(() => kube.list({ apiVersion: 'openebs.io/v1alpha1', kind: 'RunTask', namespace: ns }), 'RunTask CRD established');
    await eventually(() => kube.list({ apiVersion: 'openebs.io/v1alpha1', kind: 'CStorVolume', namespace: ns }), 'CStorVolume CRD established');
    await installTemplates({ kube, logger: silentLogger(), namespace: ns });
    for (const pool of ['pool-a', 'pool-b', 'pool-c']) {
      const ref = { apiVersion: 'openebs.io/v1alpha1', kind: 'CStorPool', name: pool };
      await kube.create({ ...ref, metadata: { name: pool }, spec: { path: `/var/pools/${pool}` } });
      await kube.patchStatus(ref, { status: { phase: 'Online', address: '127.0.0.1:3232', capacity: { total: '10G', free: '10G' } } });
    }
    const engine = new CasEngine({
      kube,
      http: new NodeHttpCaller({ timeoutMs: 5000 }),
      logger: silentLogger(),
      namespace: ns,
      env: { targetIP: '127.0.0.1', targetPortal: '127.0.0.1:3260', targetMgmtAddress: targetAddress },
    });
    flows = new CasFlows({ engine, kube, logger: silentLogger() });
    // Plays the target: a CStorVolume without status turns Healthy.
    let busy = false;
    controller = setInterval(() => {
      if (busy) return;
      busy = true;
      void (async () => {
        for (const cv of await kube.list({ apiVersion: 'openebs.io/v1alpha1', kind: 'CStorVolume', namespace: ns })) {
          const status = cv['status'] as { phase?: string } | undefined;
          if (!status?.phase) {
            const name = String(cv.metadata.name);
            await kube.patchStatus({ apiVersion: cv.apiVersion, kind: cv.kind, namespace: ns, name }, { status: { phase: 'Healthy', replicaStatuses: [] } });
            if (!target.volumes.has(name)) target.addVolume(name);
          }
        }
      })()
        .catch(() => undefined)
        .finally(() => (busy = false));
    }, 25);
  });

  after(async () => {
    if (controller) clearInterval(controller);
    await fakeTarget?.close();
    await stopAll();
  });

  it('creates a volume whose objects keep every field, then snapshots it through the target mgmt API', async () => {
    const out = await flows.createVolume({ metadata: { name: 'pvc-kl', namespace: 'default' }, spec: { capacity: '2G' } });
    expect(out).to.nested.include({ 'status.Phase': 'Healthy', 'spec.replicas': 3, 'spec.iqn': 'iqn.2016-09.com.openebs.cstor:pvc-kl' });
    const cv = await kube.get({ apiVersion: 'openebs.io/v1alpha1', kind: 'CStorVolume', namespace: ns, name: 'pvc-kl' });
    expect(cv['spec']).to.deep.equal({
      targetIP: '127.0.0.1',
      targetPortal: '127.0.0.1:3260',
      targetMgmtAddress: targetAddress,
      iqn: 'iqn.2016-09.com.openebs.cstor:pvc-kl',
      capacity: '2G',
      replicationFactor: 3,
      consistencyFactor: 2,
    });
    const cvrs = await kube.list({ apiVersion: 'openebs.io/v1alpha1', kind: 'CStorVolumeReplica', namespace: ns, labelSelector: 'openebs.io/persistent-volume=pvc-kl' });
    expect(cvrs.map((o) => o.metadata.name).sort()).to.deep.equal(['pvc-kl-pool-a', 'pvc-kl-pool-b', 'pvc-kl-pool-c']);
    for (const o of cvrs) {
      expect(o.metadata.finalizers).to.deep.equal(['cstorvolumereplica.openebs.io/finalizer']);
      expect(o['spec']).to.deep.equal({ capacity: '2G', targetIP: '127.0.0.1' });
    }
    const snap = await flows.createSnapshot({ metadata: { name: 'pvc-kl_s1_1', namespace: 'default' }, spec: { casType: 'cstor', volumeName: 'pvc-kl' } });
    expect(snap).to.nested.include({ kind: 'CASSnapshot', 'metadata.name': 'pvc-kl_s1_1' });
    expect(target.snapshotsOf('pvc-kl')).to.deep.equal(['pvc-kl_s1_1']);
    const stdout = await kubectl(kl.kubeconfig, 'get', 'cstorvolumes', '-n', ns);
    expect(stdout.split('\n')[0]).to.match(/^NAME\s+PHASE\s+CAPACITY\s+REPLICAS\s+PORTAL\s+AGE/);
    expect(stdout).to.match(/pvc-kl\s+Healthy\s+2G\s+3\s+127\.0\.0\.1:3260/);
    const cvrOut = await kubectl(kl.kubeconfig, 'get', 'cvr', '-n', ns);
    expect(cvrOut.split('\n')[0]).to.match(/^NAME\s+PHASE\s+CAPACITY\s+POOL\s+VOLUME\s+AGE/);
    // (The Pool and Volume cells read labels through `\.`-escaped jsonPaths, which kube-lite's
    // printer does not evaluate yet; a real API server does.)
    expect(cvrOut).to.match(/pvc-kl-pool-a\s+2G\s/);
    const poolOut = await kubectl(kl.kubeconfig, 'get', 'csp');
    expect(poolOut).to.match(/pool-a\s+Online\s+127\.0\.0\.1:3232\s+10G\s+10G/);
  });

  it('an edit of a RunTask object through the API changes the next run, without a restart', async () => {
    const ref = { apiVersion: 'openebs.io/v1alpha1', kind: 'CStorVolume', namespace: ns, name: 'pvc-kl' };
    await kube.patchStatus(ref, { status: { phase: 'Degraded' } });
    const first = await flows.createSnapshot({ metadata: { name: 's2' }, spec: { volumeName: 'pvc-kl' } }).catch((e: unknown) => e);
    expect(first).to.be.instanceOf(CstorError);
    expect((first as CstorError).message).to.match(/is not Healthy \(phase Degraded\)/);
    await kube.patch(
      { apiVersion: 'openebs.io/v1alpha1', kind: 'RunTask', namespace: ns, name: 'cstor-snapshot-create-healthy' },
      { spec: { assert: { message: 'snapshots are paused on {{ request.spec.volumeName }}' } } },
    );
    const second = await flows.createSnapshot({ metadata: { name: 's2' }, spec: { volumeName: 'pvc-kl' } }).catch((e: unknown) => e);
    expect(hasErrorCode(second, 'not_ready')).to.equal(true);
    expect((second as CstorError).message).to.equal('task healthy (3 of 4) failed: snapshots are paused on pvc-kl');
    expect(target.snapshotsOf('pvc-kl')).to.deep.equal(['pvc-kl_s1_1']);
  });
});
