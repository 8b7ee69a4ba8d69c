// PV binder: the part of Kubernetes' PV controller this system needs.
// Invariants (who writes what):
// - claim without spec.volumeName: bound to a PV whose claimRef names it, else to the smallest
//   Available PV that fits (class, size, access modes, volume mode, selector); else, when its class
//   has an external provisioner, annotated volume.beta.kubernetes.io/storage-provisioner and
//   volume.kubernetes.io/storage-provisioner = that provisioner; status.phase Pending.
// - binding: PV.spec.claimRef (with uid) + PV annotation bound-by-controller when we set the ref,
//   PV.status.phase Bound; claim spec.volumeName (+ bound-by-controller when we set it),
//   claim annotation pv.kubernetes.io/bind-completed, claim status {phase Bound, capacity,
//   accessModes}.
// - PV whose bound claim is gone: Released; reclaim Retain keeps it; Delete leaves a PV with
//   pv.kubernetes.io/provisioned-by to its external provisioner (which deletes the volume, then
//   the PV) and marks other PVs Failed (no in-tree deleter here); Recycle: Failed.
// - PV without claimRef: Available.
import type { Logger } from '../../lib/logger.ts';
import { hasErrorCode } from '../../lib/errors.ts';
import type { Operations } from '../api/operations.ts';
import { betaClassAnnotation } from '../resources/defaults.ts';
import type { ResourceInfo } from '../resources/registry.ts';
import { isJsonObject, type JsonObject, type KubeObject } from '../store/types.ts';
import { tryQuantityBytes } from '../../lib/quantity.ts';
import { PassController } from './pass-runner.ts';

export const annBindCompleted = 'pv.kubernetes.io/bind-completed';
export const annBoundByController = 'pv.kubernetes.io/bound-by-controller';
export const annStorageProvisioner = 'volume.kubernetes.io/storage-provisioner';
export const annBetaStorageProvisioner = 'volume.beta.kubernetes.io/storage-provisioner';
export const annProvisionedBy = 'pv.kubernetes.io/provisioned-by';
const noProvisioner = 'kubernetes.io/no-provisioner';

function spec(o: KubeObject): JsonObject {
  return isJsonObject(o.spec) ? o.spec : {};
}

function status(o: KubeObject): JsonObject {
  return isJsonObject(o.status) ? o.status : {};
}

function claimRef(pv: KubeObject): JsonObject | undefined {
  const r = spec(pv).claimRef;
  return isJsonObject(r) ? r : undefined;
}

export function claimClass(claim: KubeObject): string {
  const s = spec(claim).storageClassName;
  if (typeof s === 'string') return s;
  return claim.metadata.annotations?.[betaClassAnnotation] ?? '';
}

function pvClass(pv: KubeObject): string {
  const s = spec(pv).storageClassName;
  return typeof s === 'string' ? s : (pv.metadata.annotations?.[betaClassAnnotation] ?? '');
}

function requested(claim: KubeObject): number {
  const res = spec(claim).resources;
  const req = isJsonObject(res) && isJsonObject(res.requests) ? res.requests.storage : undefined;
  return tryQuantityBytes(req) ?? 0;
}

function capacity(pv: KubeObject): number {
  const cap = spec(pv).capacity;
  return tryQuantityBytes(isJsonObject(cap) ? cap.storage : undefined) ?? 0;
}

function modes(o: KubeObject): string[] {
  const m = spec(o).accessModes;
  return Array.isArray(m) ? m.map(String) : [];
}

function selectorMatches(claim: KubeObject, pv: KubeObject): boolean {
  const sel = spec(claim).selector;
  if (!isJsonObject(sel)) return true;
  const labels = pv.metadata.labels ?? {};
  if (isJsonObject(sel.matchLabels)) for (const [k, v] of Object.entries(sel.matchLabels)) if (labels[k] !== v) return false;
  if (Array.isArray(sel.matchExpressions)) {
    for (const e of sel.matchExpressions) {
      if (!isJsonObject(e)) continue;
      const key = String(e.key);
      const values = Array.isArray(e.values) ? e.values.map(String) : [];
      const has = key in labels;
      if (e.operator === 'In' && !(has && values.includes(labels[key]!))) return false;
      if (e.operator === 'NotIn' && has && values.includes(labels[key]!)) return false;
      if (e.operator === 'Exists' && !has) return false;
      if (e.operator === 'DoesNotExist' && has) return false;
    }
  }
  return true;
}

