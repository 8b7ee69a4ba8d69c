// Validation of objects on create and update: metadata (DNS-1123 names, labels) and the required
// fields of the built-in types, with causes worded as Kubernetes words them.
import { dns1123LabelProblems, dns1123SubdomainProblems } from '../../lib/names.ts';
import type { StatusCause } from '../api/status.ts';
import { isJsonObject, type JsonObject, type KubeObject } from '../store/types.ts';
import type { ResourceInfo } from './registry.ts';

/** Resources whose names must be DNS-1123 labels (the rest: subdomains). */
const labelNamed = new Set(['/namespaces', '/services']);

const labelValueRe = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const qualifiedNameRe = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

function required(field: string): StatusCause {
  return { reason: 'FieldValueRequired', message: 'Required value', field };
}

function invalidValue(field: string, value: unknown, detail: string): StatusCause {
  return { reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(value)}: ${detail}`, field };
}

function unsupported(field: string, value: unknown, allowed: string[]): StatusCause {
  return { reason: 'FieldValueNotSupported', message: `Unsupported value: ${JSON.stringify(value)}: supported values: ${allowed.map((a) => `"${a}"`).join(', ')}`, field };
}

function obj(o: unknown, key: string): JsonObject | undefined {
  if (!isJsonObject(o)) return undefined;
  const v = o[key];
  return isJsonObject(v) ? v : undefined;
}

/** `old`: on update, the stored object (finalizers it already holds are not checked again). */
export function validateMeta(info: ResourceInfo, o: KubeObject, old?: KubeObject): StatusCause[] {
  const causes: StatusCause[] = [];
  const m = o.metadata;
  // Shapes first: later code (and the controllers) index these fields as their types say.
  const shapes = metaShapeProblems(m);
  if (shapes.length > 0) return shapes;
  const name = m.name ?? '';
  if (!name) {
    causes.push({ reason: 'FieldValueRequired', message: 'Required value: name or generateName is required', field: 'metadata.name' });
  } else {
    const problems = labelNamed.has(info.resKey) ? dns1123LabelProblems(name) : dns1123SubdomainProblems(name);
    for (const p of problems) causes.push(invalidValue('metadata.name', name, p));
  }
  if (info.namespaced && !m.namespace) causes.push({ reason: 'FieldValueRequired', message: 'Required value', field: 'metadata.namespace' });
  for (const [k, v] of Object.entries(m.labels ?? {})) {
    if (!qualifiedNameRe.test(k) || k.length > 316) causes.push(invalidValue('metadata.labels', k, 'name part must consist of alphanumeric characters, \'-\', \'_\' or \'.\', and must start and end with an alphanumeric character'));
    if (typeof v !== 'string' || v.length > 63 || !labelValueRe.test(v)) causes.push(invalidValue('metadata.labels', v, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"));
  }
  for (const [k, v] of Object.entries(m.annotations ?? {})) {
    if (!qualifiedNameRe.test(k)) causes.push(invalidValue('metadata.annotations', k, 'name part must consist of alphanumeric characters, \'-\', \'_\' or \'.\''));
    if (typeof v !== 'string') causes.push(invalidValue(`metadata.annotations[${k}]`, v, 'must be a string'));
  }
  for (const [i, ref] of (m.ownerReferences ?? []).entries()) {
    for (const f of ['apiVersion', 'kind', 'name', 'uid'] as const) if (!ref[f]) causes.push(required(`metadata.ownerReferences[${i}].${f}`));
  }
  for (const [i, f] of (m.finalizers ?? []).entries()) {
    if (old?.metadata.finalizers?.includes(f)) continue;
    if (!qualifiedNameRe.test(f) || f.length > 316) causes.push(invalidValue(`metadata.finalizers[${i}]`, f, "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"));
  }
  return causes;
}

function isStringMap(v: unknown): boolean {
  return isJsonObject(v) && Object.values(v).every((x) => typeof x === 'string');
}

/** Metadata fields of the wrong JSON type (a body is any JSON; these are what the types promise). */
export function metaShapeProblems(m: Record<string, unknown>): StatusCause[] {
  const causes: StatusCause[] = [];
  const notA = (field: string, v: unknown, what: string): void => {
    causes.push(invalidValue(`metadata.${field}`, v, `must be ${what}`));
  };
  for (const f of ['name', 'generateName', 'namespace', 'uid', 'resourceVersion'] as const) {
    if (m[f] !== undefined && typeof m[f] !== 'string') notA(f, m[f], 'a string');
  }
  for (const f of ['labels', 'annotations'] as const) {
    if (m[f] !== undefined && m[f] !== null && !isStringMap(m[f])) notA(f, m[f], 'a map of strings');
  }
  const fin = m.finalizers;
  if (fin !== undefined && fin !== null && !(Array.isArray(fin) && fin.every((x) => typeof x === 'string'))) notA('finalizers', fin, 'a list of strings');
  const refs = m.ownerReferences;
  if (refs !== undefined && refs !== null && !(Array.isArray(refs) && refs.every((r) => isJsonObject(r) && ['apiVersion', 'kind', 'name', 'uid'].every((k) => r[k] === undefined || typeof r[k] === 'string')))) {
    notA('ownerReferences', refs, 'a list of objects with string apiVersion, kind, name and uid');
  }
  return causes;
}

const accessModes = ['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOncePod'];
const pvCommonFields = new Set(['capacity', 'accessModes', 'claimRef', 'persistentVolumeReclaimPolicy', 'storageClassName', 'mountOptions', 'volumeMode', 'nodeAffinity', 'volumeAttributesClassName']);

function checkAccessModes(spec: JsonObject | undefined, field: string, causes: StatusCause[]): void {
  const modes = spec?.accessModes;
  if (!Array.isArray(modes) || modes.length === 0) {
    causes.push({ reason: 'FieldValueRequired', message: 'Required value: at least 1 access mode is required', field });
    return;
  }
  for (const m of modes) if (typeof m !== 'string' || !accessModes.includes(m)) causes.push(unsupported(field, m, accessModes));
}

/** Quantity strings as Kubernetes accepts them (e.g. 5G, 1Gi, 500M, 1e3). */
export const quantityRe = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i|[kMGTPE]|m|n|u)?$/;

function checkStorage(parent: JsonObject | undefined, field: string, causes: StatusCause[]): void {
  const v = parent?.storage;
  if (v === undefined) causes.push(required(field));
  else if (!(typeof v === 'number' || (typeof v === 'string' && quantityRe.test(v)))) causes.push(invalidValue(field, v, "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"));
}

function validateCrd(o: KubeObject, causes: StatusCause[]): void {
  const spec = obj(o, 'spec');
  if (!spec) {
    causes.push(required('spec'));
    return;
  }
  const names = obj(spec, 'names');
  const group = spec.group;
  if (typeof group !== 'string' || !group) causes.push(required('spec.group'));
  else if (!group.includes('.')) causes.push(invalidValue('spec.group', group, 'should be a domain with at least one dot'));
  if (!names) causes.push(required('spec.names'));
  const plural = names?.plural;
  if (names && (typeof plural !== 'string' || !plural)) causes.push(required('spec.names.plural'));
  if (names && (typeof names.kind !== 'string' || !names.kind)) causes.push(required('spec.names.kind'));
  if (names && typeof names.listKind === 'string' && names.listKind === names.kind) causes.push(invalidValue('spec.names.listKind', names.listKind, 'kind and listKind may not be the same'));
  if (spec.scope !== 'Namespaced' && spec.scope !== 'Cluster') causes.push(spec.scope === undefined ? required('spec.scope') : unsupported('spec.scope', spec.scope, ['Cluster', 'Namespaced']));
  const versions = spec.versions;
  if (!Array.isArray(versions) || versions.length === 0) {
    causes.push({ reason: 'FieldValueInvalid', message: 'Invalid value: must have exactly one version marked as storage version', field: 'spec.versions' });
  } else {
    const storage = versions.filter((v) => isJsonObject(v) && v.storage === true).length;
    if (storage !== 1) causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(versions.map((v) => (isJsonObject(v) ? v.name : v)))}: must have exactly one version marked as storage version`, field: 'spec.versions' });
    for (const [i, v] of versions.entries()) {
      if (!isJsonObject(v) || typeof v.name !== 'string' || !v.name) causes.push(required(`spec.versions[${i}].name`));
      else if (!/^v\d+((alpha|beta)\d+)?$/.test(v.name) && dns1123LabelProblems(v.name).length > 0) causes.push(invalidValue(`spec.versions[${i}].name`, v.name, 'must be a DNS-1035 label'));
      if (isJsonObject(v) && typeof v.served !== 'boolean') causes.push(required(`spec.versions[${i}].served`));
    }
  }
  if (typeof plural === 'string' && typeof group === 'string' && o.metadata.name !== `${plural}.${group}`) {
    causes.push(invalidValue('metadata.name', o.metadata.name, 'must be spec.names.plural+"."+spec.group'));
  }
}

