// In-memory fakes of the engine's ports, for tests here and in the REST layer: a Kubernetes object
// store with label selectors, merge patches, resourceVersions, reactors (to play a controller) and
// injected failures; a clock whose sleep advances time instantly; a target mgmt API.
import { randomUUID } from 'node:crypto';
import { CstorError } from '../../lib/errors.ts';
import { applyMergePatch } from './merge-patch.ts';
import {
  describeRef,
  isJsonObject,
  refOf,
  type Clock,
  type HttpCaller,
  type HttpMethod,
  type HttpResponse,
  type Json,
  type JsonObject,
  type KubeObject,
  type KubeObjects,
  type ListQuery,
  type ObjectRef,
} from './ports.ts';

export type KubeVerb = 'get' | 'list' | 'create' | 'patch' | 'patchStatus' | 'delete';

export interface KubeCall {
  verb: KubeVerb;
  kind: string;
  namespace?: string;
  name?: string;
}

/** Reacts to a change, like a controller would (e.g. sets a CStorVolume Healthy once created). */
export type Reactor = (event: { verb: 'create' | 'patch' | 'patchStatus' | 'delete'; object: KubeObject; store: FakeKubeObjects }) => void;

interface Failure {
  verb: KubeVerb;
  kind: string;
  error: CstorError;
  remaining: number;
}

function keyOf(ref: { apiVersion: string; kind: string; namespace?: string; name: string }): string {
  return `${ref.apiVersion}|${ref.kind}|${ref.namespace ?? ''}|${ref.name}`;
}

/** Parses `a=b,c!=d,e,!f` into predicates over labels. */
export function matchesSelector(labels: Readonly<Record<string, Json>>, selector: string): boolean {
  for (const raw of selector.split(',')) {
    const term = raw.trim();
    if (term === '') continue;
    let m: RegExpExecArray | null;
    if ((m = /^([^!=\s]+)\s*!=\s*(.*)$/.exec(term))) {
      if (labels[m[1] as string] === (m[2] as string).trim()) return false;
    } else if ((m = /^([^!=\s]+)\s*==?\s*(.*)$/.exec(term))) {
      if (labels[m[1] as string] !== (m[2] as string).trim()) return false;
    } else if ((m = /^!\s*(\S+)$/.exec(term))) {
      if (Object.hasOwn(labels, m[1] as string)) return false;
    } else if (!Object.hasOwn(labels, term)) {
      return false;
    }
  }
  return true;
}

export class FakeKubeObjects implements KubeObjects {
  private readonly objects = new Map<string, KubeObject>();
  private version = 0;
  private readonly failures: Failure[] = [];
  readonly reactors: Reactor[] = [];
  readonly calls: KubeCall[] = [];

  constructor(private readonly clock: Clock = { now: () => Date.now(), sleep: async () => undefined }) {}

  /** Puts objects in as they are (metadata filled in), without calls or reactors. */
  seed(...objects: KubeObject[]): void {
    for (const o of objects) this.objects.set(keyOf(refOf(o)), this.stamp(structuredClone(o)));
  }

  /** Makes the next `times` calls of `verb` on `kind` throw `error`. */
  failNext(verb: KubeVerb, kind: string, error: CstorError, times = 1): void {
    this.failures.push({ verb, kind, error, remaining: times });
  }

