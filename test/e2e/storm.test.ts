// The kill -9 storm (issue 6 "Show") on the real embedded stack (test/e2e/stack.ts: kube-lite,
// three pools, the target, m-apiserver, both provisioners and the snapshot-controller, each a
// process, restarted by the Supervisor when it dies): 50 snapshot and clone operations
// (VolumeSnapshots of three 16Mi PVCs, promoter PVCs from snapshots that are Ready) while
// `kill -9` hits the snapshot-controller, the snapshot-promoter and m-apiserver at seeded random
// instants (STORM_SEED replays a run; the seed, the plan and the kills are printed).
//
// After the storm settles: every VolumeSnapshot is Ready (or carries an Error condition), a Ready
// one with exactly one VolumeSnapshotData and exactly one backend snapshot (m-apiserver's
// GET /latest/snapshots/?volume=), an Error one with neither; every promoter PVC is Bound to
// exactly one PV whose backend clone volume exists once (GET /latest/volumes/), with its 3
// CStorVolumeReplicas and a replica on each of the 3 pools (the pools' own mgmt API); no backend
// snapshot or volume, CStorVolume, replica or snapshot layer on a pool is orphaned. Then
// everything is deleted (with one more kill -9 of each victim, and of the volume-provisioner) and
// the backend is empty.
import { expect } from 'chai';
import type { PersistentVolume, PersistentVolumeClaim } from '../../lib/kube/types/core.ts';
import type { VolumeSnapshot } from '../../lib/kube/types/volume-snapshot.ts';
import { seededRandom } from '../../lib/seeded-random.ts';
import {
  claimObject,
  cstorClass,
  currentCondition,
  promoterClass,
  sleep,
  snapshotIdAnnotation,
  snapshotObject,
  startStack,
  until,
  type E2eStack,
} from './stack.ts';

const ns = 'default';
const size = '16Mi';
const sources = ['storm-src-a', 'storm-src-b', 'storm-src-c'];
const operations = 50;
const victims = ['snapshot-controller', 'snapshot-provisioner', 'mapi'] as const;
const kills = 9;
const components = ['snapshot-controller', 'snapshot-provisioner', 'mapi', 'volume-provisioner', 'target', 'pool-1', 'pool-2', 'pool-3', 'kube-lite'];

interface Op {
  atMs: number;
  kind: 'snapshot' | 'clone' | 'delete';
  name: string;
  /** snapshot: the source claim; clone: chosen at run time among the Ready snapshots; delete: a snapshot no clone came from, chosen at run time. */
  claim?: string;
}

