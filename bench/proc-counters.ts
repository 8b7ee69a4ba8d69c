// CPU time, context switches and read/write syscalls of a process (all its threads), from /proc.
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcCounters {
  /** CPU seconds (user + system). */
  cpu: number;
  /** Voluntary + involuntary context switches. */
  ctx: number;
  /** read-like and write-like syscalls (/proc/PID/io syscr, syscw). */
  sysr: number;
  sysw: number;
}

export function procCounters(pid: number): ProcCounters {
  let cpu = 0;
  let ctx = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const f = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      cpu += (Number(f[11]) + Number(f[12])) / 100;
      const st = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      ctx += Number(/\nvoluntary_ctxt_switches:\s+(\d+)/.exec(st)?.[1] ?? 0) + Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(st)?.[1] ?? 0);
    } catch {
      // a thread that exited meanwhile
    }
  }
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  return { cpu, ctx, sysr: Number(/syscr: (\d+)/.exec(io)?.[1]), sysw: Number(/syscw: (\d+)/.exec(io)?.[1]) };
}
