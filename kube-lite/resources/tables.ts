// Table responses (kubectl asks for `as=Table`): the columns kubectl prints for each type, and
// the CRD's additionalPrinterColumns for custom resources.
import { isJsonObject, type JsonObject, type KubeObject } from '../store/types.ts';
import type { PrinterColumn, ResourceInfo } from './registry.ts';

export interface ColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

type Cell = string | number | boolean | null;

interface ColumnSpec {
  name: string;
  type?: string;
  format?: string;
  priority?: number;
  cell: (o: KubeObject, now: number) => Cell;
}

/** kubectl's HumanDuration. */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (h < 24 * 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (d < 365 * 2) return `${d}d`;
  const y = Math.floor(d / 365);
  if (d < 365 * 8) return d % 365 === 0 ? `${y}y` : `${y}y${d % 365}d`;
  return `${y}y`;
}

function at(o: unknown, path: string): unknown {
  let cur = o;
  for (const p of path.split('.')) {
    if (!isJsonObject(cur)) return undefined;
    cur = cur[p];
  }
  return cur;
}

function s(o: unknown, path: string, dflt = '<none>'): string {
  const v = at(o, path);
  return v === undefined || v === null || v === '' ? dflt : String(v);
}

function age(o: KubeObject, now: number): string {
  const t = Date.parse(o.metadata.creationTimestamp ?? '');
  return Number.isNaN(t) ? '<unknown>' : humanDuration(now - t);
}

const accessModeShort: Record<string, string> = { ReadWriteOnce: 'RWO', ReadOnlyMany: 'ROX', ReadWriteMany: 'RWX', ReadWriteOncePod: 'RWOP' };
function modes(v: unknown): string {
  return Array.isArray(v) ? v.map((m) => accessModeShort[String(m)] ?? String(m)).join(',') : '';
}

function count(v: unknown): number {
  return isJsonObject(v) ? Object.keys(v).length : 0;
}

const nameCol: ColumnSpec = { name: 'Name', format: 'name', cell: (o) => o.metadata.name ?? '' };
const ageCol: ColumnSpec = { name: 'Age', cell: age };

