// The API semantics shared by the HTTP handlers and the built-in controllers: create, update
// (main and /status), patch, delete with finalizers, list with selectors. Everything from reading
// the current object to handing the new one to the store runs in one tick, so optimistic
// concurrency is exact: the store refuses a stale resourceVersion.
import { randomUUID } from 'node:crypto';
import { CstorError, hasErrorCode } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { apiVersionOf, type ResourceInfo, type ResourceRegistry } from '../resources/registry.ts';
import { applyCreateDefaults, applyUpdateDefaults, defaultClassAnnotation } from '../resources/defaults.ts';
import { metaShapeProblems, validateMeta, validateSpec, validateUpdate } from '../resources/validation.ts';
import { matches, parseFieldSelector, parseLabelSelector, type Selector } from '../resources/selectors.ts';
import type { Store } from '../store/store.ts';
import { isJsonObject, type JsonObject, type KubeObject } from '../store/types.ts';
import { deepClone, jsonPatch, mergePatch, strategicMerge, type PatchType } from './patch.ts';
import { alreadyExists, badRequest, conflict, forbidden, invalid, methodNotAllowed, notFound, unsupportedMediaType } from './status.ts';

export const foregroundFinalizer = 'foregroundDeletion';

export const protectedNamespaces = new Set(['default', 'kube-system', 'kube-public']);

export function nowTimestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const generateChars = 'bcdfghjklmnpqrstvwxz2456789';
function randomSuffix(): string {
  let s = '';
  for (let i = 0; i < 5; i++) s += generateChars[Math.floor(Math.random() * generateChars.length)];
  return s;
}

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
}

export interface WriteOptions {
  subresource?: 'status';
  dryRun?: boolean;
}

export interface DeleteOptions {
  propagationPolicy?: 'Background' | 'Foreground' | 'Orphan';
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: boolean;
}

export interface Selectors {
  label: Selector;
  field: Selector;
}

/** What bumps metadata.generation: everything but metadata (and status, when a subresource). */
function specPart(info: ResourceInfo, o: KubeObject): string {
  const { metadata: _m, status, ...rest } = o;
  return JSON.stringify(info.hasStatus ? rest : { ...rest, status });
}

/** Types whose objects carry metadata.generation (as in Kubernetes: CRDs and custom resources). */
function usesGeneration(info: ResourceInfo): boolean {
  return info.custom || info.resKey === 'apiextensions.k8s.io/customresourcedefinitions';
}

function sameIgnoringRv(a: KubeObject, b: KubeObject): boolean {
  const strip = (o: KubeObject): string => JSON.stringify({ ...o, metadata: { ...o.metadata, resourceVersion: undefined } });
  return strip(a) === strip(b);
}

export class Operations {
  readonly store: Store;
  readonly registry: ResourceRegistry;
  private readonly logger: Logger;

  constructor(store: Store, registry: ResourceRegistry, logger: Logger) {
    this.store = store;
    this.registry = registry;
    this.logger = logger;
  }

  /** GET: the durable object. */
  get(info: ResourceInfo, namespace: string | undefined, name: string): KubeObject {
    const o = this.store.get(info.resKey, info.namespaced ? namespace : undefined, name);
    if (!o) throw notFound(info.resource, info.group, name);
    return o;
  }

  /** What a write starts from: the object with every accepted write applied. */
  private latest(info: ResourceInfo, namespace: string | undefined, name: string): KubeObject {
    const o = this.store.getLatest(info.resKey, info.namespaced ? namespace : undefined, name);
    if (!o) throw notFound(info.resource, info.group, name);
    return o;
  }

  selectors(info: ResourceInfo, opts: ListOptions): Selectors {
    return {
      label: parseLabelSelector(opts.labelSelector),
      field: parseFieldSelector(opts.fieldSelector, (f) => f === 'metadata.name' || f === 'metadata.namespace' || f in info.fields),
    };
  }

  static matchesSelectors(info: ResourceInfo, sel: Selectors, o: KubeObject): boolean {
    if (sel.label.length > 0 && !matches(sel.label, (k) => o.metadata.labels?.[k])) return false;
    if (sel.field.length === 0) return true;
    return matches(sel.field, (k) => {
      if (k === 'metadata.name') return o.metadata.name ?? '';
      if (k === 'metadata.namespace') return o.metadata.namespace ?? '';
      return info.fields[k]?.(o) ?? '';
    });
  }

