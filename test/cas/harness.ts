// A CAS engine over in-memory fakes, with the templates of deploy/cas-templates installed.
import { PassThrough } from 'node:stream';
import { createLogger, type Logger } from '../../lib/logger.ts';
import { CasEngine } from '../../maya-apiserver/cas/engine.ts';
import { FakeClock, FakeKubeObjects, FakeTargetMgmt } from '../../maya-apiserver/cas/fakes.ts';
import { installTemplates } from '../../maya-apiserver/cas/install.ts';
import type { JsonObject, KubeObject } from '../../maya-apiserver/cas/ports.ts';
import { CasFlows } from '../../maya-apiserver/flows/cas-flows.ts';

export const ns = 'openebs';
export const targetMgmt = '127.0.0.1:9500';

export interface Harness {
  clock: FakeClock;
  kube: FakeKubeObjects;
  target: FakeTargetMgmt;
  engine: CasEngine;
  flows: CasFlows;
  logger: Logger;
  /** Parsed JSON log lines written so far. */
  logLines(): Array<Record<string, unknown>>;
}

export async function harness(): Promise<Harness> {
  const clock = new FakeClock();
  const kube = new FakeKubeObjects(clock);
  const target = new FakeTargetMgmt();
  const stream = new PassThrough();
  const lines: string[] = [];
  stream.on('data', (chunk: Buffer) => lines.push(...chunk.toString('utf8').split('\n').filter((l) => l.trim() !== '')));
  const logger = createLogger({ component: 'mapi', stream, level: 'debug' });
  const engine = new CasEngine({
    kube,
    http: target,
    logger,
    namespace: ns,
    clock,
    env: { targetIP: '127.0.0.1', targetPortal: '127.0.0.1:3260', targetMgmtAddress: targetMgmt },
  });
  await installTemplates({ kube, logger, namespace: ns });
  const flows = new CasFlows({ engine, kube, logger });
  return {
    clock,
    kube,
    target,
    engine,
    flows,
    logger,
    logLines: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export function cstorVolume(name: string, phase: string, extra: { labels?: Record<string, string>; capacity?: string } = {}): KubeObject {
  return {
    apiVersion: 'openebs.io/v1alpha1',
    kind: 'CStorVolume',
    metadata: { name, namespace: ns, labels: { 'openebs.io/persistent-volume': name, ...(extra.labels ?? {}) } },
    spec: {
      targetIP: '127.0.0.1',
      targetPortal: '127.0.0.1:3260',
      targetMgmtAddress: targetMgmt,
      iqn: `iqn.2016-09.com.openebs.cstor:${name}`,
      capacity: extra.capacity ?? '5G',
      replicationFactor: 3,
      consistencyFactor: 2,
    },
    status: { phase },
  };
}

export function cstorPool(name: string, phase = 'Online'): KubeObject {
  return {
    apiVersion: 'openebs.io/v1alpha1',
    kind: 'CStorPool',
    metadata: { name, uid: `uid-${name}` },
    spec: {},
    status: { phase, address: `127.0.0.1:${3232}` },
  };
}

export function cvr(volume: string, pool: string): KubeObject {
  return {
    apiVersion: 'openebs.io/v1alpha1',
    kind: 'CStorVolumeReplica',
    metadata: {
      name: `${volume}-${pool}`,
      namespace: ns,
      labels: { 'cstorpool.openebs.io/name': pool, 'openebs.io/persistent-volume': volume },
    },
    spec: { capacity: '5G', targetIP: '127.0.0.1' },
    status: { phase: 'Healthy' },
  };
}

export function storageClass(name: string, parameters: Record<string, string> = {}, annotations: Record<string, string> = {}): KubeObject {
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name, annotations },
    provisioner: 'openebs.io/provisioner-iscsi',
    parameters,
  };
}

export function snapshotRequest(name: string, volumeName: string): JsonObject {
  return { metadata: { name, namespace: 'default' }, spec: { casType: 'cstor', volumeName } };
}
