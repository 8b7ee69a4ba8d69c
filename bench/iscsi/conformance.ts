// libiscsi's conformance suite (iscsi-test-cu, the ALL list) against our portal and against Debian's
// tgtd, in one run: each suite is its own iscsi-test-cu invocation under `timeout` (so a hang costs
// one suite, not the run), suites run one after another per target (they share the LUN), and the two
// targets run in parallel. `-d` (dataloss) is passed: the LUNs are scratch files. The URL is given
// twice so the MultipathIO suite runs over two sessions.
//   node --import tsx bench/iscsi/conformance.ts
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { IscsiPortal } from '../../cstor-target/iscsi/portal.ts';
import { FileBlockDevice } from '../../test/iscsi/file-block-device.ts';
import { runTool } from '../../test/iscsi/run-tool.ts';
import { startTgtd } from '../../test/iscsi/baseline-targets.ts';

export interface SuiteResult {
  readonly suite: string;
  readonly tests: number;
  readonly passed: number;
  readonly failed: string[];
  readonly timedOut: boolean;
}

export interface TargetResult {
  readonly name: string;
  readonly total: number;
  readonly passed: number;
  readonly suites: SuiteResult[];
  readonly seconds: number;
}

const LUN_BYTES = 256 << 20;

/** The suites of the ALL family and how many tests each has, from `iscsi-test-cu --list`. */
export async function listSuites(): Promise<Map<string, number>> {
  const r = await runTool('iscsi-test-cu', ['--list'], 30_000);
  if (r.code !== 0) throw new Error(`iscsi-test-cu --list failed: ${r.stderr}`);
  const suites = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    const parts = line.trim().split('.');
    if (parts[0] !== 'ALL') continue;
    if (parts.length === 2) suites.set(parts[1]!, suites.get(parts[1]!) ?? 0);
    if (parts.length === 3) suites.set(parts[1]!, (suites.get(parts[1]!) ?? 0) + 1);
  }
  return suites;
}

async function runSuite(url: string, suite: string, tests: number, timeoutSec: number): Promise<SuiteResult> {
  // The URL twice: the second is the "multipath" path, so MultipathIO runs instead of skipping.
  const r = await runTool('timeout', ['-k', '5', String(timeoutSec), 'iscsi-test-cu', '-d', '-n', url, url, '-t', `ALL.${suite}`], (timeoutSec + 15) * 1000);
  const out = r.stdout + r.stderr;
  const m = /^\s*tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(out);
  const failed = [...out.matchAll(/Suite (\S+), Test (\S+) had failures/g)].map((x) => `${x[1]}.${x[2]}`);
  if (!m || r.code === 124 || r.code === 137) {
    return { suite, tests, passed: 0, failed: failed.length ? failed : [`${suite}.* (${r.code === 124 ? 'timed out' : `exit ${r.code}`})`], timedOut: true };
  }
  return { suite, tests: Number(m[1]), passed: Number(m[3]), failed, timedOut: false };
}

async function runAll(name: string, url: string, suites: Map<string, number>, timeoutSec: number): Promise<TargetResult> {
  const t0 = Date.now();
  const results: SuiteResult[] = [];
  for (const [suite, tests] of suites) results.push(await runSuite(url, suite, tests, timeoutSec));
  return {
    name,
    total: [...suites.values()].reduce((a, b) => a + b, 0),
    passed: results.reduce((a, r) => a + r.passed, 0),
    suites: results,
    seconds: (Date.now() - t0) / 1000,
  };
}

export interface ConformanceOptions {
  /** Per-suite deadline, seconds. */
  readonly suiteTimeoutSec?: number;
  readonly includeTgtd?: boolean;
}

/** Runs the ALL list against a fresh portal (file-backed LUN) and against tgtd, in parallel. */
export async function runConformance(opts: ConformanceOptions = {}): Promise<{ ours: TargetResult; tgtd: TargetResult | undefined }> {
  const suites = await listSuites();
  const timeoutSec = opts.suiteTimeoutSec ?? 90;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'iscsi-conformance-'));
  const device = await FileBlockDevice.open(path.join(dir, 'lun.img'), LUN_BYTES);
  const portal = new IscsiPortal();
  portal.addTarget({ volume: 'conformance', device });
  const { port } = await portal.listen('127.0.0.1', 0);
  const tgtd = opts.includeTgtd === false ? undefined : await startTgtd({ sizeBytes: LUN_BYTES });
  try {
    const [ours, base] = await Promise.all([
      runAll('cstor-target', `iscsi://127.0.0.1:${port}/${IscsiPortal.iqnFor('conformance')}/0`, suites, timeoutSec),
      tgtd ? runAll('tgtd', tgtd.url, suites, timeoutSec) : Promise.resolve(undefined),
    ]);
    return { ours, tgtd: base };
  } finally {
    await tgtd?.stop();
    await portal.close();
    await device.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

export function formatResult(r: TargetResult): string {
  const lines = [`${r.name}: ${r.passed} of ${r.total} tests pass (${r.seconds.toFixed(1)} s)`];
  for (const s of r.suites) for (const f of s.failed) lines.push(`  failed: ${f}`);
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { ours, tgtd } = await runConformance();
  console.log(formatResult(ours));
  if (tgtd) console.log(formatResult(tgtd));
  if (tgtd) console.log(`ours ${ours.passed} vs tgtd ${tgtd.passed}: ${ours.passed >= tgtd.passed ? 'OK' : 'BELOW tgtd'}`);
  process.exit(tgtd && ours.passed < tgtd.passed ? 1 : 0);
}