  list(info: ResourceInfo, namespace: string | undefined, opts: ListOptions): { items: KubeObject[]; resourceVersion: number } {
    const sel = this.selectors(info, opts);
    const all = this.store.list(info.resKey, info.namespaced ? namespace : undefined);
    const items = sel.label.length === 0 && sel.field.length === 0 ? all : all.filter((o) => Operations.matchesSelectors(info, sel, o));
    return { items, resourceVersion: this.store.resourceVersion };
  }

  /** Checks a request body: a JSON object whose apiVersion/kind (when given) name this resource. */
  private checkBody(info: ResourceInfo, version: string, body: unknown): KubeObject {
    if (!isJsonObject(body)) throw badRequest(`the request body must be a JSON object describing a ${info.kind}`);
    const expected = apiVersionOf(info.group, version);
    if (body.apiVersion !== undefined && body.apiVersion !== expected) {
      throw badRequest(`the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${expected})`);
    }
    if (body.kind !== undefined && body.kind !== info.kind) {
      throw badRequest(`the kind in the data (${String(body.kind)}) does not match the expected kind (${info.kind}) for ${info.resource}`);
    }
    if (body.metadata !== undefined && !isJsonObject(body.metadata)) throw badRequest('metadata must be an object');
    const o = deepClone(body) as KubeObject;
    o.metadata = isJsonObject(o.metadata) ? o.metadata : {};
    // null means "not set" (Go's nil slices and maps); other wrong types are refused here, before
    // any code indexes them.
    for (const [k, v] of Object.entries(o.metadata)) if (v === null) delete o.metadata[k];
    const shapes = metaShapeProblems(o.metadata);
    if (shapes.length > 0) throw invalid(info.kind, info.group, typeof o.metadata.name === 'string' ? o.metadata.name : '', shapes);
    o.apiVersion = expected;
    o.kind = info.kind;
    return o;
  }

  private checkNamespace(info: ResourceInfo, namespace: string | undefined, o: KubeObject, forCreate: boolean): void {
    if (!info.namespaced) {
      delete o.metadata.namespace;
      return;
    }
    if (o.metadata.namespace && namespace && o.metadata.namespace !== namespace) {
      throw badRequest(`the namespace of the provided object (${o.metadata.namespace}) does not match the namespace sent on the request (${namespace})`);
    }
    o.metadata.namespace = namespace ?? o.metadata.namespace;
    if (!forCreate || !o.metadata.namespace) return;
    const ns = this.store.getLatest('/namespaces', undefined, o.metadata.namespace);
    if (!ns) throw notFound('namespaces', '', o.metadata.namespace);
    if (ns.metadata.deletionTimestamp) {
      throw forbidden(`${info.resource} "${o.metadata.name ?? o.metadata.generateName ?? ''}" is forbidden: unable to create new content in namespace ${o.metadata.namespace} because it is being terminated`);
    }
  }

  private validate(info: ResourceInfo, o: KubeObject, old?: KubeObject): void {
    const causes = [...validateMeta(info, o, old), ...validateSpec(info, o)];
    if (causes.length > 0) throw invalid(info.kind, info.group, o.metadata.name ?? '', causes);
  }

  defaultStorageClass(): string | undefined {
    for (const sc of this.store.list('storage.k8s.io/storageclasses')) {
      if (sc.metadata.annotations?.[defaultClassAnnotation] === 'true' || sc.metadata.annotations?.['storageclass.beta.kubernetes.io/is-default-class'] === 'true') return sc.metadata.name;
    }
    return undefined;
  }

  usedNodePorts(): Set<number> {
    const used = new Set<number>();
    for (const svc of this.store.list('/services')) {
      const ports = isJsonObject(svc.spec) && Array.isArray(svc.spec.ports) ? svc.spec.ports : [];
      for (const p of ports) if (isJsonObject(p) && typeof p.nodePort === 'number') used.add(p.nodePort);
    }
    return used;
  }

