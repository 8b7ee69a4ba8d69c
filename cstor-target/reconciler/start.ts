// Builds the target reconciler from the daemon's config: Kubernetes clients from the
// kubeconfig, and the VolumeManager the mgmt API drives, seen through the VolumeEngine port.
// Called by cstor-target/main.ts once both listeners are up.
import os from 'node:os';
import type { Registry } from 'prom-client';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../../lib/logger.ts';
import { createKubeClients } from '../../lib/kube/kube-clients.ts';
import { resources } from '../../lib/kube/resources.ts';
import type { CoreEvent } from '../../lib/kube/types/core.ts';
import type { VolumeManager } from '../mgmt/volume-manager.ts';
import type { ReplicatedVolume } from '../replication/replicated-volume.ts';
import { TargetReconciler } from './controller.ts';
import type { VolumeEngine } from './volume-sync.ts';
import { cstorResources, type CStorPool, type CStorVolume, type CStorVolumeReplica } from './types.ts';

export interface StartTargetReconcilerOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  advertise: string;
  manager: VolumeManager;
  logger: Logger;
  registry: Registry;
}

/** The VolumeManager as the sync sees it; change listeners are attached once per served instance. */
export function managerEngine(manager: VolumeManager): VolumeEngine {
  const watched = new WeakSet<ReplicatedVolume>();
  const volume = (name: string): ReplicatedVolume | undefined => (manager.spec(name) ? manager.get(name) : undefined);
  return {
    serve: (spec) => manager.serve(spec),
    stop: (name) => manager.stop(name),
    spec: (name) => manager.spec(name),
    status: (name) => volume(name)?.status(),
    watch(name, onChange) {
      const v = volume(name);
      if (!v || watched.has(v)) return;
      watched.add(v);
      v.on('change', onChange);
    },
  };
}

export function startTargetReconciler(o: StartTargetReconcilerOptions): TargetReconciler {
  const clients = createKubeClients(o.kubeConfig, { requestTimeoutMs: 30_000 });
  const reconciler = new TargetReconciler({
    namespace: o.namespace,
    advertise: o.advertise,
    cvs: clients.for<CStorVolume>(cstorResources.cstorVolumes),
    cvrs: clients.for<CStorVolumeReplica>(cstorResources.cstorVolumeReplicas),
    pools: clients.for<CStorPool>(cstorResources.cstorPools),
    events: clients.for<CoreEvent>(resources.events),
    engine: managerEngine(o.manager),
    logger: o.logger,
    registry: o.registry,
    host: os.hostname(),
  });
  reconciler.start();
  return reconciler;
}
