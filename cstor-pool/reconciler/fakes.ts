// In-memory fakes of what CvrSyncer talks to, for the table-driven unit tests: the CVR API
// (resourceVersion conflicts on patches that carry one, the status subresource, finalizers and
// deletionTimestamp), a replica store with clone sources and snapshots, an Event sink, a log
// of every call, and error injection per operation.
import { CstorError } from '../../lib/errors.ts';
import { silentLogger } from '../../lib/logger.ts';
import { FakeApiWorld } from '../../lib/kube/fake-api-world.ts';
import type { KubeList } from '../../lib/kube/types/meta.ts';
import type { CreateReplicaOptions, Replica, ReplicaInfo } from '../store/types.ts';
import type { ReplicaMode } from '../../lib/replica-protocol/types.ts';
import { CvrSyncer, type CvrClient, type EventSink, type ReplicaStore } from './cvr-sync.ts';
import { MemoryOwnedReplicas } from './owned-replicas.ts';
import { cvrAnnotations, cvrFinalizer, cvrLabels, type CStorVolumeReplica } from './types.ts';

type Json = Record<string, unknown>;

export type { RecordedEvent } from '../../lib/kube/fake-api-world.ts';

export const poolName = 'pool-a';
export const ns = 'openebs';

export class FakeWorld extends FakeApiWorld {
  readonly cvrs = new Map<string, CStorVolumeReplica>();
  readonly replicas = new Map<string, ReplicaInfo>();
  readonly owned = new MemoryOwnedReplicas();
  readonly dropped: string[] = [];
  storeChanges = 0;

  /** A CVR as the CAS templates create it (finalizer set), plus overrides. */
  addCvr(volume: string, o: { capacity?: string; clone?: { source: string; snapshot: string }; finalizer?: boolean; labels?: Json; deleting?: boolean; status?: CStorVolumeReplica['status']; pool?: string } = {}): CStorVolumeReplica {
    const name = `${volume}-${o.pool ?? poolName}`;
    const labels: Record<string, string> = { [cvrLabels.pool]: o.pool ?? poolName, [cvrLabels.persistentVolume]: volume, 'openebs.io/cas-type': 'cstor' };
    const annotations: Record<string, string> = {};
    if (o.clone) {
      labels[cvrLabels.cloned] = 'true';
      annotations[cvrAnnotations.sourceVolume] = o.clone.source;
      annotations[cvrAnnotations.snapshot] = o.clone.snapshot;
    }
    for (const [k, v] of Object.entries(o.labels ?? {})) {
      if (v === null) delete labels[k];
      else labels[k] = String(v);
    }
    const cvr: CStorVolumeReplica = {
      apiVersion: 'openebs.io/v1alpha1',
      kind: 'CStorVolumeReplica',
      metadata: {
        name,
        namespace: ns,
        uid: this.nextUid(),
        resourceVersion: this.nextRv(),
        labels,
        annotations,
        finalizers: o.finalizer === false ? [] : [cvrFinalizer],
        ...(o.deleting ? { deletionTimestamp: '2026-01-02T03:00:00Z' } : {}),
      },
      spec: { capacity: o.capacity ?? '1Gi', targetIP: '127.0.0.1' },
      ...(o.status ? { status: o.status } : {}),
    };
    this.cvrs.set(`${ns}/${name}`, cvr);
    return cvr;
  }

  /** A replica in the store (optionally with snapshots). */
  addReplica(volume: string, o: { size?: number; mode?: ReplicaMode; snapshots?: string[]; cloneOf?: string; usedBytes?: number } = {}): ReplicaInfo {
    const info: ReplicaInfo = {
      volume,
      size: o.size ?? 2 ** 30,
      blockSize: 4096,
      mode: o.mode ?? 'Healthy',
      checkpointedIoSeq: 0,
      snapshots: (o.snapshots ?? []).map((name, i) => ({ name, ioSeq: i + 1, createdAt: 0, usedBytes: 0 })),
      cloneOf: o.cloneOf ?? null,
      clones: [],
      usedBytes: o.usedBytes ?? 0,
    };
    this.replicas.set(volume, info);
    return info;
  }

  cvr(volume: string): CStorVolumeReplica | undefined {
    return this.cvrs.get(`${ns}/${volume}-${poolName}`);
  }