  async create(info: ResourceInfo, namespace: string | undefined, body: unknown, opts: WriteOptions & { version?: string } = {}): Promise<KubeObject> {
    const o = this.checkBody(info, opts.version ?? info.versions[0]!, body);
    if (opts.subresource) throw methodNotAllowed(`create is not allowed on ${info.resource}/${opts.subresource}`);
    const m = o.metadata;
    if (!m.name && m.generateName) m.name = `${m.generateName}${randomSuffix()}`;
    this.checkNamespace(info, namespace, o, true);
    if (m.resourceVersion) throw badRequest('resourceVersion should not be set on objects to be created');
    m.uid = randomUUID();
    m.creationTimestamp = nowTimestamp();
    if (usesGeneration(info)) m.generation = 1;
    else delete m.generation;
    delete m.deletionTimestamp;
    delete m.deletionGracePeriodSeconds;
    delete m.selfLink;
    applyCreateDefaults(info, o, this);
    if (info.resKey === 'apiextensions.k8s.io/customresourcedefinitions') {
      m.finalizers = [...new Set([...(m.finalizers ?? []), 'customresourcecleanup.apiextensions.k8s.io'])];
    }
    this.validate(info, o);
    if (this.store.getLatest(info.resKey, m.namespace, m.name ?? '')) throw alreadyExists(info.resource, info.group, m.name ?? '');
    if (opts.dryRun) return o;
    return this.store.put(info.resKey, o, '');
  }

  /** PUT (whole object) on the main endpoint or /status. */
  async update(info: ResourceInfo, namespace: string | undefined, name: string, body: unknown, opts: WriteOptions & { version?: string } = {}): Promise<KubeObject> {
    const o = this.checkBody(info, opts.version ?? info.versions[0]!, body);
    if (o.metadata.name !== undefined && o.metadata.name !== name) {
      throw badRequest(`the name of the object (${String(o.metadata.name)}) does not match the name on the URL (${name})`);
    }
    o.metadata.name = name;
    this.checkNamespace(info, namespace, o, false);
    return this.applyUpdate(info, this.latest(info, namespace, name), o, opts);
  }

  async patch(info: ResourceInfo, namespace: string | undefined, name: string, type: PatchType, body: unknown, opts: WriteOptions & { version?: string } = {}): Promise<KubeObject> {
    const current = this.latest(info, namespace, name);
    let patched: unknown;
    switch (type) {
      case 'merge':
        if (!isJsonObject(body)) throw badRequest('a merge patch must be a JSON object');
        patched = mergePatch(current, body);
        break;
      case 'json':
        patched = jsonPatch(current, body);
        break;
      case 'strategic':
        if (info.custom) throw unsupportedMediaType(`the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`);
        if (!isJsonObject(body)) throw badRequest('a strategic merge patch must be a JSON object');
        patched = strategicMerge(current, body);
        break;
      case 'apply':
        // Server-side apply, simplified: the applied configuration is merged like a merge patch.
        if (!isJsonObject(body)) throw badRequest('an apply patch must be an object');
        patched = mergePatch(current, body);
        break;
    }
    const o = this.checkBody(info, opts.version ?? info.versions[0]!, patched);
    if (o.metadata.name !== name) throw badRequest(`a patch may not change metadata.name (${String(o.metadata.name)})`);
    this.checkNamespace(info, namespace, o, false);
    return this.applyUpdate(info, current, o, opts);
  }

