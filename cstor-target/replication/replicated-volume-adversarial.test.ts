// Adversarial interleavings of the replication engine over fake replicas: a rebuild interrupted
// after a user snapshot, a read answered by a replica whose earlier write failed, io_seq across
// target restarts, IO in flight across stop/eviction, snapshots racing slow replicas.
import { expect } from 'chai';
import { CstorError, hasErrorCode } from '../../lib/errors.ts';
import type { CallbackReplicaClient } from '../../lib/replica-protocol/client.ts';
import type { ReplicaClient } from '../../lib/replica-protocol/types.ts';
import { FakeCluster, type FakeReplicaClient } from './fake-replica.ts';
import type { ReplicatedVolume } from './replicated-volume.ts';
import { addresses, makeVolume, MiB, pattern, preset, rejects, sameChain, settled, sleep, stopVolumes } from './test-fixtures.ts';

/**
 * Replies held back and then delivered in one synchronous pass, as TcpReplicaClient.onBytes
 * delivers the frames of one socket read: a success runs its callback (or resolves its promise)
 * at once, an error reply runs its callback in a microtask (Pending.fail). Requests are applied
 * to the store in arrival order, as the pool's io-ordering does for overlapping ones.
 */
interface HeldReplies {
  hold: boolean;
  /** Writes to fail (as the pool's error reply to a failed disk write: nothing applied). */
  failWrites: number;
  queue: (() => void)[];
  flush(): void;
}

function holdReplies(client: FakeReplicaClient, callbacks: boolean): HeldReplies {
  const ctl: HeldReplies = {
    hold: false,
    failWrites: 0,
    queue: [],
    flush() {
      for (const f of ctl.queue.splice(0)) f();
    },
  };
  const store = client.store;
  const origWrite = client.write.bind(client);
  const origRead = client.read.bind(client);
  const c = client as FakeReplicaClient & Partial<CallbackReplicaClient>;
  const heldWrite = (offset: number, data: Buffer, ioSeq: number, done: (err: Error | null) => void): void => {
    const copy = Buffer.from(data);
    ctl.queue.push(() => {
      if (ctl.failWrites > 0) {
        ctl.failWrites--;
        const err = new CstorError('io', `replica ${client.address} write: injected EIO`);
        // Pending.fail: a callback runs in a microtask, a promise is rejected at once.
        if (callbacks) queueMicrotask(() => done(err));
        else done(err);
        return;
      }
      store.write(offset, copy, ioSeq);
      done(null);
    });
  };
  const heldRead = (offset: number, length: number, done: (err: Error | null, data: Buffer | undefined) => void): void => {
    ctl.queue.push(() => done(null, store.readView(offset, length)));
  };
  if (callbacks) {
    c.writeCb = (offset, data, ioSeq, cb) => {
      if (ctl.hold) heldWrite(offset, data, ioSeq, cb);
      else origWrite(offset, data, ioSeq).then(() => cb(null), (err: Error) => cb(err));
    };
    c.readCb = (offset, length, cb) => {
      if (ctl.hold) heldRead(offset, length, cb);
      else origRead(offset, length).then((d) => cb(null, d), (err: Error) => cb(err, undefined));
    };
  } else {
    // Promise forms: the held reply settles the promise in the pass (its reactions run after it).
    client.write = (offset, data, ioSeq) => {
      if (!ctl.hold) return origWrite(offset, data, ioSeq);
      return new Promise((resolve, reject) => heldWrite(offset, data, ioSeq, (err) => (err ? reject(err) : resolve())));
    };
    client.read = (offset, length) => {
      if (!ctl.hold) return origRead(offset, length);
      return new Promise((resolve, reject) => heldRead(offset, length, (err, d) => (err ? reject(err) : resolve(d!))));
    };
  }
  return ctl;
}

/**
 * pool2 of an RF=3 volume crashes and comes back; its rebuild is slowed (every readLayer 40 ms) so a
 * test can act while it streams. Returns the rebuild's source and the other healthy replica.
 */
