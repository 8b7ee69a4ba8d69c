// `cstor demo`: the seeds' story (DESIGN.md §1) against a running `cstor up`, step by step with
// timings (lib/demo/story.ts). Reads DIR/state.json and DIR/kubeconfig; with no live `cstor up`
// on DIR it says so and exits 1. The only place that reads argv and env for `demo`.
import fs from 'node:fs';
import path from 'node:path';
import { parseCommand } from '../lib/cli/args.ts';
import { CstorError } from '../lib/errors.ts';
import { createKubeClients } from '../lib/kube/kube-clients.ts';
import { loadKubeConfig } from '../lib/kube/kubeconfig.ts';
import { isProcessAlive, readState } from '../lib/embedded/state.ts';
import { formatMs, runStory, timingTable } from '../lib/demo/story.ts';

const spec = {
  name: 'demo',
  summary:
    'Tells the seeds\' story against a running `cstor up`: a PVC, data written over iSCSI, a VolumeSnapshot, more data, a clone PVC from the snapshot, and the clone read back and compared with the snapshot moment; each step timed.',
  options: {
    'data-dir': { type: 'string', default: './.cstor', value: 'DIR', description: 'The data dir of the running `cstor up` (its state.json and kubeconfig).' },
    namespace: { type: 'string', default: 'default', value: 'NS', description: 'Namespace of the demo PVCs and VolumeSnapshot.' },
    size: { type: 'string', default: '64Mi', value: 'SIZE', description: 'Size of the source and clone PVCs.' },
    keep: { type: 'boolean', description: 'Leave the PVCs and the VolumeSnapshot in place (default: delete them at the end).' },
    timeout: { type: 'string', default: '60000', value: 'MS', description: 'How long one step may wait for Bound or Ready.' },
  },
  notes: 'Start the system first: `node bin/cstor.js up --data-dir DIR` (in another terminal). Needs qemu-io (qemu-utils, qemu-block-extra). See docs/demo.md.',
} as const;

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const opts = parseCommand(spec, argv);
  if (opts === null) return;
  const timeoutMs = Number(opts.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1000) throw new CstorError('invalid', '--timeout must be an integer number of ms, at least 1000');
  const dataDir = path.resolve(opts['data-dir']);
  const startCmd = `node bin/cstor.js up --data-dir ${opts['data-dir']}`;
  const state = readState(dataDir);
  if (!state) throw new CstorError('unavailable', `no cstor up has run on ${dataDir} (no state.json): start one with \`${startCmd}\` and run the demo again`);
  if (state.upPid === null || !isProcessAlive(state.upPid)) {
    throw new CstorError('unavailable', `cstor up on ${dataDir} is not running (${state.stoppedAt ? `stopped at ${state.stoppedAt}` : 'its process is gone'}): start it with \`${startCmd}\``);
  }
  const notRunning = Object.values(state.components).filter((c) => c.state !== 'running');
  if (notRunning.length > 0) {
    process.stdout.write(`warning: not running: ${notRunning.map((c) => `${c.name} (${c.state})`).join(', ')}\n`);
  }
  if (!fs.existsSync(state.kubeconfig)) throw new CstorError('unavailable', `${state.kubeconfig} is missing: is cstor up still starting?`);
  const { kubeConfig } = loadKubeConfig({ kubeconfigPath: state.kubeconfig, env });
  const clients = createKubeClients(kubeConfig);
  const print = (line: string): void => void process.stdout.write(line + '\n');
  print(`cstor demo on ${dataDir} (kube-lite ${state.endpoints.kubeApi ?? '?'}, m-apiserver ${state.endpoints.mapi ?? '?'}, iSCSI ${state.endpoints.targetPortal ?? '?'})`);
  const started = performance.now();
  const result = await runStory({ clients, namespace: opts.namespace, size: opts.size, keep: opts.keep, print, timeoutMs });
  print('');
  print(timingTable(result.steps));
  print(`total ${formatMs(performance.now() - started)}: the clone shows date.txt as it was at the snapshot; the source has the newer one.`);
  if (opts.keep) print(`try: kubectl --kubeconfig ${state.kubeconfig} get pvc,volumesnapshot,volumesnapshotdata`);
}
