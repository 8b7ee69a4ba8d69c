// Applies manifests to an API server: create what is missing, merge-patch what differs from the
// manifest (three-way, with kubectl's last-applied annotation), leave equal objects alone.
// Order: CustomResourceDefinitions first (then wait until Established and discover again, so
// their kinds can be applied), Namespaces next, then everything else in manifest order. Kinds the
// server does not serve (kube-lite serves no apps/v1 or RBAC) are skipped and reported, never an
// error. Failures do not stop the run: every object is tried and one error lists every failure.
import { CstorError, describeError, hasErrorCode } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { sleep, realClock } from '../kube/clock.ts';
import type { HttpKubeTransport } from '../kube/transport.ts';
import { ResourceClient } from '../kube/resource-client.ts';
import type { ResourceType } from '../kube/resource-type.ts';
import type { KubeObject } from '../kube/types/meta.ts';
import type { Manifest, ManifestObject } from './manifests.ts';
import { isJsonObject, lastAppliedAnnotation, lastAppliedValue, threeWayMergePatch, type JsonObject } from './three-way-patch.ts';

export interface ObjectRef {
  name: string;
  namespace?: string;
}

/** What the applier needs from an API server. */
export interface ApplyApi {
  /** "apiVersion/kind" (e.g. "apps/v1/Deployment", "v1/Service") → resource, for what is served. */
  discover(): Promise<Map<string, ResourceType>>;
  /** The live object, or null when absent. */
  get(r: ResourceType, ref: ObjectRef): Promise<JsonObject | null>;
  create(r: ResourceType, obj: JsonObject): Promise<JsonObject>;
  mergePatch(r: ResourceType, ref: ObjectRef, patch: JsonObject): Promise<JsonObject>;
}

export const applyOutcomes = ['created', 'updated', 'unchanged', 'skipped'] as const;
export type ApplyOutcome = (typeof applyOutcomes)[number];

export interface ApplyResult {
  file: string;
  kind: string;
  name: string;
  namespace?: string;
  outcome: ApplyOutcome;
  /** Why it was skipped. */
  reason?: string;
}

export interface ApplyOptions {
  api: ApplyApi;
  logger: Logger;
  /** For namespaced objects whose manifest names none (kubectl's -n); default "openebs". */
  defaultNamespace?: string;
  /** Longest wait for a CRD to be Established (default 30 s). */
  crdTimeoutMs?: number;
}

const crdKey = 'apiextensions.k8s.io/v1/CustomResourceDefinition';

export function kindKey(apiVersion: string, kind: string): string {
  return `${apiVersion}/${kind}`;
}

export async function applyManifests(manifests: readonly Manifest[], options: ApplyOptions): Promise<ApplyResult[]> {
  const { api, logger } = options;
  const defaultNamespace = options.defaultNamespace ?? 'openebs';
  const results: ApplyResult[] = [];
  const failures: string[] = [];
  let served = await api.discover();

  const applyOne = async (m: Manifest): Promise<void> => {
    const obj = m.object;
    const r = served.get(kindKey(obj.apiVersion, obj.kind));
    const base = { file: m.file, kind: obj.kind, name: obj.metadata.name };
    if (!r) {
      results.push({ ...base, outcome: 'skipped', reason: `${obj.apiVersion} ${obj.kind} is not served by this API server` });
      return;
    }
    const desired = structuredClone(obj) as ManifestObject;
    if (r.namespaced) desired.metadata.namespace = obj.metadata.namespace ?? defaultNamespace;
    else delete desired.metadata.namespace;
    const ref: ObjectRef = r.namespaced ? { name: desired.metadata.name, namespace: desired.metadata.namespace! } : { name: desired.metadata.name };
    const withNs = ref.namespace ? { ...base, namespace: ref.namespace } : base;
    try {
      results.push({ ...withNs, outcome: await applyObject(api, r, ref, desired) });
    } catch (err) {
      failures.push(`${m.file} (document ${m.doc}) ${obj.kind} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name}: ${describeError(err)}`);
    }
  };

  const crds = manifests.filter((m) => kindKey(m.object.apiVersion, m.object.kind) === crdKey);
  for (const m of crds) await applyOne(m);
  if (crds.length > 0) {
    await waitEstablished(api, served, crds.map((m) => m.object.metadata.name), options.crdTimeoutMs ?? 30_000);
    served = await api.discover();
  }
  const rest = manifests.filter((m) => kindKey(m.object.apiVersion, m.object.kind) !== crdKey);
  for (const m of rest.filter((x) => x.object.apiVersion === 'v1' && x.object.kind === 'Namespace')) await applyOne(m);
  for (const m of rest.filter((x) => !(x.object.apiVersion === 'v1' && x.object.kind === 'Namespace'))) await applyOne(m);

  const count = (o: ApplyOutcome): number => results.filter((x) => x.outcome === o).length;
  const skippedKinds = [...new Set(results.filter((x) => x.outcome === 'skipped').map((x) => x.kind))];
  logger.info('manifests applied', {
    created: count('created'), updated: count('updated'), unchanged: count('unchanged'), skipped: count('skipped'),
    failed: failures.length, ...(skippedKinds.length > 0 ? { skippedKinds } : {}),
  });
  if (failures.length > 0) {
    throw new CstorError('unavailable', `applying manifests failed for ${failures.length} object(s): ${failures.join('; ')}`);
  }
  return results;
}

