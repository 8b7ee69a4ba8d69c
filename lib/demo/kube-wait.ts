// Waiting on the seeds' objects through the project's kube client (lib/kube): a claim Bound, a
// VolumeSnapshot Ready. Polling a keep-alive connection (about 1 ms a GET on kube-lite) every
// few ms measures latencies to within a poll; a refusal (a Warning Event on the claim, an Error
// condition on the snapshot) ends the wait at once with the object's own words.
import { CstorError, hasErrorCode } from '../errors.ts';
import type { KubeClients } from '../kube/kube-clients.ts';
import { resources } from '../kube/resources.ts';
import type { CoreEvent, PersistentVolume, PersistentVolumeClaim } from '../kube/types/core.ts';
import type { VolumeSnapshot, VolumeSnapshotData } from '../kube/types/volume-snapshot.ts';

export interface WaitOptions {
  timeoutMs: number;
  /** Poll interval (default 5 ms). */
  intervalMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function seedClients(clients: KubeClients) {
  return {
    pvcs: clients.for<PersistentVolumeClaim>(resources.persistentVolumeClaims),
    pvs: clients.for<PersistentVolume>(resources.persistentVolumes),
    snapshots: clients.for<VolumeSnapshot>(resources.volumeSnapshots),
    snapshotDatas: clients.for<VolumeSnapshotData>(resources.volumeSnapshotDatas),
    events: clients.for<CoreEvent>(resources.events),
  };
}
export type SeedClients = ReturnType<typeof seedClients>;

/** Warning Events about one object, oldest first. */
export async function warningsFor(c: SeedClients, namespace: string, name: string): Promise<CoreEvent[]> {
  const list = await c.events.list({ namespace });
  return list.items.filter((e) => e.type === 'Warning' && e.involvedObject.name === name);
}

export function readyCondition(s: VolumeSnapshot): { ready: boolean; error?: string } {
  const conditions = s.status?.conditions ?? [];
  if (conditions.some((c) => c.type === 'Ready' && c.status === 'True')) return { ready: true };
  const err = conditions.find((c) => c.type === 'Error' && c.status === 'True');
  if (err) return { ready: false, error: `${err.reason ?? 'Error'}: ${err.message ?? ''}` };
  return { ready: false };
}

/** Resolves with the bound claim and its PV; rejects with the claim's Warning Event if one appears. */
export async function waitClaimBound(
  c: SeedClients,
  ref: { namespace: string; name: string },
  options: WaitOptions,
): Promise<{ claim: PersistentVolumeClaim; pv: PersistentVolume }> {
  const deadline = Date.now() + options.timeoutMs;
  let polls = 0;
  for (;;) {
    const claim = await c.pvcs.get(ref);
    if (claim.status?.phase === 'Bound' && claim.spec.volumeName) {
      const pv = await c.pvs.get({ name: claim.spec.volumeName });
      return { claim, pv };
    }
    // Warnings are checked less often than the phase (a list costs more than a get).
    if (polls++ % 20 === 19) {
      const warnings = await warningsFor(c, ref.namespace, ref.name);
      const last = warnings.at(-1);
      if (last) throw new CstorError('conflict', `claim ${ref.namespace}/${ref.name} not provisioned: ${last.reason ?? 'Warning'}: ${last.message ?? ''}`);
    }
    if (Date.now() > deadline) {
      const last = (await warningsFor(c, ref.namespace, ref.name)).at(-1);
      throw new CstorError('timeout', `claim ${ref.namespace}/${ref.name} not Bound after ${options.timeoutMs} ms (phase ${claim.status?.phase ?? 'none'}${last ? `; last warning ${last.reason ?? ''}: ${last.message ?? ''}` : ''})`);
    }
    await sleep(options.intervalMs ?? 5);
  }
}

/** Resolves with the Ready snapshot; rejects with its Error condition if one appears. */
export async function waitSnapshotReady(c: SeedClients, ref: { namespace: string; name: string }, options: WaitOptions): Promise<VolumeSnapshot> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const snap = await c.snapshots.get(ref);
    const state = readyCondition(snap);
    if (state.ready) return snap;
    if (state.error) throw new CstorError('conflict', `VolumeSnapshot ${ref.namespace}/${ref.name} failed: ${state.error}`);
    if (Date.now() > deadline) throw new CstorError('timeout', `VolumeSnapshot ${ref.namespace}/${ref.name} not Ready after ${options.timeoutMs} ms (conditions ${JSON.stringify(snap.status?.conditions ?? [])})`);
    await sleep(options.intervalMs ?? 5);
  }
}

/** Resolves once the object is gone (404). */
export async function waitGone(get: () => Promise<unknown>, what: string, options: WaitOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    try {
      await get();
    } catch (err) {
      if (hasErrorCode(err, 'not_found')) return;
      throw err;
    }
    if (Date.now() > deadline) throw new CstorError('timeout', `${what} still exists after ${options.timeoutMs} ms`);
    await sleep(options.intervalMs ?? 20);
  }
}

export function claimManifest(options: { namespace: string; name: string; storageClassName: string; size: string; snapshot?: string }): PersistentVolumeClaim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: options.name,
      namespace: options.namespace,
      ...(options.snapshot ? { annotations: { 'snapshot.alpha.kubernetes.io/snapshot': options.snapshot } } : {}),
    },
    spec: { storageClassName: options.storageClassName, accessModes: ['ReadWriteOnce'], resources: { requests: { storage: options.size } } },
  };
}

export function snapshotManifest(options: { namespace: string; name: string; claim: string }): VolumeSnapshot {
  return {
    apiVersion: 'volumesnapshot.external-storage.k8s.io/v1',
    kind: 'VolumeSnapshot',
    metadata: { name: options.name, namespace: options.namespace },
    spec: { persistentVolumeClaimName: options.claim },
  };
}
