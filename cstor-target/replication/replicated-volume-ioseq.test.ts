// io_seq reservations (IoSeqStore) and suspect marks for replicas that miss a snapshot: the two
// ways the engine keeps a restarted target from trusting a replica that only looks as fresh as
// its peers (docs/target.md, "Choosing the healthy set").
import { expect } from 'chai';
import type { ReplicaClient } from '../../lib/replica-protocol/types.ts';
import { FakeCluster } from './fake-replica.ts';
import type { IoSeqStore, ReplicatedVolume, ReplicatedVolumeOptions, SuspectStore } from './replicated-volume.ts';
import { addresses, makeVolume as makeFixtureVolume, MiB, settled as settledN, sleep, stopVolumes } from './test-fixtures.ts';

const addrs = addresses(3);

function makeVolume(cluster: FakeCluster, extra: Partial<ReplicatedVolumeOptions> = {}): ReplicatedVolume {
  return makeFixtureVolume(3, cluster, extra).vol;
}

/** An io_seq store whose reservations become durable only when `persist()` is called (or at once with `auto`). */
class HeldIoSeqStore implements IoSeqStore {
  persisted = 0;
  reserves: number[] = [];
  private waiting: Array<{ upTo: number; resolve: () => void }> = [];
  constructor(
    start: number,
    public auto = false,
  ) {
    this.persisted = start;
  }
  load(): number {
    return this.persisted;
  }
  reserve(upTo: number): Promise<void> {
    this.reserves.push(upTo);
    if (this.auto) {
      this.persisted = Math.max(this.persisted, upTo);
      return new Promise((r) => setTimeout(r, 2));
    }
    return new Promise((resolve) => this.waiting.push({ upTo, resolve }));
  }
  persist(): void {
    for (const w of this.waiting.splice(0)) {
      this.persisted = Math.max(this.persisted, w.upTo);
      w.resolve();
    }
  }
}

class MemorySuspects implements SuspectStore {
  readonly set = new Set<string>();
  load(): ReadonlySet<string> {
    return new Set(this.set);
  }
  async mark(address: string): Promise<void> {
    this.set.add(address);
  }
  async clear(address: string): Promise<void> {
    this.set.delete(address);
  }
}

const settled = settledN(3);

describe('ReplicatedVolume io_seq reservation and snapshot suspects', () => {
  afterEach(stopVolumes);

  it('sends no write before its io_seq is inside a durable reservation, and starts above the last one', async () => {
    const cluster = new FakeCluster('vol1', 4 * MiB, addrs);
    const store = new HeldIoSeqStore(5000);
    const vol = makeVolume(cluster, { ioSeq: store });
    await vol.waitFor((v) => v.phase === 'Healthy', 5000);
    const write = vol.writeAt(0, Buffer.alloc(4096, 7));
    await sleep(30);
    expect(cluster.client(addrs[0]!).calls.filter((c) => c.op === 'write'), 'held until the reservation is durable').to.have.length(0);
    store.persist();
    await write;
    const seq = cluster.client(addrs[0]!).calls.find((c) => c.op === 'write')!.args[2] as number;
    expect(seq).to.be.greaterThan(5000);
    expect(seq).to.be.at.most(store.persisted);
    expect((await vol.readAt(0, 4096)).equals(Buffer.alloc(4096, 7))).to.equal(true);
  });

  it('renews the reservation as io_seq goes: every write at or below what was durable when it was sent', async () => {
    const cluster = new FakeCluster('vol1', 4 * MiB, addrs);
    const store = new HeldIoSeqStore(0, true);
    const violations: string[] = [];
    // Each replica's write checks its io_seq against the store at the moment it is sent.
    const connect = async (address: string): Promise<ReplicaClient> => {
      const c = await cluster.connect(address);
      const write = c.write.bind(c);
      c.write = (offset, data, ioSeq) => {
        if (ioSeq > store.persisted) violations.push(`${address}: io_seq ${ioSeq} > reserved ${store.persisted}`);
        return write(offset, data, ioSeq);
      };
      return c;
    };
    const vol = makeVolume(cluster, { ioSeq: store, ioSeqReserveChunk: 8, connect });
    await vol.waitFor((v) => v.phase === 'Healthy', 5000);
    // Bursts of concurrent writes run past the end of each small reservation.
    for (let round = 0; round < 5; round++) {
      await Promise.all(Array.from({ length: 12 }, (_, i) => vol.writeAt(i * 4096, Buffer.alloc(4096, round * 16 + i))));
    }
    expect(violations).to.deep.equal([]);
    expect(store.reserves.length, 'reservations made').to.be.at.least(60 / 8);
    const seqs = cluster.client(addrs[1]!).calls.filter((c) => c.op === 'write').map((c) => c.args[2] as number);
    expect(new Set(seqs).size, 'io_seq never repeats').to.equal(60);
    for (let i = 0; i < 12; i++) expect((await vol.readAt(i * 4096, 4096)).equals(Buffer.alloc(4096, 64 + i)), `block ${i}`).to.equal(true);
  });

  it('a replica away during a snapshot is not trusted as healthy without it after a target restart', async () => {
    const cluster = new FakeCluster('vol1', 4 * MiB, addrs);
    const suspects = new MemorySuspects();
    const a = makeVolume(cluster, { suspects });
    await a.waitFor((v) => v.phase === 'Healthy', 5000);
    await a.writeAt(0, Buffer.alloc(4096, 1));
    await a.sync();
    cluster.store('pool2:3232').crash();
    await a.waitFor((v) => v.count('healthy') === 2, 2000);
    await a.snapshotCreate('s1');
    expect([...suspects.set]).to.deep.equal(['pool2:3232']);
    await a.stop();
    cluster.store('pool2:3232').revive();
    const b = makeVolume(cluster, { suspects });
    await b.waitFor(settled, 10_000, 'all healthy');
    for (const x of addrs) expect(cluster.store(x).snapshotList().map((s) => s.name), x).to.deep.equal(['s1']);
    expect(cluster.client('pool2:3232').calls.some((c) => c.op === 'rebuildStart'), 'pool2 rebuilt').to.equal(true);
    expect(suspects.set.size, 'the mark is cleared by the rebuild').to.equal(0);
  });

  it('a replica away during a snapshot destroy does not bring the snapshot back after a target restart', async () => {
    const cluster = new FakeCluster('vol1', 4 * MiB, addrs);
    const suspects = new MemorySuspects();
    const a = makeVolume(cluster, { suspects });
    await a.waitFor((v) => v.phase === 'Healthy', 5000);
    await a.writeAt(0, Buffer.alloc(4096, 1));
    await a.snapshotCreate('s1');
    await a.sync();
    cluster.store('pool1:3232').crash();
    await a.waitFor((v) => v.count('healthy') === 2, 2000);
    await a.snapshotDestroy('s1');
    expect([...suspects.set]).to.deep.equal(['pool1:3232']);
    await a.stop();
    cluster.store('pool1:3232').revive();
    const b = makeVolume(cluster, { suspects });
    await b.waitFor(settled, 10_000, 'all healthy');
    for (const x of addrs) expect(cluster.store(x).snapshotList().map((s) => s.name), x).to.deep.equal([]);
    expect(await b.snapshotList()).to.deep.equal([]);
    expect((await b.readAt(0, 4096)).equals(Buffer.alloc(4096, 1))).to.equal(true);
  });
});
