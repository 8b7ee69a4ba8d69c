// Queue and cache keys: "ns/name" for namespaced objects, "name" for cluster-scoped ones
// (client-go's MetaNamespaceKeyFunc).
import { CstorError } from '../errors.ts';
import type { KubeObject } from './types/meta.ts';

export function objectKey(obj: KubeObject): string {
  const name = obj.metadata?.name;
  if (!name) throw new CstorError('invalid', 'object has no metadata.name');
  const ns = obj.metadata?.namespace;
  return ns ? `${ns}/${name}` : name;
}

export interface KeyParts {
  namespace?: string;
  name: string;
}

export function splitKey(key: string): KeyParts {
  const parts = key.split('/');
  if (parts.length === 1 && parts[0]) return { name: parts[0] };
  if (parts.length === 2 && parts[0] && parts[1]) return { namespace: parts[0], name: parts[1] };
  throw new CstorError('invalid', `bad object key "${key}": want "namespace/name" or "name"`);
}
