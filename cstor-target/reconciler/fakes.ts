// In-memory fakes of what VolumeSyncer talks to, for the table-driven unit tests: the
// CStorVolume API (resourceVersion conflicts on patches that carry one, the status
// subresource), caches of CVRs and CStorPools, a volume engine recording serve/stop calls with a
// settable status, an Event sink, a log of every call, and error injection per operation.
import { CstorError } from '../../lib/errors.ts';
import { silentLogger } from '../../lib/logger.ts';
import { FakeApiWorld } from '../../lib/kube/fake-api-world.ts';
import type { VolumeSpec } from '../mgmt/volume-manager.ts';
import type { ReplicaStatusView, VolumeStatus } from '../replication/replicated-volume.ts';
import { VolumeSyncer, type CvClient, type EventSink, type VolumeEngine } from './volume-sync.ts';
import { cvFinalizer, cvrLabels, type CStorPool, type CStorVolume, type CStorVolumeReplica, type CvSpec } from './types.ts';

type Json = Record<string, unknown>;

export type { RecordedEvent } from '../../lib/kube/fake-api-world.ts';

export const ns = 'openebs';
export const me = '10.0.0.5';

export class FakeTargetWorld extends FakeApiWorld {
  readonly cvs = new Map<string, CStorVolume>();
  readonly cvrs: CStorVolumeReplica[] = [];
  readonly pools = new Map<string, CStorPool>();
  readonly served = new Map<string, VolumeSpec>();
  readonly statuses = new Map<string, VolumeStatus>();
  readonly enqueued: string[] = [];
  readonly watchers = new Map<string, () => void>();

  /** A CStorVolume as the CAS volume create template writes it, plus overrides. */
  addCv(name: string, o: { spec?: Partial<CvSpec> & Json; finalizer?: boolean; deleting?: boolean; annotations?: Record<string, string>; status?: CStorVolume['status'] } = {}): CStorVolume {
    const cv: CStorVolume = {
      apiVersion: 'openebs.io/v1alpha1',
      kind: 'CStorVolume',
      metadata: {
        name,
        namespace: ns,
        uid: this.nextUid(),
        resourceVersion: this.nextRv(),
        labels: { 'openebs.io/persistent-volume': name, 'openebs.io/cas-type': 'cstor' },
        ...(o.annotations ? { annotations: o.annotations } : {}),
        ...(o.finalizer ? { finalizers: [cvFinalizer] } : {}),
        ...(o.deleting ? { deletionTimestamp: '2026-01-02T03:00:00Z' } : {}),
      },
      spec: {
        targetIP: me,
        targetPortal: `${me}:3260`,
        targetMgmtAddress: `${me}:9500`,
        iqn: `iqn.2016-09.com.openebs.cstor:${name}`,
        capacity: '1G',
        replicationFactor: 3,
        consistencyFactor: 2,
        ...(o.spec ?? {}),
      } as CvSpec,
      ...(o.status ? { status: o.status } : {}),
    };
    for (const [k, v] of Object.entries(cv.spec ?? {})) if (v === null) delete (cv.spec as Json)[k];
    this.cvs.set(`${ns}/${name}`, cv);
    return cv;
  }

  /** One CVR per pool (named <pv>-<pool>) and the pools, each with an address. */
  addReplicas(pv: string, pools: readonly string[], o: { addresses?: boolean } = {}): void {
    for (const pool of pools) {
      this.cvrs.push({ metadata: { name: `${pv}-${pool}`, namespace: ns, labels: { [cvrLabels.pool]: pool, [cvrLabels.persistentVolume]: pv } } });
      if (!this.pools.has(pool)) this.setPool(pool, o.addresses === false ? undefined : `127.0.0.1:${3230 + this.pools.size}`);
    }
  }

  setPool(name: string, address: string | undefined): void {
    this.pools.set(name, { metadata: { name, resourceVersion: this.nextRv() }, status: { phase: 'Online', ...(address ? { address } : {}) } });
  }

  cv(name: string): CStorVolume | undefined {
    return this.cvs.get(`${ns}/${name}`);
  }

  /** Makes the engine report `phase` with every replica of the served spec in `mode`. */
  setEngine(name: string, phase: VolumeStatus['phase'], mode: ReplicaStatusView['mode'], extra: Partial<ReplicaStatusView> = {}): void {
    const spec = this.served.get(name);
    if (!spec) throw new Error(`${name} is not served`);
    this.statuses.set(name, {
      name,
      capacity: spec.capacity,
      blockSize: spec.blockSize,
      replicationFactor: spec.replicationFactor,
      consistencyFactor: Math.floor(spec.replicationFactor / 2) + 1,
      phase,
      ioSeq: 0,
      rebuilding: null,
      rebuildingFrom: null,
      replicaStatuses: spec.replicas.map((a) => ({
        replicaId: a,
        address: a,
        mode,
        checkpointedIOSeq: '0',
        inflightRead: '0',
        inflightWrite: '0',
        quorum: mode === 'Healthy' ? '1' : '0',
        upTime: 1,
        ...extra,
      })),
    });
  }

  readonly cvClient: CvClient = {
    mergePatch: async (ref, patch) => {
      this.call('cvs.mergePatch', `${ref.namespace}/${ref.name}`);
      return this.patch(`${ref.namespace}/${ref.name}`, patch as Json, false);
    },
    patchStatus: async (ref, status) => {
      this.call('cvs.patchStatus', `${ref.namespace}/${ref.name}`);
      return this.patch(`${ref.namespace}/${ref.name}`, { status }, true);
    },
  };

  readonly engine: VolumeEngine = {
    serve: async (spec) => {
      this.call('engine.serve', `${spec.name} ${spec.capacity} rf${spec.replicationFactor} bs${spec.blockSize} ${spec.replicas.join(',')}`);
      if (this.served.has(spec.name)) throw new CstorError('conflict', `volume ${spec.name} is already served with another spec`);
      this.served.set(spec.name, structuredClone(spec));
      this.setEngine(spec.name, 'Init', 'Offline');
      return true;
    },
    stop: async (name) => {
      this.call('engine.stop', name);
      this.statuses.delete(name);
      this.watchers.delete(name);
      return this.served.delete(name);
    },
    spec: (name) => this.served.get(name),
    status: (name) => this.statuses.get(name),
    watch: (name, onChange) => {
      if (!this.watchers.has(name)) this.watchers.set(name, onChange);
    },
  };

  readonly eventSink: EventSink = {
    event: async (subject, type, reason, message) => {
      const s = subject as { metadata?: { namespace?: string; name?: string } };
      this.events.push({ object: `${s.metadata?.namespace}/${s.metadata?.name}`, type, reason, message });
    },
  };

  syncer(o: { statusRefreshMs?: number; advertise?: string } = {}): VolumeSyncer {
    return new VolumeSyncer({
      advertise: me,
      caches: {
        volume: (key) => this.cvs.get(key),
        replicasOf: (pv) => this.cvrs.filter((c) => c.metadata.labels?.[cvrLabels.persistentVolume] === pv),
        pool: (name) => this.pools.get(name),
      },
      cvs: this.cvClient,
      engine: this.engine,
      events: this.eventSink,
      clock: this.clock,
      logger: silentLogger(),
      enqueue: (key) => void this.enqueued.push(key),
      ...o,
    });
  }

  private patch(key: string, patch: Json, status: boolean): CStorVolume {
    return this.patchIn(this.cvs, 'cstorvolumes', key, patch, status);
  }
}
