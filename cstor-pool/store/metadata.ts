// A replica's chain, persisted as `replicas/<volume>.json` by tmp file + fsync + rename + fsync
// of the directory, so a crash leaves either the old or the new chain, never a mix.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { CstorError } from '../../lib/errors.ts';
import { replicaModes, type ReplicaMode } from '../../lib/replica-protocol/types.ts';
import { childPath } from './names.ts';
import { fsyncDir } from '../../lib/fsync-dir.ts';
import { isLayerId } from './layer-file.ts';

export interface SnapshotRecord {
  name: string;
  ioSeq: number;
  createdAt: number;
}

export interface LayerRef {
  /** Layer file id (`layers/<id>.data` + `.map`). */
  id: string;
  /** The snapshot this layer was sealed as. */
  snapshot: SnapshotRecord;
  /** Deleted by the user but still needed by a clone: kept in the chain, not listed. */
  hidden?: boolean;
  /** Inherited from a clone source (below this replica's own layers): never listed or streamed. */
  base?: boolean;
}

export interface ReplicaMeta {
  format: 1;
  volume: string;
  size: number;
  blockSize: number;
  mode: ReplicaMode;
  createdAt: number;
  cloneOf: string | null;
  /** Checkpoint when this file was written; the head map header holds newer ones. */
  checkpointedIoSeq: number;
  /** Sealed layers, oldest first. */
  layers: LayerRef[];
  /** The writable head layer's id. */
  head: string;
  /** While Rebuilding: chain position where the next imported layer goes. */
  rebuildInsertAt: number | null;
}

function fail(file: string, what: string): never {
  throw new CstorError('io', `replica metadata ${file}: ${what}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function safeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export function parseReplicaMeta(file: string, text: string): ReplicaMeta {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CstorError('io', `replica metadata ${file}: not JSON`, { cause: err });
  }
  if (!isObject(raw) || raw.format !== 1) fail(file, 'unknown format');
  const { volume, size, blockSize, mode, createdAt, cloneOf, checkpointedIoSeq, layers, head, rebuildInsertAt } = raw;
  if (typeof volume !== 'string') fail(file, 'volume');
  if (!safeInt(size) || !safeInt(blockSize) || blockSize === 0) fail(file, 'size/blockSize');
  if (typeof mode !== 'string' || !(replicaModes as readonly string[]).includes(mode)) fail(file, 'mode');
  if (!safeInt(createdAt) || !safeInt(checkpointedIoSeq)) fail(file, 'createdAt/checkpointedIoSeq');
  if (cloneOf !== null && typeof cloneOf !== 'string') fail(file, 'cloneOf');
  if (typeof head !== 'string' || !isLayerId(head)) fail(file, 'head');
  if (rebuildInsertAt !== null && !safeInt(rebuildInsertAt)) fail(file, 'rebuildInsertAt');
  if (!Array.isArray(layers)) fail(file, 'layers');
  const refs: LayerRef[] = layers.map((l: unknown) => {
    if (!isObject(l) || typeof l.id !== 'string' || !isLayerId(l.id) || !isObject(l.snapshot)) fail(file, 'layer entry');
    const s = l.snapshot;
    if (typeof s.name !== 'string' || !safeInt(s.ioSeq) || !safeInt(s.createdAt)) fail(file, 'layer snapshot');
    const ref: LayerRef = { id: l.id, snapshot: { name: s.name, ioSeq: s.ioSeq, createdAt: s.createdAt } };
    if (l.hidden === true) ref.hidden = true;
    if (l.base === true) ref.base = true;
    return ref;
  });
  return {
    format: 1,
    volume,
    size,
    blockSize,
    mode: mode as ReplicaMode,
    createdAt,
    cloneOf,
    checkpointedIoSeq,
    layers: refs,
    head,
    rebuildInsertAt,
  };
}

/** Writes `dir/file` atomically and durably. */
export async function writeJsonAtomic(dir: string, file: string, value: unknown): Promise<void> {
  const commit = await prepareJsonAtomic(dir, file, value);
  await commit.commit();
}

export interface PreparedWrite {
  /** Renames the tmp file over the target and fsyncs the directory: the commit point. */
  commit(): Promise<void>;
  /** Removes the tmp file (the write is abandoned). */
  abort(): Promise<void>;
}

/**
 * First half of writeJsonAtomic: the tmp file, written and fsynced, not yet renamed. Lets a caller
 * overlap that fsync with other work that must also be durable before the commit.
 */
export async function prepareJsonAtomic(dir: string, file: string, value: unknown): Promise<PreparedWrite> {
  const target = childPath(dir, file);
  const tmp = childPath(dir, `${randomBytes(8).toString('hex')}.tmp`);
  const fh = await fs.open(tmp, 'wx');
  try {
    await fh.writeFile(`${JSON.stringify(value, null, 1)}\n`);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  return {
    async commit(): Promise<void> {
      try {
        await fs.rename(tmp, target);
      } catch (err) {
        await fs.rm(tmp, { force: true });
        throw err;
      }
      await fsyncDir(dir);
    },
    async abort(): Promise<void> {
      await fs.rm(tmp, { force: true });
    },
  };
}

export function metaFileName(volume: string): string {
  return `${volume}.json`;
}

/** Visible snapshots: the replica's own, not hidden. */
export function isListed(ref: LayerRef): boolean {
  return !ref.hidden && !ref.base;
}
