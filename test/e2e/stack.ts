// The whole embedded system for the end-to-end tests, started in this process through
// lib/embedded's startEmbedded (what `cstor up` runs): kube-lite, three pools, the target,
// m-apiserver, both provisioners and the snapshot-controller as separate `cstor` processes under
// the Supervisor, which restarts a process that dies (here quickly: the tests kill -9 on purpose).
// Typed clients for the objects the tests read, an m-apiserver client, kill -9 by component name,
// and a dump of the components' log tails for failure messages.
import axios from 'axios';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEmbedded, type EmbeddedSystem } from '../../lib/embedded/system.ts';
import { hasErrorCode } from '../../lib/errors.ts';
import { loadKubeConfig } from '../../lib/kube/kubeconfig.ts';
import { ResourceClient } from '../../lib/kube/resource-client.ts';
import type { ResourceType } from '../../lib/kube/resource-type.ts';
import { resources } from '../../lib/kube/resources.ts';
import { HttpKubeTransport } from '../../lib/kube/transport.ts';
import type { CoreEvent, PersistentVolume, PersistentVolumeClaim } from '../../lib/kube/types/core.ts';
import type { KubeObject } from '../../lib/kube/types/meta.ts';
import type { VolumeSnapshot, VolumeSnapshotData } from '../../lib/kube/types/volume-snapshot.ts';
import { silentLogger } from '../../lib/logger.ts';
import { MayaClient } from '../../lib/maya-client/client.ts';
import { cstorBin } from '../support/daemon.ts';

export const cstorClass = 'openebs-cstor-default';
export const promoterClass = 'openebs-snapshot-promoter';
export const snapshotIdAnnotation = 'snapshot.cstor.openebs.io/snapshot-id';

const casType = (plural: string, kind: string): ResourceType => ({ group: 'openebs.io', version: 'v1alpha1', plural, kind, namespaced: true });

export interface CasObject extends KubeObject {
  spec?: Record<string, unknown>;
  status?: { phase?: string; [k: string]: unknown };
}

/** A replica as a pool's mgmt API describes it (docs/pool-daemon.md). */
export interface PoolReplica {
  volume: string;
  snapshots: { name: string }[];
  cloneOf: string | null;
}

export interface E2eStack {
  readonly system: EmbeddedSystem;
  readonly dataDir: string;
  readonly maya: MayaClient;
  readonly claims: ResourceClient<PersistentVolumeClaim>;
  readonly pvs: ResourceClient<PersistentVolume>;
  readonly snapshots: ResourceClient<VolumeSnapshot>;
  readonly datas: ResourceClient<VolumeSnapshotData>;
  readonly events: ResourceClient<CoreEvent>;
  readonly cstorVolumes: ResourceClient<CasObject>;
  readonly replicas: ResourceClient<CasObject>;
  /** The pid of a component's running process (undefined while it is down or killed by kill9). */
  pidOf(component: string): number | undefined;
  /** kill -9 of a component's current process; the Supervisor starts it again. Returns the pid killed (undefined: it is down, e.g. still restarting). */
  kill9(component: string): number | undefined;
  /** Waits until a component runs again under a pid other than `oldPid`. */
  waitRestarted(component: string, oldPid: number, timeoutMs?: number): Promise<number>;
  /** Every pool's replicas, from its mgmt API (`GET /v1/replicas`): pool name → replicas. */
  poolReplicas(): Promise<Map<string, PoolReplica[]>>;
  /** The last lines of each named component's log (for failure messages). */
  logTails(components: readonly string[], lines?: number): string;
  stop(): Promise<void>;
}

