// The seeds' story (DESIGN.md §1), step by step with timings, against a running embedded system:
// a PVC on openebs-cstor-default → Bound; a date.txt-like record written over iSCSI; a
// VolumeSnapshot → Ready (and its VolumeSnapshotData); a newer record; a promoter PVC naming the
// snapshot → Bound; the clone read back (the record as it was at the snapshot) and the source (the
// newer record). Each step is timed; a failure names the step.
import { randomBytes } from 'node:crypto';
import { CstorError, describeError } from '../errors.ts';
import type { KubeClients } from '../kube/kube-clients.ts';
import { pvIscsiUrl, readRecord, writeRecord } from './iscsi-io.ts';
import { claimManifest, seedClients, snapshotManifest, waitClaimBound, waitGone, waitSnapshotReady, type SeedClients } from './kube-wait.ts';

export interface StoryOptions {
  clients: KubeClients;
  namespace: string;
  /** Source and clone size (default 64Mi). */
  size?: string;
  sourceClass?: string;
  promoterClass?: string;
  /** Leave the objects in place. */
  keep?: boolean;
  /** Each printed line. */
  print: (line: string) => void;
  timeoutMs?: number;
}

export interface StepTiming {
  /** Short name for the summary table. */
  step: string;
  title: string;
  ms: number;
  detail: string;
}

export interface StoryResult {
  steps: StepTiming[];
  names: { source: string; snapshot: string; clone: string };
  /** The record read from the clone and the source at the end. */
  cloneRecord: string;
  sourceRecord: string;
}

export async function runStory(options: StoryOptions): Promise<StoryResult> {
  const c = seedClients(options.clients);
  const ns = options.namespace;
  const size = options.size ?? '64Mi';
  const timeoutMs = options.timeoutMs ?? 60_000;
  const suffix = randomBytes(3).toString('hex');
  const names = { source: `demo-pvc-${suffix}`, snapshot: `demo-snap-${suffix}`, clone: `demo-clone-${suffix}` };
  const steps: StepTiming[] = [];
  const print = options.print;

  const step = async <T>(n: number, label: string, title: string, fn: () => Promise<{ value: T; detail: string }>): Promise<T> => {
    print(`${n}. ${title} ...`);
    const started = performance.now();
    let result: { value: T; detail: string };
    try {
      result = await fn();
    } catch (err) {
      throw new CstorError(
        'internal',
        `step ${n} (${title}) failed after ${Math.round(performance.now() - started)} ms: ${describeError(err)}`,
        { cause: err },
      );
    }
    const ms = performance.now() - started;
    steps.push({ step: label, title, ms, detail: result.detail });
    print(`   done in ${formatMs(ms)}: ${result.detail}`);
    return result.value;
  };

  const firstRecord = `date.txt: ${new Date().toISOString()} (written before the snapshot)`;
  let completed = false;
  try {
    const source = await step(1, 'PVC → Bound', `create PVC ${ns}/${names.source} (${size}, class ${options.sourceClass ?? 'openebs-cstor-default'}) → Bound`, async () => {
      await c.pvcs.create(claimManifest({ namespace: ns, name: names.source, storageClassName: options.sourceClass ?? 'openebs-cstor-default', size }));
      const bound = await waitClaimBound(c, { namespace: ns, name: names.source }, { timeoutMs });
      return { value: bound, detail: `PV ${bound.pv.metadata?.name ?? '?'} at ${pvIscsiUrl(bound.pv)}` };
    });
    const sourceUrl = pvIscsiUrl(source.pv);

    await step(2, 'write date.txt (iSCSI)', 'write date.txt over iSCSI (qemu-io, offset 0)', async () => {
      await writeRecord(sourceUrl, firstRecord);
      return { value: undefined, detail: JSON.stringify(firstRecord) };
    });

    await step(3, 'VolumeSnapshot → Ready', `create VolumeSnapshot ${ns}/${names.snapshot} of ${names.source} → Ready`, async () => {
      await c.snapshots.create(snapshotManifest({ namespace: ns, name: names.snapshot, claim: names.source }));
      const ready = await waitSnapshotReady(c, { namespace: ns, name: names.snapshot }, { timeoutMs });
      const dataName = ready.spec.snapshotDataName;
      if (!dataName) throw new CstorError('internal', 'Ready VolumeSnapshot names no VolumeSnapshotData');
      const data = await c.snapshotDatas.get({ name: dataName });
      const cond = ready.status?.conditions?.find((x) => x.type === 'Ready');
      return {
        value: ready,
        detail: `"${cond?.message ?? ''}"; VolumeSnapshotData ${dataName}, snapshotId ${data.spec.openebsVolume?.snapshotId ?? '?'}`,
      };
    });

    const secondRecord = `date.txt: ${new Date().toISOString()} (written after the snapshot)`;
    await step(4, 'write newer date.txt', 'write a newer date.txt over iSCSI', async () => {
      await writeRecord(sourceUrl, secondRecord);
      return { value: undefined, detail: JSON.stringify(secondRecord) };
    });

    const clone = await step(5, 'clone PVC → Bound', `create promoter PVC ${ns}/${names.clone} (annotation snapshot.alpha.kubernetes.io/snapshot: ${names.snapshot}) → Bound`, async () => {
      await c.pvcs.create(claimManifest({ namespace: ns, name: names.clone, storageClassName: options.promoterClass ?? 'openebs-snapshot-promoter', size, snapshot: names.snapshot }));
      const bound = await waitClaimBound(c, { namespace: ns, name: names.clone }, { timeoutMs });
      return { value: bound, detail: `PV ${bound.pv.metadata?.name ?? '?'} at ${pvIscsiUrl(bound.pv)}` };
    });

    const cloneRecord = await step(6, 'read clone: snapshot-time data', 'read date.txt from the clone: as it was at the snapshot?', async () => {
      const got = await readRecord(pvIscsiUrl(clone.pv));
      if (got !== firstRecord) throw new CstorError('io', `the clone reads ${JSON.stringify(got)}, expected the snapshot-time ${JSON.stringify(firstRecord)}`);
      return { value: got, detail: `yes: ${JSON.stringify(got)}` };
    });

    const sourceRecord = await step(7, 'read source: newest data', 'read date.txt from the source: the newer one?', async () => {
      const got = await readRecord(sourceUrl);
      if (got !== secondRecord) throw new CstorError('io', `the source reads ${JSON.stringify(got)}, expected ${JSON.stringify(secondRecord)}`);
      return { value: got, detail: `yes: ${JSON.stringify(got)}` };
    });
    completed = true;
    return { steps, names, cloneRecord, sourceRecord };
  } finally {
    if (!options.keep) {
      await cleanUp(c, ns, names, print).catch((err: unknown) => print(`cleanup failed: ${describeError(err)}`));
    } else if (completed) {
      print(`kept: PVCs ${ns}/${names.source} and ${ns}/${names.clone}, VolumeSnapshot ${ns}/${names.snapshot}`);
    }
  }
}

