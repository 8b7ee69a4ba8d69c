// A small typed client of m-apiserver's snapshot endpoints (DESIGN.md §4), over axios.
// - Errors are CstorErrors classified by HTTP status, never by message text: 400 invalid,
//   404 not_found, 409 not_ready (a snapshot of a volume that is not Healthy), 5xx and network
//   failures unavailable (retryable). The message carries m-apiserver's `{"error": "..."}` text.
// - The address comes from MAPI_ADDR (fixed) or from the Service `maya-apiserver-service` in
//   the OpenEBS namespace (port 5656); it is looked up again after any failure to reach it
//   (DESIGN.md §8), not once at start.
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { CstorError, hasErrorCode } from '../lib/errors.ts';
import type { KubeObject, ObjectMeta } from '../lib/kube/types/meta.ts';

export interface CasSnapshot {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { casType?: string; volumeName: string };
}

/** One backend snapshot: its id, the volume (PV name) and the namespace it was created in. */
export interface SnapshotRef {
  snapshotId: string;
  volumeName: string;
  namespace: string;
}

export interface MayaClient {
  /** Creates the snapshot; creating one that exists returns it (idempotent by id). */
  createSnapshot(ref: SnapshotRef): Promise<CasSnapshot>;
  /** Throws a `not_found` CstorError when it does not exist. */
  getSnapshot(ref: SnapshotRef): Promise<CasSnapshot>;
  listSnapshots(volume: { volumeName: string; namespace: string }): Promise<CasSnapshot[]>;
  /** Deletes the snapshot; deleting one that is gone succeeds. */
  deleteSnapshot(ref: SnapshotRef): Promise<void>;
}

export const mayaServiceName = 'maya-apiserver-service';
export const mayaPort = 5656;

interface ServiceLike extends KubeObject {
  metadata: ObjectMeta;
  spec?: { clusterIP?: string; ports?: { name?: string; port: number }[] };
}

export interface AddressResolverOptions {
  /** MAPI_ADDR or --mapi-addr: "http://host:port", "host:port" or "host". */
  mapiAddr?: string;
  namespace: string;
  /** Reads a Service (the kube client's get); used when mapiAddr is not set. */
  getService: (ref: { name: string; namespace: string }) => Promise<ServiceLike>;
}

/** Normalizes an address to a base URL: "host" → http://host:5656, "host:port" → http://host:port. */
export function baseUrlOf(addr: string): string {
  const trimmed = addr.trim().replace(/\/+$/, '');
  if (!trimmed) throw new CstorError('invalid', 'the m-apiserver address is empty');
  if (/^https?:\/\//.test(trimmed)) return trimmed;
  if (/^\[[^\]]+\]$/.test(trimmed) || /^[^:]+$/.test(trimmed)) return `http://${trimmed}:${mayaPort}`;
  return `http://${trimmed}`;
}

/** Finds m-apiserver's base URL, caching it until invalidate() (called after a failure). */
export class MayaAddressResolver {
  private cached: string | undefined;

  constructor(private readonly options: AddressResolverOptions) {}

  async resolve(): Promise<string> {
    if (this.cached) return this.cached;
    if (this.options.mapiAddr) {
      this.cached = baseUrlOf(this.options.mapiAddr);
      return this.cached;
    }
    const ref = { name: mayaServiceName, namespace: this.options.namespace };
    let svc: ServiceLike;
    try {
      svc = await this.options.getService(ref);
    } catch (err) {
      const what = hasErrorCode(err, 'not_found') ? `no Service ${ref.namespace}/${ref.name}` : `cannot read the Service ${ref.namespace}/${ref.name}`;
      throw new CstorError('unavailable', `m-apiserver address unknown (MAPI_ADDR not set): ${what}`, { cause: err });
    }
    const ip = svc.spec?.clusterIP;
    if (!ip || ip === 'None') throw new CstorError('unavailable', `Service ${ref.namespace}/${ref.name} has no cluster IP`);
    const ports = svc.spec?.ports ?? [];
    const port = ports.find((p) => p.port === mayaPort)?.port ?? ports.find((p) => p.name === 'api')?.port ?? ports[0]?.port ?? mayaPort;
    this.cached = `http://${ip.includes(':') ? `[${ip}]` : ip}:${port}`;
    return this.cached;
  }