export async function startStack(options: { prefix?: string } = {}): Promise<E2eStack> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), options.prefix ?? 'cstor-e2e-stack-'));
  let system: EmbeddedSystem;
  try {
    system = await startEmbedded({
      dataDir,
      listenHost: '127.0.0.1',
      ports: 'any',
      logger: silentLogger(),
      cstorBin,
      // The tests kill on purpose: restart at once, and never give up.
      restartPolicy: { initialDelayMs: 100, maxDelayMs: 1000, resetAfterMs: 5000, maxConsecutiveFailures: Number.POSITIVE_INFINITY },
      stopGraceMs: 5000,
      stageTimeoutMs: 120_000,
    });
  } catch (err) {
    const logs = path.join(dataDir, 'logs');
    const tails = (fs.existsSync(logs) ? fs.readdirSync(logs) : [])
      .map((f) => `--- ${f}\n${fs.readFileSync(path.join(logs, f), 'utf8').trimEnd().split('\n').slice(-15).join('\n')}`)
      .join('\n');
    fs.rmSync(dataDir, { recursive: true, force: true });
    throw new Error(`the embedded stack did not start: ${String(err)}\n${tails}`, { cause: err });
  }
  const { kubeConfig } = loadKubeConfig({ kubeconfigPath: system.kubeconfig, env: {} });
  const transport = new HttpKubeTransport(kubeConfig, { requestTimeoutMs: 20_000 });
  const client = <T extends KubeObject>(r: ResourceType): ResourceClient<T> => new ResourceClient<T>(transport, r);
  const mapiUrl = system.state().endpoints.mapi;
  if (!mapiUrl) throw new Error('the embedded system has no m-apiserver address');
  const maya = new MayaClient({ address: { resolve: () => Promise.resolve(mapiUrl), invalidate: () => undefined }, timeoutMs: 60_000 });

  // Pids this harness killed: the Supervisor may not have seen the exit yet, and they are no target.
  const killed = new Set<number>();
  const pidOf = (component: string): number | undefined => {
    const s = system.supervisor.statusOf(component);
    return s && s.state === 'running' && s.pid !== null && !killed.has(s.pid) ? s.pid : undefined;
  };
  const stack: E2eStack = {
    system,
    dataDir,
    maya,
    claims: client(resources.persistentVolumeClaims),
    pvs: client(resources.persistentVolumes),
    snapshots: client(resources.volumeSnapshots),
    datas: client(resources.volumeSnapshotDatas),
    events: client(resources.events),
    cstorVolumes: client(casType('cstorvolumes', 'CStorVolume')),
    replicas: client(casType('cstorvolumereplicas', 'CStorVolumeReplica')),
    pidOf,
    kill9(component) {
      const pid = pidOf(component);
      if (pid === undefined) return undefined;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        return undefined;
      }
      killed.add(pid);
      return pid;
    },
    async waitRestarted(component, oldPid, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const pid = pidOf(component);
        if (pid !== undefined && pid !== oldPid) return pid;
        if (Date.now() > deadline) throw new Error(`${component} did not restart within ${timeoutMs} ms\n${stack.logTails([component])}`);
        await sleep(50);
      }
    },
    async poolReplicas() {
      const out = new Map<string, PoolReplica[]>();
      for (const [pool, ep] of Object.entries(system.state().endpoints.pools)) {
        if (!ep.mgmt) throw new Error(`pool ${pool} has no mgmt address`);
        const res = await axios.get<{ items: PoolReplica[] }>(`http://${ep.mgmt}/v1/replicas`, { timeout: 10_000, proxy: false });
        out.set(pool, res.data.items);
      }
      return out;
    },
    logTails(components, lines = 25) {
      return components
        .map((c) => {
          let text = '';
          try {
            text = fs.readFileSync(path.join(dataDir, 'logs', `${c}.log`), 'utf8');
          } catch {
            text = '(no log)';
          }
          return `--- ${c} (last ${lines} lines)\n${text.trimEnd().split('\n').slice(-lines).join('\n')}`;
        })
        .join('\n');
    },
    async stop() {
      transport.close();
      await system.stop();
      if (process.env.KEEP_E2E_DIR === '1') {
        console.log(`e2e data dir kept: ${dataDir}`);
        return;
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return stack;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `fn` (bounded) until it returns a truthy value; throws naming `what` and the last state. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false | null>, timeoutMs: number, describe?: () => string, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}${describe ? `\n${describe()}` : ''}`);
    }
    await sleep(intervalMs);
  }
}

/** undefined for a not-found read. */
export async function orMissing<T>(read: Promise<T>): Promise<T | undefined> {
  try {
    return await read;
  } catch (err) {
    if (hasErrorCode(err, 'not_found')) return undefined;
    throw err;
  }
}

export function claimObject(o: { ns: string; name: string; cls: string; size: string; snapshot?: string }): PersistentVolumeClaim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: o.name, namespace: o.ns, ...(o.snapshot ? { annotations: { 'snapshot.alpha.kubernetes.io/snapshot': o.snapshot } } : {}) },
    spec: { storageClassName: o.cls, accessModes: ['ReadWriteOnce'], resources: { requests: { storage: o.size } } },
  };
}

export function snapshotObject(ns: string, name: string, claim: string): VolumeSnapshot {
  return { apiVersion: 'volumesnapshot.external-storage.k8s.io/v1', kind: 'VolumeSnapshot', metadata: { name, namespace: ns }, spec: { persistentVolumeClaimName: claim } };
}

/** The condition that is True (the controller keeps one), if any. */
export function currentCondition(s: VolumeSnapshot | undefined): { type: string; reason?: string; message?: string } | undefined {
  return s?.status?.conditions?.find((c) => c.status === 'True');
}

