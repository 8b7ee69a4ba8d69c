// Runs a ProvisionController until a signal, optionally under leader election: one Lease per
// provisioner name (`/` → `-`, as the external-storage library names it), so only one replica
// provisions at a time. Losing the lease stops the controller; it starts again when re-elected.
import { describeError } from '../errors.ts';
import { runWhenLeading, type LeaseClient } from '../kube/leader-election.ts';
import type { Logger } from '../logger.ts';
import type { ProvisionController } from './controller.ts';

export interface LeaderElectionConfig {
  client: LeaseClient;
  namespace: string;
  identity: string;
  leaseDurationMs?: number;
}

/** The Lease name for a provisioner name. */
export function leaseNameFor(provisionerName: string): string {
  return provisionerName.replace(/[^a-zA-Z0-9.-]/g, '-').toLowerCase();
}

export interface RunProvisionerOptions {
  provisionerName: string;
  /** A new controller each time leadership is gained. */
  makeController: () => ProvisionController;
  logger: Logger;
  leaderElection?: LeaderElectionConfig;
  /** Resolves when the process should stop. */
  stopped: Promise<unknown>;
}

export async function runProvisioner(options: RunProvisionerOptions): Promise<void> {
  const { logger } = options;
  let current: { controller: ProvisionController; done: Promise<void> } | undefined;
  const start = (): void => {
    if (current) return;
    const controller = options.makeController();
    const done = controller.run().catch((err: unknown) => {
      logger.error('provision controller stopped with an error', { error: describeError(err) });
    });
    current = { controller, done };
    logger.info('provisioning', { provisioner: options.provisionerName });
  };
  const stop = async (): Promise<void> => {
    const c = current;
    current = undefined;
    if (!c) return;
    await c.controller.stop();
    await c.done;
  };
  const le = options.leaderElection;
  const elector = runWhenLeading({
    election: le && { lease: { name: leaseNameFor(options.provisionerName), namespace: le.namespace }, identity: le.identity, client: le.client, leaseDurationMs: le.leaseDurationMs },
    logger,
    start,
    stop,
  });
  await options.stopped;
  await stop();
  await elector?.stop();
}
