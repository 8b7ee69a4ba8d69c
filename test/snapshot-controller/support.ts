// Shared pieces of the snapshot-controller process tests: a real kube-lite, typed clients from
// the kubeconfig it writes, the fixtures (namespace, a cStor-like iSCSI PV bound to a PVC, a
// VolumeSnapshot), and `cstor snapshot-controller` processes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hasErrorCode } from '../../lib/errors.ts';
import { loadKubeConfig } from '../../lib/kube/kubeconfig.ts';
import { ResourceClient } from '../../lib/kube/resource-client.ts';
import type { ResourceType } from '../../lib/kube/resource-type.ts';
import { resources } from '../../lib/kube/resources.ts';
import { HttpKubeTransport } from '../../lib/kube/transport.ts';
import type { CoreEvent, PersistentVolume, PersistentVolumeClaim } from '../../lib/kube/types/core.ts';
import type { KubeObject, ObjectMeta } from '../../lib/kube/types/meta.ts';
import type { VolumeSnapshot, VolumeSnapshotData } from '../../lib/kube/types/volume-snapshot.ts';
import { startDaemon, type Daemon } from '../support/daemon.ts';

export class Cluster {
  kubeLite: Daemon | undefined;
  readonly dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'snapshot-controller-'));
  private transport: HttpKubeTransport | undefined;

  get kubeconfig(): string {
    return path.join(this.dataDir, 'kubeconfig');
  }

  async start(): Promise<void> {
    this.kubeLite = await startDaemon(['kube-lite', '--listen', '127.0.0.1:0', '--data-dir', this.dataDir], { listeners: ['api'] });
    const { kubeConfig } = loadKubeConfig({ kubeconfigPath: this.kubeconfig, env: {} });
    this.transport = new HttpKubeTransport(kubeConfig, { requestTimeoutMs: 10_000 });
    await this.namespaces.create({ metadata: { name: 'openebs' } });
  }

  client<T extends KubeObject>(r: ResourceType): ResourceClient<T> {
    if (!this.transport) throw new Error('kube-lite not started');
    return new ResourceClient<T>(this.transport, r);
  }

  get namespaces(): ResourceClient<KubeObject & { metadata: ObjectMeta }> {
    return this.client(resources.namespaces);
  }
  get snapshots(): ResourceClient<VolumeSnapshot> {
    return this.client(resources.volumeSnapshots);
  }
  get datas(): ResourceClient<VolumeSnapshotData> {
    return this.client(resources.volumeSnapshotDatas);
  }
  get claims(): ResourceClient<PersistentVolumeClaim> {
    return this.client(resources.persistentVolumeClaims);
  }
  get volumes(): ResourceClient<PersistentVolume> {
    return this.client(resources.persistentVolumes);
  }
  get events(): ResourceClient<CoreEvent> {
    return this.client(resources.events);
  }

  async cleanup(): Promise<void> {
    await this.kubeLite?.stop();
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** A namespace with a claim `claim` bound (by kube-lite's PV binder) to a cStor-like iSCSI PV `pv-<ns>`. */
  async boundClaim(ns: string, options: { claim?: string; pv?: string } = {}): Promise<{ claim: string; pv: string }> {
    const claim = options.claim ?? 'data';
    const pv = options.pv ?? `pv-${ns}`;
    await this.namespaces.create({ metadata: { name: ns } }).catch((err: unknown) => {
      if (!hasErrorCode(err, 'already_exists')) throw err;
    });
    await this.volumes.create({
      metadata: { name: pv, labels: { 'openebs.io/cas-type': 'cstor' } },
      spec: {
        capacity: { storage: '5G' },
        accessModes: ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName: '',
        claimRef: { kind: 'PersistentVolumeClaim', namespace: ns, name: claim },
        iscsi: { targetPortal: '127.0.0.1:3260', iqn: `iqn.2016-09.com.openebs.cstor:${pv}`, lun: 0, fsType: 'ext4', readOnly: false },
      },
    });
    await this.claims.create({
      metadata: { name: claim, namespace: ns },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '5G' } }, storageClassName: '', volumeName: pv },
    });
    await waitFor(async () => (await this.claims.get({ namespace: ns, name: claim })).status?.phase === 'Bound', `claim ${ns}/${claim} Bound`);
    return { claim, pv };
  }

  createSnapshot(ns: string, name: string, claim: string): Promise<VolumeSnapshot> {
    return this.snapshots.create({ metadata: { name, namespace: ns }, spec: { persistentVolumeClaimName: claim } });
  }

  async snapshotOrUndefined(ns: string, name: string): Promise<VolumeSnapshot | undefined> {
    try {
      return await this.snapshots.get({ namespace: ns, name });
    } catch (err) {
      if (hasErrorCode(err, 'not_found')) return undefined;
      throw err;
    }
  }

  async waitForCondition(ns: string, name: string, type: 'Ready' | 'Error', reason?: string, timeoutMs = 30_000): Promise<VolumeSnapshot> {
    let last: VolumeSnapshot | undefined;
    await waitFor(
      async () => {
        last = await this.snapshotOrUndefined(ns, name);
        const c = last?.status?.conditions?.find((x) => x.status === 'True');
        return c?.type === type && (reason === undefined || c.reason === reason);
      },
      `${ns}/${name} ${type}${reason ? ` (${reason})` : ''}`,
      timeoutMs,
      () => JSON.stringify(last?.status ?? null),
    );
    return last!;
  }

  async datasOf(uid: string): Promise<VolumeSnapshotData[]> {
    const all = await this.datas.list();
    return all.items.filter((d) => d.metadata.annotations?.['snapshot.cstor.openebs.io/snapshot-uid'] === uid);
  }

  async eventsAbout(ns: string, name: string): Promise<CoreEvent[]> {
    const list = await this.events.list({ namespace: ns });
    return list.items.filter((e) => e.involvedObject.name === name);
  }
}

export interface ControllerProcessOptions {
  cluster: Cluster;
  /** m-apiserver's URL (--mapi-addr); undefined: found through the Service maya-apiserver-service. */
  mapiUrl: string | undefined;
  identity?: string;
  leaseSeconds?: number;
  extraArgs?: string[];
}

/** Starts `cstor snapshot-controller` as a real process; resolves once its metrics listener is up. */
export function startController(o: ControllerProcessOptions): Promise<Daemon> {
  return startDaemon(
    [
      'snapshot-controller',
      '--kubeconfig',
      o.cluster.kubeconfig,
      '--namespace',
      'openebs',
      ...(o.mapiUrl ? ['--mapi-addr', o.mapiUrl] : []),
      '--metrics',
      '127.0.0.1:0',
      '--lease-duration',
      String(o.leaseSeconds ?? 3),
      ...(o.identity ? ['--identity', o.identity] : []),
      ...(o.extraArgs ?? []),
    ],
    { listeners: ['metrics'], env: { MAPI_ADDR: '' } },
  );
}

/** Waits until the process logs that it is reconciling (it holds the Lease). */
export async function waitLeading(d: Daemon, timeoutMs = 30_000): Promise<void> {
  await d.waitForLog((e) => e.message === 'reconciling', timeoutMs);
}

/** Polls `check` until true (bounded); throws naming `what` (and `describe()`) on timeout. */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000, describe?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${describe ? `: ${describe()}` : ''}`);
}
