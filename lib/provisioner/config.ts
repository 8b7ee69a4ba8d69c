// The command-line options and the frozen config every external provisioner daemon shares
// (the volume-provisioner and the snapshot-promoter): only entry points call this, with argv
// and env; every problem is listed at once.
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { parseCommand, parseHostPort, type CommandSpec, type OptionSpec } from '../cli/args.ts';
import { logLevelFrom } from '../cli/daemon-options.ts';
import { CstorError } from '../errors.ts';

export function provisionerOptions(identityDescription: string) {
  return {
    kubeconfig: { type: 'string', value: 'FILE', description: 'kubeconfig file (default: KUBECONFIG, in-cluster, ~/.kube/config).' },
    'mapi-addr': { type: 'string', value: 'URL', description: 'm-apiserver address, e.g. http://127.0.0.1:5656 (env MAPI_ADDR; default: the Service maya-apiserver-service in the OpenEBS namespace, port 5656, looked up again after a failure).' },
    namespace: { type: 'string', value: 'NS', description: 'OpenEBS namespace: the Service and the Lease (env OPENEBS_NAMESPACE; default openebs).' },
    metrics: { type: 'string', value: 'HOST:PORT', description: 'Serve /metrics and /healthz here (port 0: any free port); announced as listener "metrics".' },
    'leader-elect': { type: 'string', default: 'true', value: 'true|false', description: 'Leader election on a Lease named after the provisioner, so several replicas can run.' },
    'lease-duration': { type: 'string', default: '15', value: 'SECONDS', description: 'Leader lease duration.' },
    identity: { type: 'string', value: 'ID', description: identityDescription },
    workers: { type: 'string', default: '4', value: 'N', description: 'Parallel claims and volumes in progress.' },
    'log-level': { type: 'string', value: 'LEVEL', description: 'error|warn|info|debug (default: $LOG_LEVEL or info).' },
  } as const satisfies Record<string, OptionSpec>;
}

export interface ProvisionerConfig {
  kubeconfig?: string;
  mapiAddr?: string;
  namespace: string;
  metrics?: { host: string; port: number };
  leaderElect: boolean;
  leaseDurationMs: number;
  identity: string;
  workers: number;
  logLevel: string;
}

/** argv + env → one frozen config, listing every problem at once; null after --help. */
export function parseProvisionerConfig(
  spec: CommandSpec<ReturnType<typeof provisionerOptions>>,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): Readonly<ProvisionerConfig> | null {
  const opts = parseCommand(spec, argv);
  if (opts === null) return null;
  const problems: string[] = [];
  let metrics: { host: string; port: number } | undefined;
  if (opts.metrics) {
    try {
      metrics = parseHostPort(opts.metrics, '--metrics');
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (opts['leader-elect'] !== 'true' && opts['leader-elect'] !== 'false') problems.push(`--leader-elect "${opts['leader-elect']}" is not true or false`);
  const leaseSeconds = Number(opts['lease-duration']);
  if (!Number.isFinite(leaseSeconds) || leaseSeconds < 2 || leaseSeconds > 600) problems.push(`--lease-duration "${opts['lease-duration']}" is not a number of seconds from 2 to 600`);
  const workers = Number(opts.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) problems.push(`--workers "${opts.workers}" is not an integer from 1 to 64`);
  const namespace = opts.namespace ?? env.OPENEBS_NAMESPACE ?? 'openebs';
  if (!namespace) problems.push('--namespace is empty');
  if (opts.identity !== undefined && !opts.identity.trim()) problems.push('--identity is empty');
  const logLevel = logLevelFrom(opts['log-level'], env, problems);
  const mapiAddr = opts['mapi-addr'] ?? env.MAPI_ADDR;
  if (mapiAddr !== undefined && !mapiAddr.trim()) problems.push('the m-apiserver address (--mapi-addr / MAPI_ADDR) is empty');
  if (problems.length > 0) throw new CstorError('invalid', `cstor ${spec.name}: ${problems.join('; ')}`);
  return Object.freeze({
    ...(opts.kubeconfig ? { kubeconfig: opts.kubeconfig } : {}),
    ...(mapiAddr ? { mapiAddr } : {}),
    namespace,
    ...(metrics ? { metrics } : {}),
    leaderElect: opts['leader-elect'] === 'true',
    leaseDurationMs: leaseSeconds * 1000,
    identity: opts.identity?.trim() ?? `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    workers,
    logLevel,
  });
}
