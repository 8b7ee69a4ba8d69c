// Where m-apiserver is (DESIGN.md §4, §8): MAPI_ADDR / --mapi-addr when given, else the Service
// `maya-apiserver-service` in the OpenEBS namespace (port 5656). The answer is cached until a
// call fails to reach it; then it is looked up again (never resolved once at start only).
import { CstorError, hasErrorCode } from '../errors.ts';
import type { KubeObject, ObjectMeta } from '../kube/types/meta.ts';

export const mayaServiceName = 'maya-apiserver-service';
export const mayaPort = 5656;

export interface ServiceLike extends KubeObject {
  metadata: ObjectMeta;
  spec?: { clusterIP?: string; ports?: { name?: string; port: number }[] };
}

export interface MayaAddressOptions {
  /** "http://host:port", "host:port" or "host" (port 5656). */
  mapiAddr?: string;
  namespace: string;
  getService: (ref: { name: string; namespace: string }) => Promise<ServiceLike>;
}

/** "host" → http://host:5656, "host:port" → http://host:port, a URL as is (no trailing slash). */
export function mayaBaseUrl(addr: string): string {
  const trimmed = addr.trim().replace(/\/+$/, '');
  if (!trimmed) throw new CstorError('invalid', 'the m-apiserver address is empty');
  if (/^https?:\/\//.test(trimmed)) return trimmed;
  if (/^\[[^\]]+\]$/.test(trimmed) || /^[^:]+$/.test(trimmed)) return `http://${trimmed}:${mayaPort}`;
  return `http://${trimmed}`;
}

export interface MayaAddress {
  resolve(): Promise<string>;
  /** Forget the cached address (called after a failure to reach it). */
  invalidate(): void;
}

export class MayaAddressResolver implements MayaAddress {
  private cached: string | undefined;

  constructor(private readonly options: MayaAddressOptions) {}

  async resolve(): Promise<string> {
    if (this.cached) return this.cached;
    if (this.options.mapiAddr) {
      this.cached = mayaBaseUrl(this.options.mapiAddr);
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
