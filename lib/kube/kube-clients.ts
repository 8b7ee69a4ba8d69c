// One transport per process, and typed clients over it: what an entry point hands its controllers.
import type { KubeConfig } from '@kubernetes/client-node';
import { ResourceClient } from './resource-client.ts';
import type { ResourceType } from './resource-type.ts';
import { HttpKubeTransport } from './transport.ts';
import type { KubeObject } from './types/meta.ts';

export interface KubeClients {
  readonly transport: HttpKubeTransport;
  /** A typed client for one resource, e.g. `clients.for<VolumeSnapshot>(resources.volumeSnapshots)`. */
  for<T extends KubeObject>(resource: ResourceType): ResourceClient<T>;
}

export function createKubeClients(kubeConfig: KubeConfig, options: { requestTimeoutMs?: number } = {}): KubeClients {
  const transport = new HttpKubeTransport(kubeConfig, options);
  return {
    transport,
    for: <T extends KubeObject>(resource: ResourceType) => new ResourceClient<T>(transport, resource),
  };
}
