// The three patch formats Kubernetes accepts:
// - application/merge-patch+json (RFC 7386): maps merge, null deletes, everything else replaces;
// - application/json-patch+json (RFC 6902): add/remove/replace/move/copy/test on JSON pointers;
// - application/strategic-merge-patch+json: a merge patch where some lists merge by a key
//   (containers by name, conditions by type, ...), primitive lists marked "merge" (finalizers)
//   are unioned, with the directives $patch (replace/delete/merge), $retainKeys,
//   $deleteFromPrimitiveList/<field> and $setElementOrder/<field>.
import { isJsonObject, type JsonObject } from '../store/types.ts';
import { badRequest } from './status.ts';

export function deepClone<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isJsonObject(patch)) return deepClone(patch);
  const out: JsonObject = isJsonObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

// ---- JSON patch -------------------------------------------------------------------------------

function parsePointer(p: unknown): string[] {
  if (typeof p !== 'string' || (p !== '' && !p.startsWith('/'))) throw badRequest(`json patch: invalid path ${JSON.stringify(p)}`);
  return p === '' ? [] : p.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

type Container = JsonObject | unknown[];

function resolveParent(doc: unknown, path: string[], op: string): { parent: Container; key: string } {
  let cur: unknown = doc;
  for (const seg of path.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(seg)];
    else if (isJsonObject(cur)) cur = cur[seg];
    else cur = undefined;
    if (cur === undefined) throw badRequest(`json patch ${op}: path /${path.join('/')} does not exist`);
  }
  if (!Array.isArray(cur) && !isJsonObject(cur)) throw badRequest(`json patch ${op}: path /${path.join('/')} does not exist`);
  return { parent: cur, key: path[path.length - 1]! };
}

function arrayIndex(arr: unknown[], key: string, forAdd: boolean, op: string): number {
  if (forAdd && key === '-') return arr.length;
  const i = Number(key);
  if (!/^\d+$/.test(key) || i > arr.length || (!forAdd && i >= arr.length)) throw badRequest(`json patch ${op}: array index ${key} out of range`);
  return i;
}

function getAt(doc: unknown, path: string[], op: string): unknown {
  if (path.length === 0) return doc;
  const { parent, key } = resolveParent(doc, path, op);
  const v = Array.isArray(parent) ? parent[arrayIndex(parent, key, false, op)] : parent[key];
  if (v === undefined) throw badRequest(`json patch ${op}: path /${path.join('/')} does not exist`);
  return v;
}

function removeAt(doc: unknown, path: string[], op: string): unknown {
  const { parent, key } = resolveParent(doc, path, op);
  if (Array.isArray(parent)) return parent.splice(arrayIndex(parent, key, false, op), 1)[0];
  if (!(key in parent)) throw badRequest(`json patch ${op}: path /${path.join('/')} does not exist`);
  const v = parent[key];
  delete parent[key];
  return v;
}

function addAt(doc: unknown, path: string[], value: unknown, op: string, replace: boolean): unknown {
  if (path.length === 0) return value;
  const { parent, key } = resolveParent(doc, path, op);
  if (Array.isArray(parent)) {
    const i = arrayIndex(parent, key, !replace, op);
    if (replace) parent[i] = value;
    else parent.splice(i, 0, value);
  } else {
    if (replace && !(key in parent)) throw badRequest(`json patch replace: path /${path.join('/')} does not exist`);
    parent[key] = value;
  }
  return doc;
}

export function jsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw badRequest('json patch: the body must be a JSON array of operations');
  let doc = deepClone(target);
  for (const raw of ops) {
    if (!isJsonObject(raw)) throw badRequest('json patch: each operation must be an object');
    const op = String(raw.op);
    const path = parsePointer(raw.path);
    switch (op) {
      case 'add':
        doc = addAt(doc, path, deepClone(raw.value), op, false);
        break;
      case 'replace':
        doc = addAt(doc, path, deepClone(raw.value), op, true);
        break;
      case 'remove':
        removeAt(doc, path, op);
        break;
      case 'move': {
        const v = removeAt(doc, parsePointer(raw.from), op);
        doc = addAt(doc, path, v, op, false);
        break;
      }
      case 'copy':
        doc = addAt(doc, path, deepClone(getAt(doc, parsePointer(raw.from), op)), op, false);
        break;
      case 'test':
        if (JSON.stringify(getAt(doc, path, op)) !== JSON.stringify(raw.value)) throw badRequest(`json patch test failed at ${String(raw.path)}`);
        break;
      default:
        throw badRequest(`json patch: unknown operation ${JSON.stringify(raw.op)}`);
    }
  }
  return doc;
}

