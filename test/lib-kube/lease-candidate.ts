// A leader-election candidate in its own process, for tests that kill -9 a leader.
// Usage: node --import tsx lease-candidate.ts KUBECONFIG IDENTITY
// Prints "started <identity>" / "stopped <identity>" lines.
import { silentLogger } from '../../lib/logger.ts';
import { loadKubeConfig } from '../../lib/kube/kubeconfig.ts';
import { LeaderElector } from '../../lib/kube/leader-election.ts';
import { ResourceClient } from '../../lib/kube/resource-client.ts';
import { resources } from '../../lib/kube/resources.ts';
import { HttpKubeTransport } from '../../lib/kube/transport.ts';
import type { Lease } from '../../lib/kube/types/lease.ts';
import { leaseTimings } from './lease-timings.ts';

const [kubeconfigPath, identity] = process.argv.slice(2);
if (!kubeconfigPath || !identity) {
  process.stderr.write('usage: lease-candidate.ts KUBECONFIG IDENTITY\n');
  process.exit(2);
}
const { kubeConfig } = loadKubeConfig({ kubeconfigPath, env: {} });
const elector = new LeaderElector({
  lease: { name: 'lib-kube-test', namespace: 'default' },
  identity,
  client: new ResourceClient<Lease>(new HttpKubeTransport(kubeConfig), resources.leases),
  logger: silentLogger(),
  ...leaseTimings,
  onStartedLeading: () => process.stdout.write(`started ${identity}\n`),
  onStoppedLeading: () => process.stdout.write(`stopped ${identity}\n`),
});
elector.start();
process.on('SIGTERM', () => {
  void elector.stop().then(() => process.exit(0));
});
