// kill -9 of m-apiserver mid-flow (a volume create waiting for Healthy), then a restart on the
// same kube-lite: the install at start is idempotent, and the retried create converges on one
// volume with its replicas, nothing duplicated or leaked.
import axios from 'axios';
import { expect } from 'chai';
import { stopAll } from '../support/daemon.ts';
import { eventually } from '../kube-lite/support.ts';
import { cas, ns, startMapiStack, type MapiStack } from './support.ts';

describe('m-apiserver restart mid-flow (kill -9)', function () {
  this.timeout(120_000);
  let stack: MapiStack;

  before(async () => {
    stack = await startMapiStack();
  });
  after(async () => {
    await stack?.stop();
    await stopAll();
  });

  it('a create cut short by kill -9 and retried after a restart gives one volume with 3 replicas', async () => {
    const body = { metadata: { name: 'pvc-restart', namespace: 'default' }, spec: { capacity: '1G' } };
    stack.sim.paused = true;
    const first = axios.post(`${stack.url}/latest/volumes/`, body, { validateStatus: () => true, proxy: false }).catch((e: unknown) => e);
    await eventually(
      async () => (await stack.kube.list({ apiVersion: cas, kind: 'CStorVolumeReplica', namespace: ns, labelSelector: 'openebs.io/persistent-volume=pvc-restart' })).length > 0,
      'the first replica created',
    );
    await stack.mapi.kill();
    expect(await first).to.be.instanceOf(Error); // the client saw the connection die
    stack.sim.paused = false;
    const mapi = await stack.startMapi();
    const installed = await mapi.waitForLog((e) => e.message === 'CAS templates installed');
    expect(installed.created).to.equal(0);
    const res = await axios.post<{ status: { Phase: string }; spec: { replicas: number } }>(`http://${mapi.addresses['api']}/latest/volumes/`, body, { validateStatus: () => true, proxy: false });
    expect(res.status, JSON.stringify(res.data)).to.equal(200);
    expect(res.data.status.Phase).to.equal('Healthy');
    expect(res.data.spec.replicas).to.equal(3);
    const cvs = (await stack.kube.list({ apiVersion: cas, kind: 'CStorVolume', namespace: ns })).filter((o) => o.metadata.name === 'pvc-restart');
    expect(cvs).to.have.length(1);
    const cvrs = await stack.kube.list({ apiVersion: cas, kind: 'CStorVolumeReplica', namespace: ns, labelSelector: 'openebs.io/persistent-volume=pvc-restart' });
    expect(cvrs.map((o) => o.metadata.name).sort()).to.deep.equal(['pvc-restart-pool-a', 'pvc-restart-pool-b', 'pvc-restart-pool-c']);
    // Every pool holds exactly one replica: nothing leaked onto a fourth pick.
    const all = await stack.kube.list({ apiVersion: cas, kind: 'CStorVolumeReplica', namespace: ns });
    expect(all).to.have.length(3);
  });
});
