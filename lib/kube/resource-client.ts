// A typed client for one resource (group, version, plural, namespaced): list/get/create/replace,
// merge and JSON patches, the status subresource, delete, and watch. Errors are CstorErrors
// with the API's Status reason and message (api-errors.ts). It is also the informer's
// ListWatchSource.
import { CstorError } from '../errors.ts';
import type { ListOptions, ListWatchSource, WatchHandle, WatchOptions } from './list-watch.ts';
import { apiVersionOf, collectionPath, objectPath, type ResourceType } from './resource-type.ts';
import type { KubeTransport } from './transport.ts';
import { watchEventTypes, type KubeList, type KubeObject, type WatchEvent } from './types/meta.ts';

export interface ObjectRef {
  name: string;
  /** Required for namespaced resources, absent for cluster-scoped ones. */
  namespace?: string;
}

export interface JsonPatchOperation {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  value?: unknown;
  from?: string;
}

export interface WriteOptions {
  /** Write the status subresource instead of the main endpoint. */
  subresource?: 'status';
  fieldManager?: string;
}

export interface DeleteOptions {
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
}

const patchContentTypes = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
} as const;

export class ResourceClient<T extends KubeObject> implements ListWatchSource<T> {
  constructor(
    private readonly transport: KubeTransport,
    readonly resource: ResourceType,
  ) {}

  async list(options: ListOptions = {}): Promise<KubeList<T>> {
    const list = await this.transport.request<KubeList<T>>({
      method: 'GET',
      path: collectionPath(this.resource, options.namespace),
      query: {
        labelSelector: options.labelSelector,
        fieldSelector: options.fieldSelector,
        limit: options.limit,
        continue: options.continue,
        resourceVersion: options.resourceVersion,
      },
      what: `list ${this.describe(options.namespace)}`,
    });
    if (!list || !Array.isArray(list.items)) throw new CstorError('protocol', `list ${this.resource.plural}: the answer has no items array`);
    // Items in a list carry no apiVersion/kind on the wire; fill them so cached objects are complete.
    for (const item of list.items) {
      item.apiVersion ??= apiVersionOf(this.resource);
      item.kind ??= this.resource.kind;
    }
    return list;
  }

  get(ref: ObjectRef): Promise<T> {
    return this.transport.request<T>({ method: 'GET', path: objectPath(this.resource, ref), what: `get ${this.describe(ref.namespace, ref.name)}` });
  }

  /** Creates `obj` (namespace from its metadata); apiVersion and kind are filled in when missing. */
  create(obj: T, options: Pick<WriteOptions, 'fieldManager'> = {}): Promise<T> {
    const ns = this.resource.namespaced ? obj.metadata?.namespace : undefined;
    if (this.resource.namespaced && !ns) throw new CstorError('invalid', `create ${this.resource.plural}: metadata.namespace is required`);
    const body = { ...obj, apiVersion: obj.apiVersion ?? apiVersionOf(this.resource), kind: obj.kind ?? this.resource.kind };
    return this.transport.request<T>({
      method: 'POST',
      path: collectionPath(this.resource, ns),
      query: { fieldManager: options.fieldManager },
      body,
      what: `create ${this.describe(ns, obj.metadata?.name ?? obj.metadata?.generateName)}`,
    });
  }

  /** PUT: replaces the object (409 conflict when metadata.resourceVersion is stale). */
  replace(obj: T, options: WriteOptions = {}): Promise<T> {
    const ref = refOf(obj);
    return this.transport.request<T>({
      method: 'PUT',
      path: objectPath(this.resource, ref, options.subresource),
      query: { fieldManager: options.fieldManager },
      body: { ...obj, apiVersion: obj.apiVersion ?? apiVersionOf(this.resource), kind: obj.kind ?? this.resource.kind },
      what: `replace ${this.describe(ref.namespace, ref.name, options.subresource)}`,
    });
  }

  /** A JSON merge patch (RFC 7386): null deletes a field. */
  mergePatch(ref: ObjectRef, patch: object, options: WriteOptions = {}): Promise<T> {
    return this.patch(ref, 'merge', patch, options);
  }