function refersTo(pv: KubeObject, claim: KubeObject): boolean {
  const ref = claimRef(pv);
  if (!ref) return false;
  return ref.namespace === claim.metadata.namespace && ref.name === claim.metadata.name && (!ref.uid || ref.uid === claim.metadata.uid);
}

export class PvBinder extends PassController {
  private readonly pvInfo: ResourceInfo;
  private readonly pvcInfo: ResourceInfo;

  constructor(
    private readonly ops: Operations,
    private readonly logger: Logger,
  ) {
    super('pv-binder', logger);
    this.pvInfo = ops.registry.byResKey('/persistentvolumes')!;
    this.pvcInfo = ops.registry.byResKey('/persistentvolumeclaims')!;
    ops.store.hub.listen((ev) => {
      if (ev.resKey === '/persistentvolumes' || ev.resKey === '/persistentvolumeclaims' || ev.resKey === 'storage.k8s.io/storageclasses') this.trigger();
    });
  }

  protected async pass(): Promise<number | void> {
    for (const claim of this.ops.store.list('/persistentvolumeclaims')) {
      try {
        await this.syncClaim(claim);
      } catch (err) {
        if (!hasErrorCode(err, 'not_found', 'conflict')) throw err;
      }
    }
    for (const pv of this.ops.store.list('/persistentvolumes')) {
      try {
        await this.syncVolume(pv);
      } catch (err) {
        if (!hasErrorCode(err, 'not_found', 'conflict')) throw err;
      }
    }
  }

  private currentClaim(c: KubeObject): KubeObject | undefined {
    const cur = this.ops.store.get('/persistentvolumeclaims', c.metadata.namespace, c.metadata.name ?? '');
    return cur?.metadata.uid === c.metadata.uid ? cur : undefined;
  }

  private async syncClaim(claim0: KubeObject): Promise<void> {
    const claim = this.currentClaim(claim0);
    if (!claim || claim.metadata.deletionTimestamp) return;
    const volumeName = spec(claim).volumeName;
    const ns = claim.metadata.namespace;
    const name = claim.metadata.name ?? '';
    if (typeof volumeName !== 'string' || volumeName === '') {
      const pvs = this.ops.store.list('/persistentvolumes');
      const pv = pvs.find((v) => refersTo(v, claim) && !v.metadata.deletionTimestamp) ?? this.bestMatch(claim, pvs);
      if (pv) {
        await this.bind(pv, claim);
        return;
      }
      const cls = claimClass(claim);
      const sc = cls ? this.ops.store.get('storage.k8s.io/storageclasses', undefined, cls) : undefined;
      const provisioner = sc && typeof sc.provisioner === 'string' ? sc.provisioner : undefined;
      if (provisioner && provisioner !== noProvisioner && sc?.volumeBindingMode !== 'WaitForFirstConsumer') {
        let annotatedNow = false;
        await this.ops.mutate(this.pvcInfo, ns, name, (c) => {
          const a = c.metadata.annotations ?? {};
          if (a[annBetaStorageProvisioner] === provisioner && a[annStorageProvisioner] === provisioner) return false;
          c.metadata.annotations = { ...a, [annBetaStorageProvisioner]: provisioner, [annStorageProvisioner]: provisioner };
          this.logger.info('claim waits for an external provisioner', { claim: `${ns ?? ''}/${name}`, provisioner });
          annotatedNow = true;
        });
        if (annotatedNow) {
          await this.event(claim, 'ExternalProvisioning', `Waiting for a volume to be created either by the external provisioner '${provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.`);
        }
      }
      await this.setClaimPhase(claim, 'Pending');
      return;
    }
    const pv = this.ops.store.get('/persistentvolumes', undefined, volumeName);
    if (!pv) {
      await this.setClaimPhase(claim, claim.metadata.annotations?.[annBindCompleted] ? 'Lost' : 'Pending');
      return;
    }
    const ref = claimRef(pv);
    if (!ref || refersTo(pv, claim)) {
      await this.bind(pv, claim);
      return;
    }
    await this.setClaimPhase(claim, claim.metadata.annotations?.[annBindCompleted] ? 'Lost' : 'Pending');
  }