describe('kill -9 storm: 50 snapshot and clone operations while the controller, the promoter and m-apiserver die (real processes)', function () {
  this.timeout(420_000);
  const seed = Number(process.env.STORM_SEED ?? 20261121);
  const random = seededRandom(seed);
  let stack: E2eStack | undefined;
  const clones: string[] = [];
  const snapshots: string[] = [];
  /** Snapshots deleted during the storm (no clone comes from them). */
  const deleted: string[] = [];

  before(async function () {
    this.timeout(240_000);
    stack = await startStack({ prefix: 'cstor-storm-' });
  });
  after(async () => {
    await stack?.stop();
  });

  const s = (): E2eStack => {
    if (!stack) throw new Error('the stack did not start');
    return stack;
  };
  const tails = (): string => s().logTails(components, 15);

  it(`settles with one VolumeSnapshotData and one backend snapshot per Ready snapshot, one clone per promoter PVC, nothing orphaned (seed ${seed})`, async () => {
    const st = s();
    console.log(`      storm seed ${seed} (STORM_SEED=${seed} replays it)`);
    const t0 = Date.now();
    for (const name of sources) await st.claims.create(claimObject({ ns, name, cls: cstorClass, size }));
    await until(
      'the source PVCs Bound',
      async () => {
        const list = (await st.claims.list({ namespace: ns })).items;
        return sources.every((n) => list.find((c) => c.metadata.name === n)?.status?.phase === 'Bound');
      },
      120_000,
      tails,
    );
    console.log(`      3 source PVCs Bound in ${Date.now() - t0} ms`);

    // The plan: 50 operations about 250 ms apart (the first 8 are snapshots, so clones have
    // something Ready to come from), and 9 kills at random instants over the same span.
    const plan: Op[] = [];
    let at = 0;
    for (let i = 0; i < operations; i++) {
      at += 150 + Math.floor(random() * 200);
      const r = random();
      const kind = i < 8 ? 'snapshot' : r < 0.35 ? 'clone' : r < 0.45 ? 'delete' : 'snapshot';
      plan.push(kind === 'snapshot' ? { atMs: at, kind, name: `storm-snap-${i}`, claim: sources[Math.floor(random() * sources.length)]! } : { atMs: at, kind, name: kind === 'clone' ? `storm-clone-${i}` : '' });
    }
    const span = at + 2000;
    const killPlan = Array.from({ length: kills }, (_, i) => ({ atMs: Math.floor(random() * span), victim: victims[i % victims.length]! })).sort((a, b) => a.atMs - b.atMs);
    console.log(`      plan: ${plan.filter((o) => o.kind === 'snapshot').length} snapshots, ${plan.filter((o) => o.kind === 'clone').length} clones, ${plan.filter((o) => o.kind === 'delete').length} deletions over ${at} ms; kills: ${killPlan.map((k) => `${k.victim}@${k.atMs}`).join(', ')}`);

    const start = Date.now();
    const killer = (async () => {
      for (const k of killPlan) {
        const wait = start + k.atMs - Date.now();
        if (wait > 0) await sleep(wait);
        const pid = st.kill9(k.victim);
        console.log(`      t+${Date.now() - start} ms kill -9 ${k.victim} ${pid === undefined ? '(down, restarting: skipped)' : `pid ${pid}`}`);
      }
    })();
    const ready = new Set<string>();
    const clonedFrom = new Set<string>();
    const writes: Promise<void>[] = [];
    for (const op of plan) {
      const wait = start + op.atMs - Date.now();
      if (wait > 0) await sleep(wait);
      if (op.kind === 'clone') {
        // From a snapshot that is Ready now (waiting for one if none is yet: the controller may be down).
        const choices = await until(
          'a Ready VolumeSnapshot to clone',
          async () => {
            for (const snap of (await st.snapshots.list({ namespace: ns })).items) if (currentCondition(snap)?.type === 'Ready') ready.add(snap.metadata.name ?? '');
            const c = [...ready].filter((n) => !deleted.includes(n)).sort();
            return c.length > 0 ? c : undefined;
          },
          90_000,
          tails,
        );
        const from = choices[Math.floor(random() * choices.length)]!;
        clones.push(op.name);
        clonedFrom.add(from);
        writes.push(st.claims.create(claimObject({ ns, name: op.name, cls: promoterClass, size, snapshot: from })).then(() => undefined));
        continue;
      }
      if (op.kind === 'delete') {
        const choices = snapshots.filter((n) => !clonedFrom.has(n) && !deleted.includes(n));
        if (choices.length > 0) {
          const victim = choices[Math.floor(random() * choices.length)]!;
          deleted.push(victim);
          writes.push(st.snapshots.delete({ namespace: ns, name: victim }));
          continue;
        }
      }
      if (op.kind === 'delete') {
        op.name = `storm-snap-${plan.indexOf(op)}`;
        op.claim = sources[Math.floor(random() * sources.length)]!;
      }
      snapshots.push(op.name);
      writes.push(st.snapshots.create(snapshotObject(ns, op.name, op.claim!)).then(() => undefined));
    }
    await Promise.all(writes);
    await killer;
    expect(clones.length, 'clones asked for').to.equal(plan.filter((o) => o.kind === 'clone').length);
    expect(snapshots.length + clones.length + deleted.length).to.equal(operations);
    console.log(`      storm over at t+${Date.now() - start} ms: ${snapshots.length} snapshots, ${clones.length} clones, ${deleted.length} deletions asked for`);
    const errorsNow = (await st.snapshots.list({ namespace: ns })).items.filter((x) => currentCondition(x)?.type === 'Error');
    for (const e of errorsNow) console.log(`      (now) ${e.metadata.name} Error ${currentCondition(e)?.reason}: ${currentCondition(e)?.message}`);

    // Settle: every snapshot Ready (every input is valid, so an Error condition, e.g. m-apiserver
    // unreachable, is a transient one the controller retries), every deleted one gone, every
    // promoter PVC Bound.
    let pending: string[] = [];
    await until(
      'every VolumeSnapshot Ready (or gone, if deleted) and every promoter PVC Bound',
      async () => {
        const snaps = (await st.snapshots.list({ namespace: ns })).items;
        const claims = (await st.claims.list({ namespace: ns })).items;
        pending = [
          ...snapshots.filter((n) => !deleted.includes(n) && currentCondition(snaps.find((x) => x.metadata.name === n))?.type !== 'Ready'),
          ...deleted.filter((n) => snaps.some((x) => x.metadata.name === n)),
          ...clones.filter((n) => claims.find((c) => c.metadata.name === n)?.status?.phase !== 'Bound'),
        ];
        return pending.length === 0;
      },
      150_000,
      () => `still pending: ${pending.join(', ')}\n${tails()}`,
    );
    console.log(`      settled at t+${Date.now() - start} ms`);

    // The invariants (polled a little: an orphan's clean-up may still be under way).
    let problems: string[] = [];
    await until('the invariants', async () => (problems = await invariants(st, snapshots.filter((n) => !deleted.includes(n)), clones)).length === 0, 30_000, () => `problems:\n  ${problems.join('\n  ')}\n${tails()}`);
    const snaps = (await st.snapshots.list({ namespace: ns })).items;
    const errors = snaps.filter((x) => currentCondition(x)?.type === 'Error');
    console.log(`      ${snaps.length - errors.length} Ready, ${errors.length} Error${errors.map((e) => ` ${e.metadata.name}: ${currentCondition(e)?.reason}`).join(',')}`);
    for (const c of components) console.log(`      ${c}: ${st.system.supervisor.statusOf(c)?.restarts ?? 0} restarts`);

    // Delete everything, with one more kill -9 of each victim (and of the volume-provisioner, which
    // reclaims the source volumes) at random instants of the first seconds: the backend ends empty.
    const deletionKills = [...victims, 'volume-provisioner'].map((victim) => ({ victim, atMs: Math.floor(random() * 3000) }));
    const deletionStart = Date.now();
    const deletionKiller = Promise.all(
      deletionKills.map(async (k) => {
        await sleep(k.atMs);
        const pid = st.kill9(k.victim);
        console.log(`      deletion t+${Date.now() - deletionStart} ms kill -9 ${k.victim} ${pid === undefined ? '(down, restarting: skipped)' : `pid ${pid}`}`);
      }),
    );
    await Promise.all([...clones, ...sources].map((n) => st.claims.delete({ namespace: ns, name: n })));
    await Promise.all(snapshots.filter((n) => !deleted.includes(n)).map((n) => st.snapshots.delete({ namespace: ns, name: n })));
    await deletionKiller;
    let left = '';
    await until(
      'an empty backend',
      async () => {
        const [{ vs, vsd, pvs, pvcs, vols, cvs, cvrs }, pools] = await Promise.all([listAll(st), st.poolReplicas()]);
        const names = (l: { metadata?: { name?: string } }[]): string[] => l.map((o) => o.metadata?.name ?? '?');
        const poolReplicas = [...pools.values()].flat();
        left = JSON.stringify({ vs: names(vs.items), vsd: names(vsd.items), pvs: names(pvs.items), pvcs: names(pvcs.items), volumes: vols.map((v) => v.metadata.name), cvs: names(cvs.items), cvrs: names(cvrs.items), poolReplicas: poolReplicas.map((r) => r.volume) });
        return [vs.items, vsd.items, pvs.items, pvcs.items, vols, cvs.items, cvrs.items, poolReplicas].every((l) => l.length === 0);
      },
      120_000,
      () => `left: ${left}\n${tails()}`,
    );
    console.log(`      all deleted, backend empty at t+${Date.now() - start} ms`);
  });
});

