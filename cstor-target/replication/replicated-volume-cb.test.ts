// ReplicatedVolume's callback forms (writeCb, readCb: the iSCSI hot path) keep writeAt/readAt's
// rules: quorum acks, refusals, the write gate, eviction and retries, `released`; and they never
// call back inside the call.
import { expect } from 'chai';
import { hasErrorCode } from '../../lib/errors.ts';
import type { CallbackReplicaClient } from '../../lib/replica-protocol/client.ts';
import type { ReplicaClient } from '../../lib/replica-protocol/types.ts';
import { FakeCluster } from './fake-replica.ts';
import type { ReplicatedVolume } from './replicated-volume.ts';
import { addresses, makeVolume, MiB, pattern, stopVolumes } from './test-fixtures.ts';


/** Fake replica clients given the callback forms (over their promises), so the volume's per-replica callback path runs. */
function withCallbacks(client: ReplicaClient): ReplicaClient & CallbackReplicaClient {
  const c = client as ReplicaClient & CallbackReplicaClient;
  c.writeCb = (offset, data, ioSeq, cb) => void client.write(offset, data, ioSeq).then(() => cb(null), (err: Error) => cb(err));
  c.readCb = (offset, length, cb) => void client.read(offset, length).then((d) => cb(null, d), (err: Error) => cb(err, undefined));
  return c;
}

function makeCbVolume(rf: number, callbacks = true): { vol: ReplicatedVolume; cluster: FakeCluster } {
  const cluster = new FakeCluster('vol1', 4 * MiB, addresses(rf));
  return makeVolume(rf, cluster, { connect: callbacks ? (a) => cluster.connect(a).then(withCallbacks) : cluster.connect });
}

/** writeCb as a promise, checking that it did not call back inside the call. */
function writeCb(vol: ReplicatedVolume, offset: number, data: Buffer, released?: () => void): Promise<Error | null> {
  return new Promise((resolve, reject) => {
    let returned = false;
    vol.writeCb(offset, data, released, (err) => (returned ? resolve(err) : reject(new Error('called back inside writeCb'))));
    returned = true;
  });
}

function readCb(vol: ReplicatedVolume, offset: number, length: number): Promise<{ err: Error | null; data: Buffer | undefined }> {
  return new Promise((resolve, reject) => {
    let returned = false;
    vol.readCb(offset, length, (err, data) => (returned ? resolve({ err, data }) : reject(new Error('called back inside readCb'))));
    returned = true;
  });
}

describe('ReplicatedVolume callback forms (writeCb, readCb)', () => {
  afterEach(async () => {
    await stopVolumes();
  });

  for (const callbacks of [true, false]) {
    it(`RF 3 (${callbacks ? 'callback' : 'promise'} replica clients): a write is on every replica, released once all replied; reads return it`, async () => {
      const { vol, cluster } = makeCbVolume(3, callbacks);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      let released = 0;
      expect(await writeCb(vol, 8192, pattern(1), () => released++)).to.equal(null);
      await new Promise((r) => setTimeout(r, 20));
      expect(released).to.equal(1);
      for (const a of cluster.addresses) expect(cluster.store(a).readView(8192, 4096).equals(pattern(1)), a).to.equal(true);
      const { err, data } = await readCb(vol, 8192, 4096);
      expect(err).to.equal(null);
      expect(data!.equals(pattern(1))).to.equal(true);
      expect(vol.stats.writes).to.equal(1);
      expect(vol.stats.reads).to.equal(1);
    });
  }

  it('a write two of three replicas fail is refused with the quorum message, and the failed replicas are evicted; no release', async () => {
    const { vol, cluster } = makeVolume(3);
    await vol.waitFor((v) => v.phase === 'Healthy', 5000);
    cluster.client('pool1:3232').faults.push({ op: 'write', kind: 'error' });
    cluster.client('pool2:3232').faults.push({ op: 'write', kind: 'error' });
    let released = 0;
    const err = await writeCb(vol, 0, pattern(3), () => released++);
    expect(err?.message).to.match(/not acknowledged by a quorum \(1 of 3 replicas ok/);
    expect(vol.members[1]!.state).to.not.equal('healthy');
    expect(released).to.equal(0);
  });

  it('an Offline volume refuses (unavailable); a bad range is refused as writeAt/readAt refuse it', async () => {
    const { vol, cluster } = makeVolume(1);
    await vol.waitFor((v) => v.phase === 'Healthy', 5000);
    expect((await writeCb(vol, 100, pattern(1)))?.message).to.match(/not block-aligned/);
    expect((await readCb(vol, 4 * MiB, 4096)).err?.message).to.match(/not block-aligned|inside a device/);
    cluster.store(cluster.addresses[0]!).crash();
    await vol.waitFor((v) => v.count('healthy') === 0, 2000);
    const err = await writeCb(vol, 0, pattern(2));
    expect(hasErrorCode(err, 'unavailable'), String(err)).to.equal(true);
    const read = await readCb(vol, 0, 4096);
    expect(hasErrorCode(read.err, 'unavailable'), String(read.err)).to.equal(true);
  });

  it('a write waits at the gate while a quiesce holds it', async () => {
    const { vol } = makeVolume(3);
    await vol.waitFor((v) => v.phase === 'Healthy', 5000);
    let done: Promise<Error | null> | undefined;
    let settled = false;
    await vol.quiesced('test', async () => {
      done = writeCb(vol, 0, pattern(5));
      void done.then(() => (settled = true));
      await new Promise((r) => setTimeout(r, 30));
      expect(settled, 'held during the quiesce').to.equal(false);
    });
    expect(await done).to.equal(null);
    expect((await vol.readAt(0, 4096)).equals(pattern(5))).to.equal(true);
  });

  it('a read a replica fails goes to another one (the failed one is evicted)', async () => {
    const { vol, cluster } = makeVolume(3);
    await vol.waitFor((v) => v.phase === 'Healthy', 5000);
    await vol.writeAt(0, pattern(4));
    cluster.client('pool0:3232').faults.push({ op: 'read', kind: 'error' });
    const { err, data } = await readCb(vol, 0, 4096);
    expect(err).to.equal(null);
    expect(data!.equals(pattern(4))).to.equal(true);
    expect(vol.members[0]!.state).to.not.equal('healthy');
  });
});
