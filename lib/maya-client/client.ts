// A small typed m-apiserver client over axios, shared by the provisioners (and reusable by the
// snapshot-controller): volumes and snapshots of DESIGN.md §4.
// Errors are CstorErrors by HTTP status, never by text: 400/422 invalid, 404 not_found,
// 409 conflict (a state that forbids it, e.g. a snapshot of a volume that is not Healthy),
// 413 too_large, 504 timeout, other 5xx and no answer unavailable (retryable; the address is
// looked up again). The message is m-apiserver's {"error"} text, prefixed with what was asked.
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { CstorError, hasErrorCode, type ErrorCode } from '../errors.ts';
import type { MayaAddress } from './address.ts';
import type { CasSnapshot, CasVolume, CasVolumeRequest, SnapshotRef, VolumeScope } from './types.ts';

export interface MayaClientOptions {
  address: MayaAddress;
  /** Per request; volume create waits for Healthy (up to 120 s in the default template). */
  timeoutMs?: number;
}

type Method = 'GET' | 'POST' | 'DELETE';

export function codeForMayaStatus(status: number): ErrorCode {
  if (status === 400 || status === 422) return 'invalid';
  if (status === 404) return 'not_found';
  if (status === 409) return 'conflict';
  if (status === 413) return 'too_large';
  if (status === 401 || status === 403) return 'unauthorized';
  if (status === 504) return 'timeout';
  if (status >= 500 || status === 429) return 'unavailable';
  return 'protocol';
}

function errorText(data: unknown): string | undefined {
  if (data && typeof data === 'object' && typeof (data as { error?: unknown }).error === 'string') return (data as { error: string }).error;
  if (typeof data === 'string' && data.trim()) return data.trim().slice(0, 300);
  return undefined;
}

function scopeHeaders(scope: VolumeScope): Record<string, string> {
  const h: Record<string, string> = {};
  if (scope.namespace) h['namespace'] = scope.namespace;
  if (scope.storageClass) h['storageclass'] = scope.storageClass;
  return h;
}

export class MayaClient {
  private readonly http: AxiosInstance;

  constructor(private readonly options: MayaClientOptions) {
    this.http = axios.create({ timeout: options.timeoutMs ?? 180_000, validateStatus: () => true, proxy: false });
  }

  /** Creates (or clones, with cloneSpec) a volume; creating one that exists answers it. */
  createVolume(request: CasVolumeRequest): Promise<CasVolume> {
    return this.call<CasVolume>('POST', '/latest/volumes/', `create volume ${request.metadata.name}`, { body: request });
  }

  /** Throws `not_found` when it does not exist. */
  getVolume(name: string, scope: VolumeScope = {}): Promise<CasVolume> {
    return this.call<CasVolume>('GET', `/latest/volumes/${encodeURIComponent(name)}`, `read volume ${name}`, { headers: scopeHeaders(scope) });
  }

  async listVolumes(scope: VolumeScope = {}): Promise<CasVolume[]> {
    const res = await this.call<{ items?: CasVolume[] } | CasVolume[]>('GET', '/latest/volumes/', 'list volumes', { headers: scopeHeaders(scope) });
    return Array.isArray(res) ? res : (res.items ?? []);
  }

  /** Deletes a volume; one that is gone already is success. */
  async deleteVolume(name: string, scope: VolumeScope = {}): Promise<void> {
    try {
      await this.call<unknown>('DELETE', `/latest/volumes/${encodeURIComponent(name)}`, `delete volume ${name}`, { headers: scopeHeaders(scope) });
    } catch (err) {
      if (!hasErrorCode(err, 'not_found')) throw err;
    }
  }

  createSnapshot(ref: SnapshotRef): Promise<CasSnapshot> {
    const body: CasSnapshot = { metadata: { name: ref.snapshotName, namespace: ref.namespace ?? '' }, spec: { casType: 'cstor', volumeName: ref.volumeName } };
    return this.call<CasSnapshot>('POST', '/latest/snapshots/', `create snapshot ${ref.snapshotName} of volume ${ref.volumeName}`, { body });
  }

  getSnapshot(ref: SnapshotRef): Promise<CasSnapshot> {
    return this.call<CasSnapshot>('GET', `/latest/snapshots/${encodeURIComponent(ref.snapshotName)}`, `read snapshot ${ref.snapshotName} of volume ${ref.volumeName}`, {
      query: { volume: ref.volumeName, namespace: ref.namespace ?? '', casType: 'cstor' },
    });
  }

  async listSnapshots(volume: { volumeName: string; namespace?: string }): Promise<CasSnapshot[]> {
    const res = await this.call<{ items?: CasSnapshot[] } | CasSnapshot[]>('GET', '/latest/snapshots/', `list snapshots of volume ${volume.volumeName}`, {
      query: { volume: volume.volumeName, namespace: volume.namespace ?? '', casType: 'cstor' },
    });
    return Array.isArray(res) ? res : (res.items ?? []);
  }

  /** Deletes a snapshot; one that is gone already is success. */
  async deleteSnapshot(ref: SnapshotRef): Promise<void> {
    try {
      await this.call<unknown>('DELETE', `/latest/snapshots/${encodeURIComponent(ref.snapshotName)}`, `delete snapshot ${ref.snapshotName} of volume ${ref.volumeName}`, {
        query: { volume: ref.volumeName, namespace: ref.namespace ?? '', casType: 'cstor' },
      });
    } catch (err) {
      if (!hasErrorCode(err, 'not_found')) throw err;
    }
  }

  private async call<T>(method: Method, path: string, what: string, extra: { body?: unknown; query?: Record<string, string>; headers?: Record<string, string> }): Promise<T> {
    const base = await this.options.address.resolve();
    let res: AxiosResponse<unknown>;
    try {
      res = await this.http.request({ method, url: `${base}${path}`, params: extra.query, data: extra.body, headers: { Accept: 'application/json', ...(extra.headers ?? {}) } });
    } catch (err) {
      this.options.address.invalidate();
      const reason = err instanceof Error ? err.message : String(err);
      throw new CstorError('unavailable', `${what}: m-apiserver at ${base} unreachable: ${reason}`, { cause: err });
    }
    if (res.status >= 200 && res.status < 300) return res.data as T;
    const code = codeForMayaStatus(res.status);
    if (code === 'unavailable') this.options.address.invalidate();
    throw new CstorError(code, `${what}: m-apiserver ${res.status}: ${errorText(res.data) ?? 'no message'}`, { details: { httpStatus: res.status } });
  }
}
