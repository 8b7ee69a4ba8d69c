// `cstor up`: the embedded default. Starts kube-lite and every component as separate local
// processes (lib/embedded/system.ts), applies deploy/ to kube-lite, prints the kubeconfig and
// the kubectl commands to try, and runs until SIGINT/SIGTERM, then stops everything and exits 0.
// The only place that reads argv and env for `up`.
import path from 'node:path';
import { parseCommand } from '../lib/cli/args.ts';
import { CstorError, describeError } from '../lib/errors.ts';
import { createLogger } from '../lib/logger.ts';
import { startEmbedded, type EmbeddedSystem } from '../lib/embedded/system.ts';

const spec = {
  name: 'up',
  summary:
    'The embedded default: starts kube-lite, m-apiserver, a target, three pools, the volume-provisioner, the snapshot-controller and the snapshot-provisioner as separate processes on this machine, applies deploy/ to kube-lite and keeps everything running until Ctrl-C.',
  options: {
    'data-dir': { type: 'string', default: './.cstor', value: 'DIR', description: 'Where all state lives (kube-lite objects, pools, target, logs, kubeconfig, state.json); a second `up` on it resumes.' },
    'listen-host': { type: 'string', default: '127.0.0.1', value: 'HOST', description: 'The address every component listens on.' },
    ports: { type: 'string', default: 'default', value: 'default|any', description: "default: last run's ports, else the design's (kube-lite 6443, m-apiserver 5656, iSCSI 3260, target mgmt 9500) when free, else any; any: let the OS pick (tests)." },
    'log-format': { type: 'string', default: 'text', value: 'FORMAT', description: 'text or json (the console log of `up` itself).' },
    'log-level': { type: 'string', value: 'LEVEL', description: 'error|warn|info|debug (default: $LOG_LEVEL or info) for the console; components log at info (debug with debug) to DIR/logs.' },
    verbose: { type: 'boolean', description: 'Relay every component log line to the console (default: warnings and errors only; all lines are in DIR/logs/<component>.log).' },
    'stop-grace': { type: 'string', default: '10000', value: 'MS', description: 'On stop, SIGKILL a component that has not exited this long after SIGTERM.' },
  },
  notes: 'Stop with Ctrl-C (SIGINT) or SIGTERM. State: DIR/state.json (addresses and pids). See docs/embedded.md.',
} as const;

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const opts = parseCommand(spec, argv);
  if (opts === null) return;
  const problems: string[] = [];
  if (opts.ports !== 'default' && opts.ports !== 'any') problems.push(`--ports must be default or any, not "${opts.ports}"`);
  if (opts['log-format'] !== 'text' && opts['log-format'] !== 'json') problems.push('--log-format must be text or json');
  const logLevel = opts['log-level'] ?? env.LOG_LEVEL ?? 'info';
  if (!['error', 'warn', 'info', 'debug'].includes(logLevel)) problems.push(`log level "${logLevel}" is not one of error, warn, info, debug`);
  const grace = Number(opts['stop-grace']);
  if (!Number.isInteger(grace) || grace < 100 || grace > 120_000) problems.push('--stop-grace must be an integer number of ms in 100..120000');
  if (!opts['listen-host']) problems.push('--listen-host must not be empty');
  if (problems.length > 0) throw new CstorError('invalid', problems.join('; '));

  const dataDir = path.resolve(opts['data-dir']);
  const logger = createLogger({ component: 'cstor-up', level: logLevel, format: opts['log-format'] as 'text' | 'json' });
  const verbose = opts.verbose;
  const abort = new AbortController();
  let system: EmbeddedSystem | null = null;
  let signals = 0;
  let firstSignalAt = 0;
  let resolveStop: (signal: string) => void = () => {};
  const stopRequested = new Promise<string>((resolve) => (resolveStop = resolve));
  const onSignal = (signal: NodeJS.Signals): void => {
    // The same signal sent to a whole process group (timeout(1), a terminal) can arrive twice at once.
    if (signals > 0 && Date.now() - firstSignalAt < 1000) return;
    signals += 1;
    if (signals === 1) {
      firstSignalAt = Date.now();
      logger.info('stopping everything', { signal });
      abort.abort();
      resolveStop(signal);
    } else {
      logger.warn('second signal: killing every component now', { signal });
      system?.supervisor.killAll();
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  logger.info('starting the embedded system', { dataDir, listenHost: opts['listen-host'] });
  try {
    system = await startEmbedded({
      dataDir,
      listenHost: opts['listen-host'],
      ports: opts.ports as 'default' | 'any',
      logger,
      stopGraceMs: grace,
      signal: abort.signal,
      // Components log at info at least: `up` reads their "listening" lines (info) to learn their
      // ports, and its console relay already shows only their warnings and errors.
      env: { ...env, LOG_LEVEL: logLevel === 'debug' ? 'debug' : 'info' },
      onChildLine: (child, line, entry) => {
        const level = typeof entry?.level === 'string' ? entry.level : null;
        if (!verbose && level !== 'warn' && level !== 'error') return;
        if (entry) {
          const { level: _l, message, timestamp: _t, component: _c, ...rest } = entry;
          logger.log(level === 'warn' || level === 'error' ? level : 'info', `[${child}] ${String(message)}`, { child, ...rest });
        } else if (verbose) {
          logger.info(`[${child}] ${line}`, { child });
        }
      },
    });
  } catch (err) {
    if (abort.signal.aborted) {
      logger.info('stopped during start-up');
      return;
    }
    throw err;
  }
  const state = system.state();
  logger.info('embedded system ready', { kubeconfig: system.kubeconfig, state: path.join(dataDir, 'state.json'), endpoints: state.endpoints, skipped: state.skipped });
  process.stdout.write(banner(system.kubeconfig, dataDir, state.skipped));

  await stopRequested;
  try {
    await system.stop();
    logger.info('everything stopped');
  } catch (err) {
    logger.error('stopping failed', { error: describeError(err) });
    process.exitCode = 1;
  }
}

function banner(kubeconfig: string, dataDir: string, skipped: Record<string, string>): string {
  const k = `kubectl --kubeconfig ${kubeconfig}`;
  const lines = [
    '',
    'cstor up: the embedded system is running (kube-lite is a development API server, not a production one).',
    `  kubeconfig: ${kubeconfig}`,
    '  try:',
    `    ${k} get sc,pvc,volumesnapshot,volumesnapshotdata -A`,
    `    ${k} get crd`,
    `    ${k} get cstorpool`,
    `    ${k} -n openebs get cstorvolume,cstorvolumereplica,svc,endpoints`,
    `    export KUBECONFIG=${kubeconfig}`,
    `  logs: ${path.join(dataDir, 'logs')}/<component>.log   state: ${path.join(dataDir, 'state.json')}`,
    ...Object.entries(skipped).map(([name, why]) => `  not started: ${name} (${why})`),
    '  Ctrl-C stops everything.',
    '',
  ];
  return lines.join('\n') + '\n';
}