  private bestMatch(claim: KubeObject, pvs: KubeObject[]): KubeObject | undefined {
    const want = requested(claim);
    const cls = claimClass(claim);
    const wantModes = modes(claim);
    const volumeMode = spec(claim).volumeMode ?? 'Filesystem';
    let best: KubeObject | undefined;
    for (const pv of pvs) {
      if (claimRef(pv) || pv.metadata.deletionTimestamp) continue;
      if (status(pv).phase !== 'Available' && status(pv).phase !== 'Pending') continue;
      if (pvClass(pv) !== cls) continue;
      if ((spec(pv).volumeMode ?? 'Filesystem') !== volumeMode) continue;
      if (capacity(pv) < want) continue;
      const have = modes(pv);
      if (!wantModes.every((m) => have.includes(m))) continue;
      if (!selectorMatches(claim, pv)) continue;
      if (!best || capacity(pv) < capacity(best)) best = pv;
    }
    return best;
  }

  private async bind(pv: KubeObject, claim: KubeObject): Promise<void> {
    const claimName = claim.metadata.name ?? '';
    const ns = claim.metadata.namespace;
    const pvName = pv.metadata.name ?? '';
    const bound = await this.ops.mutate(this.pvInfo, undefined, pvName, (v) => {
      const ref = claimRef(v);
      if (ref?.uid === claim.metadata.uid && ref?.name === claimName && ref?.namespace === ns) return false;
      if (ref && ref.uid && ref.uid !== claim.metadata.uid) throw new Error(`volume ${pvName} is bound to another claim`);
      const s = spec(v);
      v.spec = { ...s, claimRef: { kind: 'PersistentVolumeClaim', namespace: ns, name: claimName, uid: claim.metadata.uid, apiVersion: 'v1', resourceVersion: claim.metadata.resourceVersion } };
      if (!ref) v.metadata.annotations = { ...v.metadata.annotations, [annBoundByController]: 'yes' };
    });
    if (!bound) return;
    await this.ops.mutate(this.pvInfo, undefined, pvName, (v) => {
      if (status(v).phase === 'Bound') return false;
      v.status = { ...status(v), phase: 'Bound' };
    }, { subresource: 'status' });
    await this.ops.mutate(this.pvcInfo, ns, claimName, (c) => {
      if (c.metadata.uid !== claim.metadata.uid) return false;
      const s = spec(c);
      const a = c.metadata.annotations ?? {};
      const changes: JsonObject = {};
      const ann = { ...a };
      if (s.volumeName !== pvName) {
        changes.volumeName = pvName;
        ann[annBoundByController] = 'yes';
      }
      ann[annBindCompleted] = 'yes';
      if (Object.keys(changes).length === 0 && a[annBindCompleted] === 'yes') return false;
      c.spec = { ...s, ...changes };
      c.metadata.annotations = ann;
    });
    await this.ops.mutate(this.pvcInfo, ns, claimName, (c) => {
      if (c.metadata.uid !== claim.metadata.uid) return false;
      const st = status(c);
      const ps = spec(bound);
      const next = { ...st, phase: 'Bound', accessModes: ps.accessModes, capacity: ps.capacity };
      if (JSON.stringify(next) === JSON.stringify(st)) return false;
      c.status = next;
    }, { subresource: 'status' });
    this.logger.info('bound claim to volume', { claim: `${ns ?? ''}/${claimName}`, volume: pvName });
  }