async function cleanUp(c: SeedClients, ns: string, names: StoryResult['names'], print: (l: string) => void): Promise<void> {
  const started = performance.now();
  const pvNames: string[] = [];
  for (const name of [names.clone, names.source]) {
    const claim = await c.pvcs.get({ namespace: ns, name }).catch(() => null);
    if (claim?.spec.volumeName) pvNames.push(claim.spec.volumeName);
  }
  // The clone first, then the snapshot, then the source (any order works: the clone owns its layers).
  await c.pvcs.delete({ namespace: ns, name: names.clone }).catch(() => undefined);
  await c.snapshots.delete({ namespace: ns, name: names.snapshot }).catch(() => undefined);
  await c.pvcs.delete({ namespace: ns, name: names.source }).catch(() => undefined);
  await waitGone(() => c.snapshots.get({ namespace: ns, name: names.snapshot }), `VolumeSnapshot ${names.snapshot}`, { timeoutMs: 30_000 });
  for (const pv of pvNames) await waitGone(() => c.pvs.get({ name: pv }), `PersistentVolume ${pv}`, { timeoutMs: 30_000 });
  print(`cleaned up (PVCs, VolumeSnapshot, VolumeSnapshotData, PVs and their volumes) in ${formatMs(performance.now() - started)}`);
}

export function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

export function timingTable(steps: readonly StepTiming[]): string {
  const rows = steps.map((s, i) => [`${i + 1}`, s.step, formatMs(s.ms)] as const);
  const w0 = 2;
  const w1 = Math.max(4, ...rows.map((r) => r[1].length));
  const w2 = Math.max(4, ...rows.map((r) => r[2].length));
  const line = (a: string, b: string, d: string): string => `${a.padEnd(w0)}  ${b.padEnd(w1)}  ${d.padStart(w2)}`;
  return [line('#', 'step', 'time'), line('-'.repeat(w0), '-'.repeat(w1), '-'.repeat(w2)), ...rows.map((r) => line(r[0], r[1], r[2]))].join('\n');
}
