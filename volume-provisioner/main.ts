// `cstor volume-provisioner`: the external provisioner openebs.io/provisioner-iscsi on the shared
// core of lib/provisioner, talking to m-apiserver through lib/maya-client. The only place that
// reads argv and env.
import { parseProvisionerConfig, provisionerOptions, type ProvisionerConfig } from '../lib/provisioner/config.ts';
import { runProvisionerDaemon } from '../lib/provisioner/daemon.ts';
import { IscsiVolumeProvisioner, iscsiProvisionerName } from './provisioner.ts';

const spec = {
  name: 'volume-provisioner',
  summary: `External provisioner ${iscsiProvisionerName}: claims of cStor classes → volumes through m-apiserver → iSCSI PVs; released PVs with reclaim Delete → volumes deleted.`,
  options: provisionerOptions('Leader election identity and Event source host (default: hostname-pid-random).'),
  notes: 'See docs/provisioners.md.',
};

export type VolumeProvisionerConfig = ProvisionerConfig;

/** argv + env → one frozen config, listing every problem at once; null after --help. */
export function volumeProvisionerConfig(argv: readonly string[], env: NodeJS.ProcessEnv): Readonly<VolumeProvisionerConfig> | null {
  return parseProvisionerConfig(spec, argv, env);
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const config = volumeProvisionerConfig(argv, env);
  if (config === null) return;
  await runProvisionerDaemon(config, env, {
    component: 'volume-provisioner',
    provisionerName: iscsiProvisionerName,
    metricsPrefix: 'volume_provisioner',
    makeProvisioner: ({ maya }) => new IscsiVolumeProvisioner(maya),
  });
}