  /** The update rules: optimistic concurrency, immutable metadata, status subresource, finalizers. */
  private async applyUpdate(info: ResourceInfo, current: KubeObject, incoming: KubeObject, opts: WriteOptions): Promise<KubeObject> {
    const name = current.metadata.name ?? '';
    const rv = incoming.metadata.resourceVersion;
    if (rv !== undefined && rv !== '' && rv !== current.metadata.resourceVersion) {
      throw conflict(info.resource, info.group, name, 'the object has been modified; please apply your changes to the latest version and try again');
    }
    if (incoming.metadata.uid !== undefined && incoming.metadata.uid !== '' && incoming.metadata.uid !== current.metadata.uid) {
      throw conflict(info.resource, info.group, name, `Precondition failed: UID in precondition: ${String(incoming.metadata.uid)}, UID in object meta: ${current.metadata.uid ?? ''}`);
    }
    let next: KubeObject;
    if (opts.subresource === 'status') {
      if (!info.hasStatus) throw notFound(`${info.resource}/status`, info.group, name);
      next = { ...deepClone(current), status: deepClone(incoming.status) };
      if (next.status === undefined) delete next.status;
    } else {
      next = incoming;
      if (info.hasStatus) {
        if (current.status === undefined) delete next.status;
        else next.status = deepClone(current.status);
      }
      applyUpdateDefaults(info, next);
    }
    const m = next.metadata;
    const cm = current.metadata;
    m.uid = cm.uid;
    m.creationTimestamp = cm.creationTimestamp;
    m.namespace = cm.namespace;
    if (cm.deletionTimestamp) {
      m.deletionTimestamp = cm.deletionTimestamp;
      m.deletionGracePeriodSeconds = cm.deletionGracePeriodSeconds;
      const added = (m.finalizers ?? []).filter((f) => !(cm.finalizers ?? []).includes(f));
      if (added.length > 0) {
        throw invalid(info.kind, info.group, name, [{ reason: 'FieldValueForbidden', field: 'metadata.finalizers', message: `Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(added)}` }]);
      }
    } else {
      delete m.deletionTimestamp;
      delete m.deletionGracePeriodSeconds;
    }
    if (m.finalizers !== undefined && m.finalizers.length === 0) delete m.finalizers;
    if (usesGeneration(info)) {
      m.generation = cm.generation ?? 1;
      if (specPart(info, next) !== specPart(info, current)) m.generation++;
    } else {
      delete m.generation;
    }
    m.resourceVersion = cm.resourceVersion;
    if (info.resKey === 'apiextensions.k8s.io/customresourcedefinitions' && opts.subresource !== 'status') this.checkCrdUpdate(current, next);
    this.validate(info, next, current);
    const updateCauses = validateUpdate(info, current, next);
    if (updateCauses.length > 0) throw invalid(info.kind, info.group, name, updateCauses);
    if (sameIgnoringRv(next, current)) {
      // No-op: no new resourceVersion, no event. Answered once the object's pending writes are
      // durable, so the reply never shows a state a crash could take back.
      return (await this.store.settled(info.resKey, cm.namespace, name)) ?? current;
    }
    if (opts.dryRun) return next;
    const nsSpecFinalizers = info.resKey === '/namespaces' && isJsonObject(next.spec) && Array.isArray(next.spec.finalizers) && next.spec.finalizers.length > 0;
    if (m.deletionTimestamp && !(m.finalizers?.length) && !nsSpecFinalizers) {
      // The last finalizer is gone: the object goes, reported (reply and DELETED event) as updated.
      return this.store.remove(info.resKey, cm.namespace, name, cm.resourceVersion, next);
    }
    return this.store.put(info.resKey, next, cm.resourceVersion);
  }

  private checkCrdUpdate(current: KubeObject, next: KubeObject): void {
    const a = isJsonObject(current.spec) ? current.spec : {};
    const b = isJsonObject(next.spec) ? next.spec : {};
    const causes = [];
    if (a.scope !== b.scope) causes.push({ reason: 'FieldValueInvalid', field: 'spec.scope', message: 'Invalid value: field is immutable' });
    if (a.group !== b.group) causes.push({ reason: 'FieldValueInvalid', field: 'spec.group', message: 'Invalid value: field is immutable' });
    if (causes.length > 0) throw invalid('CustomResourceDefinition', 'apiextensions.k8s.io', current.metadata.name ?? '', causes);
  }

