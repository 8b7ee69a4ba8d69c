// The `cstor` command: one subcommand per daemon. Each subcommand's module exports
// `main(argv, env)`, the only place that reads argv and env (STYLE.md).
import { describeError, isCstorError } from '../lib/errors.ts';

export type CommandMain = (argv: readonly string[], env: NodeJS.ProcessEnv) => Promise<void>;

interface Subcommand {
  summary: string;
  load: () => Promise<{ main: CommandMain }>;
}

const subcommands: Readonly<Record<string, Subcommand>> = {
  'kube-lite': { summary: 'embedded Kubernetes API server (development and tests)', load: () => import('../kube-lite/main.ts') },
  pool: { summary: 'cStor pool: copy-on-write replicas, replica protocol, mgmt API', load: () => import('../cstor-pool/main.ts') },
  target: { summary: 'cStor target: replicated volumes over iSCSI, snapshots, mgmt API', load: () => import('../cstor-target/main.ts') },
  mapi: { summary: 'm-apiserver: /latest/volumes and /latest/snapshots REST over the CAS engine', load: () => import('../maya-apiserver/main.ts') },
  'volume-provisioner': { summary: 'external provisioner openebs.io/provisioner-iscsi: cStor PVCs → volumes via m-apiserver → iSCSI PVs', load: () => import('../volume-provisioner/main.ts') },
  'snapshot-provisioner': { summary: 'external provisioner snapshot-promoter: PVCs annotated with a VolumeSnapshot → clone volumes via m-apiserver → iSCSI PVs', load: () => import('../snapshot-provisioner/main.ts') },
  'snapshot-controller': { summary: 'VolumeSnapshot → cStor snapshot via m-apiserver → VolumeSnapshotData (leader-elected)', load: () => import('../snapshot-controller/main.ts') },
  up: { summary: 'the embedded default: kube-lite and every component as local processes, deploy/ applied; Ctrl-C stops all', load: () => import('./up.ts') },
  demo: { summary: "the seeds' story against a running `cstor up`: PVC, data over iSCSI, VolumeSnapshot, clone PVC, clone read back; timed", load: () => import('./demo.ts') },
};

function usage(): string {
  const width = Math.max(...Object.keys(subcommands).map((n) => n.length)) + 2;
  const lines = ['Usage: cstor <command> [options]', '', 'Commands:'];
  for (const [name, sub] of Object.entries(subcommands)) lines.push(`  ${name.padEnd(width)}${sub.summary}`);
  lines.push('', 'Run `cstor <command> --help` for the options of one command.');
  return lines.join('\n') + '\n';
}

export async function run(argv: readonly string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return;
  }
  const sub = subcommands[name];
  if (!sub) {
    process.stderr.write(`cstor: unknown command "${name}"\n\n${usage()}`);
    process.exitCode = 2;
    return;
  }
  try {
    const { main } = await sub.load();
    await main(rest, process.env);
  } catch (err) {
    // Bad input: the message names every problem (its causes only repeat them); else the whole chain.
    const text = isCstorError(err) && err.code === 'invalid' ? err.message : describeError(err);
    const prefix = `cstor ${name}: `;
    process.stderr.write(`${text.startsWith(prefix) ? '' : prefix}${text}\n`);
    process.exitCode = isCstorError(err) && err.code === 'invalid' ? 2 : 1;
  }
}
