// A real kube-lite with the cStor CRDs applied, three real `cstor pool --kubeconfig` processes
// (they register their CStorPools and make replicas from CVRs) and a real `cstor target
// --kubeconfig` process, restarted at will (kill -9). Objects are written as the CAS templates
// write them.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hasErrorCode } from '../../lib/errors.ts';
import { resources } from '../../lib/kube/resources.ts';
import type { CoreEvent } from '../../lib/kube/types/core.ts';
import { cstorResources, type CStorPool, type CStorVolume, type CStorVolumeReplica } from '../../cstor-target/reconciler/types.ts';
import { startDaemon, type Daemon } from '../support/daemon.ts';
import { KubeLiteHarness } from '../lib-kube/kube-lite-harness.ts';

export const ns = 'openebs';
export const poolNames = ['pool-a', 'pool-b', 'pool-c'] as const;

export class TargetWorld {
  readonly kl = new KubeLiteHarness();
  readonly root = fs.mkdtempSync(path.join(os.tmpdir(), 'target-reconciler-'));
  readonly pools = new Map<string, Daemon>();
  target: Daemon | undefined;

  async start(): Promise<void> {
    await this.kl.start();
    await this.kl.applyCrds(['cstorpools.openebs.io.yaml', 'cstorvolumereplicas.openebs.io.yaml', 'cstorvolumes.openebs.io.yaml']);
    await this.kl.ensureNamespace(ns);
  }

  get cvs() {
    return this.kl.client<CStorVolume>(cstorResources.cstorVolumes);
  }

  get cvrs() {
    return this.kl.client<CStorVolumeReplica>(cstorResources.cstorVolumeReplicas);
  }

  get poolObjects() {
    return this.kl.client<CStorPool>(cstorResources.cstorPools);
  }

  get events() {
    return this.kl.client<CoreEvent>(resources.events);
  }

  /** Starts (or restarts) `cstor pool --kubeconfig` NAME on its directory, on a port the OS picks. */
  async startPool(name: string): Promise<Daemon> {
    const dir = path.join(this.root, name);
    const d = await startDaemon(['pool', '--name', name, '--data-dir', dir, '--listen', '127.0.0.1:0', '--mgmt', '127.0.0.1:0', '--kubeconfig', this.kl.kubeconfigPath], {
      listeners: ['replica', 'mgmt'],
      env: { KUBECONFIG: '' },
    });
    this.pools.set(name, d);
    return d;
  }

  /** Starts `cstor target --kubeconfig` on its data directory (ports picked by the OS). */
  async startTarget(): Promise<Daemon> {
    this.target = await startDaemon(
      ['target', '--iscsi', '127.0.0.1:0', '--mgmt', '127.0.0.1:0', '--data-dir', path.join(this.root, 'target'), '--kubeconfig', this.kl.kubeconfigPath],
      { listeners: ['iscsi', 'mgmt'], env: { KUBECONFIG: '' } },
    );
    return this.target;
  }

  get portal(): string {
    const a = this.target?.addresses.iscsi;
    if (!a) throw new Error('no target running');
    return a;
  }

  get mgmt(): string {
    const a = this.target?.addresses.mgmt;
    if (!a) throw new Error('no target running');
    return a;
  }

  /** The CVRs and the CStorVolume of `pv` exactly as the CAS volume create template writes them (CVRs first). */
  async createVolume(pv: string, capacity: string, o: { targetIP?: string; clone?: { source: string; snapshot: string } } = {}): Promise<void> {
    const targetIP = o.targetIP ?? '127.0.0.1';
    const clone = o.clone;
    for (const pool of poolNames) {
      await this.cvrs.create({
        apiVersion: 'openebs.io/v1alpha1',
        kind: 'CStorVolumeReplica',
        metadata: {
          name: `${pv}-${pool}`,
          namespace: ns,
          labels: {
            'cstorpool.openebs.io/name': pool,
            'cstorpool.openebs.io/uid': '',
            'openebs.io/persistent-volume': pv,
            'openebs.io/cas-type': 'cstor',
            ...(clone ? { 'openebs.io/cloned': 'true' } : {}),
          },
          ...(clone ? { annotations: { 'openebs.io/snapshot': clone.snapshot, 'openebs.io/source-volume': clone.source } } : {}),
          finalizers: ['cstorvolumereplica.openebs.io/finalizer'],
        },
        spec: { capacity, targetIP },
      });
    }
    await this.cvs.create({
      apiVersion: 'openebs.io/v1alpha1',
      kind: 'CStorVolume',
      metadata: {
        name: pv,
        namespace: ns,
        labels: {
          'openebs.io/persistent-volume': pv,
          'openebs.io/storageclass': '',
          'openebs.io/persistentvolumeclaim': '',
          'openebs.io/namespace': '',
          'openebs.io/cas-type': 'cstor',
          ...(clone ? { 'openebs.io/source-volume': clone.source } : {}),
        },
        ...(clone ? { annotations: { 'openebs.io/snapshot': clone.snapshot } } : {}),
      },
      spec: {
        targetIP,
        targetPortal: `${targetIP}:3260`,
        targetMgmtAddress: `${targetIP}:9500`,
        iqn: `iqn.2016-09.com.openebs.cstor:${pv}`,
        capacity,
        replicationFactor: 3,
        consistencyFactor: 2,
      },
    });
  }

  async cv(pv: string): Promise<CStorVolume | undefined> {
    try {
      return await this.cvs.get({ namespace: ns, name: pv });
    } catch (err) {
      if (hasErrorCode(err, 'not_found')) return undefined;
      throw err;
    }
  }

  cleanup(): void {
    this.kl.cleanup();
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}