const builtinColumns: Record<string, ColumnSpec[]> = {
  '/namespaces': [nameCol, { name: 'Status', cell: (o) => s(o, 'status.phase', '') }, ageCol],
  '/persistentvolumes': [
    nameCol,
    { name: 'Capacity', cell: (o) => s(o, 'spec.capacity.storage', '') },
    { name: 'Access Modes', cell: (o) => modes(at(o, 'spec.accessModes')) },
    { name: 'Reclaim Policy', cell: (o) => s(o, 'spec.persistentVolumeReclaimPolicy', '') },
    { name: 'Status', cell: (o) => s(o, 'status.phase', '') },
    { name: 'Claim', cell: (o) => (at(o, 'spec.claimRef.name') ? `${s(o, 'spec.claimRef.namespace', '')}/${s(o, 'spec.claimRef.name', '')}` : '') },
    { name: 'StorageClass', cell: (o) => s(o, 'spec.storageClassName', '') },
    { name: 'Reason', cell: (o) => s(o, 'status.reason', '') },
    ageCol,
    { name: 'VolumeMode', priority: 1, cell: (o) => s(o, 'spec.volumeMode', '') },
  ],
  '/persistentvolumeclaims': [
    nameCol,
    { name: 'Status', cell: (o) => s(o, 'status.phase', '') },
    { name: 'Volume', cell: (o) => s(o, 'spec.volumeName', '') },
    { name: 'Capacity', cell: (o) => s(o, 'status.capacity.storage', '') },
    { name: 'Access Modes', cell: (o) => modes(at(o, 'status.accessModes')) },
    { name: 'StorageClass', cell: (o) => s(o, 'spec.storageClassName', '') },
    ageCol,
    { name: 'VolumeMode', priority: 1, cell: (o) => s(o, 'spec.volumeMode', '') },
  ],
  'storage.k8s.io/storageclasses': [
    { ...nameCol, cell: (o) => `${o.metadata.name ?? ''}${o.metadata.annotations?.['storageclass.kubernetes.io/is-default-class'] === 'true' ? ' (default)' : ''}` },
    { name: 'Provisioner', cell: (o) => s(o, 'provisioner', '') },
    { name: 'ReclaimPolicy', cell: (o) => s(o, 'reclaimPolicy', '') },
    { name: 'VolumeBindingMode', cell: (o) => s(o, 'volumeBindingMode', '') },
    { name: 'AllowVolumeExpansion', cell: (o) => String(at(o, 'allowVolumeExpansion') === true) },
    ageCol,
  ],
  '/pods': [
    nameCol,
    {
      name: 'Ready',
      cell: (o) => {
        const total = Array.isArray(at(o, 'spec.containers')) ? (at(o, 'spec.containers') as unknown[]).length : 0;
        const st = at(o, 'status.containerStatuses');
        const ready = Array.isArray(st) ? st.filter((c) => isJsonObject(c) && c.ready === true).length : 0;
        return `${ready}/${total}`;
      },
    },
    { name: 'Status', cell: (o) => (o.metadata.deletionTimestamp ? 'Terminating' : s(o, 'status.phase', '')) },
    { name: 'Restarts', type: 'integer', cell: () => 0 },
    ageCol,
    { name: 'IP', priority: 1, cell: (o) => s(o, 'status.podIP') },
    { name: 'Node', priority: 1, cell: (o) => s(o, 'spec.nodeName') },
  ],
  '/nodes': [
    nameCol,
    {
      name: 'Status',
      cell: (o) => {
        const conds = at(o, 'status.conditions');
        const ready = Array.isArray(conds) ? conds.find((c) => isJsonObject(c) && c.type === 'Ready') : undefined;
        return isJsonObject(ready) ? (ready.status === 'True' ? 'Ready' : 'NotReady') : 'Unknown';
      },
    },
    {
      name: 'Roles',
      cell: (o) => {
        const roles = Object.keys(o.metadata.labels ?? {}).filter((k) => k.startsWith('node-role.kubernetes.io/')).map((k) => k.slice('node-role.kubernetes.io/'.length));
        return roles.length ? roles.join(',') : '<none>';
      },
    },
    ageCol,
    { name: 'Version', cell: (o) => s(o, 'status.nodeInfo.kubeletVersion', '') },
  ],
  '/services': [
    nameCol,
    { name: 'Type', cell: (o) => s(o, 'spec.type', '') },
    { name: 'Cluster-IP', cell: (o) => s(o, 'spec.clusterIP') },
    {
      name: 'External-IP',
      cell: (o) => {
        // As kubectl prints it: the external name, load-balancer ingress (or <pending>), externalIPs.
        if (s(o, 'spec.type', '') === 'ExternalName') return s(o, 'spec.externalName');
        const ext = at(o, 'spec.externalIPs');
        const ips = Array.isArray(ext) ? ext.map(String) : [];
        if (s(o, 'spec.type', '') === 'LoadBalancer') {
          const ingress = at(o, 'status.loadBalancer.ingress');
          for (const i of Array.isArray(ingress) ? ingress : []) if (isJsonObject(i)) ips.push(String(i.ip ?? i.hostname ?? ''));
          return ips.length ? ips.join(',') : '<pending>';
        }
        return ips.length ? ips.join(',') : '<none>';
      },
    },
    {
      name: 'Port(s)',
      cell: (o) => {
        const ports = at(o, 'spec.ports');
        const one = (p: unknown): string => (isJsonObject(p) ? `${String(p.port)}${p.nodePort !== undefined ? `:${String(p.nodePort)}` : ''}/${String(p.protocol ?? 'TCP')}` : '');
        return Array.isArray(ports) && ports.length ? ports.map(one).join(',') : '<none>';
      },
    },
    ageCol,
  ],
  '/endpoints': [
    nameCol,
    {
      name: 'Endpoints',
      cell: (o) => {
        const out: string[] = [];
        const subsets = at(o, 'subsets');
        for (const ss of Array.isArray(subsets) ? subsets : []) {
          const addrs = isJsonObject(ss) && Array.isArray(ss.addresses) ? ss.addresses : [];
          const ports = isJsonObject(ss) && Array.isArray(ss.ports) ? ss.ports : [];
          for (const a of addrs) for (const p of ports.length ? ports : [{}]) out.push(`${s(a, 'ip', '')}${isJsonObject(p) && p.port !== undefined ? `:${String(p.port)}` : ''}`);
        }
        return out.length ? out.join(',') : '<none>';
      },
    },
    ageCol,
  ],
  '/secrets': [nameCol, { name: 'Type', cell: (o) => s(o, 'type', '') }, { name: 'Data', type: 'integer', cell: (o) => count(o.data) }, ageCol],
  '/serviceaccounts': [nameCol, { name: 'Secrets', type: 'integer', cell: (o) => (Array.isArray(o.secrets) ? o.secrets.length : 0) }, ageCol],
  '/configmaps': [nameCol, { name: 'Data', type: 'integer', cell: (o) => count(o.data) + count(o.binaryData) }, ageCol],
  '/events': [
    {
      name: 'Last Seen',
      cell: (o, now) => {
        const t = Date.parse(String(o.lastTimestamp ?? o.eventTime ?? o.metadata.creationTimestamp ?? ''));
        return Number.isNaN(t) ? '<unknown>' : humanDuration(now - t);
      },
    },
    { name: 'Type', cell: (o) => s(o, 'type', '') },
    { name: 'Reason', cell: (o) => s(o, 'reason', '') },
    { name: 'Object', cell: (o) => `${s(o, 'involvedObject.kind', '').toLowerCase()}/${s(o, 'involvedObject.name', '')}` },
    { name: 'Message', cell: (o) => s(o, 'message', '') },
    { ...nameCol, priority: 1 },
  ],
  'coordination.k8s.io/leases': [nameCol, { name: 'Holder', cell: (o) => s(o, 'spec.holderIdentity', '') }, ageCol],
  'apiextensions.k8s.io/customresourcedefinitions': [nameCol, { name: 'Created At', type: 'date', cell: (o) => o.metadata.creationTimestamp ?? '' }],
};

