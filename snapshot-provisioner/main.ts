// `cstor snapshot-provisioner`: the external provisioner
// volumesnapshot.external-storage.k8s.io/snapshot-promoter on the shared core of lib/provisioner:
// claims annotated with a VolumeSnapshot → clone volumes through m-apiserver → iSCSI PVs.
// The only place that reads argv and env.
import { parseProvisionerConfig, provisionerOptions, type ProvisionerConfig } from '../lib/provisioner/config.ts';
import { runProvisionerDaemon } from '../lib/provisioner/daemon.ts';
import { kubeCloneSourceReads } from './kube-reads.ts';
import { promoterName, SnapshotPromoter } from './provisioner.ts';

const spec = {
  name: 'snapshot-provisioner',
  summary: `External provisioner ${promoterName}: claims annotated snapshot.alpha.kubernetes.io/snapshot → clone volumes through m-apiserver → iSCSI PVs; released PVs with reclaim Delete → clone volumes deleted.`,
  options: provisionerOptions('PV annotation snapshotProvisionerIdentity, leader identity and Event source host (default: hostname-pid-random).'),
  notes: 'See docs/snapshot-provisioner.md.',
};

export type SnapshotProvisionerConfig = ProvisionerConfig;

/** argv + env → one frozen config, listing every problem at once; null after --help. */
export function snapshotProvisionerConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Readonly<SnapshotProvisionerConfig> | null {
  return parseProvisionerConfig(spec, argv, env);
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const config = snapshotProvisionerConfig(argv, env);
  if (config === null) return;
  await runProvisionerDaemon(config, env, {
    component: 'snapshot-provisioner',
    provisionerName: promoterName,
    metricsPrefix: 'snapshot_promoter',
    makeProvisioner: ({ maya, clients, identity }) => new SnapshotPromoter({ maya, reads: kubeCloneSourceReads(clients), identity }),
  });
}
