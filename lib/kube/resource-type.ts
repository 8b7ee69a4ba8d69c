// Which resource a client talks to, and its REST paths.
import { CstorError } from '../errors.ts';

export interface ResourceType {
  /** '' for the core group. */
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

export function apiVersionOf(r: ResourceType): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}

/** The collection path (namespace undefined: across all namespaces, or a cluster-scoped resource). */
export function collectionPath(r: ResourceType, namespace?: string): string {
  const root = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
  if (!r.namespaced) {
    if (namespace) throw new CstorError('invalid', `${r.plural} is cluster-scoped: no namespace expected (got "${namespace}")`);
    return `${root}/${r.plural}`;
  }
  return namespace ? `${root}/namespaces/${encodeURIComponent(namespace)}/${r.plural}` : `${root}/${r.plural}`;
}

/** The path of one object (and optionally a subresource such as "status"). */
export function objectPath(r: ResourceType, ref: { name: string; namespace?: string }, subresource?: string): string {
  if (!ref.name) throw new CstorError('invalid', `${r.plural}: an object name is required`);
  if (r.namespaced && !ref.namespace) throw new CstorError('invalid', `${r.plural} is namespaced: a namespace is required for "${ref.name}"`);
  const base = `${collectionPath(r, r.namespaced ? ref.namespace : undefined)}/${encodeURIComponent(ref.name)}`;
  return subresource ? `${base}/${subresource}` : base;
}