  invalidate(): void {
    this.cached = undefined;
  }
}

export interface AxiosMayaClientOptions {
  resolver: Pick<MayaAddressResolver, 'resolve' | 'invalidate'>;
  timeoutMs?: number;
}

type Method = 'GET' | 'POST' | 'DELETE';

export class AxiosMayaClient implements MayaClient {
  private readonly http: AxiosInstance;

  constructor(private readonly options: AxiosMayaClientOptions) {
    this.http = axios.create({ timeout: options.timeoutMs ?? 30_000, validateStatus: () => true, proxy: false });
  }

  async createSnapshot(ref: SnapshotRef): Promise<CasSnapshot> {
    const body: CasSnapshot = { metadata: { name: ref.snapshotId, namespace: ref.namespace }, spec: { casType: 'cstor', volumeName: ref.volumeName } };
    const res = await this.call<CasSnapshot>('POST', '/latest/snapshots/', `create snapshot ${ref.snapshotId} of volume ${ref.volumeName}`, { body });
    return res;
  }

  getSnapshot(ref: SnapshotRef): Promise<CasSnapshot> {
    return this.call<CasSnapshot>('GET', `/latest/snapshots/${encodeURIComponent(ref.snapshotId)}`, `get snapshot ${ref.snapshotId} of volume ${ref.volumeName}`, {
      query: query(ref),
    });
  }

  async listSnapshots(volume: { volumeName: string; namespace: string }): Promise<CasSnapshot[]> {
    const res = await this.call<CasSnapshot[] | { items?: CasSnapshot[] }>('GET', '/latest/snapshots/', `list snapshots of volume ${volume.volumeName}`, {
      query: { volume: volume.volumeName, namespace: volume.namespace, casType: 'cstor' },
    });
    if (Array.isArray(res)) return res;
    if (res && Array.isArray(res.items)) return res.items;
    throw new CstorError('protocol', `list snapshots of volume ${volume.volumeName}: m-apiserver answered neither a list nor {items}`);
  }

  async deleteSnapshot(ref: SnapshotRef): Promise<void> {
    try {
      await this.call<unknown>('DELETE', `/latest/snapshots/${encodeURIComponent(ref.snapshotId)}`, `delete snapshot ${ref.snapshotId} of volume ${ref.volumeName}`, {
        query: query(ref),
      });
    } catch (err) {
      if (hasErrorCode(err, 'not_found')) return; // already gone
      throw err;
    }
  }

  private async call<T>(method: Method, path: string, what: string, extra: { body?: unknown; query?: Record<string, string> }): Promise<T> {
    const base = await this.options.resolver.resolve();
    let res: AxiosResponse<unknown>;
    try {
      res = await this.http.request({ method, url: `${base}${path}`, params: extra.query, data: extra.body, headers: { Accept: 'application/json' } });
    } catch (err) {
      this.options.resolver.invalidate();
      const reason = err instanceof Error ? err.message : String(err);
      throw new CstorError('unavailable', `${what}: m-apiserver at ${base} unreachable: ${reason}`, { cause: err });
    }
    if (res.status >= 200 && res.status < 300) return res.data as T;
    const text = errorText(res.data) ?? `HTTP ${res.status}`;
    const message = `${what}: m-apiserver ${res.status}: ${text}`;
    if (res.status >= 500 || res.status === 429) {
      this.options.resolver.invalidate();
      throw new CstorError('unavailable', message, { details: { httpStatus: res.status } });
    }
    throw new CstorError(codeForMayaStatus(res.status), message, { details: { httpStatus: res.status } });
  }
}

function query(ref: SnapshotRef): Record<string, string> {
  return { volume: ref.volumeName, namespace: ref.namespace, casType: 'cstor' };
}

function codeForMayaStatus(status: number): CstorError['code'] {
  if (status === 400 || status === 422) return 'invalid';
  if (status === 404) return 'not_found';
  if (status === 409) return 'not_ready';
  if (status === 401 || status === 403) return 'unauthorized';
  return 'protocol';
}

function errorText(data: unknown): string | undefined {
  if (data && typeof data === 'object' && typeof (data as { error?: unknown }).error === 'string') return (data as { error: string }).error;
  if (typeof data === 'string' && data.trim()) return data.trim().slice(0, 300);
  return undefined;
}
