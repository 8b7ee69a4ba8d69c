// The resources kube-lite serves: the built-in types and, once established, the custom resources
// of each CustomResourceDefinition.
import type { JsonObject, KubeObject } from '../store/types.ts';

export interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  description?: string;
  priority?: number;
  format?: string;
}

export type FieldGetter = (obj: KubeObject) => string | undefined;

export interface ResourceInfo {
  group: string;
  /** The versions served (the first is preferred). Objects are stored once, whatever version. */
  versions: string[];
  resource: string;
  kind: string;
  listKind: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  /** Has a /status subresource: the main endpoint ignores status and /status ignores the rest. */
  hasStatus: boolean;
  /** "group/resource": the store key. */
  resKey: string;
  /** Field selector fields beyond metadata.name / metadata.namespace. */
  fields: Readonly<Record<string, FieldGetter>>;
  /** Custom resources: the CRD's additionalPrinterColumns of each version. */
  printerColumns?: Readonly<Record<string, PrinterColumn[]>>;
  custom: boolean;
}

function get(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const p of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as JsonObject)[p];
  }
  return cur;
}

function str(path: string): FieldGetter {
  return (o) => {
    const v = get(o, path);
    return v === undefined || v === null ? '' : String(v);
  };
}

function fieldsOf(...paths: string[]): Record<string, FieldGetter> {
  return Object.fromEntries(paths.map((p) => [p, str(p)]));
}

interface BuiltinSpec {
  group: string;
  version: string;
  resource: string;
  kind: string;
  namespaced: boolean;
  shortNames?: string[];
  hasStatus?: boolean;
  fields?: Record<string, FieldGetter>;
  categories?: string[];
}