  /**
   * DELETE. Objects with finalizers get a deletionTimestamp and stay until the last finalizer is
   * removed; namespaces always pass through Terminating (the namespace controller empties them).
   * Returns the object and whether it is gone.
   */
  async delete(info: ResourceInfo, namespace: string | undefined, name: string, opts: DeleteOptions = {}): Promise<{ obj: KubeObject; gone: boolean }> {
    const current = this.latest(info, namespace, name);
    const m = current.metadata;
    const pre = opts.preconditions;
    if (pre?.uid && pre.uid !== m.uid) throw conflict(info.resource, info.group, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${m.uid ?? ''}`);
    if (pre?.resourceVersion && pre.resourceVersion !== m.resourceVersion) {
      throw conflict(info.resource, info.group, name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${m.resourceVersion ?? ''}`);
    }
    const isNamespace = info.resKey === '/namespaces';
    if (isNamespace && protectedNamespaces.has(name)) throw forbidden(`namespaces "${name}" is forbidden: this namespace may not be deleted`);
    if (opts.dryRun) return { obj: current, gone: false };
    if (opts.propagationPolicy === 'Orphan' && m.uid) await this.orphanDependents(m.uid);
    if (opts.propagationPolicy === 'Foreground' && m.uid && !m.deletionTimestamp && this.hasDependents(m.uid)) {
      // The garbage collector deletes the dependents, then drops this finalizer.
      const next = deepClone(current);
      next.metadata.finalizers = [...new Set([...(m.finalizers ?? []), foregroundFinalizer])];
      next.metadata.deletionTimestamp = nowTimestamp();
      next.metadata.deletionGracePeriodSeconds = 0;
      if (usesGeneration(info)) next.metadata.generation = (m.generation ?? 1) + 1;
      return { obj: await this.store.put(info.resKey, next, m.resourceVersion), gone: false };
    }
    if (m.finalizers?.length || isNamespace) {
      if (m.deletionTimestamp) return { obj: (await this.store.settled(info.resKey, m.namespace, name)) ?? current, gone: false };
      const next = deepClone(current);
      next.metadata.deletionTimestamp = nowTimestamp();
      next.metadata.deletionGracePeriodSeconds = 0;
      // As Kubernetes' markAsDeleting: objects with a generation get a new one when deletion starts.
      if (usesGeneration(info)) next.metadata.generation = (m.generation ?? 1) + 1;
      if (isNamespace) next.status = { ...(isJsonObject(next.status) ? next.status : {}), phase: 'Terminating' };
      return { obj: await this.store.put(info.resKey, next, m.resourceVersion), gone: false };
    }
    return { obj: await this.store.remove(info.resKey, m.namespace, name, m.resourceVersion), gone: true };
  }

  /** Objects with an ownerReference to `uid`. */
  dependentsOf(uid: string): { resKey: string; obj: KubeObject }[] {
    const out: { resKey: string; obj: KubeObject }[] = [];
    for (const resKey of this.store.resourceKeys()) {
      for (const o of this.store.list(resKey)) if (o.metadata.ownerReferences?.some((r) => r.uid === uid)) out.push({ resKey, obj: o });
    }
    return out;
  }

  private hasDependents(uid: string): boolean {
    return this.dependentsOf(uid).length > 0;
  }

  /** Removes ownerReferences to `uid` from every object (propagationPolicy Orphan). */
  private async orphanDependents(uid: string): Promise<void> {
    for (const resKey of this.store.resourceKeys()) {
      for (const o of this.store.list(resKey)) {
        if (!o.metadata.ownerReferences?.some((r) => r.uid === uid)) continue;
        const cur = this.store.getLatest(resKey, o.metadata.namespace, o.metadata.name ?? '');
        const refs = cur?.metadata.ownerReferences;
        if (!cur || !refs) continue;
        const next = deepClone(cur);
        next.metadata.ownerReferences = refs.filter((r) => r.uid !== uid);
        if (next.metadata.ownerReferences.length === 0) delete next.metadata.ownerReferences;
        try {
          await this.store.put(resKey, next, cur.metadata.resourceVersion);
        } catch (err) {
          this.logger.warn('orphaning a dependent failed', { error: (err as Error).message });
        }
      }
    }
  }

  /**
   * For controllers: read, change a copy with `fn`, write back (status through the subresource
   * when asked); retried on conflict. `fn` returns false to skip the write.
   */
  async mutate(info: ResourceInfo, namespace: string | undefined, name: string, fn: (o: KubeObject) => boolean | void, opts: WriteOptions = {}): Promise<KubeObject | undefined> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const cur = this.store.getLatest(info.resKey, info.namespaced ? namespace : undefined, name);
      if (!cur) return undefined;
      const copy = deepClone(cur);
      if (fn(copy) === false) return cur;
      try {
        return await this.applyUpdate(info, cur, copy, opts);
      } catch (err) {
        if (!hasErrorCode(err, 'conflict') || (err.details as { reason?: string }).reason === 'Forbidden') throw err;
      }
    }
    throw new CstorError('conflict', `${info.resource} ${name}: too many conflicting updates`);
  }

  /** Body of a list response. */
  static listBody(info: ResourceInfo, version: string, items: KubeObject[], resourceVersion: number, extra: JsonObject = {}): JsonObject {
    const apiVersion = apiVersionOf(info.group, version);
    return {
      kind: info.listKind,
      apiVersion,
      metadata: { resourceVersion: String(resourceVersion), ...extra },
      items: items.map((o) => Operations.output(info, version, o, !info.custom)),
    };
  }

  /** An object as served at `version` (list items of built-in types carry no apiVersion/kind). */
  static output(info: ResourceInfo, version: string, o: KubeObject, inList = false): KubeObject {
    const apiVersion = apiVersionOf(info.group, version);
    if (inList) {
      const { apiVersion: _a, kind: _k, ...rest } = o;
      return rest as KubeObject;
    }
    return o.apiVersion === apiVersion ? o : { ...o, apiVersion };
  }
}