async function slowRebuildOfPool2(vol: ReplicatedVolume, cluster: FakeCluster): Promise<{ source: string; other: string }> {
  cluster.store('pool2:3232').crash();
  await vol.waitFor((v) => v.members[2]!.state === 'offline', 2000);
  for (const a of ['pool0:3232', 'pool1:3232']) cluster.client(a).faults.push({ op: 'readLayer', kind: 'delay', delayMs: 40, count: Infinity });
  cluster.store('pool2:3232').revive();
  await vol.waitFor((v) => v.members[2]!.state === 'rebuilding', 5000);
  const source = vol.status().rebuildingFrom!;
  return { source, other: source === 'pool0:3232' ? 'pool1:3232' : 'pool0:3232' };
}

afterEach(async () => {
  await stopVolumes();
});

describe('ReplicatedVolume under adversarial interleavings', () => {
  describe('rebuild', () => {
    it('a rebuild interrupted after a user snapshot was taken during it is redone in full, not from that snapshot', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      await vol.writeAt(0, pattern(1));
      await vol.writeAt(4096, pattern(2));
      cluster.store('pool2:3232').crash();
      await vol.waitFor((v) => v.members[2]!.state === 'offline', 2000);
      await vol.writeAt(8192, pattern(3)); // pool2 misses it
      // The source's copy stalls (until it crashes below), so pool2's rebuild cannot finish.
      for (const a of ['pool0:3232', 'pool1:3232']) cluster.client(a).faults.push({ op: 'readLayer', kind: 'hang', count: Infinity });
      cluster.store('pool2:3232').revive();
      await vol.waitFor((v) => v.members[2]!.state === 'rebuilding', 5000);
      const firstSource = vol.status().rebuildingFrom!;
      const otherSource = firstSource === 'pool0:3232' ? 'pool1:3232' : 'pool0:3232';
      // A user snapshot while pool2's older data is still being copied: on pool2 it holds only the
      // writes since the rebuild joined (the rest was to be imported beneath it).
      await vol.snapshotCreate('s2');
      await vol.writeAt(12288, pattern(4));
      expect(cluster.store('pool2:3232').snapshotList().map((s) => s.name)).to.include('s2');
      cluster.store('pool2:3232').crash(); // mid-import: its rebuild never finished
      await vol.waitFor((v) => v.members[2]!.state === 'offline', 2000);
      expect(cluster.store('pool2:3232').mode).to.equal('Rebuilding');
      // The next rebuild comes from the other healthy replica (which never held the first R).
      cluster.client(otherSource).faults.splice(0);
      cluster.store(firstSource).crash();
      await vol.waitFor((v) => v.status().rebuilding === null && v.count('healthy') === 1, 5000);
      cluster.store('pool2:3232').revive();
      await vol.waitFor((v) => v.members[2]!.state === 'healthy' && v.status().rebuilding === null, 10_000, 'pool2 rebuilt from the other source');
      const p2 = cluster.store('pool2:3232');
      const src = cluster.store(otherSource);
      expect(p2.readView(0, 4096, 's2').equals(pattern(1)), "pool2's s2 holds the data written before the first rebuild").to.equal(true);
      sameChain(p2, src);
      expect(p2.readView(0, 16384).equals(Buffer.concat([pattern(1), pattern(2), pattern(3), pattern(4)]))).to.equal(true);
    });

    it('a rebuild whose destination fails leaves no internal snapshot behind on its source', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      for (let i = 0; i < 8; i++) await vol.writeAt(i * 4096, pattern(i));
      cluster.store('pool2:3232').crash();
      await vol.waitFor((v) => v.members[2]!.state === 'offline', 2000);
      for (const a of ['pool0:3232', 'pool1:3232']) cluster.client(a).faults.push({ op: 'readLayer', kind: 'delay', delayMs: 60, count: Infinity });
      cluster.store('pool2:3232').revive();
      await vol.waitFor((v) => v.members[2]!.state === 'rebuilding', 5000);
      const source = vol.status().rebuildingFrom!;
      expect(cluster.store(source).snapshotList().map((s) => s.name)[0]).to.match(/^rebuild-/);
      cluster.store('pool2:3232').crash();
      await vol.waitFor((v) => v.status().rebuilding === null, 5000, 'the failed rebuild ended');
      await sleep(50);
      expect(cluster.store(source).snapshotList().map((s) => s.name), 'R destroyed on the source').to.deep.equal([]);
      for (const a of ['pool0:3232', 'pool1:3232']) cluster.client(a).faults.splice(0);
      cluster.store('pool2:3232').revive();
      await vol.waitFor(settled(3), 10_000, 'rebuilt again');
      for (const a of cluster.addresses) expect(cluster.store(a).snapshotList(), a).to.deep.equal([]);
      sameChain(cluster.store('pool2:3232'), cluster.store(source));
    });
  });

  describe('io_seq', () => {
    it('is never reused across target restarts: an unacknowledged write a lone replica kept is not taken for a later one', async () => {
      const cluster = new FakeCluster('vol1', 4 * MiB, addresses(3));
      // Target A crashed with write 11 (X) sent: only pool2 got it, never acknowledged.
      for (const a of cluster.addresses) {
        preset(cluster.store(a), 'Healthy', 10);
        cluster.store(a).write(0, pattern(10), 10);
      }
      cluster.store('pool2:3232').write(0, pattern(99), 11);
      preset(cluster.store('pool2:3232'), 'Healthy', 11);
      // Target B runs without pool2 and acknowledges a write W at block 0.
      cluster.store('pool2:3232').up = false;
      const b = makeVolume(3, cluster).vol;
      await b.waitFor((v) => v.count('healthy') === 2, 5000);
      await b.writeAt(0, pattern(20));
      const wSeq = cluster.client('pool0:3232').calls.filter((c) => c.op === 'write').map((c) => c.args[2] as number)[0]!;
      expect(wSeq, "W's io_seq is above anything a replica may hold from target A").to.be.greaterThan(11);
      await b.stop();
      // Target C starts with all three: pool2's X must not pass for W.
      cluster.store('pool2:3232').revive();
      const c = makeVolume(3, cluster).vol;
      await c.waitFor(settled(3), 10_000, 'all healthy');
      for (let i = 0; i < 6; i++) expect((await c.readAt(0, 4096)).equals(pattern(20)), `read ${i}`).to.equal(true);
      for (const a of cluster.addresses) expect(cluster.store(a).readView(0, 4096).equals(pattern(20)), a).to.equal(true);
      expect(cluster.client('pool2:3232').calls.some((x) => x.op === 'rebuildStart'), 'pool2 rebuilt').to.equal(true);
    });

    it('goes on increasing within a target when every replica was lost and the healthy set is chosen again', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      await vol.writeAt(0, pattern(1));
      const before = vol.status().ioSeq;
      for (const a of cluster.addresses) cluster.store(a).crash();
      await vol.waitFor((v) => v.count('healthy') === 0, 2000);
      expect((await rejects(vol.writeAt(0, pattern(2)))).message).to.match(/refused/);
      for (const a of cluster.addresses) cluster.store(a).revive();
      await vol.waitFor(settled(3), 10_000, 'all healthy again');
      await vol.writeAt(4096, pattern(3));
      expect(vol.status().ioSeq).to.be.greaterThan(before);
      const seqs = cluster.client('pool0:3232').calls.filter((c) => c.op === 'write').map((c) => c.args[2] as number);
      expect(seqs.every((s) => s > before)).to.equal(true);
      expect((await vol.readAt(0, 8192)).equals(Buffer.concat([pattern(1), pattern(3)]))).to.equal(true);
    });
  });

  describe('reads', () => {
    for (const callbacks of [true, false]) {
      it(`never return a replica's data from before an acknowledged write that replica failed (${callbacks ? 'readCb/writeCb' : 'readAt/promise'} clients)`, async () => {
        const held = new Map<string, HeldReplies>();
        const cluster = new FakeCluster('vol1', 4 * MiB, addresses(3));
        const connect = async (a: string): Promise<ReplicaClient> => {
          const c = (await cluster.connect(a)) as FakeReplicaClient;
          held.set(a, holdReplies(c, callbacks));
          return c;
        };
        const { vol } = makeVolume(3, cluster, { connect, reconnectMinMs: 5000 });
        await vol.waitFor((v) => v.phase === 'Healthy', 5000);
        await vol.writeAt(0, pattern(1));
        // pool0 and pool1 each busy with a slow read, so the next read goes to pool2.
        for (const a of ['pool0:3232', 'pool1:3232']) cluster.client(a).faults.push({ op: 'read', kind: 'delay', delayMs: 100 });
        const busy = [vol.readAt(65536, 4096), vol.readAt(65536, 4096)];
        const p2 = held.get('pool2:3232')!;
        p2.hold = true;
        p2.failWrites = 1;
        // W is acknowledged by pool0 and pool1; pool2 has it queued and will fail it.
        await vol.writeAt(0, pattern(2));
        // A read issued after W's acknowledgement, sent to pool2 behind W on its connection.
        const read = callbacks
          ? new Promise<Buffer>((resolve, reject) => vol.readCb(0, 4096, (err, data) => (err ? reject(err) : resolve(data!))))
          : vol.readAt(0, 4096);
        expect(p2.queue.length, 'W and the read queued on pool2').to.equal(2);
        // One socket read brings W's error reply and then the read's reply (the pool ran the
        // read after the failed W, so it holds the old data).
        p2.flush();
        const got = await read;
        expect(got.equals(pattern(2)), 'the read returns the acknowledged write').to.equal(true);
        expect(vol.members[2]!.state).to.not.equal('healthy');
        await Promise.all(busy);
      });
    }
  });
  describe('quorum and eviction', () => {
    for (const callbacks of [true, false]) {
      it(`a replica that fails a write after its quorum ack: acknowledged once, never released, evicted, rebuilt with it (${callbacks ? 'writeCb' : 'writeAt'})`, async () => {
        const { vol, cluster } = makeVolume(3);
        await vol.waitFor((v) => v.phase === 'Healthy', 5000);
        cluster.client('pool2:3232').faults.push({ op: 'write', kind: 'error', delayMs: 40 });
        let released = 0;
        let acks = 0;
        const results: (Error | null)[] = [];
        if (callbacks) {
          await new Promise<void>((resolve) =>
            vol.writeCb(0, pattern(5), () => released++, (err) => {
              acks++;
              results.push(err);
              resolve();
            }),
          );
        } else {
          await vol.writeAt(0, pattern(5), () => released++).then(() => {
            acks++;
            results.push(null);
          });
        }
        expect(vol.members[2]!.state, 'still in the set when acknowledged').to.equal('healthy');
        await vol.waitFor((v) => v.members[2]!.state !== 'healthy', 2000, 'pool2 evicted');
        await sleep(20);
        expect(acks).to.equal(1);
        expect(results).to.deep.equal([null]);
        expect(released, 'a replica failed: the buffer is never released').to.equal(0);
        await vol.waitFor(settled(3), 5000, 'pool2 rebuilt');
        for (const a of cluster.addresses) expect(cluster.store(a).readView(0, 4096).equals(pattern(5)), a).to.equal(true);
      });
    }

    it('writes in flight when the quorum is lost get a clear error (no hang, no success); later IO is refused at once', async () => {
      const { vol, cluster } = makeVolume(3, undefined, { reconnectMinMs: 5000 });
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      await vol.writeAt(0, pattern(1));
      for (const a of ['pool1:3232', 'pool2:3232']) cluster.client(a).faults.push({ op: 'write', kind: 'hang', count: Infinity });
      const inflight = [vol.writeAt(4096, pattern(2)), vol.writeAt(8192, pattern(3))].map((p) => rejects(p));
      const cbErr = new Promise<Error | null>((resolve) => vol.writeCb(12288, pattern(4), undefined, resolve));
      await sleep(20);
      cluster.store('pool1:3232').crash();
      cluster.store('pool2:3232').crash();
      for (const err of await Promise.all(inflight)) {
        expect(hasErrorCode(err, 'unavailable'), err.message).to.equal(true);
        expect(err.message).to.match(/not acknowledged by a quorum \(1 of 3 replicas ok/);
      }
      const e = await cbErr;
      expect(e?.message).to.match(/not acknowledged by a quorum/);
      expect(vol.phase).to.equal('Offline');
      const t0 = performance.now();
      const refused = await rejects(vol.writeAt(0, pattern(9)));
      expect(refused.message).to.equal('volume vol1 is Offline: write refused');
      expect(performance.now() - t0).to.be.lessThan(100);
      expect(hasErrorCode(await rejects(vol.sync()), 'unavailable')).to.equal(true);
      expect(hasErrorCode(await rejects(vol.snapshotCreate('s')), 'not_ready')).to.equal(true);
      // pool0 still holds every write it took: reads keep their last acknowledged value.
      expect((await vol.readAt(0, 4096)).equals(pattern(1))).to.equal(true);
    });

    it('stop with writes and reads in flight: every callback and promise settles exactly once, with an error; nothing released', async () => {
      const { vol, cluster } = makeVolume(3, undefined, { quiesceTimeoutMs: 100 });
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      await vol.writeAt(0, pattern(1));
      for (const a of cluster.addresses) {
        cluster.client(a).faults.push({ op: 'write', kind: 'hang', count: Infinity });
        cluster.client(a).faults.push({ op: 'read', kind: 'hang', count: Infinity });
      }
      const calls: string[] = [];
      let released = 0;
      const settledAll: Promise<unknown>[] = [];
      for (let i = 0; i < 3; i++) {
        settledAll.push(vol.writeAt(i * 4096, pattern(i), () => released++).then(() => calls.push(`w${i}:ok`), () => calls.push(`w${i}:err`)));
        settledAll.push(
          new Promise<void>((resolve) =>
            vol.writeCb(65536 + i * 4096, pattern(i), () => released++, (err) => {
              calls.push(`cb${i}:${err ? 'err' : 'ok'}`);
              resolve();
            }),
          ),
        );
        settledAll.push(vol.readAt(0, 4096).then(() => calls.push(`r${i}:ok`), () => calls.push(`r${i}:err`)));
        settledAll.push(
          new Promise<void>((resolve) =>
            vol.readCb(0, 4096, (err) => {
              calls.push(`rcb${i}:${err ? 'err' : 'ok'}`);
              resolve();
            }),
          ),
        );
      }
      await sleep(20);
      const stopping = vol.stop();
      // A write issued while stop drains waits at the gate and is refused.
      const late = rejects(vol.writeAt(0, pattern(7)));
      await stopping;
      await Promise.all(settledAll);
      expect((await late).message).to.match(/refused/);
      await sleep(20);
      expect(calls.length).to.equal(12);
      expect(new Set(calls).size).to.equal(12);
      expect(calls.every((c) => c.endsWith(':err')), calls.join(' ')).to.equal(true);
      expect(released).to.equal(0);
      expect(vol.phase).to.equal('Offline');
      for (const a of cluster.addresses) expect(cluster.store(a).clients.size, a).to.equal(0);
    });
  });

  describe('rebuild against live IO', () => {
    it('the rebuilt replica ends with the newest version of blocks overwritten during its live-data step', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      const model = Buffer.alloc(16 * 4096);
      const write = async (block: number, seed: number): Promise<void> => {
        await vol.writeAt(block * 4096, pattern(seed));
        pattern(seed).copy(model, block * 4096);
      };
      for (let b = 0; b < 16; b++) await write(b, b);
      await vol.snapshotCreate('s1');
      for (let b = 0; b < 16; b += 2) await write(b, 100 + b);
      cluster.store('pool2:3232').crash();
      await vol.waitFor((v) => v.members[2]!.state === 'offline', 2000);
      for (let b = 1; b < 16; b += 2) await write(b, 200 + b);
      for (const a of ['pool0:3232', 'pool1:3232']) cluster.client(a).faults.push({ op: 'readLayer', kind: 'delay', delayMs: 15, count: Infinity });
      cluster.store('pool2:3232').revive();
      await vol.waitFor((v) => v.members[2]!.state === 'rebuilding', 5000);
      // Overwrite the same few blocks again and again while older layers are imported.
      let seed = 1000;
      for (let i = 0; i < 200 && vol.status().rebuilding !== null; i++) await write(i % 5, seed++);
      await vol.waitFor(settled(3), 10_000, 'rebuilt');
      for (let i = 0; i < 5; i++) await write(i, seed++);
      expect(await vol.settledWrites(2000)).to.equal(true);
      for (const a of cluster.addresses) {
        expect(cluster.store(a).readView(0, model.length).equals(model), a).to.equal(true);
        expect(cluster.store(a).readView(0, 4096, 's1').equals(pattern(0)), a).to.equal(true);
      }
    });

    it('a write failing on a third replica while a rebuild streams: the rebuild finishes, every acknowledged write is everywhere', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      for (let i = 0; i < 8; i++) await vol.writeAt(i * 4096, pattern(i));
      const { other } = await slowRebuildOfPool2(vol, cluster);
      cluster.client(other).faults.push({ op: 'write', kind: 'error' });
      // Acknowledged by the source (healthy) and pool2 (being rebuilt): max(RF-CF+1, CF) = 2 OKs.
      await vol.writeAt(0, pattern(50));
      expect(vol.members[cluster.addresses.indexOf(other)]!.state).to.not.equal('healthy');
      expect(vol.phase).to.equal('Degraded');
      await vol.writeAt(4096, pattern(51));
      await vol.waitFor(settled(3), 10_000, 'both rebuilt');
      expect(await vol.settledWrites(2000)).to.equal(true);
      const want = Buffer.concat([pattern(50), pattern(51), ...Array.from({ length: 6 }, (_, i) => pattern(i + 2))]);
      for (const a of cluster.addresses) expect(cluster.store(a).readView(0, want.length).equals(want), a).to.equal(true);
    });

    it('a rebuild source that fails a readLayer mid-stream is evicted; the volume ends whole from the replicas left', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      for (let i = 0; i < 8; i++) await vol.writeAt(i * 4096, pattern(i));
      await vol.snapshotCreate('s1');
      await vol.writeAt(0, pattern(60));
      cluster.store('pool2:3232').crash();
      await vol.waitFor((v) => v.members[2]!.state === 'offline', 2000);
      for (let i = 1; i < 8; i++) await vol.writeAt(i * 4096, pattern(60 + i)); // R: 4 pages of 8 KiB
      for (const a of ['pool0:3232', 'pool1:3232']) {
        cluster.client(a).faults.push({ op: 'readLayer', kind: 'delay', delayMs: 20 }, { op: 'readLayer', kind: 'error', delayMs: 20 });
      }
      cluster.store('pool2:3232').revive();
      await vol.waitFor((v) => v.members[2]!.state === 'rebuilding', 5000);
      const source = vol.status().rebuildingFrom!;
      await vol.waitFor((v) => v.members[cluster.addresses.indexOf(source)]!.state !== 'healthy', 5000, 'source evicted');
      expect(vol.members[cluster.addresses.indexOf(source)]!.lastError).to.match(/rebuild source failed|injected readLayer/);
      await vol.waitFor(settled(3), 10_000, 'all whole again');
      const want = Buffer.concat(Array.from({ length: 8 }, (_, i) => pattern(60 + i)));
      for (const a of cluster.addresses) {
        expect(cluster.store(a).readView(0, want.length).equals(want), a).to.equal(true);
        expect(cluster.store(a).snapshotList().map((x) => x.name), a).to.deep.equal(['s1']);
        expect(cluster.store(a).readView(0, 4096, 's1').equals(pattern(0)), a).to.equal(true);
      }
    });
  });

  it('a rebuild whose join cannot drain the writes in flight is retried with back-off, not at once over and over', async () => {
    const { vol, cluster } = makeVolume(3, undefined, { quiesceTimeoutMs: 100 });
    await vol.waitFor((v) => v.phase === 'Healthy', 5000);
    await vol.writeAt(0, pattern(1));
    cluster.store('pool2:3232').crash();
    await vol.waitFor((v) => v.members[2]!.state === 'offline', 2000);
    // A write that hangs on pool0: no join can drain it, and only pool1 of the healthy ones drains.
    cluster.client('pool0:3232').faults.push({ op: 'write', kind: 'hang' });
    void vol.writeAt(4096, pattern(2)).catch(() => undefined);
    const lists = (): number => cluster.client('pool1:3232').calls.filter((c) => c.op === 'snapshotList').length + cluster.client('pool0:3232').calls.filter((c) => c.op === 'snapshotList').length;
    const before = lists();
    cluster.store('pool2:3232').revive();
    await sleep(2000);
    const attempts = lists() - before;
    // At once over and over: one attempt per 100 ms quiesce (~20). With back-off (0.5, 1, 2 s): at most 4.
    expect(attempts, 'rebuild attempts in 2 s').to.be.within(1, 5);
    expect(vol.members[2]!.state).to.equal('waiting');
  });

  describe('snapshots against failures', () => {
    it('a snapshot during a rebuild that fails on the source: refused and removed everywhere, the source evicted; all whole afterwards', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      for (let i = 0; i < 8; i++) await vol.writeAt(i * 4096, pattern(i));
      const { source, other } = await slowRebuildOfPool2(vol, cluster);
      cluster.client(source).faults.push({ op: 'snapshotCreate', kind: 'error' });
      cluster.client(other).faults.splice(0);
      await vol.writeAt(0, pattern(70));
      // Healthy: source and other; the source fails it, so only 1 of CF 2 healthy replicas has it.
      const err = await rejects(vol.snapshotCreate('s-during'));
      expect(err.message).to.match(/created on 1 healthy replicas, 2 needed/);
      for (const a of cluster.addresses) expect(cluster.store(a).snapshotList().map((x) => x.name), a).to.not.include('s-during');
      await vol.waitFor(settled(3), 10_000, 'all whole again');
      await vol.snapshotCreate('s-after');
      await vol.writeAt(0, pattern(71));
      expect(await vol.settledWrites(2000)).to.equal(true);
      for (const a of cluster.addresses) {
        expect(cluster.store(a).snapshotList().map((x) => x.name), a).to.deep.equal(['s-after']);
        expect(cluster.store(a).readView(0, 4096, 's-after').equals(pattern(70)), a).to.equal(true);
        expect(cluster.store(a).readView(0, 4096).equals(pattern(71)), a).to.equal(true);
      }
    });

    it('destroys during a rebuild (a layer not imported yet, one created during the rebuild): the rebuilt chain equals the source', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      for (let i = 0; i < 8; i++) await vol.writeAt(i * 4096, pattern(i));
      await vol.snapshotCreate('s1');
      for (let i = 0; i < 8; i++) await vol.writeAt(i * 4096, pattern(10 + i));
      await vol.snapshotCreate('s2');
      for (let i = 0; i < 4; i++) await vol.writeAt(i * 4096, pattern(20 + i));
      cluster.store('pool2:3232').crash();
      await vol.waitFor((v) => v.members[2]!.state === 'offline', 2000);
      await vol.snapshotDestroy('s1'); // pool2 keeps it: its chain now differs from the start
      for (const a of ['pool0:3232', 'pool1:3232']) cluster.client(a).faults.push({ op: 'readLayer', kind: 'delay', delayMs: 30, count: Infinity });
      cluster.store('pool2:3232').revive();
      await vol.waitFor((v) => v.members[2]!.state === 'rebuilding', 5000);
      await vol.snapshotCreate('s3');
      await vol.writeAt(0, pattern(30));
      await vol.snapshotDestroy('s2');
      await vol.snapshotDestroy('s3');
      await vol.snapshotCreate('s4');
      await vol.writeAt(4096, pattern(31));
      await vol.waitFor(settled(3), 10_000, 'rebuilt');
      expect(await vol.settledWrites(2000)).to.equal(true);
      for (const a of cluster.addresses) {
        expect(cluster.store(a).snapshotList().map((x) => x.name), a).to.deep.equal(['s4']);
        sameChain(cluster.store(a), cluster.store('pool0:3232'));
      }
      const s4 = Buffer.concat([pattern(30), pattern(21), pattern(22), pattern(23), ...Array.from({ length: 4 }, (_, i) => pattern(14 + i))]);
      expect(cluster.store('pool2:3232').readView(0, s4.length, 's4').equals(s4)).to.equal(true);
    });

    it('a failed snapshot whose undo fails on a replica: that replica is evicted, so a retry never finds or keeps the stale cut', async () => {
      const { vol, cluster } = makeVolume(4);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      await vol.writeAt(0, pattern(1));
      // CF 3: pool0 and pool1 take it, pool2 and pool3 fail it: failed, to be destroyed again.
      for (const a of ['pool2:3232', 'pool3:3232']) cluster.client(a).faults.push({ op: 'snapshotCreate', kind: 'error' });
      cluster.client('pool1:3232').faults.push({ op: 'snapshotDestroy', kind: 'error' });
      const err = await rejects(vol.snapshotCreate('s'));
      expect(err.message).to.match(/created on 2 healthy replicas, 3 needed/);
      expect(vol.members[1]!.state, 'pool1 kept a snapshot the others do not have').to.not.equal('healthy');
      await vol.waitFor(settled(4), 10_000, 'all rebuilt');
      await vol.writeAt(0, pattern(2));
      await vol.snapshotCreate('s');
      expect(await vol.settledWrites(2000)).to.equal(true);
      for (const a of cluster.addresses) {
        expect(cluster.store(a).snapshotList().map((x) => x.name), a).to.deep.equal(['s']);
        expect(cluster.store(a).readView(0, 4096, 's').equals(pattern(2)), `${a}: the retry's cut`).to.equal(true);
      }
    });

    it('a snapshot a slow replica fails after success was answered: that replica is evicted and gets it by rebuild', async () => {
      const { vol, cluster } = makeVolume(3);
      await vol.waitFor((v) => v.phase === 'Healthy', 5000);
      await vol.writeAt(0, pattern(80));
      cluster.client('pool2:3232').faults.push({ op: 'snapshotCreate', kind: 'error', delayMs: 80 });
      await vol.snapshotCreate('s1');
      expect(vol.members[2]!.state).to.equal('healthy');
      await vol.writeAt(0, pattern(81));
      await vol.waitFor((v) => v.members[2]!.state !== 'healthy', 2000, 'pool2 evicted');
      await vol.waitFor(settled(3), 5000, 'pool2 rebuilt');
      expect(await vol.settledWrites(2000)).to.equal(true);
      for (const a of cluster.addresses) {
        expect(cluster.store(a).snapshotList().map((x) => x.name), a).to.deep.equal(['s1']);
        expect(cluster.store(a).readView(0, 4096, 's1').equals(pattern(80)), a).to.equal(true);
        expect(cluster.store(a).readView(0, 4096).equals(pattern(81)), a).to.equal(true);
      }
    });
  });
});