  /** A Normal Event on a claim, from the persistentvolume-controller (best effort). */
  private async event(claim: KubeObject, reason: string, message: string): Promise<void> {
    const info = this.ops.registry.byResKey('/events');
    if (!info) return;
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    await this.ops
      .create(info, claim.metadata.namespace, {
        metadata: { name: `${claim.metadata.name ?? ''}.${Date.now().toString(16)}`, namespace: claim.metadata.namespace },
        involvedObject: { kind: 'PersistentVolumeClaim', namespace: claim.metadata.namespace, name: claim.metadata.name, uid: claim.metadata.uid, apiVersion: 'v1', resourceVersion: claim.metadata.resourceVersion },
        reason,
        message,
        type: 'Normal',
        source: { component: 'persistentvolume-controller' },
        reportingComponent: 'persistentvolume-controller',
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      })
      .catch((err: unknown) => this.logger.warn('could not record an event', { reason, error: (err as Error).message }));
  }

  private async setClaimPhase(claim: KubeObject, phase: string): Promise<void> {
    await this.ops.mutate(this.pvcInfo, claim.metadata.namespace, claim.metadata.name ?? '', (c) => {
      if (status(c).phase === phase) return false;
      c.status = { ...status(c), phase };
    }, { subresource: 'status' });
  }

  private async setVolumePhase(pv: KubeObject, phase: string, message?: string): Promise<void> {
    await this.ops.mutate(this.pvInfo, undefined, pv.metadata.name ?? '', (v) => {
      const st = status(v);
      if (st.phase === phase && (message === undefined || st.message === message)) return false;
      const next: JsonObject = { ...st, phase };
      if (message !== undefined) next.message = message;
      else delete next.message;
      if (phase !== 'Failed') delete next.reason;
      v.status = next;
    }, { subresource: 'status' });
  }

  private async syncVolume(pv0: KubeObject): Promise<void> {
    const pv = this.ops.store.get('/persistentvolumes', undefined, pv0.metadata.name ?? '');
    if (!pv || pv.metadata.deletionTimestamp) return;
    const ref = claimRef(pv);
    if (!ref) {
      await this.setVolumePhase(pv, 'Available');
      return;
    }
    if (!ref.uid) {
      // Pre-bound to a claim by name: the claim's sync binds it.
      if (status(pv).phase === 'Pending' || status(pv).phase === undefined) await this.setVolumePhase(pv, 'Available');
      return;
    }
    const claim = this.ops.store.get('/persistentvolumeclaims', String(ref.namespace ?? ''), String(ref.name ?? ''));
    if (claim && claim.metadata.uid === ref.uid) {
      const vn = spec(claim).volumeName;
      if (vn === pv.metadata.name) await this.setVolumePhase(pv, 'Bound');
      else if (typeof vn === 'string' && vn !== '' && pv.metadata.annotations?.[annBoundByController]) {
        // The claim went to another volume: undo our half of the binding.
        await this.ops.mutate(this.pvInfo, undefined, pv.metadata.name ?? '', (v) => {
          const s = { ...spec(v) };
          delete s.claimRef;
          v.spec = s;
        });
      }
      return;
    }
    // The claim is gone.
    if (status(pv).phase !== 'Released' && status(pv).phase !== 'Failed') {
      this.logger.info('volume released', { volume: pv.metadata.name, claim: `${String(ref.namespace)}/${String(ref.name)}` });
      await this.setVolumePhase(pv, 'Released');
    }
    const policy = spec(pv).persistentVolumeReclaimPolicy;
    if (policy === 'Delete' && !pv.metadata.annotations?.[annProvisionedBy]) {
      await this.setVolumePhase(pv, 'Failed', 'error getting deleter volume plugin for volume: no deletable volume plugin matched');
    } else if (policy === 'Recycle') {
      await this.setVolumePhase(pv, 'Failed', 'no volume plugin matched: recycling is not supported');
    }
  }
}