  /** A deep copy of every object, sorted by key: compare before/after. */
  dump(): KubeObject[] {
    return [...this.objects.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, o]) => structuredClone(o));
  }

  /** Objects of one kind (sorted by name), deep copies. */
  all(kind: string): KubeObject[] {
    return this.dump()
      .filter((o) => o.kind === kind)
      .sort((a, b) => String(a.metadata.name).localeCompare(String(b.metadata.name)));
  }

  find(kind: string, name: string, namespace?: string): KubeObject | undefined {
    return this.all(kind).find((o) => o.metadata.name === name && (namespace === undefined || o.metadata.namespace === namespace));
  }

  private stamp(o: KubeObject): KubeObject {
    this.version++;
    o.metadata.resourceVersion = String(this.version);
    if (typeof o.metadata.uid !== 'string') o.metadata.uid = randomUUID();
    if (typeof o.metadata.creationTimestamp !== 'string') o.metadata.creationTimestamp = new Date(this.clock.now()).toISOString();
    return o;
  }

  private record(verb: KubeVerb, kind: string, namespace?: string, name?: string): void {
    const call: KubeCall = { verb, kind };
    if (namespace !== undefined) call.namespace = namespace;
    if (name !== undefined) call.name = name;
    this.calls.push(call);
    const i = this.failures.findIndex((f) => f.verb === verb && f.kind === kind);
    const failure = this.failures[i];
    if (failure) {
      failure.remaining--;
      if (failure.remaining <= 0) this.failures.splice(i, 1);
      throw failure.error;
    }
  }

  private react(verb: 'create' | 'patch' | 'patchStatus' | 'delete', object: KubeObject): void {
    for (const reactor of this.reactors) reactor({ verb, object: structuredClone(object), store: this });
  }

  private mustGet(ref: ObjectRef): KubeObject {
    const o = this.objects.get(keyOf(ref));
    if (!o) throw new CstorError('not_found', `${describeRef(ref)} not found`);
    return o;
  }

  async get(ref: ObjectRef): Promise<KubeObject> {
    this.record('get', ref.kind, ref.namespace, ref.name);
    return structuredClone(this.mustGet(ref));
  }

  async list(query: ListQuery): Promise<KubeObject[]> {
    this.record('list', query.kind, query.namespace);
    return this.all(query.kind).filter((o) => {
      if (o.apiVersion !== query.apiVersion) return false;
      if (query.namespace !== undefined && o.metadata.namespace !== query.namespace) return false;
      const labels = isJsonObject(o.metadata.labels) ? o.metadata.labels : {};
      return query.labelSelector === undefined || matchesSelector(labels, query.labelSelector);
    });
  }

  async create(object: KubeObject): Promise<KubeObject> {
    const ref = refOf(object);
    this.record('create', ref.kind, ref.namespace, ref.name);
    if (!ref.name) throw new CstorError('invalid', `${object.kind}: metadata.name is required`);
    if (this.objects.has(keyOf(ref))) throw new CstorError('already_exists', `${describeRef(ref)} already exists`);
    const stored = this.stamp(structuredClone(object));
    this.objects.set(keyOf(ref), stored);
    this.react('create', stored);
    return structuredClone(stored);
  }

  /** Patches without recording a call: for reactors playing a controller. */
  applyPatch(ref: ObjectRef, patch: JsonObject): KubeObject {
    const current = this.mustGet(ref);
    const next = applyMergePatch(current, patch) as KubeObject;
    next.metadata.name = current.metadata.name as Json;
    const stored = this.stamp(next);
    this.objects.set(keyOf(ref), stored);
    return structuredClone(stored);
  }

  async patch(ref: ObjectRef, patch: JsonObject): Promise<KubeObject> {
    this.record('patch', ref.kind, ref.namespace, ref.name);
    const { status: _ignored, ...rest } = patch;
    const out = this.applyPatch(ref, rest);
    this.react('patch', out);
    return out;
  }

  async patchStatus(ref: ObjectRef, patch: JsonObject): Promise<KubeObject> {
    this.record('patchStatus', ref.kind, ref.namespace, ref.name);
    const status = patch['status'];
    const out = this.applyPatch(ref, isJsonObject(status) ? { status } : {});
    this.react('patchStatus', out);
    return out;
  }

  /** Deletes at once: finalizers are not modelled (the pool's is, by its own tests). */
  async delete(ref: ObjectRef): Promise<void> {
    this.record('delete', ref.kind, ref.namespace, ref.name);
    const o = this.mustGet(ref);
    this.objects.delete(keyOf(ref));
    this.react('delete', o);
  }
}