  readonly cvrClient: CvrClient = {
    list: async (opts = {}) => {
      this.call('cvrs.list', opts.labelSelector ?? '');
      const [k, v] = (opts.labelSelector ?? '').split('=');
      const items = [...this.cvrs.values()].filter((c) => !k || c.metadata.labels?.[k] === v).map((c) => structuredClone(c));
      return { items } as KubeList<CStorVolumeReplica>;
    },
    mergePatch: async (ref, patch) => {
      this.call('cvrs.mergePatch', `${ref.namespace}/${ref.name}`);
      return this.patch(`${ref.namespace}/${ref.name}`, patch as Json, false);
    },
    patchStatus: async (ref, status) => {
      this.call('cvrs.patchStatus', `${ref.namespace}/${ref.name}`);
      return this.patch(`${ref.namespace}/${ref.name}`, { status }, true);
    },
  };

  readonly store: ReplicaStore = {
    createReplica: async (o: CreateReplicaOptions) => {
      this.call('store.createReplica', o.cloneOf ? `${o.volume}<-${o.cloneOf.volume}@${o.cloneOf.snapshot}` : o.volume);
      const cur = this.replicas.get(o.volume);
      const wanted = o.cloneOf ? `${o.cloneOf.volume}@${o.cloneOf.snapshot}` : null;
      if (cur) {
        if (cur.size === o.size && cur.cloneOf === wanted) return structuredClone(cur);
        throw new CstorError('already_exists', `replica ${o.volume} already exists in pool ${poolName} with a different size or source`);
      }
      if (o.size % 4096 !== 0) throw new CstorError('invalid', `size ${o.size} must be a positive multiple of the block size 4096`);
      if (o.cloneOf) {
        const src = this.replicas.get(o.cloneOf.volume);
        if (!src) throw new CstorError('not_found', `clone source volume ${o.cloneOf.volume} not found in pool ${poolName}`);
        if (!src.snapshots.some((s) => s.name === o.cloneOf?.snapshot)) throw new CstorError('not_found', `clone source snapshot ${wanted} not found`);
        if (o.size < src.size) throw new CstorError('invalid', `clone size ${o.size} is smaller than its snapshot's volume size ${src.size}`);
      }
      return structuredClone(this.addReplica(o.volume, { size: o.size, mode: 'New', ...(wanted ? { cloneOf: wanted } : {}) }));
    },
    deleteReplica: async (volume) => {
      this.call('store.deleteReplica', volume);
      this.replicas.delete(volume);
    },
    getReplica: async (volume) => {
      this.fault('store.getReplica');
      const r = this.replicas.get(volume);
      return r ? structuredClone(r) : null;
    },
    listReplicas: async () => [...this.replicas.values()].map((r) => structuredClone(r)),
    // Only what the reconciler uses of a replica handle: rebuildStart (mode → Rebuilding) and close.
    openReplica: async (volume) => {
      this.call('store.openReplica', volume);
      const handle = {
        rebuildStart: async (keepThrough: string | null) => {
          this.call('replica.rebuildStart', `${volume} ${keepThrough ?? 'null'}`);
          const r = this.replicas.get(volume);
          if (!r) throw new CstorError('not_found', `replica ${volume} not found`);
          r.mode = 'Rebuilding';
          r.checkpointedIoSeq = 0;
        },
        close: async () => {},
      };
      return handle as unknown as Replica;
    },
  };

  readonly eventSink: EventSink = {
    event: async (subject, type, reason, message) => {
      const s = subject as { metadata?: { namespace?: string; name?: string }; kind?: string; name?: string };
      const object = s.metadata ? `${s.metadata.namespace}/${s.metadata.name}` : `${s.kind}/${s.name}`;
      this.events.push({ object, type, reason, message });
    },
  };

  syncer(): CvrSyncer {
    return new CvrSyncer({
      poolName,
      namespace: ns,
      // As the informer's label selector: only this pool's CVRs are cached.
      cache: {
        get: (key) => {
          const c = this.cvrs.get(key);
          return c?.metadata.labels?.[cvrLabels.pool] === poolName ? c : undefined;
        },
        list: () => [...this.cvrs.values()].filter((c) => c.metadata.labels?.[cvrLabels.pool] === poolName),
      },
      cvrs: this.cvrClient,
      store: this.store,
      owned: this.owned,
      events: this.eventSink,
      dropVolume: (v) => void this.dropped.push(v),
      onStoreChanged: () => void this.storeChanges++,
      clock: this.clock,
      logger: silentLogger(),
    });
  }

  private patch(key: string, patch: Json, status: boolean): CStorVolumeReplica {
    return this.patchIn(this.cvrs, 'cstorvolumereplicas', key, patch, status);
  }
}
