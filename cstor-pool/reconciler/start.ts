// Builds the pool reconciler from the daemon's config: Kubernetes clients from the kubeconfig,
// the owned-replicas record in the pool directory, the addresses to publish. Called by
// cstor-pool/main.ts once both listeners are up.
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../../lib/logger.ts';
import { createKubeClients } from '../../lib/kube/kube-clients.ts';
import { resources } from '../../lib/kube/resources.ts';
import type { CoreEvent } from '../../lib/kube/types/core.ts';
import type { Pool } from '../store/types.ts';
import { PoolReconciler } from './controller.ts';
import { isWildcard } from '../../lib/advertise.ts';
import { FileOwnedReplicas } from './owned-replicas.ts';
import { cstorResources, type CStorPool, type CStorVolumeReplica } from './types.ts';

export interface StartPoolReconcilerOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  pool: Pool;
  /** The host targets reach this pool at. */
  advertise: string;
  replicaAddr: AddressInfo;
  mgmtAddr: AddressInfo;
  dropVolume(volume: string): void;
  logger: Logger;
  registry: Registry;
  /** Crash tests: kill -9 this process at that failpoint (cvr-sync.ts). */
  failpoint?: string;
}

export async function startPoolReconciler(o: StartPoolReconcilerOptions): Promise<PoolReconciler> {
  const clients = createKubeClients(o.kubeConfig, { requestTimeoutMs: 30_000 });
  const owned = await FileOwnedReplicas.open(o.pool.dir);
  const mgmtHost = isWildcard(o.mgmtAddr.address) ? o.advertise : o.mgmtAddr.address;
  const reconciler = new PoolReconciler({
    poolName: o.pool.name,
    namespace: o.namespace,
    cvrs: clients.for<CStorVolumeReplica>(cstorResources.cstorVolumeReplicas),
    pools: clients.for<CStorPool>(cstorResources.cstorPools),
    events: clients.for<CoreEvent>(resources.events),
    store: o.pool,
    owned,
    address: hostPort(o.advertise, o.replicaAddr.port),
    mgmtAddress: hostPort(mgmtHost, o.mgmtAddr.port),
    node: os.hostname(),
    dropVolume: o.dropVolume,
    logger: o.logger,
    registry: o.registry,
    ...(o.failpoint
      ? {
          failpoint: (point: string) => {
            if (point !== o.failpoint) return;
            o.logger.warn('failpoint reached: killing the process', { failpoint: point });
            process.kill(process.pid, 'SIGKILL');
          },
        }
      : {}),
  });
  reconciler.start();
  return reconciler;
}

function hostPort(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}
