// What the replication engine's unit tests share: volumes over a FakeCluster (stopped by
// stopVolumes in an afterEach), data patterns, presets of a store as if written before, and
// chain comparisons.
import { expect } from 'chai';
import { FakeCluster, type FakeReplicaStore } from './fake-replica.ts';
import { ReplicatedVolume, type ReplicatedVolumeOptions } from './replicated-volume.ts';

export const MiB = 1 << 20;
const volumes: ReplicatedVolume[] = [];

export function addresses(rf: number): string[] {
  return Array.from({ length: rf }, (_, i) => `pool${i}:3232`);
}

/** A started 4 MiB volume `vol1` with short timeouts, over `cluster` (a new one of RF stores if none). */
export function makeVolume(rf: number, cluster?: FakeCluster, extra: Partial<ReplicatedVolumeOptions> = {}): { vol: ReplicatedVolume; cluster: FakeCluster } {
  const c = cluster ?? new FakeCluster('vol1', 4 * MiB, addresses(rf));
  const vol = new ReplicatedVolume({
    volume: 'vol1',
    size: 4 * MiB,
    replicationFactor: rf,
    replicas: c.addresses,
    connect: c.connect,
    reconnectMinMs: 20,
    reconnectMaxMs: 100,
    quiesceTimeoutMs: 500,
    rebuildPageBytes: 8192,
    ...extra,
  });
  volumes.push(vol);
  vol.start();
  return { vol, cluster: c };
}

/** Stops every volume makeVolume made (idempotent for ones a test stopped itself). */
export async function stopVolumes(): Promise<void> {
  await Promise.all(volumes.splice(0).map((v) => v.stop()));
}

export function pattern(seed: number, length = 4096): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (seed * 31 + i * 7) & 0xff;
  return b;
}

export async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

/** Presets a store as if written before: mode and checkpoint (and block 0's data). */
export function preset(store: FakeReplicaStore, mode: 'Healthy' | 'Rebuilding' | 'New', ioSeq: number, fill?: Buffer): void {
  store.mode = mode;
  store.highestIoSeq = ioSeq;
  store.checkpointedIoSeq = ioSeq;
  if (fill) store.write(0, fill, ioSeq);
}

/** Same snapshots (names, io_seqs, contents) and same head (and mode unless `modes` is false). */
export function sameChain(a: FakeReplicaStore, b: FakeReplicaStore, modes = true): void {
  if (modes) expect(a.mode).to.equal(b.mode);
  expect(a.snapshotList().map((s) => [s.name, s.ioSeq])).to.deep.equal(b.snapshotList().map((s) => [s.name, s.ioSeq]));
  expect(a.readView(0, a.size).equals(b.readView(0, b.size)), 'head view equal').to.equal(true);
  for (const s of a.snapshotList()) {
    expect(a.readView(0, a.size, s.name).equals(b.readView(0, b.size, s.name)), `snapshot ${s.name} equal`).to.equal(true);
  }
}

/** Every replica healthy and no rebuild (or its clean-up) still running. */
export function settled(n: number) {
  return (v: ReplicatedVolume): boolean => v.count('healthy') === n && v.status().rebuilding === null;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
