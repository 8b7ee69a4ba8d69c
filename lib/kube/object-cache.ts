// The informer's cache: objects by "ns/name" key, with optional indexes (an index function
// maps an object to the values it is found under, e.g. a label value or a spec field).
// JavaScript runs one callback at a time, so reads always see a consistent map; readers get
// the stored objects themselves and must not mutate them (clone before changing).
import { CstorError } from '../errors.ts';
import { objectKey } from './keys.ts';
import type { KubeObject } from './types/meta.ts';

export type IndexFunc<T> = (obj: T) => readonly string[];

export class ObjectCache<T extends KubeObject> {
  private readonly objects = new Map<string, T>();
  /** index name → value → keys */
  private readonly indexes = new Map<string, Map<string, Set<string>>>();

  constructor(private readonly indexers: Readonly<Record<string, IndexFunc<T>>> = {}) {
    for (const name of Object.keys(indexers)) this.indexes.set(name, new Map());
  }

  get(key: string): T | undefined {
    return this.objects.get(key);
  }

  /** Same as get(namespace ? "ns/name" : "name"). */
  getByName(name: string, namespace?: string): T | undefined {
    return this.objects.get(namespace ? `${namespace}/${name}` : name);
  }

  has(key: string): boolean {
    return this.objects.has(key);
  }

  list(): T[] {
    return [...this.objects.values()];
  }

  keys(): string[] {
    return [...this.objects.keys()];
  }

  get size(): number {
    return this.objects.size;
  }

  /** Objects whose index function `indexName` yields `value`. */
  byIndex(indexName: string, value: string): T[] {
    const index = this.indexes.get(indexName);
    if (!index) throw new CstorError('invalid', `no index named "${indexName}"`);
    const keys = index.get(value);
    if (!keys) return [];
    const out: T[] = [];
    for (const k of keys) {
      const obj = this.objects.get(k);
      if (obj) out.push(obj);
    }
    return out;
  }

  /** Stores `obj`, returning the previous object under its key. */
  upsert(obj: T): T | undefined {
    const key = objectKey(obj);
    const old = this.objects.get(key);
    if (old) this.unindex(key, old);
    this.objects.set(key, obj);
    this.index(key, obj);
    return old;
  }

  /** Removes the object under `key`, returning it. */
  remove(key: string): T | undefined {
    const old = this.objects.get(key);
    if (!old) return undefined;
    this.unindex(key, old);
    this.objects.delete(key);
    return old;
  }

  private index(key: string, obj: T): void {
    for (const [name, fn] of Object.entries(this.indexers)) {
      const index = this.indexes.get(name)!;
      for (const value of fn(obj)) {
        let keys = index.get(value);
        if (!keys) index.set(value, (keys = new Set()));
        keys.add(key);
      }
    }
  }

  private unindex(key: string, obj: T): void {
    for (const [name, fn] of Object.entries(this.indexers)) {
      const index = this.indexes.get(name)!;
      for (const value of fn(obj)) {
        const keys = index.get(value);
        if (!keys) continue;
        keys.delete(key);
        if (keys.size === 0) index.delete(value);
      }
    }
  }
}