/** The objects the storm checks, from the API server and m-apiserver, read at once. */
async function listAll(st: E2eStack) {
  const [vs, vsd, pvs, pvcs, vols, cvs, cvrs] = await Promise.all([
    st.snapshots.list({ namespace: ns }),
    st.datas.list(),
    st.pvs.list(),
    st.claims.list({ namespace: ns }),
    st.maya.listVolumes(),
    st.cstorVolumes.list({ namespace: 'openebs' }),
    st.replicas.list({ namespace: 'openebs' }),
  ]);
  return { vs, vsd, pvs, pvcs, vols, cvs, cvrs };
}

/** Every broken invariant, described; [] when the state is right. */
async function invariants(st: E2eStack, snapshots: readonly string[], clones: readonly string[]): Promise<string[]> {
  const problems: string[] = [];
  const { vs: snapList, vsd: dataList, pvs: pvList, pvcs: claimList, vols: volumes, cvs: cvList, cvrs: cvrList } = await listAll(st);
  const snaps = new Map(snapList.items.map((x) => [x.metadata.name ?? '', x] as const));
  const claims = new Map(claimList.items.map((c) => [c.metadata.name ?? '', c] as const));
  const pvs = new Map(pvList.items.map((p) => [p.metadata.name ?? '', p] as const));
  const volumeNames = volumes.map((v) => v.metadata.name);

  // Backend snapshots, by id, from every backend volume.
  const backend = new Map<string, string[]>(); // id → volumes holding it
  for (const v of volumeNames) {
    for (const b of await st.maya.listSnapshots({ volumeName: v, namespace: ns })) backend.set(b.metadata.name, [...(backend.get(b.metadata.name) ?? []), v]);
  }
  const idsOfLive = new Map<string, VolumeSnapshot>();
  for (const name of snapshots) {
    const snap = snaps.get(name);
    if (!snap) {
      problems.push(`VolumeSnapshot ${name} is gone`);
      continue;
    }
    const cond = currentCondition(snap);
    const id = snap.metadata.annotations?.[snapshotIdAnnotation];
    if (id) idsOfLive.set(id, snap);
    const datas = dataList.items.filter((d) => d.metadata.annotations?.['snapshot.cstor.openebs.io/snapshot-uid'] === snap.metadata.uid);
    if (cond?.type === 'Ready') {
      if (datas.length !== 1) problems.push(`Ready ${name} has ${datas.length} VolumeSnapshotData`);
      else if (datas[0]!.metadata.name !== snap.spec.snapshotDataName) problems.push(`Ready ${name} is bound to ${snap.spec.snapshotDataName}, its data is ${datas[0]!.metadata.name}`);
      else if (datas[0]!.spec.openebsVolume?.snapshotId !== id) problems.push(`Ready ${name}: data snapshotId ${datas[0]!.spec.openebsVolume?.snapshotId} ≠ id ${id}`);
      const holders = id ? (backend.get(id) ?? []) : [];
      const source = snap.metadata.labels?.['SnapshotMetadata-PVName'];
      if (holders.length !== 1 || holders[0] !== source) problems.push(`Ready ${name} (id ${id}) has backend snapshots on [${holders.join(', ')}], want one on ${source}`);
    } else if (cond?.type === 'Error') {
      if (datas.length !== 0) problems.push(`Error ${name} has ${datas.length} VolumeSnapshotData`);
      if (id && backend.has(id)) problems.push(`Error ${name} has a backend snapshot ${id}`);
    } else {
      problems.push(`VolumeSnapshot ${name} is ${cond?.type ?? 'without a condition'}`);
    }
  }
  for (const [id, holders] of backend) if (!idsOfLive.has(id)) problems.push(`backend snapshot ${id} on [${holders.join(', ')}] belongs to no VolumeSnapshot (orphan)`);
  for (const d of dataList.items) {
    const uid = d.metadata.annotations?.['snapshot.cstor.openebs.io/snapshot-uid'];
    if (![...snaps.values()].some((x) => x.metadata.uid === uid)) problems.push(`VolumeSnapshotData ${d.metadata.name} belongs to no VolumeSnapshot (orphan)`);
  }

  for (const name of clones) {
    const claim = claims.get(name);
    if (claim?.status?.phase !== 'Bound' || !claim.spec.volumeName) {
      problems.push(`promoter PVC ${name} is ${claim?.status?.phase ?? 'gone'}`);
      continue;
    }
    const bound = pvList.items.filter((p) => p.spec.claimRef?.uid === claim.metadata.uid);
    if (bound.length !== 1) problems.push(`promoter PVC ${name} has ${bound.length} PVs`);
    const pv = claim.spec.volumeName;
    const n = volumeNames.filter((v) => v === pv).length;
    if (n !== 1) problems.push(`promoter PVC ${name}: ${n} backend volumes ${pv}`);
  }
  // Every backend volume, CStorVolume and replica belongs to a live PV whose claim is alive.
  const liveClaimUids = new Set(claimList.items.map((c) => c.metadata.uid));
  const owned = (volume: string): string | undefined => {
    const pv: PersistentVolume | undefined = pvs.get(volume);
    if (!pv) return `no PV ${volume}`;
    if (!liveClaimUids.has(pv.spec.claimRef?.uid)) return `PV ${volume}'s claim ${pv.spec.claimRef?.name} is gone`;
    return undefined;
  };
  for (const v of volumeNames) {
    const why = owned(v);
    if (why) problems.push(`backend volume ${v} is orphaned: ${why}`);
  }
  for (const cv of cvList.items) {
    const why = owned(cv.metadata?.name ?? '');
    if (why) problems.push(`CStorVolume ${cv.metadata?.name} is orphaned: ${why}`);
  }
  const replicasOf = new Map<string, number>();
  for (const r of cvrList.items) {
    const v = r.metadata?.labels?.['openebs.io/persistent-volume'] ?? '';
    replicasOf.set(v, (replicasOf.get(v) ?? 0) + 1);
    if (!volumeNames.includes(v)) problems.push(`CStorVolumeReplica ${r.metadata?.name} of ${v}: no such backend volume (orphan)`);
  }
  for (const v of volumeNames) if (replicasOf.get(v) !== 3) problems.push(`backend volume ${v} has ${replicasOf.get(v) ?? 0} replicas, want 3`);
  // The pools themselves: every replica belongs to a backend volume, each volume is on 3 pools,
  // every snapshot layer on a replica belongs to a live VolumeSnapshot, and a Ready snapshot is
  // on every replica of its volume (a replica that missed it is rebuilt with it).
  const onPools = new Map<string, { pool: string; snapshots: string[] }[]>();
  for (const [pool, replicas] of await st.poolReplicas()) {
    for (const r of replicas) {
      onPools.set(r.volume, [...(onPools.get(r.volume) ?? []), { pool, snapshots: r.snapshots.map((x) => x.name) }]);
      if (!volumeNames.includes(r.volume)) problems.push(`pool ${pool} holds a replica of ${r.volume}: no such backend volume (orphan)`);
      for (const id of r.snapshots.map((x) => x.name)) if (!idsOfLive.has(id)) problems.push(`pool ${pool}: snapshot ${id} of ${r.volume} belongs to no VolumeSnapshot (orphan)`);
    }
  }
  for (const v of volumeNames) if ((onPools.get(v) ?? []).length !== 3) problems.push(`backend volume ${v} has replicas on ${(onPools.get(v) ?? []).map((x) => x.pool).join(', ') || 'no pool'}, want 3 pools`);
  for (const [id, snap] of idsOfLive) {
    if (currentCondition(snap)?.type !== 'Ready') continue;
    const v = snap.metadata.labels?.['SnapshotMetadata-PVName'] ?? '';
    const missing = (onPools.get(v) ?? []).filter((r) => !r.snapshots.includes(id)).map((r) => r.pool);
    if (missing.length > 0) problems.push(`Ready snapshot ${snap.metadata.name} (${id}) is missing on the replicas of ${v} on ${missing.join(', ')}`);
  }
  const sourceClaims: PersistentVolumeClaim[] = sources.map((n) => claims.get(n)).filter((c): c is PersistentVolumeClaim => !!c);
  if (sourceClaims.length !== sources.length) problems.push('a source PVC is gone');
  return problems;
}
