// The pool: one directory holding every replica's chain and the layer files they share.
//
//   <dir>/pool.json            {format, name, createdAt}
//   <dir>/replicas/<volume>.json  each replica's chain (metadata.ts), written by tmp + rename
//   <dir>/layers/<id>.data|.map   layer files (layer-file.ts), shared between chains
//
// Reference counts are derived, never stored: a layer's count is the number of chain files that
// name it. So every metadata rename is the one commit point of an operation, and on open any layer
// file no chain names (a crash between creating a layer and committing the chain that uses it, or
// between committing a chain without it and deleting it) is garbage-collected, as are tmp files.
//
// A snapshot commits by a seal record in the head's map file (layer-file.ts), not by rewriting the
// chain file: on open the pool follows the seal records from the head a chain file names, and the
// chain it works with (`metas`, the reference counts, the GC) is that effective one. The chain
// file catches up at the next structural change, every `sealCatchUp` seals, and on close.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CstorError, describeError } from '../../lib/errors.ts';
import { silentLogger, type Logger } from '../../lib/logger.ts';
import { fsyncDir } from '../../lib/fsync-dir.ts';
import { clearSeal, isLayerId, LayerFile, countAllocated, readSeal, removeLayerFiles } from './layer-file.ts';
import { Mutex } from './lock.ts';
import { isListed, metaFileName, parseReplicaMeta, prepareJsonAtomic, writeJsonAtomic, type LayerRef, type ReplicaMeta } from './metadata.ts';
import { checkPoolName, checkSnapshotName, checkVolumeName, childPath } from './names.ts';
import { StoreReplica, type PreparedMeta, type ReplicaHost } from './replica.ts';
import type { CreateReplicaOptions, Pool, PoolSpace, Replica, ReplicaInfo } from './types.ts';

export interface OpenPoolOptions {
  dir: string;
  name: string;
  logger?: Logger;
}

export const defaultBlockSize = 4096;

function checkBlockSize(bs: unknown): number {
  if (typeof bs !== 'number' || !Number.isInteger(bs) || bs < 512 || bs > 65536 || (bs & (bs - 1)) !== 0) {
    throw new CstorError('invalid', `block size ${String(bs)} must be a power of two from 512 to 65536`);
  }
  return bs;
}

function checkSize(size: unknown, blockSize: number): number {
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0 || size % blockSize !== 0) {
    throw new CstorError('invalid', `size ${String(size)} must be a positive multiple of the block size ${blockSize}`);
  }
  if (size / blockSize > 0xffffffff) throw new CstorError('too_large', `size ${size} has more than 2^32 blocks`);
  return size;
}

export async function openPool(options: OpenPoolOptions): Promise<Pool> {
  const pool = new StorePool(options);
  await pool.open();
  return pool;
}

class StorePool implements Pool, ReplicaHost {
  readonly dir: string;
  readonly name: string;
  readonly layersDir: string;
  readonly replicasDir: string;
  readonly logger: Logger;
  private readonly mutex = new Mutex();
  private readonly metas = new Map<string, ReplicaMeta>();
  /** Per volume: seals committed since its chain file was last written (the file lags by these). */
  private readonly seals = new Map<string, number>();
  private refs = new Map<string, number>();
  private readonly loaded = new Map<string, StoreReplica>();
  private readonly allocCache = new Map<string, number>();
  /** Set when some chain file could not be read: layer GC is then unsafe and skipped. */
  private gcUnsafe = false;
  private closed = false;

  constructor(options: OpenPoolOptions) {
    this.name = checkPoolName(options.name);
    if (typeof options.dir !== 'string' || options.dir.length === 0 || options.dir.includes('\0')) {
      throw new CstorError('invalid', 'pool dir must be a non-empty path');
    }
    this.dir = path.resolve(options.dir);
    this.layersDir = path.join(this.dir, 'layers');
    this.replicasDir = path.join(this.dir, 'replicas');
    this.logger = (options.logger ?? silentLogger()).child({ component: 'pool-store', pool: this.name });
  }

  async open(): Promise<void> {
    if (os.endianness() !== 'LE') throw new CstorError('internal', 'the layer store needs a little-endian host');
    await fs.mkdir(this.layersDir, { recursive: true });
    await fs.mkdir(this.replicasDir, { recursive: true });
    await this.checkPoolFile();
    for (const file of await fs.readdir(this.replicasDir)) {
      const full = childPath(this.replicasDir, file);
      if (file.endsWith('.tmp')) {
        await fs.rm(full, { force: true });
        continue;
      }
      if (!file.endsWith('.json')) continue;
      try {
        const meta = parseReplicaMeta(file, await fs.readFile(full, 'utf8'));
        if (metaFileName(meta.volume) !== file) throw new CstorError('io', `${file} names volume ${meta.volume}`);
        checkVolumeName(meta.volume);
        this.metas.set(meta.volume, await this.followSeals(meta));
      } catch (err) {
        this.gcUnsafe = true;
        this.logger.error('replica metadata unreadable; skipping it and layer garbage collection', { file, error: describeError(err) });
      }
    }
    this.recomputeRefs();
    await this.collectGarbage();
    await this.mutex.run(() => this.compactAll());
    this.logger.info('pool opened', { dir: this.dir, replicas: this.metas.size });
  }