/** A small JSONPath subset: .a.b, .a[0], .a[*].b, .a[?(@.type=="Ready")].status */
export function evalJsonPath(obj: unknown, path: string): unknown[] {
  const tokens = path.replace(/^\{?\$?/, '').replace(/\}$/, '');
  let cur: unknown[] = [obj];
  const re = /\.([A-Za-z0-9_\-/$]+)|\[(\d+|\*)\]|\[\?\(@\.([A-Za-z0-9_.]+)\s*==\s*["']([^"']*)["']\)\]/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(tokens)) !== null) {
    const next: unknown[] = [];
    for (const c of cur) {
      if (m[1] !== undefined) {
        if (isJsonObject(c) && c[m[1]] !== undefined) next.push(c[m[1]]);
      } else if (m[2] !== undefined) {
        if (!Array.isArray(c)) continue;
        if (m[2] === '*') next.push(...c);
        else if (c[Number(m[2])] !== undefined) next.push(c[Number(m[2])]);
      } else if (m[3] !== undefined && Array.isArray(c)) {
        for (const item of c) if (String(at(item, m[3]) ?? '') === m[4]) next.push(item);
      }
    }
    cur = next;
  }
  return cur;
}

function customColumns(cols: PrinterColumn[]): ColumnSpec[] {
  return [
    nameCol,
    ...cols.map((c): ColumnSpec => ({
      name: c.name,
      type: c.type,
      format: c.format ?? '',
      priority: c.priority ?? 0,
      cell: (o, now) => {
        const vals = evalJsonPath(o, c.jsonPath);
        if (vals.length === 0) return null;
        const v = vals[0];
        if (c.type === 'date' && typeof v === 'string') {
          const t = Date.parse(v);
          return Number.isNaN(t) ? v : humanDuration(now - t);
        }
        if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return vals.length > 1 ? vals.map(String).join(',') : v;
        return JSON.stringify(v);
      },
    })),
  ];
}

function columnsFor(info: ResourceInfo, version: string): ColumnSpec[] {
  if (info.custom) {
    const cols = info.printerColumns?.[version];
    return cols && cols.length > 0 ? customColumns(cols) : [nameCol, ageCol];
  }
  return builtinColumns[info.resKey] ?? [nameCol, ageCol];
}

const descriptions: Record<string, string> = {
  Name: 'Name must be unique within a namespace. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names',
  Age: 'CreationTimestamp is a timestamp representing the server time when this object was created.',
};

export type IncludeObject = 'None' | 'Metadata' | 'Object';

/** A meta.k8s.io/v1 Table of `objects`. */
export function buildTable(info: ResourceInfo, version: string, objects: KubeObject[], listMeta: JsonObject, include: IncludeObject = 'Metadata'): JsonObject {
  const cols = columnsFor(info, version);
  const now = Date.now();
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: listMeta,
    columnDefinitions: cols.map((c): ColumnDefinition => ({
      name: c.name,
      type: c.type ?? 'string',
      format: c.format ?? '',
      description: descriptions[c.name] ?? c.name,
      priority: c.priority ?? 0,
    })),
    rows: objects.map((o) => ({
      cells: cols.map((c) => c.cell(o, now)),
      ...(include === 'None'
        ? {}
        : { object: include === 'Object' ? o : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata } }),
    })),
  };
}