/** Type-specific required fields of the built-in types. */
export function validateSpec(info: ResourceInfo, o: KubeObject): StatusCause[] {
  const causes: StatusCause[] = [];
  const spec = obj(o, 'spec');
  switch (info.resKey) {
    case '/persistentvolumeclaims': {
      checkAccessModes(spec, 'spec.accessModes', causes);
      if (!isJsonObject(spec?.dataSource) && !isJsonObject(spec?.dataSourceRef)) checkStorage(obj(obj(spec, 'resources'), 'requests'), 'spec.resources[storage]', causes);
      break;
    }
    case '/persistentvolumes': {
      checkAccessModes(spec, 'spec.accessModes', causes);
      checkStorage(obj(spec, 'capacity'), 'spec.capacity', causes);
      if (!spec || !Object.keys(spec).some((k) => !pvCommonFields.has(k))) causes.push({ reason: 'FieldValueRequired', message: 'Required value: must specify a volume type', field: 'spec' });
      const policy = spec?.persistentVolumeReclaimPolicy;
      if (policy !== undefined && !['Retain', 'Delete', 'Recycle'].includes(String(policy))) causes.push(unsupported('spec.persistentVolumeReclaimPolicy', policy, ['Delete', 'Recycle', 'Retain']));
      break;
    }
    case 'storage.k8s.io/storageclasses': {
      if (typeof o.provisioner !== 'string' || !o.provisioner) causes.push(required('provisioner'));
      const mode = o.volumeBindingMode;
      if (mode !== undefined && mode !== 'Immediate' && mode !== 'WaitForFirstConsumer') causes.push(unsupported('volumeBindingMode', mode, ['Immediate', 'WaitForFirstConsumer']));
      break;
    }
    case '/pods': {
      const containers = spec?.containers;
      if (!Array.isArray(containers) || containers.length === 0) causes.push(required('spec.containers'));
      else {
        for (const [i, c] of containers.entries()) {
          if (!isJsonObject(c) || typeof c.name !== 'string' || !c.name) causes.push(required(`spec.containers[${i}].name`));
          if (!isJsonObject(c) || typeof c.image !== 'string' || !c.image) causes.push(required(`spec.containers[${i}].image`));
        }
      }
      break;
    }
    case '/events': {
      if (!isJsonObject(o.involvedObject)) causes.push(required('involvedObject'));
      else {
        const ns = o.involvedObject.namespace;
        if (ns !== undefined && ns !== '' && ns !== o.metadata.namespace) causes.push(invalidValue('involvedObject.namespace', ns, 'does not match event.namespace'));
      }
      break;
    }
    case 'coordination.k8s.io/leases': {
      const d = spec?.leaseDurationSeconds;
      if (d !== undefined && (typeof d !== 'number' || d <= 0)) causes.push(invalidValue('spec.leaseDurationSeconds', d, 'must be greater than 0'));
      break;
    }
    case 'apiextensions.k8s.io/customresourcedefinitions':
      validateCrd(o, causes);
      break;
    case '/secrets':
    case '/configmaps': {
      for (const field of ['data', 'binaryData', 'stringData'] as const) {
        const d = o[field];
        if (d === undefined || d === null) continue;
        if (!isJsonObject(d)) causes.push(invalidValue(field, d, 'must be a map of strings'));
        else for (const [k, v] of Object.entries(d)) {
          if (!/^[-._a-zA-Z0-9]+$/.test(k)) causes.push(invalidValue(`${field}[${k}]`, k, "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"));
          if (typeof v !== 'string') causes.push(invalidValue(`${field}[${k}]`, v, 'must be a string'));
        }
      }
      break;
    }
    default:
      break;
  }
  return causes;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** Update rules of the built-in types: the fields Kubernetes makes immutable. */
export function validateUpdate(info: ResourceInfo, oldObj: KubeObject, newObj: KubeObject): StatusCause[] {
  const causes: StatusCause[] = [];
  switch (info.resKey) {
    case '/persistentvolumeclaims': {
      const a = { ...(obj(oldObj, 'spec') ?? {}) };
      const b = { ...(obj(newObj, 'spec') ?? {}) };
      // Allowed: binding (volumeName set once), a class set once, a larger storage request.
      if (!a.volumeName) a.volumeName = b.volumeName;
      if (a.storageClassName === undefined) a.storageClassName = b.storageClassName;
      delete a.resources;
      delete b.resources;
      delete a.volumeAttributesClassName;
      delete b.volumeAttributesClassName;
      if (!same(a, b)) {
        causes.push({ reason: 'FieldValueForbidden', field: 'spec', message: 'Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims' });
      }
      break;
    }
    case 'storage.k8s.io/storageclasses':
      for (const f of ['provisioner', 'parameters', 'reclaimPolicy', 'volumeBindingMode'] as const) {
        if (!same(oldObj[f], newObj[f])) causes.push({ reason: 'FieldValueForbidden', field: f, message: `Forbidden: updates to ${f} are forbidden.` });
      }
      break;
    case '/persistentvolumes': {
      const a = { ...(obj(oldObj, 'spec') ?? {}) };
      const b = { ...(obj(newObj, 'spec') ?? {}) };
      for (const k of pvCommonFields) {
        delete a[k];
        delete b[k];
      }
      if (!same(a, b)) causes.push({ reason: 'FieldValueForbidden', field: 'spec.persistentvolumesource', message: 'Forbidden: spec.persistentvolumesource is immutable after creation' });
      break;
    }
    default:
      break;
  }
  return causes;
}
