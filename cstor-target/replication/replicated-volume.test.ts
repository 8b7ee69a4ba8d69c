import { expect } from 'chai';
import { hasErrorCode } from '../../lib/errors.ts';
import { FakeCluster } from './fake-replica.ts';
import type { ReplicatedVolume } from './replicated-volume.ts';
import { addresses, makeVolume, MiB, pattern, preset, rejects, sameChain, settled, stopVolumes } from './test-fixtures.ts';

afterEach(async () => {
  await stopVolumes();
});

describe('ReplicatedVolume over fake replicas', () => {
  describe('start and the healthy set', () => {
    for (const rf of [1, 2, 3, 4, 5]) {
      it(`RF ${rf}: a fresh volume turns Healthy and every replica holds each write`, async () => {
        const { vol, cluster } = makeVolume(rf);
        expect(vol.phase).to.equal('Init');
        await vol.waitFor((v) => v.phase === 'Healthy', 5000);
        expect(vol.count('healthy')).to.equal(rf);
        await vol.writeAt(8192, pattern(1));
        expect((await vol.readAt(8192, 4096)).equals(pattern(1))).to.equal(true);
        for (const a of cluster.addresses) expect(cluster.store(a).readView(8192, 4096).equals(pattern(1)), a).to.equal(true);
        for (const a of cluster.addresses) expect(cluster.store(a).mode).to.equal('Healthy');
      });
    }

    it('a stale replica is never chosen while a fresher one is connected; io_seq continues above the max', async () => {
      const cluster = new FakeCluster('vol1', 4 * MiB, addresses(3));
      preset(cluster.store('pool0:3232'), 'Healthy', 10, pattern(10));
      preset(cluster.store('pool1:3232'), 'Healthy', 10, pattern(10));
      preset(cluster.store('pool2:3232'), 'Healthy', 5, pattern(5));
      const { vol } = makeVolume(3, cluster);
      await vol.waitFor((v) => v.count('healthy') === 3, 5000, 'all healthy');
      // pool2 was rebuilt from a fresh one, not trusted as it was.
      expect(cluster.client('pool2:3232').calls.some((c) => c.op === 'rebuildStart')).to.equal(true);
      expect(cluster.client('pool0:3232').calls.some((c) => c.op === 'rebuildStart')).to.equal(false);
      expect(cluster.store('pool2:3232').readView(0, 4096).equals(pattern(10))).to.equal(true);
      await vol.writeAt(0, pattern(11));
      const seqs = cluster.client('pool0:3232').calls.filter((c) => c.op === 'write').map((c) => c.args[2] as number);
      expect(seqs[0]).to.be.greaterThan(10);
    });

    it('a lone stale replica does not make the volume ready (needs RF-CF+1 connected); a fresher one wins later', async () => {
      const cluster = new FakeCluster('vol1', 4 * MiB, addresses(3));
      preset(cluster.store('pool0:3232'), 'Healthy', 10, pattern(10));
      preset(cluster.store('pool1:3232'), 'Healthy', 10, pattern(10));
      preset(cluster.store('pool2:3232'), 'Healthy', 5, pattern(5));
      cluster.store('pool0:3232').up = false;
      cluster.store('pool1:3232').up = false;
      const { vol } = makeVolume(3, cluster);
      await vol.waitFor((v) => v.members[2]!.state === 'waiting', 5000);
      await new Promise((r) => setTimeout(r, 100));
      expect(vol.phase).to.equal('Init');
      expect(vol.count('healthy')).to.equal(0);
      expect((await rejects(vol.readAt(0, 4096))).message).to.match(/no healthy replica/);
      cluster.store('pool0:3232').revive();
      await vol.waitFor((v) => v.count('healthy') === 2, 5000, 'pool0 healthy and pool2 rebuilt');
      expect(vol.members[0]!.state).to.equal('healthy');
      expect((await vol.readAt(0, 4096)).equals(pattern(10))).to.equal(true);
      expect(cluster.store('pool2:3232').readView(0, 4096).equals(pattern(10))).to.equal(true);
    });

    it('a replica left Rebuilding by a crash is never chosen healthy', async () => {
      const cluster = new FakeCluster('vol1', 4 * MiB, addresses(2));
      preset(cluster.store('pool0:3232'), 'Healthy', 7, pattern(7));
      preset(cluster.store('pool1:3232'), 'Rebuilding', 9, pattern(9));
      const { vol } = makeVolume(2, cluster);
      await vol.waitFor((v) => v.members.every((m) => m.state !== 'connecting' && m.state !== 'offline'), 5000);
      await new Promise((r) => setTimeout(r, 50));
      // pool1 holds the highest io_seq but is Rebuilding; pool0 is behind it: nobody is trusted.
      expect(vol.count('healthy')).to.equal(0);
      expect(vol.isReady).to.equal(false);
    });
  });

  describe('phases when replicas fail', () => {
    const table = [
      { rf: 1, down: 1, phase: 'Offline' },
      { rf: 2, down: 1, phase: 'Offline' },
      { rf: 3, down: 1, phase: 'Healthy' },
      { rf: 3, down: 2, phase: 'Offline' },
      { rf: 4, down: 1, phase: 'Healthy' },
      { rf: 4, down: 2, phase: 'Offline' },
      { rf: 5, down: 2, phase: 'Healthy' },
      { rf: 5, down: 3, phase: 'Offline' },
    ];
    for (const { rf, down, phase } of table) {
      it(`RF ${rf} with ${down} pool(s) crashed → ${phase}; writes ${phase === 'Offline' ? 'refused' : 'acknowledged'}`, async () => {
        const { vol, cluster } = makeVolume(rf);
        await vol.waitFor((v) => v.phase === 'Healthy', 5000);
        for (let i = 0; i < down; i++) cluster.store(cluster.addresses[i]!).crash();
        await vol.waitFor((v) => v.count('healthy') === rf - down, 2000);
        expect(vol.phase).to.equal(phase);
        const write = vol.writeAt(0, pattern(2));
        if (phase === 'Offline') {
          const err = await rejects(write);
          expect(hasErrorCode(err, 'unavailable'), err.message).to.equal(true);
        } else {
          await write;
          expect((await vol.readAt(0, 4096)).equals(pattern(2))).to.equal(true);
        }
      });
    }

    it('a replica that errs leaves the set, then is rebuilt before it is healthy again', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      await vol.writeAt(0, pattern(1));
      cluster.client('pool1:3232').faults.push({ op: 'write', kind: 'error' });
      await vol.writeAt(4096, pattern(2)); // acknowledged by pool0 and pool2
      expect(vol.members[1]!.state).to.not.equal('healthy');
      expect(vol.status().replicaStatuses[1]!.lastError).to.match(/injected write error/);
      await vol.waitFor(settled(3), 5000, 'pool1 rebuilt');
      expect(cluster.client('pool1:3232').calls.some((c) => c.op === 'rebuildStart')).to.equal(true);
      sameChain(cluster.store('pool1:3232'), cluster.store('pool0:3232'));
    });

    it('a replica that failed a write but took a later one is not trusted after a target crash (suspect marks)', async () => {
      const marks = new Set<string>();
      const suspects = {
        load: () => new Set(marks),
        mark: async (a: string) => void marks.add(a),
        clear: async (a: string) => void marks.delete(a),
      };
      const cluster = new FakeCluster('vol1', 4 * MiB, addresses(3));
      const first = makeVolume(3, cluster, { suspects, reconnectMinMs: 5000 }).vol;
      await first.waitFor((v) => v.phase === 'Healthy', 5000);
      // The first write fails late on pool1, after the second one succeeded there.
      cluster.client('pool1:3232').faults.push({ op: 'write', kind: 'error', delayMs: 30 });
      await Promise.all([first.writeAt(0, pattern(1)), first.writeAt(4096, pattern(2))]);
      await first.settledWrites(2000);
      await new Promise((r) => setTimeout(r, 20)); // the mark is persisted asynchronously
      expect([...marks]).to.deep.equal(['pool1:3232']);
      await first.stop(); // the "crash": pool1 was never rebuilt
      const p1 = cluster.store('pool1:3232');
      p1.checkpointedIoSeq = p1.highestIoSeq; // it synced on its own: its checkpoint looks as fresh as the others'
      expect(p1.checkpointedIoSeq).to.equal(cluster.store('pool0:3232').checkpointedIoSeq);
      expect(p1.readView(0, 4096).equals(pattern(1))).to.equal(false);

      const { vol } = makeVolume(3, cluster, { suspects });
      await vol.waitFor(settled(3), 5000, 'pool1 rebuilt');
      expect(cluster.client('pool1:3232').calls.some((c) => c.op === 'rebuildStart')).to.equal(true);
      expect(p1.readView(0, 4096).equals(pattern(1))).to.equal(true);
      expect([...marks]).to.deep.equal([]);
    });

    it('a write acknowledged while a suspect mark is being persisted waits for the mark', async () => {
      let persist!: () => void;
      const marks: string[] = [];
      const suspects = {
        load: () => new Set<string>(),
        mark: (a: string) =>
          new Promise<void>((resolve) => {
            persist = () => {
              marks.push(a);
              resolve();
            };
          }),
        clear: async () => undefined,
      };
      const { vol, cluster } = makeVolume(3, undefined, { suspects, reconnectMinMs: 5000 });
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      await vol.writeAt(0, pattern(1)); // no mark pending: acknowledged at once
      // pool1 fails a write: its suspect mark is asked for and not persisted yet.
      cluster.client('pool1:3232').faults.push({ op: 'write', kind: 'error' });
      const failedThere = vol.writeAt(4096, pattern(2));
      await new Promise((r) => setTimeout(r, 20));
      expect(persist, 'mark asked for').to.be.a('function');
      expect(vol.members[1]!.state).to.not.equal('healthy');
      // A later write, acknowledged by pool0 and pool2, waits until the mark is persisted.
      let acked = false;
      const later = vol.writeAt(8192, pattern(3)).then(() => (acked = true));
      await new Promise((r) => setTimeout(r, 50));
      expect(acked, 'acknowledged before the mark was persisted').to.equal(false);
      persist();
      await Promise.all([failedThere, later]);
      expect(acked).to.equal(true);
      expect(marks).to.deep.equal(['pool1:3232']);
      expect(vol.stats.writes).to.equal(3);
    });

    it('a write is refused when too few replicas answer, and never reported as done', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      cluster.client('pool1:3232').faults.push({ op: 'write', kind: 'error' });
      cluster.client('pool2:3232').faults.push({ op: 'write', kind: 'error' });
      const err = await rejects(vol.writeAt(0, pattern(3)));
      expect(err.message).to.match(/not acknowledged by a quorum \(1 of 3 replicas ok/);
    });
  });

  describe('pooled buffers (writeAt released, readInto)', () => {
    it('calls released once every replica replied OK, after the quorum ack; never when one failed', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      // pool2 is slow: the write is acknowledged by pool0 and pool1 first, the buffer is still pool2's.
      cluster.client('pool2:3232').faults.push({ op: 'write', kind: 'delay', delayMs: 60 });
      let released = 0;
      await vol.writeAt(0, pattern(1), () => released++);
      expect(released, 'not before the slow replica replied').to.equal(0);
      await new Promise((r) => setTimeout(r, 120));
      expect(released).to.equal(1);
      // A replica that fails the write: its socket may still hold the data, so no release at all.
      cluster.client('pool1:3232').faults.push({ op: 'write', kind: 'error' });
      let releasedAfterError = 0;
      await vol.writeAt(4096, pattern(2), () => releasedAfterError++);
      await new Promise((r) => setTimeout(r, 50));
      expect(releasedAfterError).to.equal(0);
      expect(cluster.store('pool0:3232').readView(0, 8192).equals(Buffer.concat([pattern(1), pattern(2)]))).to.equal(true);
    });

    it('readInto fills the caller buffer, falls back to another replica when one fails, rejects when none answers', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      await vol.writeAt(0, pattern(7, 65536));
      const into = Buffer.alloc(65536);
      await vol.readInto(0, into);
      expect(into.equals(pattern(7, 65536))).to.equal(true);
      cluster.client('pool0:3232').faults.push({ op: 'read', kind: 'error' });
      const second = Buffer.alloc(65536);
      await vol.readInto(0, second);
      expect(second.equals(pattern(7, 65536))).to.equal(true);
      expect(vol.members[0]!.state).to.not.equal('healthy');
      cluster.store('pool0:3232').crash(); // kept out (no rebuild back to healthy meanwhile)
      for (const a of ['pool1:3232', 'pool2:3232']) cluster.client(a).faults.push({ op: 'read', kind: 'error', count: Infinity });
      const again = Buffer.alloc(4096);
      const err = await rejects(vol.readInto(0, again));
      expect(hasErrorCode(err, 'unavailable'), err.message).to.equal(true);
    });
  });

  describe('reads', () => {
    it('go to the healthy replica with the fewest reads in flight', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      for (const a of cluster.addresses) cluster.client(a).faults.push({ op: 'read', kind: 'delay', delayMs: 40, count: Infinity });
      await Promise.all(Array.from({ length: 6 }, (_, i) => vol.readAt(i * 4096, 4096)));
      expect(cluster.addresses.map((a) => cluster.store(a).reads)).to.deep.equal([2, 2, 2]);
    });

    it('with readStickiness N stay on one replica until it has N more in flight than the least busy', async () => {
      const { vol, cluster } = makeVolume(3, undefined, { readStickiness: 2 });
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      for (const a of cluster.addresses) cluster.client(a).faults.push({ op: 'read', kind: 'delay', delayMs: 40, count: Infinity });
      await Promise.all(Array.from({ length: 6 }, (_, i) => vol.readAt(i * 4096, 4096)));
      // pool0 takes reads while it has at most 2 more in flight than the others (3), then pool1 (3).
      expect(cluster.addresses.map((a) => cluster.store(a).reads)).to.deep.equal([3, 3, 0]);
    });

    it('skip a replica that fails a read (it is evicted) and still answer', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      await vol.writeAt(0, pattern(4));
      cluster.client('pool0:3232').faults.push({ op: 'read', kind: 'error' });
      expect((await vol.readAt(0, 4096)).equals(pattern(4))).to.equal(true);
      expect(vol.members[0]!.state).to.not.equal('healthy');
    });

    it('never go to a replica being rebuilt', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      await vol.writeAt(0, pattern(5));
      await vol.snapshotCreate('s1');
      cluster.store('pool2:3232').crash();
      await vol.waitFor((v) => v.members[2]!.state === 'offline', 2000);
      // Slow the source down so the rebuild is still running while we read.
      for (const a of ['pool0:3232', 'pool1:3232']) cluster.client(a).faults.push({ op: 'readLayer', kind: 'delay', delayMs: 200, count: Infinity });
      cluster.store('pool2:3232').revive();
      await vol.waitFor((v) => v.members[2]!.state === 'rebuilding', 5000);
      const before = cluster.store('pool2:3232').reads;
      await Promise.all(Array.from({ length: 8 }, () => vol.readAt(0, 4096)));
      expect(cluster.store('pool2:3232').reads).to.equal(before);
    });
  });

  describe('snapshots', () => {
    it('are refused with fewer than CF healthy replicas, with a clear message, leaving nothing behind', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      cluster.store('pool1:3232').crash();
      cluster.store('pool2:3232').crash();
      await vol.waitFor((v) => v.count('healthy') === 1, 2000);
      const err = await rejects(vol.snapshotCreate('snap1'));
      expect(err.message).to.equal('snapshot snap1 of vol1 refused: 1 of 3 replicas healthy, 2 needed');
      expect(hasErrorCode(err, 'not_ready')).to.equal(true);
      for (const a of cluster.addresses) expect(cluster.store(a).snapshotList()).to.deep.equal([]);
      for (const c of cluster.clients) expect(c.calls.some((x) => x.op === 'snapshotCreate')).to.equal(false);
    });

    it('succeed when CF replicas take them; a replica that failed is evicted and gets it back by rebuild', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      await vol.writeAt(0, pattern(6));
      cluster.client('pool2:3232').faults.push({ op: 'snapshotCreate', kind: 'error' });
      const info = await vol.snapshotCreate('snap1');
      expect(info.name).to.equal('snap1');
      await vol.writeAt(0, pattern(7));
      await vol.waitFor(settled(3), 5000, 'pool2 rebuilt');
      for (const a of cluster.addresses) {
        expect(cluster.store(a).snapshotList().map((s) => s.name), a).to.deep.equal(['snap1']);
        expect(cluster.store(a).readView(0, 4096, 'snap1').equals(pattern(6)), a).to.equal(true);
      }
      expect((await vol.snapshotList()).map((s) => s.name)).to.deep.equal(['snap1']);
    });

    it('answer once CF replicas have it, without waiting for a slower one', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      await vol.writeAt(0, pattern(6));
      cluster.client('pool2:3232').faults.push({ op: 'snapshotCreate', kind: 'delay', delayMs: 1500 });
      const info = await vol.snapshotCreate('snap1');
      expect(info.name).to.equal('snap1');
      expect(cluster.store('pool2:3232').snapshotList(), 'pool2 has not made it yet').to.deep.equal([]);
      for (let i = 0; i < 100 && cluster.store('pool2:3232').snapshotList().length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      for (const a of cluster.addresses) expect(cluster.store(a).readView(0, 4096, 'snap1').equals(pattern(6)), a).to.equal(true);
      expect(vol.phase).to.equal('Healthy');
    });

    it('fail when fewer than CF take them, and are destroyed everywhere', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      cluster.client('pool1:3232').faults.push({ op: 'snapshotCreate', kind: 'error' });
      cluster.client('pool2:3232').faults.push({ op: 'snapshotCreate', kind: 'error' });
      const err = await rejects(vol.snapshotCreate('snap1'));
      expect(err.message).to.match(/snapshot snap1 of vol1 failed: created on 1 healthy replicas, 2 needed/);
      for (const a of cluster.addresses) expect(cluster.store(a).snapshotList(), a).to.deep.equal([]);
    });

    it('quiesce drains in-flight writes first and holds new writes only during the snapshot', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      cluster.client('pool0:3232').faults.push({ op: 'write', kind: 'delay', delayMs: 150 });
      const w1 = vol.writeAt(0, pattern(8)); // acked by pool1+pool2 at once, pool0 late
      await w1;
      const snap = vol.snapshotCreate('snap1');
      await vol.waitFor((v) => v.isQuiesced, 2000, 'quiesce');
      let w2Done = false;
      const w2 = vol.writeAt(0, pattern(9)).then(() => (w2Done = true));
      await new Promise((r) => setTimeout(r, 50));
      expect(w2Done, 'w2 is held while w1 drains').to.equal(false);
      await snap;
      await w2;
      for (const a of cluster.addresses) {
        const s = cluster.store(a);
        expect(s.readView(0, 4096, 'snap1').equals(pattern(8)), `${a} snapshot has w1`).to.equal(true);
        expect(s.readView(0, 4096).equals(pattern(9)), `${a} head has w2`).to.equal(true);
      }
      // After the snapshot the gate is open: a write goes straight through.
      const t0 = performance.now();
      await vol.writeAt(4096, pattern(10));
      expect(performance.now() - t0).to.be.lessThan(100);
      expect(vol.stats.maxQuiesceMs).to.be.greaterThan(50);
    });

    it('quiesce evicts a replica whose writes hang when CF healthy ones drained; fails cleanly when not', async () => {
      const { vol, cluster } = makeVolume(3, undefined, { quiesceTimeoutMs: 100 });
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      cluster.client('pool2:3232').faults.push({ op: 'write', kind: 'hang' });
      await vol.writeAt(0, pattern(11));
      await vol.snapshotCreate('snap1');
      expect(vol.members[2]!.lastError).to.match(/did not drain/);
      await vol.waitFor(settled(3), 5000, 'pool2 rebuilt');

      for (const a of ['pool0:3232', 'pool1:3232']) cluster.client(a).faults.push({ op: 'write', kind: 'hang' });
      const stuck = vol.writeAt(4096, pattern(12)).catch((e: unknown) => e); // only pool2 answers
      const err = await rejects(vol.snapshotCreate('snap2'));
      expect(err.message).to.match(/snapshot snap2 of vol1: in-flight writes did not drain in 100 ms/);
      expect(hasErrorCode(err, 'timeout')).to.equal(true);
      expect(vol.isQuiesced).to.equal(false);
      void stuck;
      for (const a of cluster.addresses) expect(cluster.store(a).snapshotList().map((s) => s.name)).to.not.include('snap2');
    });

    it('reject bad and reserved names; destroy and list user snapshots only', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      expect((await rejects(vol.snapshotCreate('rebuild-x'))).message).to.match(/reserved/);
      expect((await rejects(vol.snapshotCreate('bad/name'))).message).to.match(/must be/);
      await vol.snapshotCreate('a');
      await vol.snapshotCreate('b');
      await vol.snapshotCreate('a'); // idempotent
      cluster.store('pool0:3232').snapshotCreate('rebuild-zz', 1);
      expect((await vol.snapshotList()).map((s) => s.name)).to.deep.equal(['a', 'b']);
      await vol.snapshotDestroy('a');
      await vol.snapshotDestroy('a');
      for (const a of cluster.addresses) expect(cluster.store(a).snapshotList().map((s) => s.name)).to.not.include('a');
    });

    it('wait for each other (one at a time)', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      for (const a of cluster.addresses) cluster.client(a).faults.push({ op: 'snapshotCreate', kind: 'delay', delayMs: 50 });
      await Promise.all([vol.snapshotCreate('x'), vol.snapshotCreate('y')]);
      const ops = cluster.client('pool0:3232').calls.filter((c) => c.op === 'snapshotCreate').map((c) => c.args);
      expect(ops.map((a) => a[0])).to.deep.equal(['x', 'y']);
      expect(cluster.store('pool0:3232').snapshotList().map((s) => s.name)).to.deep.equal(['x', 'y']);
    });
  });

  describe('rebuild', () => {
    async function writeStream(vol: ReplicatedVolume, stop: () => boolean, seed: number): Promise<number> {
      let n = 0;
      for (let i = 0; i < 10_000 && !stop(); i++) {
        await vol.writeAt(((seed + i * 7) % 1000) * 4096, pattern(seed + i));
        n++;
      }
      return n;
    }

    it('copies snapshots and live data while writes continue; the result equals the healthy replica', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      for (let i = 0; i < 50; i++) await vol.writeAt(i * 8192, pattern(i, 8192));
      await vol.snapshotCreate('s1');
      cluster.store('pool2:3232').crash();
      await vol.waitFor((v) => v.phase === 'Healthy' && v.count('healthy') === 2, 2000);
      for (let i = 0; i < 50; i++) await vol.writeAt(i * 4096 + 100 * 4096, pattern(100 + i));
      await vol.snapshotCreate('s2');
      await vol.unmap(0, 8192);
      for (const a of ['pool0:3232', 'pool1:3232']) cluster.client(a).faults.push({ op: 'readLayer', kind: 'delay', delayMs: 5, count: Infinity });
      let stop = false;
      const stream = writeStream(vol, () => stop, 7);
      cluster.store('pool2:3232').revive();
      await vol.waitFor((v) => v.members[2]!.state === 'rebuilding', 5000);
      expect(vol.phase).to.equal('Healthy');
      await vol.snapshotCreate('s3'); // a user snapshot during the rebuild also goes to the rebuilding replica
      await vol.waitFor(settled(3), 10_000, 'rebuilt');
      stop = true;
      const writes = await stream;
      expect(writes).to.be.greaterThan(0);
      expect(await vol.settledWrites(2000)).to.equal(true);
      sameChain(cluster.store('pool2:3232'), cluster.store('pool0:3232'));
      sameChain(cluster.store('pool1:3232'), cluster.store('pool0:3232'));
      expect(cluster.store('pool2:3232').snapshotList().map((s) => s.name)).to.deep.equal(['s1', 's2', 's3']);
      expect(cluster.store('pool2:3232').mode).to.equal('Healthy');
    });

    it('a destination crash mid-rebuild leaves it Rebuilding; it is rebuilt again and ends equal', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      for (let i = 0; i < 20; i++) await vol.writeAt(i * 4096, pattern(i));
      await vol.snapshotCreate('s1');
      for (let i = 0; i < 20; i++) await vol.writeAt(i * 4096, pattern(50 + i));
      cluster.store('pool2:3232').crash();
      await vol.waitFor((v) => v.members[2]!.state === 'offline', 2000);
      for (const a of ['pool0:3232', 'pool1:3232']) cluster.client(a).faults.push({ op: 'readLayer', kind: 'delay', delayMs: 30, count: Infinity });
      cluster.store('pool2:3232').revive();
      await vol.waitFor((v) => v.members[2]!.state === 'rebuilding', 5000);
      cluster.store('pool2:3232').crash();
      await vol.waitFor((v) => v.members[2]!.state === 'offline', 2000);
      expect(cluster.store('pool2:3232').mode).to.equal('Rebuilding');
      for (const a of ['pool0:3232', 'pool1:3232']) cluster.client(a).faults.splice(0);
      cluster.store('pool2:3232').revive();
      await vol.waitFor(settled(3), 10_000, 'rebuilt again');
      sameChain(cluster.store('pool2:3232'), cluster.store('pool0:3232'));
    });

    it('a source crash mid-rebuild restarts it from another healthy replica', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      for (let i = 0; i < 20; i++) await vol.writeAt(i * 4096, pattern(i));
      await vol.snapshotCreate('s1');
      cluster.store('pool2:3232').crash();
      await vol.waitFor((v) => v.members[2]!.state === 'offline', 2000);
      for (const a of ['pool0:3232', 'pool1:3232']) cluster.client(a).faults.push({ op: 'readLayer', kind: 'hang' });
      cluster.store('pool2:3232').revive();
      await vol.waitFor((v) => v.members[2]!.state === 'rebuilding', 5000);
      const source = vol.status().rebuildingFrom;
      expect(source).to.be.oneOf(['pool0:3232', 'pool1:3232']);
      const other = source === 'pool0:3232' ? 'pool1:3232' : 'pool0:3232';
      cluster.client(other).faults.splice(0);
      cluster.store(source!).crash();
      await vol.waitFor((v) => v.members[2]!.state === 'healthy' && v.status().rebuilding === null, 10_000, 'rebuilt from the other one');
      sameChain(cluster.store('pool2:3232'), cluster.store(other));
      expect(cluster.store(other).snapshotList().map((s) => s.name)).to.deep.equal(['s1']);
    });

    it('a snapshot destroyed during a rebuild is gone from the rebuilt replica too, and the data stays right', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      await vol.writeAt(0, pattern(1));
      await vol.snapshotCreate('s1');
      await vol.writeAt(0, pattern(2));
      await vol.snapshotCreate('s2');
      await vol.writeAt(4096, pattern(3));
      cluster.store('pool2:3232').crash();
      await vol.waitFor((v) => v.members[2]!.state === 'offline', 2000);
      for (const a of ['pool0:3232', 'pool1:3232']) cluster.client(a).faults.push({ op: 'readLayer', kind: 'delay', delayMs: 40, count: Infinity });
      cluster.store('pool2:3232').revive();
      await vol.waitFor((v) => v.members[2]!.state === 'rebuilding', 5000);
      await vol.snapshotDestroy('s1');
      await vol.waitFor(settled(3), 10_000, 'rebuilt');
      sameChain(cluster.store('pool2:3232'), cluster.store('pool0:3232'));
      expect(cluster.store('pool2:3232').snapshotList().map((s) => s.name)).to.deep.equal(['s2']);
      expect(cluster.store('pool2:3232').readView(0, 4096, 's2').equals(pattern(2))).to.equal(true);
    });
  });

  describe('sync and stop', () => {
    it('sync reaches a quorum and advances the checkpoints; stop syncs and closes', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      await vol.writeAt(0, pattern(1));
      await vol.sync();
      const synced = cluster.addresses.filter((a) => cluster.store(a).checkpointedIoSeq === cluster.store(a).highestIoSeq);
      expect(synced.length).to.be.at.least(2);
      expect(Number(vol.status().replicaStatuses[0]!.checkpointedIOSeq)).to.be.greaterThan(0);
      await vol.writeAt(0, pattern(2));
      await vol.stop();
      for (const a of cluster.addresses) {
        expect(cluster.store(a).checkpointedIoSeq).to.equal(cluster.store(a).highestIoSeq);
        expect(cluster.store(a).clients.size).to.equal(0);
      }
      expect(vol.phase).to.equal('Offline');
    });
  });
});
