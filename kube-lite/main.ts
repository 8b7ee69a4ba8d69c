// `cstor kube-lite`: the embedded Kubernetes API server for development and tests.
import path from 'node:path';
import { ensureWritableDir, parseCommand, parseHostPort } from '../lib/cli/args.ts';
import { logLevelFrom } from '../lib/cli/daemon-options.ts';
import { takePidLock } from '../lib/cli/pid-lock.ts';
import { CstorError } from '../lib/errors.ts';
import { announceListening } from '../lib/listen.ts';
import { createLogger } from '../lib/logger.ts';
import { shutdown, waitForSignal } from '../lib/shutdown.ts';
import { startKubeLite } from './server.ts';

const spec = {
  name: 'kube-lite',
  summary: 'A one-process Kubernetes API server for development and tests (NOT for production): core v1, storage, coordination and CRDs, watch, a PV binder. Writes DIR/kubeconfig for kubectl and @kubernetes/client-node.',
  options: {
    listen: { type: 'string', value: 'HOST:PORT', description: 'Address to serve the API on (port 0: any free port)', default: '127.0.0.1:6443' },
    'data-dir': { type: 'string', value: 'DIR', description: 'Where objects (snapshot + write-ahead log), the token and the kubeconfig live', required: true },
    'history-size': { type: 'string', value: 'N', description: 'Watch events retained for watches from an old resourceVersion', default: '10000' },
    'bookmark-seconds': { type: 'string', value: 'N', description: 'Interval of BOOKMARK events on watches that allow them', default: '30' },
    'log-level': { type: 'string', value: 'LEVEL', description: 'error, warn, info or debug (env LOG_LEVEL)' },
  },
  notes: 'Every request needs the bearer token from DIR/kubeconfig. Point kubectl at it with `kubectl --kubeconfig DIR/kubeconfig get ns`.',
} as const;

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const args = parseCommand(spec, argv);
  if (!args) return;
  const problems: string[] = [];
  let listen = { host: '', port: 0 };
  try {
    listen = parseHostPort(args.listen, '--listen');
  } catch (err) {
    problems.push((err as Error).message);
  }
  const historySize = Number(args['history-size']);
  if (!Number.isInteger(historySize) || historySize < 1) problems.push(`--history-size: "${args['history-size']}" is not a positive integer`);
  const bookmarkSeconds = Number(args['bookmark-seconds']);
  if (!(bookmarkSeconds > 0)) problems.push(`--bookmark-seconds: "${args['bookmark-seconds']}" is not a positive number`);
  const logLevel = logLevelFrom(args['log-level'], env, problems);
  if (problems.length > 0) throw new CstorError('invalid', `${problems.join('; ')} (see --help)`);
  const { host, port } = listen;
  const config = Object.freeze({ host, port, dataDir: path.resolve(args['data-dir']), historySize, bookmarkIntervalMs: bookmarkSeconds * 1000, logLevel });
  const logger = createLogger({ component: 'kube-lite', level: config.logLevel });
  logger.warn('kube-lite is a development Kubernetes API server, not a production one');
  await ensureWritableDir(config.dataDir, '--data-dir');
  // One kube-lite per directory: a second would compact at start and delete the first one's log.
  const lock = takePidLock(config.dataDir, 'kube-lite');
  let kl: Awaited<ReturnType<typeof startKubeLite>>;
  try {
    kl = await startKubeLite({ host: config.host, port: config.port, dataDir: config.dataDir, historySize: config.historySize, bookmarkIntervalMs: config.bookmarkIntervalMs, logger });
  } catch (err) {
    lock.release();
    throw err;
  }
  announceListening(logger, 'api', kl.address);
  logger.info('kubeconfig written', { path: kl.kubeconfigPath, server: kl.url });

  await waitForSignal(logger);
  await shutdown(logger, 'kube-lite', async () => {
    await kl.close();
    lock.release();
  });
}