  /** A JSON patch (RFC 6902); add a `test` op on /metadata/resourceVersion for optimistic concurrency. */
  jsonPatch(ref: ObjectRef, ops: readonly JsonPatchOperation[], options: WriteOptions = {}): Promise<T> {
    return this.patch(ref, 'json', ops, options);
  }

  /** A strategic merge patch (core types only). */
  strategicPatch(ref: ObjectRef, patch: object, options: WriteOptions = {}): Promise<T> {
    return this.patch(ref, 'strategic', patch, options);
  }

  /** Merge-patches the status subresource. */
  patchStatus(ref: ObjectRef, status: object): Promise<T> {
    return this.patch(ref, 'merge', { status }, { subresource: 'status' });
  }

  async delete(ref: ObjectRef, options: DeleteOptions = {}): Promise<void> {
    const hasBody = options.propagationPolicy !== undefined || options.gracePeriodSeconds !== undefined || options.preconditions !== undefined;
    await this.transport.request<unknown>({
      method: 'DELETE',
      path: objectPath(this.resource, ref),
      body: hasBody ? { apiVersion: 'v1', kind: 'DeleteOptions', ...options } : undefined,
      what: `delete ${this.describe(ref.namespace, ref.name)}`,
    });
  }

  async watch(options: WatchOptions, onEvent: (event: WatchEvent<T>) => void): Promise<WatchHandle> {
    const timeoutSeconds = options.timeoutSeconds;
    const what = `watch ${this.describe(options.namespace)}`;
    return this.transport.stream(
      {
        method: 'GET',
        path: collectionPath(this.resource, options.namespace),
        query: {
          watch: 'true',
          resourceVersion: options.resourceVersion,
          labelSelector: options.labelSelector,
          fieldSelector: options.fieldSelector,
          allowWatchBookmarks: options.allowWatchBookmarks,
          timeoutSeconds,
        },
        what,
        // A silent connection (half-open, or a server that died without a FIN) fails after this.
        timeoutMs: ((timeoutSeconds ?? 600) + 60) * 1000,
      },
      (line) => onEvent(parseWatchEvent<T>(line, what)),
    );
  }

  private patch(ref: ObjectRef, type: keyof typeof patchContentTypes, body: unknown, options: WriteOptions): Promise<T> {
    return this.transport.request<T>({
      method: 'PATCH',
      path: objectPath(this.resource, ref, options.subresource),
      query: { fieldManager: options.fieldManager },
      body,
      contentType: patchContentTypes[type],
      what: `${type}-patch ${this.describe(ref.namespace, ref.name, options.subresource)}`,
    });
  }

  private describe(namespace?: string, name?: string, subresource?: string): string {
    const who = [namespace, name].filter(Boolean).join('/');
    return `${this.resource.plural}${who ? ` ${who}` : ''}${subresource ? ` (${subresource})` : ''}`;
  }
}

function refOf(obj: KubeObject): ObjectRef {
  const name = obj.metadata?.name;
  if (!name) throw new CstorError('invalid', 'metadata.name is required');
  return obj.metadata?.namespace ? { name, namespace: obj.metadata.namespace } : { name };
}

const eventTypes: ReadonlySet<string> = new Set(watchEventTypes);

/** Parses one line of a watch stream; throws a `protocol` CstorError on anything malformed. */
export function parseWatchEvent<T extends KubeObject>(line: string, what: string): WatchEvent<T> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (err) {
    throw new CstorError('protocol', `${what}: bad JSON in the watch stream`, { cause: err });
  }
  const ev = parsed as { type?: unknown; object?: unknown };
  if (!ev || typeof ev.type !== 'string' || !eventTypes.has(ev.type) || !ev.object || typeof ev.object !== 'object') {
    throw new CstorError('protocol', `${what}: not a watch event: ${line.slice(0, 200)}`);
  }
  return ev as WatchEvent<T>;
}
