// The shared provisioner core against a real kube-lite (its PV binder sets the
// storage-provisioner annotation and binds): two candidates under leader election on one Lease,
// only the leader provisions, each claim gets exactly one PV and is Bound, Events land on the
// claims; when the leader stops, the other takes over; a released PV is deleted.
import { expect } from 'chai';
import { EventRecorder } from '../../lib/kube/event-recorder.ts';
import { createKubeClients, type KubeClients } from '../../lib/kube/kube-clients.ts';
import { loadKubeConfig } from '../../lib/kube/kubeconfig.ts';
import { resources } from '../../lib/kube/resources.ts';
import type { CoreEvent, PersistentVolume, PersistentVolumeClaim } from '../../lib/kube/types/core.ts';
import type { Lease } from '../../lib/kube/types/lease.ts';
import type { StorageClass } from '../../lib/kube/types/storage.ts';
import { silentLogger } from '../../lib/logger.ts';
import { provisionControllerFor } from '../../lib/provisioner/controller.ts';
import { FakeProvisioner } from '../../lib/provisioner/fakes.ts';
import { leaseNameFor, runProvisioner } from '../../lib/provisioner/run.ts';
import { stopAll } from '../support/daemon.ts';
import { eventually, startKubeLiteProc } from '../kube-lite/support.ts';

interface Candidate {
  prov: FakeProvisioner;
  stop: () => void;
  done: Promise<void>;
}

describe('lib/provisioner core on kube-lite (leader election, binding, events, reclaim)', function () {
  this.timeout(90_000);
  let clients: KubeClients;
  const candidates: Candidate[] = [];

  const startCandidate = (identity: string): Candidate => {
    const prov = new FakeProvisioner('example.com/fake');
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    const logger = silentLogger();
    const events = new EventRecorder({ client: clients.for<CoreEvent>(resources.events), component: prov.name, host: identity, logger });
    const done = runProvisioner({
      provisionerName: prov.name,
      makeController: () => provisionControllerFor(clients, { provisioner: prov, events, logger, backoff: { baseMs: 50, maxMs: 1000 } }),
      logger,
      leaderElection: { client: clients.for<Lease>(resources.leases), namespace: 'default', identity, leaseDurationMs: 3000 },
      stopped,
    });
    const c = { prov, stop, done };
    candidates.push(c);
    return c;
  };
  const claim = (name: string): PersistentVolumeClaim => ({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace: 'default' },
    spec: { storageClassName: 'fast', accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
  });
  const pvc = () => clients.for<PersistentVolumeClaim>(resources.persistentVolumeClaims);
  const pvs = () => clients.for<PersistentVolume>(resources.persistentVolumes);
  const allBound = async (names: string[]): Promise<boolean> => {
    const list = (await pvc().list({ namespace: 'default' })).items;
    return names.every((n) => list.find((c) => c.metadata.name === n)?.status?.phase === 'Bound');
  };

  before(async () => {
    const kl = await startKubeLiteProc();
    clients = createKubeClients(loadKubeConfig({ kubeconfigPath: kl.kubeconfig, env: {} }).kubeConfig);
    await clients.for<StorageClass>(resources.storageClasses).create({ metadata: { name: 'fast' }, provisioner: 'example.com/fake', reclaimPolicy: 'Delete' });
  });
  after(async () => {
    for (const c of candidates) c.stop();
    await Promise.all(candidates.map((c) => c.done));
    await stopAll();
  });

  it('only the leader provisions; every claim gets one PV and is Bound; Events on the claims', async () => {
    const a = startCandidate('cand-a');
    const b = startCandidate('cand-b');
    const names = ['c1', 'c2', 'c3', 'c4', 'c5'];
    for (const n of names) await pvc().create(claim(n));
    await eventually(() => allBound(names), 'all claims Bound', 30_000);
    const made = (await pvs().list()).items;
    expect(made).to.have.length(5);
    const uids = new Map((await pvc().list({ namespace: 'default' })).items.map((c) => [c.metadata.name, c.metadata.uid]));
    for (const n of names) expect(made.map((p) => p.metadata.name)).to.include(`pvc-${uids.get(n)}`);
    expect(a.prov.provisionCalls + b.prov.provisionCalls).to.equal(5);
    expect(Math.min(a.prov.provisionCalls, b.prov.provisionCalls)).to.equal(0);
    const lease = await clients.for<Lease>(resources.leases).get({ name: leaseNameFor('example.com/fake'), namespace: 'default' });
    expect(lease.spec?.holderIdentity).to.equal(a.prov.provisionCalls > 0 ? 'cand-a' : 'cand-b');
    const reasons = await eventually(async () => {
      const evs = (await clients.for<CoreEvent>(resources.events).list({ namespace: 'default' })).items.filter((e) => e.involvedObject.name === 'c1');
      const r = evs.map((e) => e.reason);
      return r.includes('ProvisioningSucceeded') ? r : undefined;
    }, 'Events on c1');
    expect(reasons).to.include('Provisioning');
  });

  it('when the leader stops, the other candidate takes over; a released PV is deleted with its backend volume', async () => {
    const [a, b] = candidates as [Candidate, Candidate];
    const [leader, other] = a.prov.provisionCalls > 0 ? [a, b] : [b, a];
    leader.stop();
    await leader.done;
    await pvc().create(claim('c6'));
    await eventually(() => allBound(['c6']), 'c6 Bound by the new leader', 30_000);
    expect(other.prov.provisionCalls).to.equal(1);
    const c6 = await pvc().get({ namespace: 'default', name: 'c6' });
    const pvName = `pvc-${c6.metadata.uid}`;
    await pvc().delete({ namespace: 'default', name: 'c6' });
    await eventually(async () => !(await pvs().list()).items.some((p) => p.metadata.name === pvName), 'the released PV deleted', 30_000);
    expect(other.prov.deleted).to.deep.equal([pvName]);
  });
});
