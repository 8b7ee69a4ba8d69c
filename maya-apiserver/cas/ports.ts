// The CAS engine's injected interfaces: Kubernetes objects, HTTP to the mgmt APIs, and time.
// The engine knows nothing else about the outside world, so every flow runs over in-memory fakes
// in tests (./fakes.ts) and over lib/kube + axios in m-apiserver.

/** A JSON value: what templates, requests, outputs and unstructured objects are made of. */
export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

/** An unstructured Kubernetes object. */
export interface KubeObject extends JsonObject {
  apiVersion: string;
  kind: string;
  metadata: JsonObject;
}

/** Names one object. `namespace` is absent for cluster-scoped kinds. */
export interface ObjectRef {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
}

export interface ListQuery {
  apiVersion: string;
  kind: string;
  /** Absent: cluster-scoped kind, or all namespaces. */
  namespace?: string;
  /** A label selector in the Kubernetes string form (`a=b,c!=d,e,!f`). */
  labelSelector?: string;
}

/**
 * Typed access to unstructured objects. Implementations throw CstorError with code not_found
 * (get/patch/delete of a missing object), already_exists (create of a taken name), conflict,
 * invalid, unavailable...: the engine classifies by code only.
 */
export interface KubeObjects {
  get(ref: ObjectRef): Promise<KubeObject>;
  list(query: ListQuery): Promise<KubeObject[]>;
  create(object: KubeObject): Promise<KubeObject>;
  /** JSON merge patch (RFC 7386) of the object (not its status subresource). */
  patch(ref: ObjectRef, patch: JsonObject): Promise<KubeObject>;
  /** JSON merge patch of the status subresource. */
  patchStatus(ref: ObjectRef, patch: JsonObject): Promise<KubeObject>;
  delete(ref: ObjectRef): Promise<void>;
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface HttpResponse {
  status: number;
  /** The parsed JSON body, or the text when it is not JSON, or null when empty. */
  body: Json;
}

/**
 * HTTP to the target and pool mgmt APIs. Answers every status (4xx and 5xx included) as a
 * response; throws CstorError `unavailable` (or `timeout`) only when no answer came.
 */
export interface HttpCaller {
  request(method: HttpMethod, url: string, body?: Json): Promise<HttpResponse>;
}

/** Time, injectable so waits run instantly in tests. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms`, or early when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = setTimeout(done, Math.max(0, ms));
      function done(): void {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    }),
};

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function refOf(object: KubeObject): ObjectRef {
  const { name, namespace } = object.metadata;
  const ref: ObjectRef = { apiVersion: object.apiVersion, kind: object.kind, name: typeof name === 'string' ? name : '' };
  if (typeof namespace === 'string' && namespace !== '') ref.namespace = namespace;
  return ref;
}

/** `CStorVolume openebs/pvc-1`, for messages. */
export function describeRef(ref: ObjectRef): string {
  return `${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name}`;
}
