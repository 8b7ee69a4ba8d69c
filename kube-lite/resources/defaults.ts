// Defaulting on create, as the Kubernetes API server does for the fields our clients read back
// (reclaim policies, volume modes, the default StorageClass of a claim, initial status phases).
import { randomInt } from 'node:crypto';
import { isJsonObject, type JsonObject, type KubeObject } from '../store/types.ts';
import type { ResourceInfo } from './registry.ts';

export const defaultClassAnnotation = 'storageclass.kubernetes.io/is-default-class';
export const betaClassAnnotation = 'volume.beta.kubernetes.io/storage-class';

function spec(o: KubeObject): JsonObject {
  if (!isJsonObject(o.spec)) o.spec = {};
  return o.spec as JsonObject;
}

export interface DefaultsContext {
  /** The name of the StorageClass marked default, if any. */
  defaultStorageClass(): string | undefined;
  /** The node ports Services hold (NodePort and LoadBalancer types get one per port, as in Kubernetes). */
  usedNodePorts(): Set<number>;
}

const nodePortMin = 30000;
const nodePortMax = 32767;

/** A free port of the default service-node-port-range 30000–32767, from a random start; undefined when full. */
function allocateNodePort(used: Set<number>): number | undefined {
  const span = nodePortMax - nodePortMin + 1;
  const start = randomInt(0, span);
  for (let i = 0; i < span; i++) {
    const p = nodePortMin + ((start + i) % span);
    if (!used.has(p)) return p;
  }
  return undefined;
}

/** Fills defaults in place on a new object (status of types with a status subresource included). */
export function applyCreateDefaults(info: ResourceInfo, o: KubeObject, ctx: DefaultsContext): void {
  switch (info.resKey) {
    case '/namespaces':
      spec(o).finalizers ??= ['kubernetes'];
      o.metadata.labels = { ...o.metadata.labels, 'kubernetes.io/metadata.name': o.metadata.name ?? '' };
      o.status = { phase: 'Active' };
      break;
    case '/persistentvolumes': {
      const s = spec(o);
      s.persistentVolumeReclaimPolicy ??= 'Retain';
      s.volumeMode ??= 'Filesystem';
      o.status = { phase: 'Pending' };
      break;
    }
    case '/persistentvolumeclaims': {
      const s = spec(o);
      s.volumeMode ??= 'Filesystem';
      if (s.storageClassName === undefined && !o.metadata.annotations?.[betaClassAnnotation]) {
        const def = ctx.defaultStorageClass();
        if (def) s.storageClassName = def;
      }
      o.status = { phase: 'Pending' };
      break;
    }
    case 'storage.k8s.io/storageclasses':
      o.reclaimPolicy ??= 'Delete';
      o.volumeBindingMode ??= 'Immediate';
      break;
    case '/pods': {
      const s = spec(o);
      s.restartPolicy ??= 'Always';
      s.schedulerName ??= 'default-scheduler';
      o.status = { phase: 'Pending', qosClass: 'BestEffort' };
      break;
    }
    case '/services': {
      const s = spec(o);
      s.type ??= 'ClusterIP';
      s.sessionAffinity ??= 'None';
      if (s.clusterIP === undefined && s.type !== 'ExternalName') s.clusterIP = `10.96.${randomInt(0, 256)}.${randomInt(1, 255)}`;
      if (typeof s.clusterIP === 'string' && s.clusterIP !== 'None') s.clusterIPs ??= [s.clusterIP];
      const needsNodePorts = s.type === 'NodePort' || s.type === 'LoadBalancer';
      const used = needsNodePorts ? ctx.usedNodePorts() : new Set<number>();
      if (Array.isArray(s.ports)) {
        for (const p of s.ports) if (isJsonObject(p)) {
          p.protocol ??= 'TCP';
          p.targetPort ??= p.port;
          if (needsNodePorts && p.nodePort === undefined) {
            const np = allocateNodePort(used);
            if (np !== undefined) {
              p.nodePort = np;
              used.add(np);
            }
          }
        }
      }
      if (s.type === 'LoadBalancer') s.allocateLoadBalancerNodePorts ??= true;
      if (s.type !== 'ExternalName') {
        s.ipFamilies ??= ['IPv4'];
        s.ipFamilyPolicy ??= 'SingleStack';
        s.internalTrafficPolicy ??= 'Cluster';
      }
      if (needsNodePorts) s.externalTrafficPolicy ??= 'Cluster';
      o.status = { loadBalancer: {} };
      break;
    }
    case '/secrets': {
      o.type ??= 'Opaque';
      if (isJsonObject(o.stringData)) {
        const data: JsonObject = isJsonObject(o.data) ? { ...o.data } : {};
        for (const [k, v] of Object.entries(o.stringData)) data[k] = Buffer.from(String(v)).toString('base64');
        o.data = data;
        delete o.stringData;
      }
      break;
    }
    case '/nodes':
      o.status = isJsonObject(o.status) ? o.status : {};
      break;
    case 'apiextensions.k8s.io/customresourcedefinitions': {
      const s = spec(o);
      if (isJsonObject(s.names)) {
        const names = s.names;
        if (typeof names.kind === 'string') {
          names.singular ??= names.kind.toLowerCase();
          names.listKind ??= `${names.kind}List`;
        }
      }
      s.conversion ??= { strategy: 'None' };
      o.status = { conditions: [], acceptedNames: { kind: '', plural: '' }, storedVersions: [] };
      break;
    }
    default:
      if (info.hasStatus) delete o.status;
      break;
  }
}

/** Defaults Kubernetes applies to every write (updates included), and Secret stringData. */
export function applyUpdateDefaults(info: ResourceInfo, o: KubeObject): void {
  if (info.resKey === '/persistentvolumeclaims') spec(o).volumeMode ??= 'Filesystem';
  if (info.resKey === '/persistentvolumes') {
    const s = spec(o);
    s.persistentVolumeReclaimPolicy ??= 'Retain';
    s.volumeMode ??= 'Filesystem';
  }
  if (info.resKey === 'storage.k8s.io/storageclasses') {
    o.reclaimPolicy ??= 'Delete';
    o.volumeBindingMode ??= 'Immediate';
  }
  if (info.resKey === '/secrets' && isJsonObject(o.stringData)) {
    const data: JsonObject = isJsonObject(o.data) ? { ...o.data } : {};
    for (const [k, v] of Object.entries(o.stringData)) data[k] = Buffer.from(String(v)).toString('base64');
    o.data = data;
    delete o.stringData;
  }
}
