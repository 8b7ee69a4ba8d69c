// The pool's own CStorPool (cluster-scoped, named after --name): created when absent, its
// status written through the status subresource (merge patch): phase, the replica port's
// address, the mgmt address, capacity {total, used, free} in bytes, the replica count and
// lastUpdateTime. Written at start, after each replica create/delete, and on every resync
// (lastUpdateTime is then a heartbeat); phase Offline on a clean shutdown.
// Only the pool daemon writes its CStorPool's status; spec {path, node} is set on create.
import type { Logger } from '../../lib/logger.ts';
import { hasErrorCode } from '../../lib/errors.ts';
import type { OperationMetrics } from '../../lib/metrics.ts';
import type { Clock } from '../../lib/kube/clock.ts';
import type { ResourceClient } from '../../lib/kube/resource-client.ts';
import { kubeTime } from '../../lib/kube/time-format.ts';
import type { Pool } from '../store/types.ts';
import { cstorApiVersion, type CStorPool, type CStorPoolStatus, type PoolPhase } from './types.ts';

export type PoolClient = Pick<ResourceClient<CStorPool>, 'create' | 'patchStatus'>;

export interface PoolStatusOptions {
  poolName: string;
  client: PoolClient;
  store: Pick<Pool, 'space' | 'listReplicas'>;
  /** host:port of the replica protocol, as targets reach it. */
  address: string;
  mgmtAddress: string;
  spec: { path: string; node: string };
  clock: Clock;
  logger: Logger;
  metrics?: OperationMetrics;
}

export class PoolStatusWriter {
  private last: CStorPoolStatus | undefined;

  constructor(private readonly o: PoolStatusOptions) {}

  /** The status the pool reports now for `phase`. */
  async status(phase: PoolPhase): Promise<CStorPoolStatus> {
    const [space, replicas] = await Promise.all([this.o.store.space(), this.o.store.listReplicas()]);
    return {
      phase,
      address: this.o.address,
      mgmtAddress: this.o.mgmtAddress,
      capacity: { total: space.usedBytes + space.freeBytes, used: space.usedBytes, free: space.freeBytes },
      replicas: replicas.length,
      lastUpdateTime: kubeTime(this.o.clock.now()),
    };
  }

  /** Writes the status (creating the CStorPool first when it is absent). */
  async write(phase: PoolPhase): Promise<CStorPoolStatus> {
    const run = async (): Promise<CStorPoolStatus> => {
      const status = await this.status(phase);
      const patch: Record<string, unknown> = { ...status, reason: null, message: null };
      if (phase === 'Offline') Object.assign(patch, { reason: 'PoolStopped', message: `pool daemon ${this.o.poolName} stopped` });
      try {
        await this.o.client.patchStatus({ name: this.o.poolName }, patch);
      } catch (err) {
        if (!hasErrorCode(err, 'not_found')) throw err;
        await this.create();
        await this.o.client.patchStatus({ name: this.o.poolName }, patch);
      }
      if (this.last?.phase !== phase) this.o.logger.info('CStorPool status', { phase, address: status.address, replicas: status.replicas });
      this.last = status;
      return status;
    };
    return this.o.metrics ? this.o.metrics.observe('pool_status', run) : run();
  }

  private async create(): Promise<void> {
    const obj: CStorPool = {
      apiVersion: cstorApiVersion,
      kind: 'CStorPool',
      metadata: { name: this.o.poolName, labels: { 'openebs.io/cas-type': 'cstor' } },
      spec: { path: this.o.spec.path, node: this.o.spec.node },
    };
    try {
      await this.o.client.create(obj);
      this.o.logger.info('CStorPool created', { name: this.o.poolName });
    } catch (err) {
      if (!hasErrorCode(err, 'already_exists')) throw err;
    }
  }
}