/** A clock whose sleep advances time at once. */
export class FakeClock implements Clock {
  slept = 0;
  constructor(private time = Date.parse('2026-01-01T00:00:00Z')) {}
  now(): number {
    return this.time;
  }
  async sleep(ms: number): Promise<void> {
    this.time += ms;
    this.slept += ms;
    await Promise.resolve();
  }
  advance(ms: number): void {
    this.time += ms;
  }
}

export interface HttpCall {
  method: HttpMethod;
  url: string;
  body?: Json;
}

/**
 * The target mgmt API of cstor-target/mgmt/app.ts, in memory, at any host: GET /v1/volumes/:v
 * (status), GET /v1/volumes/:v/snapshots ({items: SnapshotInfo[]}), POST (201, idempotent),
 * DELETE /v1/volumes/:v/snapshots/:name (204, idempotent). A volume it does not serve: 404.
 * A volume must be added (addVolume) before it answers; others get 404.
 */
export class FakeTargetMgmt implements HttpCaller {
  readonly volumes = new Map<string, { phase: string; snapshots: Map<string, { name: string; ioSeq: number; createdAt: number; usedBytes: number }> }>();
  readonly calls: HttpCall[] = [];
  private readonly failures: Array<{ method: HttpMethod; status: number; error: string }> = [];

  addVolume(name: string, phase = 'Healthy', snapshots: string[] = []): void {
    this.volumes.set(name, { phase, snapshots: new Map(snapshots.map((s, i) => [s, { name: s, ioSeq: i + 1, createdAt: 1767225600000, usedBytes: 0 }])) });
  }

  snapshotsOf(volume: string): string[] {
    return [...(this.volumes.get(volume)?.snapshots.keys() ?? [])];
  }

  /** The next call with `method` answers `status` with `{error}`. */
  failNext(method: HttpMethod, status: number, error: string): void {
    this.failures.push({ method, status, error });
  }

  async request(method: HttpMethod, url: string, body?: Json): Promise<HttpResponse> {
    this.calls.push(body === undefined ? { method, url } : { method, url, body });
    const i = this.failures.findIndex((f) => f.method === method);
    const failure = this.failures[i];
    if (failure) {
      this.failures.splice(i, 1);
      return { status: failure.status, body: { error: failure.error } };
    }
    const path = new URL(url).pathname;
    const m = /^\/v1\/volumes\/([^/]+)(\/snapshots(?:\/([^/]+))?)?$/.exec(path);
    if (!m) return { status: 404, body: { error: `no route ${method} ${path}` } };
    const volumeName = decodeURIComponent(m[1] as string);
    const volume = this.volumes.get(volumeName);
    if (!volume) return { status: 404, body: { error: `volume ${volumeName} is not served by this target` } };
    if (!m[2]) {
      if (method !== 'GET') return { status: 405, body: { error: 'method not allowed' } };
      return { status: 200, body: { name: volumeName, phase: volume.phase, replicas: [] } };
    }
    const snapName = m[3] === undefined ? undefined : decodeURIComponent(m[3]);
    if (snapName === undefined && method === 'GET') {
      return { status: 200, body: { items: [...volume.snapshots.values()] } };
    }
    if (snapName === undefined && method === 'POST') {
      const name = isJsonObject(body) ? body['name'] : undefined;
      if (typeof name !== 'string' || name === '') return { status: 400, body: { error: 'snapshot name is required' } };
      if (volume.phase !== 'Healthy') return { status: 409, body: { error: `volume ${volumeName} is ${volume.phase}` } };
      const existing = volume.snapshots.get(name);
      if (existing) return { status: 201, body: existing };
      const snap = { name, ioSeq: volume.snapshots.size + 1, createdAt: 1767225600000, usedBytes: 0 };
      volume.snapshots.set(name, snap);
      return { status: 201, body: snap };
    }
    if (snapName !== undefined && method === 'DELETE') {
      volume.snapshots.delete(snapName);
      return { status: 204, body: null };
    }
    return { status: 405, body: { error: 'method not allowed' } };
  }
}
