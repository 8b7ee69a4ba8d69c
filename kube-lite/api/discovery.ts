// Discovery documents: /api, /apis, /apis/<group>, and the resource list of each group/version.
import { apiVersionOf, type ResourceRegistry } from '../resources/registry.ts';
import type { JsonObject } from '../store/types.ts';

const verbs = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

export const serverVersion = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0-kube-lite',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2026-01-01T00:00:00Z',
  goVersion: 'go1.23.0',
  compiler: 'gc',
  platform: 'linux/amd64',
};

export function coreVersions(serverAddress: string): JsonObject {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

function groupEntry(name: string, versions: string[]): JsonObject {
  const vs = versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
  return { name, versions: vs, preferredVersion: vs[0] };
}

export function groupList(registry: ResourceRegistry): JsonObject {
  const groups = [...registry.groups()].filter(([g]) => g !== '').map(([g, vs]) => groupEntry(g, vs));
  return { kind: 'APIGroupList', apiVersion: 'v1', groups };
}

export function group(registry: ResourceRegistry, name: string): JsonObject | undefined {
  const vs = registry.groups().get(name);
  return vs && name !== '' ? { kind: 'APIGroup', apiVersion: 'v1', ...groupEntry(name, vs) } : undefined;
}

export function resourceList(registry: ResourceRegistry, groupName: string, version: string): JsonObject | undefined {
  const infos = registry.all().filter((r) => r.group === groupName && r.versions.includes(version));
  if (infos.length === 0) return undefined;
  const resources: JsonObject[] = [];
  for (const r of infos) {
    resources.push({
      name: r.resource,
      singularName: r.singular,
      namespaced: r.namespaced,
      kind: r.kind,
      verbs,
      ...(r.shortNames.length ? { shortNames: r.shortNames } : {}),
      ...(r.categories.length ? { categories: r.categories } : {}),
    });
    if (r.hasStatus) resources.push({ name: `${r.resource}/status`, singularName: '', namespaced: r.namespaced, kind: r.kind, verbs: ['get', 'patch', 'update'] });
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: apiVersionOf(groupName, version), resources };
}
