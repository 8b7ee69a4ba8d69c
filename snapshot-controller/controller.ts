// Wiring of the snapshot-controller: four informers (VolumeSnapshots, VolumeSnapshotDatas,
// claims, PVs) whose handlers only enqueue keys, two queues and their workers:
// - "volumesnapshot" (keys "ns/name"): a snapshot's own events; a claim's or PV's events map
//   to the snapshots taken of that claim; a VolumeSnapshotData's events map to its owner.
// - "volumesnapshotdata" (keys "name"): a VolumeSnapshotData's own events; a snapshot's events
//   map to the VolumeSnapshotDatas it owns (so a vanished snapshot's data is checked as an orphan).
// The logic is in sync.ts.
import type { Registry } from 'prom-client';
import type { Logger } from '../lib/logger.ts';
import type { BackoffOptions } from '../lib/kube/backoff.ts';
import { realClock, type Clock } from '../lib/kube/clock.ts';
import { Controller, enqueueFrom } from '../lib/kube/controller.ts';
import { Informer } from '../lib/kube/informer.ts';
import { objectKey } from '../lib/kube/keys.ts';
import type { KubeClients } from '../lib/kube/kube-clients.ts';
import { resources } from '../lib/kube/resources.ts';
import type { PersistentVolume, PersistentVolumeClaim } from '../lib/kube/types/core.ts';
import type { VolumeSnapshot, VolumeSnapshotData } from '../lib/kube/types/volume-snapshot.ts';
import type { MayaClient } from './maya-client.ts';
import type { SnapshotMetrics } from './metrics.ts';
import { claimKeyOf, ownerOf, SnapshotSyncer, type EventSink } from './sync.ts';

export interface SnapshotControllerOptions {
  clients: KubeClients;
  maya: MayaClient;
  events: EventSink;
  logger: Logger;
  metrics?: SnapshotMetrics;
  registry?: Registry;
  workers?: number;
  clock?: Clock;
  /** Per-key retry backoff (default 250 ms doubling to 60 s). */
  backoff?: BackoffOptions;
  /** Informer relist period (default 5 minutes): re-verifies Ready snapshots and finds orphans. */
  resyncPeriodMs?: number;
}

export const defaultSnapshotBackoff: BackoffOptions = { baseMs: 250, maxMs: 60_000 };

/** True when an update changes something the snapshot sync reads (not our own status writes). */
export function snapshotUpdateMatters(oldObj: VolumeSnapshot, newObj: VolumeSnapshot): boolean {
  const o = oldObj.metadata;
  const n = newObj.metadata;
  if (o.resourceVersion === n.resourceVersion) return true; // periodic resync
  if (o.generation !== n.generation || o.uid !== n.uid || o.deletionTimestamp !== n.deletionTimestamp) return true;
  return JSON.stringify([o.finalizers, o.annotations, o.labels, oldObj.spec]) !== JSON.stringify([n.finalizers, n.annotations, n.labels, newObj.spec]);
}

export class SnapshotController {
  readonly snapshots: Informer<VolumeSnapshot>;
  readonly datas: Informer<VolumeSnapshotData>;
  readonly claims: Informer<PersistentVolumeClaim>;
  readonly volumes: Informer<PersistentVolume>;
  readonly syncer: SnapshotSyncer;
  private readonly controllers: Controller[];

  constructor(o: SnapshotControllerOptions) {
    const clock = o.clock ?? realClock;
    const common = { logger: o.logger, clock, resyncPeriodMs: o.resyncPeriodMs ?? 5 * 60_000 };
    this.snapshots = new Informer<VolumeSnapshot>({
      ...common,
      name: 'volumesnapshots',
      source: o.clients.for<VolumeSnapshot>(resources.volumeSnapshots),
      indexers: { claim: claimKeyOf },
    });
    this.datas = new Informer<VolumeSnapshotData>({
      ...common,
      name: 'volumesnapshotdatas',
      source: o.clients.for<VolumeSnapshotData>(resources.volumeSnapshotDatas),
      indexers: { owner: (d) => ownerKeys(d) },
    });
    this.claims = new Informer<PersistentVolumeClaim>({ ...common, name: 'persistentvolumeclaims', source: o.clients.for<PersistentVolumeClaim>(resources.persistentVolumeClaims) });
    this.volumes = new Informer<PersistentVolume>({ ...common, name: 'persistentvolumes', source: o.clients.for<PersistentVolume>(resources.persistentVolumes) });

    this.syncer = new SnapshotSyncer({
      cache: {
        snapshot: (key) => this.snapshots.cache.get(key),
        data: (name) => this.datas.cache.get(name),
        claim: (namespace, name) => this.claims.cache.getByName(name, namespace),
        volume: (name) => this.volumes.cache.get(name),
      },
      snapshots: o.clients.for<VolumeSnapshot>(resources.volumeSnapshots),
      datas: o.clients.for<VolumeSnapshotData>(resources.volumeSnapshotDatas),
      maya: o.maya,
      events: o.events,
      clock,
      logger: o.logger.child({ controller: 'snapshot' }),
      metrics: o.metrics,
    });

    const snapshotsOfClaim = (claimKey: string): string[] => this.snapshots.cache.byIndex('claim', claimKey).map(objectKey);
    const queueCommon = { logger: o.logger, clock, registry: o.registry, workers: o.workers ?? 16, backoff: o.backoff ?? defaultSnapshotBackoff, ownsInformers: false };
    this.controllers = [
      new Controller({
        ...queueCommon,
        name: 'volumesnapshot',
        reconcile: (key) => this.syncer.syncSnapshot(key),
        sources: [
          enqueueFrom(this.snapshots, { updateMatters: snapshotUpdateMatters }),
          enqueueFrom(this.claims, { keysFor: (c) => snapshotsOfClaim(objectKey(c)) }),
          enqueueFrom(this.volumes, {
            keysFor: (pv) => (pv.spec.claimRef?.namespace && pv.spec.claimRef.name ? snapshotsOfClaim(`${pv.spec.claimRef.namespace}/${pv.spec.claimRef.name}`) : []),
          }),
          enqueueFrom(this.datas, { keysFor: (d) => ownerKeys(d) }),
        ],
      }),
      new Controller({
        ...queueCommon,
        name: 'volumesnapshotdata',
        reconcile: (name) => this.syncer.syncData(name),
        sources: [enqueueFrom(this.datas), enqueueFrom(this.snapshots, { keysFor: (s) => this.datas.cache.byIndex('owner', objectKey(s)).map(objectKey) })],
      }),
    ];
  }

  /** Starts the informers and runs the workers until stop(). */
  async run(): Promise<void> {
    await Promise.all(this.controllers.map((c) => c.run()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.controllers.map((c) => c.stop()));
    await Promise.all([this.snapshots.stop(), this.datas.stop(), this.claims.stop(), this.volumes.stop()]);
  }
}

function ownerKeys(d: VolumeSnapshotData): string[] {
  const owner = ownerOf(d);
  return owner ? [`${owner.namespace}/${owner.name}`] : [];
}
