// The object shapes kube-lite stores: plain JSON objects with Kubernetes ObjectMeta.
import type { ObjectMeta as LibObjectMeta } from '../../lib/kube/types/meta.ts';

export type { OwnerReference } from '../../lib/kube/types/meta.ts';

/** lib/kube's ObjectMeta, open to any field: kube-lite stores what clients send. */
export interface ObjectMeta extends LibObjectMeta {
  [field: string]: unknown;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** One committed change. `resKey` is "group/resource" ("" group for core). */
export interface ChangeEvent {
  type: WatchEventType;
  rv: number;
  resKey: string;
  obj: KubeObject;
  /** The object before a MODIFIED or DELETED change (absent on ADDED). */
  prev?: KubeObject;
}

/** A JSON object (what a request body or a stored field holds). */
export type JsonObject = Record<string, unknown>;

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** "ns/name" ("/name" for cluster-scoped objects). */
export function objectKey(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}
