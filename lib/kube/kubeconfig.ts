// Where the Kubernetes client configuration comes from, in order: an explicit path (a
// --kubeconfig flag), KUBECONFIG, in-cluster (service account token and CA), ~/.kube/config.
// The entry point passes its env in; nothing here reads process.env. A failure names every
// place that was tried and why it did not apply.
import fs from 'node:fs';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { CstorError } from '../errors.ts';

export const serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface LoadKubeConfigOptions {
  /** An explicit kubeconfig file (e.g. from --kubeconfig); when given, it must load. */
  kubeconfigPath?: string;
  env: Readonly<Record<string, string | undefined>>;
  /** Tests point this at a fake service account directory. */
  serviceAccountDir?: string;
}

export interface LoadedKubeConfig {
  kubeConfig: KubeConfig;
  /** Where it came from: "explicit path /x", "KUBECONFIG /x", "in-cluster", "/home/u/.kube/config". */
  source: string;
  /** The context's namespace (in-cluster: the pod's namespace), if any. */
  namespace?: string;
}

export function loadKubeConfig(options: LoadKubeConfigOptions): LoadedKubeConfig {
  const { env } = options;
  const tried: string[] = [];

  if (options.kubeconfigPath) return fromFile(options.kubeconfigPath, `explicit path ${options.kubeconfigPath}`);
  tried.push('explicit path (none given)');

  const fromEnv = env.KUBECONFIG;
  if (fromEnv) {
    const files = fromEnv.split(path.delimiter).filter(Boolean);
    const existing = files.find((f) => fs.existsSync(f));
    if (!existing) throw new CstorError('invalid', `KUBECONFIG names no existing file: ${files.join(', ')}`);
    return fromFile(existing, `KUBECONFIG ${existing}`);
  }
  tried.push('KUBECONFIG (not set)');

  const saDir = options.serviceAccountDir ?? serviceAccountDir;
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  const tokenFile = path.join(saDir, 'token');
  if (host && port && fs.existsSync(tokenFile)) return inCluster(host, port, saDir);
  tried.push(
    !host || !port
      ? 'in-cluster (KUBERNETES_SERVICE_HOST/PORT not set)'
      : `in-cluster (no service account token at ${tokenFile})`,
  );

  const home = env.HOME ?? env.USERPROFILE;
  if (home) {
    const file = path.join(home, '.kube', 'config');
    if (fs.existsSync(file)) return fromFile(file, file);
    tried.push(`${file} (missing)`);
  } else {
    tried.push('~/.kube/config (HOME not set)');
  }
  throw new CstorError('invalid', `no Kubernetes client configuration found; tried: ${tried.join('; ')}`);
}

function fromFile(file: string, source: string): LoadedKubeConfig {
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(file);
  } catch (err) {
    throw new CstorError('invalid', `cannot load kubeconfig ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const context = kc.getContextObject(kc.getCurrentContext());
  if (!context) throw new CstorError('invalid', `kubeconfig ${file}: current context "${kc.getCurrentContext()}" is not defined`);
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server) throw new CstorError('invalid', `kubeconfig ${file}: context "${context.name}" has no cluster with a server URL`);
  return context.namespace ? { kubeConfig: kc, source, namespace: context.namespace } : { kubeConfig: kc, source };
}

function inCluster(host: string, port: string, saDir: string): LoadedKubeConfig {
  const hostPart = host.includes(':') ? `[${host}]` : host;
  const caFile = path.join(saDir, 'ca.crt');
  const nsFile = path.join(saDir, 'namespace');
  const namespace = fs.existsSync(nsFile) ? fs.readFileSync(nsFile, 'utf8').trim() : undefined;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'in-cluster', server: `https://${hostPart}:${port}`, caFile: fs.existsSync(caFile) ? caFile : undefined, skipTLSVerify: false }],
    // tokenFile: client-node re-reads the file, so rotated (bound) service account tokens keep working.
    users: [{ name: 'in-cluster', authProvider: { name: 'tokenFile', config: { tokenFile: path.join(saDir, 'token') } } }],
    contexts: [{ name: 'in-cluster', cluster: 'in-cluster', user: 'in-cluster', ...(namespace ? { namespace } : {}) }],
    currentContext: 'in-cluster',
  });
  return namespace ? { kubeConfig: kc, source: 'in-cluster', namespace } : { kubeConfig: kc, source: 'in-cluster' };
}
