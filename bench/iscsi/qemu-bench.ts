// The qemu-img bench workloads both iSCSI benchmarks run (bench/iscsi, bench/target-iscsi).
// qemu-img bench has no random mode: the 4 KiB runs step 1 MiB + 4 KiB to scatter the IO.
import { runTool } from '../../test/iscsi/run-tool.ts';

export interface Workload {
  readonly name: string;
  readonly args: string[];
  readonly ops: number;
  readonly bytes: number;
}

export function qemuWorkloads(ops4k: number, ops1m: number): Workload[] {
  return [
    { name: '4k-write-qd16', args: ['-w', '-c', String(ops4k), '-d', '16', '-s', '4096', '-S', String((1 << 20) + 4096)], ops: ops4k, bytes: 4096 },
    { name: '4k-read-qd16', args: ['-c', String(ops4k), '-d', '16', '-s', '4096', '-S', String((1 << 20) + 4096)], ops: ops4k, bytes: 4096 },
    { name: '1m-seq-write', args: ['-w', '-c', String(ops1m), '-d', '16', '-s', '1M'], ops: ops1m, bytes: 1 << 20 },
    { name: '1m-seq-read', args: ['-c', String(ops1m), '-d', '16', '-s', '1M'], ops: ops1m, bytes: 1 << 20 },
  ];
}

/** Runs one workload against an iscsi:// URL; resolves with the seconds qemu-img reports. */
export async function qemuBench(url: string, w: Workload, timeoutMs: number): Promise<number> {
  const r = await runTool('qemu-img', ['bench', '-f', 'raw', ...w.args, url], timeoutMs);
  const m = /Run completed in ([\d.]+) seconds/.exec(r.stdout);
  if (r.code !== 0 || !m) throw new Error(`qemu-img bench ${w.name} on ${url} failed (${r.code}): ${r.stderr || r.stdout}`);
  return Number(m[1]);
}