const builtinSpecs: BuiltinSpec[] = [
  { group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false, shortNames: ['ns'], hasStatus: true, fields: fieldsOf('status.phase') },
  { group: '', version: 'v1', resource: 'persistentvolumes', kind: 'PersistentVolume', namespaced: false, shortNames: ['pv'], hasStatus: true, fields: fieldsOf('status.phase', 'spec.storageClassName', 'spec.claimRef.name', 'spec.claimRef.namespace') },
  { group: '', version: 'v1', resource: 'persistentvolumeclaims', kind: 'PersistentVolumeClaim', namespaced: true, shortNames: ['pvc'], hasStatus: true, fields: fieldsOf('status.phase', 'spec.volumeName', 'spec.storageClassName') },
  {
    group: '',
    version: 'v1',
    resource: 'events',
    kind: 'Event',
    namespaced: true,
    shortNames: ['ev'],
    fields: fieldsOf('involvedObject.kind', 'involvedObject.namespace', 'involvedObject.name', 'involvedObject.uid', 'involvedObject.apiVersion', 'involvedObject.resourceVersion', 'involvedObject.fieldPath', 'reason', 'reportingComponent', 'source', 'type'),
  },
  { group: '', version: 'v1', resource: 'services', kind: 'Service', namespaced: true, shortNames: ['svc'], hasStatus: true, fields: fieldsOf('spec.clusterIP', 'spec.type'), categories: ['all'] },
  { group: '', version: 'v1', resource: 'endpoints', kind: 'Endpoints', namespaced: true, shortNames: ['ep'] },
  { group: '', version: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true, fields: fieldsOf('type') },
  { group: '', version: 'v1', resource: 'configmaps', kind: 'ConfigMap', namespaced: true, shortNames: ['cm'] },
  { group: '', version: 'v1', resource: 'serviceaccounts', kind: 'ServiceAccount', namespaced: true, shortNames: ['sa'] },
  {
    group: '',
    version: 'v1',
    resource: 'pods',
    kind: 'Pod',
    namespaced: true,
    shortNames: ['po'],
    hasStatus: true,
    fields: fieldsOf('spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'status.phase', 'status.podIP', 'status.nominatedNodeName'),
    categories: ['all'],
  },
  { group: '', version: 'v1', resource: 'nodes', kind: 'Node', namespaced: false, shortNames: ['no'], hasStatus: true, fields: fieldsOf('spec.unschedulable') },
  { group: 'storage.k8s.io', version: 'v1', resource: 'storageclasses', kind: 'StorageClass', namespaced: false, shortNames: ['sc'] },
  { group: 'coordination.k8s.io', version: 'v1', resource: 'leases', kind: 'Lease', namespaced: true },
  { group: 'apiextensions.k8s.io', version: 'v1', resource: 'customresourcedefinitions', kind: 'CustomResourceDefinition', namespaced: false, shortNames: ['crd', 'crds'], hasStatus: true, categories: ['api-extensions'] },
];

function builtin(s: BuiltinSpec): ResourceInfo {
  return {
    group: s.group,
    versions: [s.version],
    resource: s.resource,
    kind: s.kind,
    listKind: `${s.kind}List`,
    singular: s.kind.toLowerCase(),
    namespaced: s.namespaced,
    shortNames: s.shortNames ?? [],
    categories: s.categories ?? [],
    hasStatus: s.hasStatus ?? false,
    resKey: `${s.group}/${s.resource}`,
    fields: s.fields ?? {},
    custom: false,
  };
}

export const builtinResources: readonly ResourceInfo[] = builtinSpecs.map(builtin);

export function apiVersionOf(group: string, version: string): string {
  return group === '' ? version : `${group}/${version}`;
}

/** Every served resource, looked up by group/version/resource or by group/kind. */
export class ResourceRegistry {
  private readonly byResource = new Map<string, ResourceInfo>();
  private custom = new Map<string, ResourceInfo>();

  constructor() {
    for (const r of builtinResources) this.byResource.set(r.resKey, r);
  }

  /** Replaces the set of custom resources (from the established CRDs). */
  setCustom(infos: ResourceInfo[]): void {
    for (const key of this.custom.keys()) this.byResource.delete(key);
    this.custom = new Map(infos.filter((i) => !this.byResource.has(i.resKey)).map((i) => [i.resKey, i]));
    for (const [k, i] of this.custom) this.byResource.set(k, i);
  }

  lookup(group: string, version: string, resource: string): ResourceInfo | undefined {
    const info = this.byResource.get(`${group}/${resource}`);
    return info && info.versions.includes(version) ? info : undefined;
  }

  byResKey(resKey: string): ResourceInfo | undefined {
    return this.byResource.get(resKey);
  }

  byKind(apiVersion: string, kind: string): ResourceInfo | undefined {
    const slash = apiVersion.indexOf('/');
    const group = slash < 0 ? '' : apiVersion.slice(0, slash);
    const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
    for (const r of this.byResource.values()) if (r.group === group && r.kind === kind && r.versions.includes(version)) return r;
    return undefined;
  }

  all(): ResourceInfo[] {
    return [...this.byResource.values()];
  }

  /** group → versions served, preferred first (Kubernetes version priority). */
  groups(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const r of this.byResource.values()) {
      const vs = out.get(r.group) ?? [];
      for (const v of r.versions) if (!vs.includes(v)) vs.push(v);
      out.set(r.group, vs);
    }
    for (const vs of out.values()) vs.sort(compareVersions);
    return out;
  }
}

/** Kubernetes version priority: v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > anything else (by name). */
export function compareVersions(a: string, b: string): number {
  const rank = (v: string): [number, number, number] => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return [0, 0, 0];
    return [m[2] === undefined ? 3 : m[2] === 'beta' ? 2 : 1, Number(m[1]), Number(m[3] ?? 0)];
  };
  const ra = rank(a);
  const rb = rank(b);
  for (let i = 0; i < 3; i++) if (ra[i] !== rb[i]) return rb[i]! - ra[i]!;
  return a < b ? -1 : a > b ? 1 : 0;
}
