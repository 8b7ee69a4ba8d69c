// Rebuild of one replica D from a healthy replica H while live writes go on (docs/target.md,
// "Rebuild"): find the last common snapshot; in a brief quiesce take an internal snapshot R on H
// and restart D's chain above the common snapshot with a fresh head that joins the write fan-out;
// then import every H layer after the common one, up to and including R, beneath D's head; then
// rebuildDone. D stays Rebuilding on its pool until then, so a crash anywhere leaves nothing that
// is later trusted.
import { CstorError, describeError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import type { ReplicaClient, ReplicaMode, SnapshotInfo } from '../../lib/replica-protocol/types.ts';
import type { Mutex } from './write-gate.ts';

export const internalSnapshotPrefix = 'rebuild-';

export function isInternalSnapshot(name: string): boolean {
  return name.startsWith(internalSnapshotPrefix);
}

/** The newest snapshot both chains share, comparing oldest first by name and io_seq; null if none. */
export function lastCommonSnapshot(source: readonly SnapshotInfo[], dest: readonly SnapshotInfo[]): SnapshotInfo | null {
  let common: SnapshotInfo | null = null;
  for (let i = 0; i < source.length && i < dest.length; i++) {
    const s = source[i]!;
    const d = dest[i]!;
    if (s.name !== d.name || s.ioSeq !== d.ioSeq) break;
    common = s;
  }
  return common;
}

/** Which side of a rebuild failed: the engine evicts that one. */
export class RebuildError extends CstorError {
  constructor(
    readonly side: 'source' | 'destination',
    message: string,
    cause: unknown,
  ) {
    super('unavailable', message, { cause });
  }
}

export interface RebuildMember {
  readonly address: string;
  client: ReplicaClient | null;
  /**
   * D's mode on its pool when it connected. `Rebuilding` (an earlier rebuild into it never
   * finished): none of its snapshots is trusted, see rebuildReplica.
   */
  persistedMode?: ReplicaMode | null;
}

export interface RebuildContext {
  volume: string;
  log: Logger;
  pageBytes: number;
  internalName(): string;
  isAborted(): boolean;
  snapLock: Mutex;
  layerLock: Mutex;
  quiesced<T>(what: string, fn: () => Promise<T>): Promise<T>;
  nextIoSeq(): number;
  /** D joins the write fan-out as degraded (called inside the quiesce, after rebuildStart). */
  join(): void;
  /** D's chain is complete (rebuildDone and the deferred destroys done): destroys now go to it directly. */
  complete(): void;
  /** D turns Healthy in the engine (its pool already says so). */
  done(): void;
  /** Snapshot destroys asked for during the rebuild, to apply on D once it is complete. */
  deferredDestroys(): string[];
  /** A replica erred in the clean-up after the rebuild: take it out. */
  evict(m: RebuildMember, err: unknown): void;
}

export interface RebuildResult {
  lastCommon: string | null;
  imported: string[];
  internalSnapshot: string;
}

export async function rebuildReplica(ctx: RebuildContext, d: RebuildMember, h: RebuildMember): Promise<RebuildResult> {
  const dc = d.client;
  const hc = h.client;
  if (!dc || !hc) throw new CstorError('unavailable', `rebuild of ${d.address}: a replica is not connected`);
  const onSource = <T>(what: string, p: Promise<T>): Promise<T> =>
    p.catch((err: unknown) => {
      throw new RebuildError('source', `rebuild of ${d.address} from ${h.address}: ${what} on the source failed: ${describeError(err)}`, err);
    });
  const onDest = <T>(what: string, p: Promise<T>): Promise<T> =>
    p.catch((err: unknown) => {
      throw new RebuildError('destination', `rebuild of ${d.address}: ${what} failed: ${describeError(err)}`, err);
    });
  const checkAborted = (): void => {
    if (ctx.isAborted()) throw new CstorError('aborted', `rebuild of ${d.address} from ${h.address} aborted`);
  };

  const rName = ctx.internalName();
  try {
    return await rebuildSteps(ctx, { d, h, dc, hc, rName, onSource, onDest, checkAborted });
  } catch (err) {
    // R is of no use once this rebuild failed: left on H it would be copied into every later
    // rebuild from H and kept until the next election. Best effort (H may be the one that failed).
    await ctx.snapLock.run(() => hc.snapshotDestroy(rName)).catch(() => undefined);
    throw err;
  }
}

interface RebuildRun {
  d: RebuildMember;
  h: RebuildMember;
  dc: ReplicaClient;
  hc: ReplicaClient;
  rName: string;
  onSource<T>(what: string, p: Promise<T>): Promise<T>;
  onDest<T>(what: string, p: Promise<T>): Promise<T>;
  checkAborted(): void;
}

async function rebuildSteps(ctx: RebuildContext, run: RebuildRun): Promise<RebuildResult> {
  const { d, h, dc, hc, rName, onSource, onDest, checkAborted } = run;
  let lastCommon: SnapshotInfo | null = null;
  let imports: SnapshotInfo[] = [];
  await ctx.snapLock.run(async () => {
    const [hList, dList] = await Promise.all([onSource('snapshot list', hc.snapshotList()), onDest('snapshot list', dc.snapshotList())]);
    checkAborted();
    // A replica whose earlier rebuild never finished may list snapshots that match H's by name and
    // io_seq and yet are incomplete: a user snapshot taken during that rebuild sealed D's head,
    // which held only the writes since the join (the older data was still to be imported beneath
    // it). Nothing on D tells those apart from complete layers, so none of them is kept.
    lastCommon = d.persistedMode === 'Rebuilding' ? null : lastCommonSnapshot(hList, dList);
    const from = lastCommon ? hList.indexOf(lastCommon) + 1 : 0;
    imports = hList.slice(from);
    await ctx.quiesced(`rebuild join of ${d.address}`, async () => {
      checkAborted();
      const rSeq = ctx.nextIoSeq();
      await onSource('internal snapshot', hc.snapshotCreate(rName, rSeq));
      await onDest('rebuildStart', dc.rebuildStart(lastCommon?.name ?? null));
      checkAborted();
      imports.push({ name: rName, ioSeq: rSeq, createdAt: Date.now(), usedBytes: 0 });
      ctx.join();
    });
  });
  const common: string | null = (lastCommon as SnapshotInfo | null)?.name ?? null;
  ctx.log.info('rebuild started', { replica: d.address, from: h.address, lastCommon: common, layers: imports.map((s) => s.name) });

  const imported: string[] = [];
  for (const layer of imports) {
    await ctx.layerLock.run(async () => {
      checkAborted();
      // A user snapshot destroyed on H meanwhile was folded into its child there: the child carries it.
      const present = (await onSource('snapshot list', hc.snapshotList())).some((s) => s.name === layer.name);
      if (!present) return;
      await onDest('importLayerBegin', dc.importLayerBegin(layer.name, layer.ioSeq));
      let cursor = 0;
      for (let page = 0; page < 1e9; page++) {
        checkAborted();
        const got = await onSource(`readLayer ${layer.name}`, hc.readLayer(layer.name, cursor, ctx.pageBytes));
        for (const run of got.runs) await onDest('importLayerWrite', dc.importLayerWrite(layer.name, run.offset, run.data));
        if (got.next === null) break;
        if (got.next <= cursor && page > 0) throw new RebuildError('source', `readLayer ${layer.name} did not advance`, null);
        cursor = got.next;
      }
      await onDest('importLayerEnd', dc.importLayerEnd(layer.name));
      imported.push(layer.name);
    });
  }

  await ctx.layerLock.run(async () => {
    checkAborted();
    // Every layer is imported, so a destroy folds into the right child now. Before rebuildDone: a
    // crash in between leaves D Rebuilding (rebuilt again), never Healthy with a snapshot the
    // user destroyed.
    for (const name of ctx.deferredDestroys()) await onDest(`snapshot ${name} destroy`, dc.snapshotDestroy(name));
    await onDest('rebuildDone', dc.rebuildDone());
    // From here on, snapshot destroys go to D directly.
    ctx.complete();
  });

  // R has served its purpose: destroy it everywhere (it folds into its child).
  await ctx.snapLock.run(async () => {
    await onDest('internal snapshot destroy', dc.snapshotDestroy(rName));
    const c = h.client;
    if (c) await c.snapshotDestroy(rName).catch((err: unknown) => ctx.evict(h, err));
  });
  checkAborted();
  ctx.done();
  ctx.log.info('rebuild done', { replica: d.address, from: h.address, imported });
  return { lastCommon: common, imported, internalSnapshot: rName };
}
