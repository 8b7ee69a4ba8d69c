// What the daemons' mains share on their command line: the flags every one of them declares alike
// (--kubeconfig, --log-level, --log-format) and the checks of those and of the other flags they
// read the same way, each problem pushed onto the caller's list so a main still lists them all.
// lib/embedded/probe.ts reads the flags of a main declared as `options: daemonOptions(...)` from
// this file's source: keep each shared flag here as `name: { type: ... }`, and no other such line.
import { existsSync } from 'node:fs';
import { dns1123SubdomainProblems } from '../names.ts';
import { parseHostPort, type OptionSpec } from './args.ts';

/** A main's own options plus the shared --kubeconfig (described as the daemon uses it), --log-level and --log-format. */
export function daemonOptions<const O extends Record<string, OptionSpec>>(own: O, kubeconfigDescription: string) {
  return {
    ...own,
    kubeconfig: { type: 'string', value: 'FILE', description: kubeconfigDescription },
    'log-level': { type: 'string', value: 'LEVEL', description: 'error|warn|info|debug (default: $LOG_LEVEL or info).' },
    'log-format': { type: 'string', default: 'json', value: 'FORMAT', description: 'json or text.' },
  } as const;
}

export type LogFormat = 'json' | 'text';

/** --log-level, else $LOG_LEVEL, else info; a level winston does not know is a problem. */
export function logLevelFrom(flag: string | undefined, env: NodeJS.ProcessEnv, problems: string[]): string {
  const logLevel = flag ?? env.LOG_LEVEL ?? 'info';
  if (!['error', 'warn', 'info', 'debug', 'verbose', 'silly'].includes(logLevel)) problems.push(`log level "${logLevel}" is not one of error, warn, info, debug`);
  return logLevel;
}

/** --log-level and --log-format as daemonOptions declares them. */
export function logConfigFrom(
  opts: { readonly 'log-level'?: string | undefined; readonly 'log-format': string },
  env: NodeJS.ProcessEnv,
  problems: string[],
): { logLevel: string; logFormat: LogFormat } {
  const logLevel = logLevelFrom(opts['log-level'], env, problems);
  if (opts['log-format'] !== 'json' && opts['log-format'] !== 'text') problems.push('--log-format must be json or text');
  return { logLevel, logFormat: opts['log-format'] as LogFormat };
}

/** "HOST:PORT" of `flag`; a bad one is a problem (and yields host '' port 0). */
export function hostPortFrom(value: string, flag: string, problems: string[]): { host: string; port: number } {
  try {
    return parseHostPort(value, flag);
  } catch (err) {
    problems.push((err as Error).message);
    return { host: '', port: 0 };
  }
}

export interface ClusterDaemonFlags {
  readonly kubeconfig?: string | undefined;
  readonly namespace?: string | undefined;
  readonly advertise?: string | undefined;
  readonly 'log-level'?: string | undefined;
  readonly 'log-format': string;
}

export interface ClusterDaemonConfig {
  logLevel: string;
  logFormat: LogFormat;
  /** --namespace, else $OPENEBS_NAMESPACE, else openebs (DNS-1123). */
  namespace: string;
  /** Set when Kubernetes is configured: --kubeconfig, $KUBECONFIG, or in a pod (service host + token). */
  kube?: { kubeconfigPath?: string };
}

/**
 * The flags the data-plane daemons (pool, target) read alike: the log flags, --namespace,
 * --kubeconfig (Kubernetes only when configured) and --advertise (checked here, defaulted by the
 * caller, which knows its listener).
 */
export function clusterDaemonConfig(opts: ClusterDaemonFlags, env: NodeJS.ProcessEnv, problems: string[]): ClusterDaemonConfig {
  const { logLevel, logFormat } = logConfigFrom(opts, env, problems);
  const namespace = opts.namespace ?? env.OPENEBS_NAMESPACE ?? 'openebs';
  const nsProblems = dns1123SubdomainProblems(namespace);
  if (nsProblems.length > 0) problems.push(`namespace "${namespace}" is invalid: ${nsProblems.join('; ')}`);
  if (opts.advertise !== undefined && (opts.advertise.trim() === '' || /[\s/]/.test(opts.advertise))) problems.push(`--advertise "${opts.advertise}" is not a host`);
  const inCluster = Boolean(env.KUBERNETES_SERVICE_HOST) && existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token');
  const kube = opts.kubeconfig || env.KUBECONFIG || inCluster ? { ...(opts.kubeconfig ? { kubeconfigPath: opts.kubeconfig } : {}) } : undefined;
  return { logLevel, logFormat, namespace, ...(kube ? { kube } : {}) };
}