async function applyObject(api: ApplyApi, r: ResourceType, ref: ObjectRef, desired: ManifestObject): Promise<ApplyOutcome> {
  // kubectl records the manifest with `metadata.annotations: {}` when it has none
  const recorded = structuredClone(desired);
  recorded.metadata.annotations = isJsonObject(recorded.metadata.annotations) ? recorded.metadata.annotations : {};
  const applied = lastAppliedValue(recorded);
  const modified = structuredClone(desired) as JsonObject;
  const meta = modified.metadata as JsonObject;
  meta.annotations = { ...(isJsonObject(meta.annotations) ? meta.annotations : {}), [lastAppliedAnnotation]: applied };
  const current = await api.get(r, ref);
  if (current === null) {
    try {
      await api.create(r, modified);
      return 'created';
    } catch (err) {
      if (!hasErrorCode(err, 'already_exists')) throw err;
      return applyObject(api, r, ref, desired);
    }
  }
  const currentMeta = isJsonObject(current.metadata) ? current.metadata : {};
  const annotations = isJsonObject(currentMeta.annotations) ? currentMeta.annotations : {};
  let original: JsonObject = {};
  const last = annotations[lastAppliedAnnotation];
  if (typeof last === 'string') {
    try {
      const parsed: unknown = JSON.parse(last);
      if (isJsonObject(parsed)) original = parsed;
    } catch {
      original = {};
    }
  }
  const patch = threeWayMergePatch(original, modified, current);
  if (Object.keys(patch).length === 0) return 'unchanged';
  const after = await api.mergePatch(r, ref, patch);
  const rvOf = (o: JsonObject): unknown => (isJsonObject(o.metadata) ? o.metadata.resourceVersion : undefined);
  return rvOf(after) !== undefined && rvOf(after) === rvOf(current) ? 'unchanged' : 'updated';
}

async function waitEstablished(api: ApplyApi, served: Map<string, ResourceType>, names: string[], timeoutMs: number): Promise<void> {
  const r = served.get(crdKey);
  if (!r) return;
  const deadline = Date.now() + timeoutMs;
  for (const name of names) {
    for (;;) {
      const crd = await api.get(r, { name });
      const conditions = isJsonObject(crd?.status) && Array.isArray(crd.status.conditions) ? crd.status.conditions : [];
      if (conditions.some((c) => isJsonObject(c) && c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > deadline) throw new CstorError('timeout', `CRD ${name} is not Established after ${timeoutMs} ms`);
      await sleep(realClock, 100);
    }
  }
}

interface ApiResourceList {
  groupVersion?: string;
  resources?: { name: string; kind: string; namespaced: boolean }[];
}

interface ApiGroupList {
  groups?: { name: string; versions?: { groupVersion: string; version: string }[] }[];
}

/** ApplyApi over lib/kube's transport (a real cluster or kube-lite). */
export function kubeApplyApi(transport: HttpKubeTransport): ApplyApi {
  const client = (r: ResourceType): ResourceClient<KubeObject> => new ResourceClient<KubeObject>(transport, r);
  return {
    async discover() {
      const map = new Map<string, ResourceType>();
      const add = (group: string, version: string, list: ApiResourceList): void => {
        for (const res of list.resources ?? []) {
          if (res.name.includes('/')) continue;
          const apiVersion = group ? `${group}/${version}` : version;
          map.set(kindKey(apiVersion, res.kind), { group, version, plural: res.name, kind: res.kind, namespaced: res.namespaced });
        }
      };
      add('', 'v1', await transport.request<ApiResourceList>({ method: 'GET', path: '/api/v1', what: 'discover /api/v1' }));
      const groups = await transport.request<ApiGroupList>({ method: 'GET', path: '/apis', what: 'discover /apis' });
      const versions = (groups.groups ?? []).flatMap((g) => (g.versions ?? []).map((v) => ({ group: g.name, version: v.version })));
      const lists = await Promise.all(
        versions.map((v) =>
          transport.request<ApiResourceList>({ method: 'GET', path: `/apis/${v.group}/${v.version}`, what: `discover /apis/${v.group}/${v.version}` }).catch((err: unknown) => {
            if (hasErrorCode(err, 'not_found')) return {} as ApiResourceList;
            throw err;
          }),
        ),
      );
      versions.forEach((v, i) => add(v.group, v.version, lists[i] ?? {}));
      return map;
    },
    async get(r, ref) {
      try {
        return (await client(r).get(ref)) as unknown as JsonObject;
      } catch (err) {
        if (hasErrorCode(err, 'not_found')) return null;
        throw err;
      }
    },
    async create(r, obj) {
      return (await client(r).create(obj as unknown as KubeObject)) as unknown as JsonObject;
    },
    async mergePatch(r, ref, patch) {
      return (await client(r).mergePatch(ref, patch)) as unknown as JsonObject;
    },
  };
}