  /** The chain a chain file names, extended by the seal records of its head, and of theirs. */
  private async followSeals(meta: ReplicaMeta): Promise<ReplicaMeta> {
    let m = meta;
    let n = 0;
    const seen = new Set([...meta.layers.map((l) => l.id), meta.head]);
    for (let guard = 0; guard < 65536; guard++) {
      const seal = await readSeal(this.layersDir, m.head);
      if (!seal) break;
      if (seen.has(seal.successor)) break;
      try {
        await (await LayerFile.open(this.layersDir, seal.successor)).close();
      } catch (err) {
        // Cannot happen unless the directory was tampered with: the successor is durable before its seal.
        this.logger.error('seal record names a missing layer; the chain stops before it', { volume: meta.volume, layer: seal.successor, error: describeError(err) });
        break;
      }
      seen.add(seal.successor);
      m = {
        ...m,
        layers: [...m.layers, { id: m.head, snapshot: { name: seal.name, ioSeq: seal.ioSeq, createdAt: seal.createdAt } }],
        head: seal.successor,
        checkpointedIoSeq: Math.max(m.checkpointedIoSeq, seal.checkpoint),
      };
      n++;
    }
    if (n > 0) this.seals.set(meta.volume, n);
    return m;
  }

  private async checkPoolFile(): Promise<void> {
    const file = childPath(this.dir, 'pool.json');
    let existing: unknown = null;
    try {
      existing = JSON.parse(await fs.readFile(file, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CstorError('io', `cannot read ${file}`, { cause: err });
    }
    if (existing === null) {
      await writeJsonAtomic(this.dir, 'pool.json', { format: 1, name: this.name, createdAt: Date.now() });
      return;
    }
    const name = (existing as { name?: unknown }).name;
    if (name !== this.name) {
      throw new CstorError('conflict', `directory ${this.dir} holds pool ${JSON.stringify(name)}, not ${this.name}`);
    }
  }

  private recomputeRefs(): void {
    const refs = new Map<string, number>();
    for (const meta of this.metas.values()) {
      for (const id of [...meta.layers.map((l) => l.id), meta.head]) refs.set(id, (refs.get(id) ?? 0) + 1);
    }
    this.refs = refs;
  }

  private async collectGarbage(): Promise<void> {
    if (this.gcUnsafe) return;
    const orphans = new Set<string>();
    for (const file of await fs.readdir(this.layersDir)) {
      const m = /^([0-9a-f]{16})\.(data|map)$/.exec(file);
      if (m && !this.refs.has(m[1]!)) orphans.add(m[1]!);
    }
    for (const id of orphans) await removeLayerFiles(this.layersDir, id);
    if (orphans.size > 0) this.logger.info('removed orphan layers', { count: orphans.size });
  }

  // ---- ReplicaHost ----

  structural<T>(fn: () => Promise<T>): Promise<T> {
    return this.mutex.run(fn);
  }

  async saveMeta(meta: ReplicaMeta): Promise<void> {
    await writeJsonAtomic(this.replicasDir, metaFileName(meta.volume), meta);
    this.metas.set(meta.volume, meta);
    this.seals.delete(meta.volume);
    this.recomputeRefs();
  }

  adoptSealed(meta: ReplicaMeta): number {
    this.metas.set(meta.volume, meta);
    this.recomputeRefs();
    const n = (this.seals.get(meta.volume) ?? 0) + 1;
    this.seals.set(meta.volume, n);
    return n;
  }

  sealsPending(volume: string): number {
    return this.seals.get(volume) ?? 0;
  }

  async prepareMeta(meta: ReplicaMeta): Promise<PreparedMeta> {
    const w = await prepareJsonAtomic(this.replicasDir, metaFileName(meta.volume), meta);
    return {
      commit: async () => {
        await w.commit();
        this.metas.set(meta.volume, meta);
        this.seals.delete(meta.volume);
        this.recomputeRefs();
      },
      abort: () => w.abort(),
    };
  }

  metaOf(volume: string): ReplicaMeta {
    const meta = this.metas.get(volume);
    if (!meta) throw new CstorError('not_found', `replica ${volume} not found in pool ${this.name}`);
    return meta;
  }

  refCount(layerId: string): number {
    return this.refs.get(layerId) ?? 0;
  }

  async releaseLayers(ids: string[]): Promise<void> {
    if (this.gcUnsafe) return;
    for (const id of ids) {
      if (this.refCount(id) > 0 || !isLayerId(id)) continue;
      this.allocCache.delete(id);
      await removeLayerFiles(this.layersDir, id);
    }
  }

  async release(replica: StoreReplica): Promise<void> {
    await this.mutex.run(async () => {
      if (this.loaded.get(replica.volume) !== replica) return;
      replica.openCount--;
      if (replica.openCount > 0) return;
      this.loaded.delete(replica.volume);
      await replica.unload(true);
      for (const [id, bytes] of replica.usage()) this.allocCache.set(id, bytes);
    });
  }

  // ---- Pool ----

  private checkOpen(): void {
    if (this.closed) throw new CstorError('aborted', `pool ${this.name} is closed`);
  }

  async createReplica(options: CreateReplicaOptions): Promise<ReplicaInfo> {
    this.checkOpen();
    const volume = checkVolumeName(options.volume);
    const source = options.cloneOf;
    if (source) {
      checkVolumeName(source.volume);
      checkSnapshotName(source.snapshot);
    }
    return this.mutex.run(async () => {
      this.checkOpen();
      const existing = this.metas.get(volume);
      if (existing) {
        const wanted = source ? `${source.volume}@${source.snapshot}` : null;
        const sameBlock = options.blockSize === undefined || options.blockSize === existing.blockSize;
        if (existing.size === options.size && existing.cloneOf === wanted && sameBlock) return this.infoOf(existing);
        throw new CstorError('already_exists', `replica ${volume} already exists in pool ${this.name} with a different size or source`);
      }
      let blockSize = checkBlockSize(options.blockSize ?? defaultBlockSize);
      let base: LayerRef[] = [];
      let cloneOf: string | null = null;
      if (source) {
        const src = this.metas.get(source.volume);
        if (!src) throw new CstorError('not_found', `clone source volume ${source.volume} not found in pool ${this.name}`);
        const idx = src.layers.findIndex((l) => isListed(l) && l.snapshot.name === source.snapshot);
        if (idx < 0) throw new CstorError('not_found', `clone source snapshot ${source.volume}@${source.snapshot} not found`);
        if (src.mode === 'Rebuilding') throw new CstorError('not_ready', `clone source ${source.volume} is Rebuilding`);
        if (options.blockSize !== undefined && options.blockSize !== src.blockSize) {
          throw new CstorError('invalid', `clone block size ${options.blockSize} differs from the source's ${src.blockSize}`);
        }
        blockSize = src.blockSize;
        checkSize(options.size, blockSize);
        if (options.size < src.size) {
          throw new CstorError('invalid', `clone size ${options.size} is smaller than its snapshot's volume size ${src.size}`);
        }
        base = src.layers.slice(0, idx + 1).map((l) => ({ id: l.id, snapshot: l.snapshot, base: true }));
        cloneOf = `${source.volume}@${source.snapshot}`;
      }
      const size = checkSize(options.size, blockSize);
      const head = await LayerFile.create({ dir: this.layersDir, blockSize, blocks: size / blockSize });
      await head.close();
      const meta: ReplicaMeta = {
        format: 1,
        volume,
        size,
        blockSize,
        mode: 'New',
        createdAt: Date.now(),
        cloneOf,
        checkpointedIoSeq: 0,
        layers: base,
        head: head.id,
        rebuildInsertAt: null,
      };
      try {
        await fsyncDir(this.layersDir);
        await this.saveMeta(meta);
      } catch (err) {
        await removeLayerFiles(this.layersDir, head.id);
        throw err;
      }
      this.logger.info('replica created', { volume, size, cloneOf });
      return this.infoOf(meta);
    });
  }

  async openReplica(volume: string): Promise<Replica> {
    this.checkOpen();
    checkVolumeName(volume);
    return this.mutex.run(async () => {
      this.checkOpen();
      const meta = this.metaOf(volume);
      let r = this.loaded.get(volume);
      if (r?.isFailed) {
        // Its memory went ahead of the disk (a snapshot that could not be made durable): reload
        // it from the chain as durable, after making sure no half-written seal is followed later.
        this.loaded.delete(volume);
        await r.unload(false).catch(() => undefined);
        r = undefined;
        try {
          await clearSeal(this.layersDir, meta.head);
        } catch (err) {
          throw new CstorError('io', `replica ${volume}: cannot reload it after a failed snapshot`, { cause: err });
        }
        this.logger.warn('failed replica reloaded from disk', { volume });
      }
      if (!r) {
        r = await StoreReplica.load(this, meta);
        this.loaded.set(volume, r);
      }
      r.openCount++;
      return r;
    });
  }

  async deleteReplica(volume: string): Promise<void> {
    this.checkOpen();
    checkVolumeName(volume);
    await this.mutex.run(async () => {
      const meta = this.metas.get(volume);
      if (!meta) return;
      const r = this.loaded.get(volume);
      if (r) {
        this.loaded.delete(volume);
        await r.unload(false);
      }
      await fs.rm(childPath(this.replicasDir, metaFileName(volume)), { force: true });
      await fsyncDir(this.replicasDir);
      this.metas.delete(volume);
      this.seals.delete(volume);
      this.recomputeRefs();
      await this.releaseLayers([...meta.layers.map((l) => l.id), meta.head]);
      this.logger.info('replica deleted', { volume });
      await this.compactAll();
    });
  }

  /** Folds hidden layers whose last other user went away. Caller holds the mutex. */
  private async compactAll(): Promise<void> {
    for (const meta of [...this.metas.values()]) {
      if (!meta.layers.some((l) => l.hidden === true && this.refCount(l.id) === 1)) continue;
      try {
        let r = this.loaded.get(meta.volume);
        if (r) {
          await r.compact();
        } else {
          r = await StoreReplica.load(this, meta);
          try {
            await r.compact();
          } finally {
            await r.unload(true);
            for (const [id, bytes] of r.usage()) this.allocCache.set(id, bytes);
          }
        }
      } catch (err) {
        this.logger.warn('folding hidden snapshots failed; retried on next open', { volume: meta.volume, error: describeError(err) });
      }
    }
  }

  private async allocBytes(id: string): Promise<number> {
    for (const r of this.loaded.values()) {
      const bytes = r.usage().get(id);
      if (bytes !== undefined) return bytes;
    }
    let bytes = this.allocCache.get(id);
    if (bytes === undefined) {
      const layer = await LayerFile.open(this.layersDir, id);
      try {
        bytes = (await countAllocated(layer)) * layer.blockSize;
      } finally {
        await layer.close();
      }
      this.allocCache.set(id, bytes);
    }
    return bytes;
  }

  info(replica: StoreReplica): Promise<ReplicaInfo> {
    return this.infoOf(this.metaOf(replica.volume));
  }

  private async infoOf(meta: ReplicaMeta): Promise<ReplicaInfo> {
    const r = this.loaded.get(meta.volume);
    let usedBytes = await this.allocBytes(meta.head);
    for (const l of meta.layers) {
      if (this.refCount(l.id) === 1) usedBytes += await this.allocBytes(l.id);
    }
    const snapshots = [];
    for (const l of meta.layers) {
      if (isListed(l)) snapshots.push({ ...l.snapshot, usedBytes: await this.allocBytes(l.id) });
    }
    const own = new Set(meta.layers.filter((l) => !l.base).map((l) => l.id));
    const clones = [...this.metas.values()]
      .filter((m) => m.cloneOf?.startsWith(`${meta.volume}@`) && m.layers.some((l) => l.base && own.has(l.id)))
      .map((m) => m.volume)
      .sort();
    let checkpointedIoSeq = meta.checkpointedIoSeq;
    if (r) {
      checkpointedIoSeq = r.checkpointedIoSeq;
    } else {
      const head = await LayerFile.open(this.layersDir, meta.head);
      checkpointedIoSeq = Math.max(checkpointedIoSeq, head.checkpoint);
      await head.close();
    }
    return {
      volume: meta.volume,
      size: meta.size,
      blockSize: meta.blockSize,
      mode: meta.mode,
      checkpointedIoSeq,
      snapshots,
      cloneOf: meta.cloneOf,
      clones,
      usedBytes,
    };
  }

  async listReplicas(): Promise<ReplicaInfo[]> {
    this.checkOpen();
    return this.mutex.run(async () => {
      const out: ReplicaInfo[] = [];
      for (const volume of [...this.metas.keys()].sort()) out.push(await this.infoOf(this.metas.get(volume)!));
      return out;
    });
  }

  async getReplica(volume: string): Promise<ReplicaInfo | null> {
    this.checkOpen();
    checkVolumeName(volume);
    return this.mutex.run(async () => {
      const meta = this.metas.get(volume);
      return meta ? this.infoOf(meta) : null;
    });
  }

  async space(): Promise<PoolSpace> {
    this.checkOpen();
    return this.mutex.run(async () => {
      let usedBytes = 0;
      for (const id of this.refs.keys()) usedBytes += await this.allocBytes(id);
      const st = await fs.statfs(this.dir);
      return { usedBytes, freeBytes: st.bavail * st.bsize };
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.mutex.run(async () => {
      this.closed = true;
      for (const r of this.loaded.values()) {
        try {
          await r.unload(true);
        } catch (err) {
          this.logger.error('replica sync on close failed', { volume: r.volume, error: describeError(err) });
        }
      }
      this.loaded.clear();
    });
  }
}