// ---- strategic merge --------------------------------------------------------------------------

/** List fields that merge by a key: matched on the field path suffix (most specific first). */
const mergeKeys: [RegExp, string][] = [
  [/(^|\.)spec\.ports$/, 'port'],
  [/(^|\.)(containers|initContainers|ephemeralContainers)\.ports$/, 'containerPort'],
  [/(^|\.)(containers|initContainers|ephemeralContainers|volumes|imagePullSecrets|env)$/, 'name'],
  [/(^|\.)volumeMounts$/, 'mountPath'],
  [/(^|\.)volumeDevices$/, 'devicePath'],
  [/(^|\.)conditions$/, 'type'],
  [/(^|\.)status\.addresses$/, 'type'],
  [/(^|\.)hostAliases$/, 'ip'],
  [/(^|\.)metadata\.ownerReferences$/, 'uid'],
  [/(^|\.)topologySpreadConstraints$/, 'topologyKey'],
];

/** Primitive lists with patchStrategy merge (unioned). */
const mergedPrimitiveLists = [/(^|\.)metadata\.finalizers$/, /(^|\.)spec\.finalizers$/];

function mergeKeyFor(path: string): string | undefined {
  for (const [re, key] of mergeKeys) if (re.test(path)) return key;
  return undefined;
}

function strategicList(path: string, target: unknown, patch: unknown[], deleteValues: unknown[]): unknown[] {
  const key = mergeKeyFor(path);
  const cur = Array.isArray(target) ? target : [];
  if (key) {
    const out = cur.map((x) => deepClone(x));
    for (const item of patch) {
      if (!isJsonObject(item)) continue;
      const idx = out.findIndex((x) => isJsonObject(x) && x[key] === item[key]);
      if (item.$patch === 'delete') {
        if (idx >= 0) out.splice(idx, 1);
        continue;
      }
      if (item.$patch === 'replace') {
        const { $patch: _p, ...rest } = item;
        if (idx >= 0) out[idx] = rest;
        else out.push(rest);
        continue;
      }
      if (idx >= 0) out[idx] = strategicMerge(out[idx], item, path);
      else out.push(strategicMerge({}, item, path));
    }
    return out;
  }
  if (mergedPrimitiveLists.some((re) => re.test(path))) {
    const out = cur.filter((x) => !deleteValues.some((d) => JSON.stringify(d) === JSON.stringify(x)));
    for (const v of patch) if (!out.some((x) => JSON.stringify(x) === JSON.stringify(v))) out.push(v);
    return out;
  }
  return deepClone(patch);
}

export function strategicMerge(target: unknown, patch: unknown, path = ''): unknown {
  if (!isJsonObject(patch)) return deepClone(patch);
  if (patch.$patch === 'replace') {
    const { $patch: _p, ...rest } = patch;
    return deepClone(rest);
  }
  if (patch.$patch === 'delete') return undefined;
  let out: JsonObject = isJsonObject(target) ? { ...target } : {};
  const retain = Array.isArray(patch.$retainKeys) ? patch.$retainKeys.map(String) : undefined;
  if (retain) out = Object.fromEntries(Object.entries(out).filter(([k]) => retain.includes(k) || k in patch));
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys' || k.startsWith('$setElementOrder/')) continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      if (!(field in patch) && Array.isArray(out[field]) && Array.isArray(v)) {
        out[field] = (out[field] as unknown[]).filter((x) => !v.some((d) => JSON.stringify(d) === JSON.stringify(x)));
      }
      continue;
    }
    const childPath = path ? `${path}.${k}` : k;
    if (v === null) {
      delete out[k];
    } else if (Array.isArray(v)) {
      const del = patch[`$deleteFromPrimitiveList/${k}`];
      out[k] = strategicList(childPath, out[k], v, Array.isArray(del) ? del : []);
    } else if (isJsonObject(v)) {
      const merged = strategicMerge(out[k], v, childPath);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    } else {
      out[k] = v;
    }
  }
  return out;
}

export const patchTypes = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
} as const;

export type PatchType = keyof typeof patchTypes;

export function patchTypeOf(contentType: string | undefined): PatchType | undefined {
  const ct = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  for (const [k, v] of Object.entries(patchTypes)) if (v === ct) return k as PatchType;
  return undefined;
}
