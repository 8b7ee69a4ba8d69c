// KubeObjects over lib/kube: resolves apiVersion + kind to a resource (plural, scope) by API
// discovery (cached per group/version; looked up again when a kind is missing, so a CRD
// established later is found), then uses ResourceClient. Errors are lib/kube's CstorErrors.
import { CstorError } from '../../lib/errors.ts';
import { ResourceClient } from '../../lib/kube/resource-client.ts';
import type { ResourceType } from '../../lib/kube/resource-type.ts';
import type { KubeTransport } from '../../lib/kube/transport.ts';
import type { KubeObject as LibKubeObject } from '../../lib/kube/types/meta.ts';
import type { JsonObject, KubeObject, KubeObjects, ListQuery, ObjectRef } from './ports.ts';

interface ApiResourceList {
  resources?: Array<{ name: string; kind: string; namespaced: boolean }>;
}

type Client = ResourceClient<LibKubeObject>;

export class TransportKubeObjects implements KubeObjects {
  private readonly discovered = new Map<string, Map<string, ResourceType>>();
  private readonly clients = new Map<string, Client>();

  constructor(private readonly transport: KubeTransport) {}

  private async discover(apiVersion: string): Promise<Map<string, ResourceType>> {
    const [group, version] = apiVersion.includes('/') ? (apiVersion.split('/', 2) as [string, string]) : ['', apiVersion];
    const path = group ? `/apis/${group}/${version}` : `/api/${version}`;
    const list = await this.transport.request<ApiResourceList>({ method: 'GET', path, what: `discover ${apiVersion}` });
    const kinds = new Map<string, ResourceType>();
    for (const r of list.resources ?? []) {
      if (!r.name.includes('/')) kinds.set(r.kind, { group, version, plural: r.name, kind: r.kind, namespaced: r.namespaced });
    }
    this.discovered.set(apiVersion, kinds);
    return kinds;
  }

  private async client(apiVersion: string, kind: string): Promise<Client> {
    const key = `${apiVersion}|${kind}`;
    const cached = this.clients.get(key);
    if (cached) return cached;
    let resource = this.discovered.get(apiVersion)?.get(kind);
    if (!resource) {
      try {
        resource = (await this.discover(apiVersion)).get(kind);
      } catch (err) {
        if (!(err instanceof CstorError && err.code === 'not_found')) throw err;
      }
    }
    if (!resource) throw new CstorError('not_found', `the API server serves no ${kind} in ${apiVersion} (is its CRD applied?)`);
    const client = new ResourceClient<LibKubeObject>(this.transport, resource);
    this.clients.set(key, client);
    return client;
  }

  private static ref(ref: ObjectRef): { name: string; namespace?: string } {
    return ref.namespace ? { name: ref.name, namespace: ref.namespace } : { name: ref.name };
  }

  async get(ref: ObjectRef): Promise<KubeObject> {
    const c = await this.client(ref.apiVersion, ref.kind);
    return (await c.get(TransportKubeObjects.ref(ref))) as unknown as KubeObject;
  }

  async list(query: ListQuery): Promise<KubeObject[]> {
    const c = await this.client(query.apiVersion, query.kind);
    const options: { namespace?: string; labelSelector?: string } = {};
    if (query.namespace && c.resource.namespaced) options.namespace = query.namespace;
    if (query.labelSelector) options.labelSelector = query.labelSelector;
    const list = await c.list(options);
    return list.items as unknown as KubeObject[];
  }

  async create(object: KubeObject): Promise<KubeObject> {
    const c = await this.client(object.apiVersion, object.kind);
    return (await c.create(object as unknown as LibKubeObject)) as unknown as KubeObject;
  }

  async patch(ref: ObjectRef, patch: JsonObject): Promise<KubeObject> {
    const c = await this.client(ref.apiVersion, ref.kind);
    return (await c.mergePatch(TransportKubeObjects.ref(ref), patch)) as unknown as KubeObject;
  }

  async patchStatus(ref: ObjectRef, patch: JsonObject): Promise<KubeObject> {
    const c = await this.client(ref.apiVersion, ref.kind);
    return (await c.mergePatch(TransportKubeObjects.ref(ref), patch, { subresource: 'status' })) as unknown as KubeObject;
  }

  async delete(ref: ObjectRef): Promise<void> {
    const c = await this.client(ref.apiVersion, ref.kind);
    await c.delete(TransportKubeObjects.ref(ref));
  }
}
