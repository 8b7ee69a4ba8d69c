// The object store: every object in memory, keyed by resource ("group/resource") and "ns/name";
// one global resourceVersion counter; every change logged to the write-ahead log and published to
// the watch hub once durable, in resourceVersion order.
//
// Reads (get, list, resourceVersion) see only durable state: a write is visible once its WAL
// record is on disk, together with its watch event, so nothing a client reads can vanish in a
// crash or a failed write, and no resourceVersion a client saw is handed out again after a
// restart. Writers (getLatest) see every accepted write, so optimistic concurrency stays exact;
// a write the log refuses is rolled back.
//
// On disk (DIR): snapshot.json {rv, objects: [{r: resKey, o: object}]} written by tmp-file + fsync +
// rename, and wal-<gen>.log files (see wal.ts) with records {rv, r, t: "put"|"del", o}. Start =
// snapshot + replay of every WAL file (records with rv <= snapshot rv skipped), then a fresh
// snapshot and a new WAL generation. The replayed records also seed the watch history, so watches
// from a resourceVersion taken before a restart resume without a relist when the window allows.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../lib/logger.ts';
import { CstorError } from '../../lib/errors.ts';
import { fsyncDir } from '../../lib/fsync-dir.ts';
import { Wal, readWalFile } from './wal.ts';
import { WatchHub } from './watch-hub.ts';
import { objectKey, type ChangeEvent, type KubeObject } from './types.ts';

export interface StoreOptions {
  dataDir: string;
  logger: Logger;
  /** Watch events retained for watches from an old resourceVersion. */
  historySize?: number;
  /** Compact (snapshot + new WAL) after this many records. */
  snapshotEvery?: number;
}

interface WalRecord {
  rv: number;
  r: string;
  t: 'put' | 'del';
  o: KubeObject;
}

/** A key with writes accepted but not yet durable: its last durable state, for readers. */
interface Unsettled {
  durable: KubeObject | undefined;
  pending: number;
  /** Resolves (never rejects) once the last pending write is settled. */
  settled: Promise<void>;
}

interface SnapshotFile {
  rv: number;
  objects: { r: string; o: KubeObject }[];
}

const SNAPSHOT = 'snapshot.json';

function walGen(file: string): number | null {
  const m = /^wal-(\d+)\.log$/.exec(file);
  return m ? Number(m[1]) : null;
}

export class Store {
  readonly hub: WatchHub;
  private readonly data = new Map<string, Map<string, KubeObject>>();
  private readonly byUid = new Map<string, { resKey: string; key: string }>();
  private rvCounter: number;
  /** The resourceVersion of the last durable write (what readers see). */
  private committedRv: number;
  private readonly unsettled = new Map<string, Map<string, Unsettled>>();
  private wal: Wal | null = null;
  private gen: number;
  private recordsSinceSnapshot = 0;
  private snapshotting: Promise<void> | null = null;
  private readonly opts: Required<StoreOptions>;

  private constructor(opts: Required<StoreOptions>, rv: number, gen: number, hub: WatchHub) {
    this.opts = opts;
    this.rvCounter = rv;
    this.committedRv = rv;
    this.gen = gen;
    this.hub = hub;
  }

  static async open(options: StoreOptions): Promise<Store> {
    const opts: Required<StoreOptions> = { historySize: 10_000, snapshotEvery: 50_000, ...options };
    await fsp.mkdir(opts.dataDir, { recursive: true });
    let snap: SnapshotFile = { rv: 0, objects: [] };
    const snapPath = path.join(opts.dataDir, SNAPSHOT);
    if (fs.existsSync(snapPath)) {
      try {
        snap = JSON.parse(await fsp.readFile(snapPath, 'utf8')) as SnapshotFile;
      } catch (err) {
        throw new CstorError('io', `${snapPath} is unreadable: ${(err as Error).message}`, { cause: err });
      }
    }
    const walFiles = (await fsp.readdir(opts.dataDir))
      .map((f) => ({ f, gen: walGen(f) }))
      .filter((x): x is { f: string; gen: number } => x.gen !== null)
      .sort((a, b) => a.gen - b.gen);
    const hub = new WatchHub(opts.historySize, snap.rv);
    hub.onListenerError = (err) => opts.logger.error('a watch listener failed', { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    const maxGen = walFiles.length > 0 ? walFiles[walFiles.length - 1]!.gen : 0;
    const store = new Store(opts, snap.rv, maxGen + 1, hub);
    for (const { r, o } of snap.objects) store.setLocal(r, o);
    let replayed = 0;
    for (const { f } of walFiles) {
      const { records, torn } = readWalFile(path.join(opts.dataDir, f));
      if (torn) opts.logger.warn('ignored a torn record at the end of the write-ahead log', { file: f });
      for (const raw of records) {
        const rec = raw as WalRecord;
        if (rec.rv <= store.rvCounter) continue;
        store.rvCounter = rec.rv;
        const key = objectKey(rec.o.metadata.namespace, rec.o.metadata.name ?? '');
        const prev = store.data.get(rec.r)?.get(key);
        if (rec.t === 'put') {
          store.setLocal(rec.r, rec.o);
          hub.publish(prev ? { type: 'MODIFIED', rv: rec.rv, resKey: rec.r, obj: rec.o, prev } : { type: 'ADDED', rv: rec.rv, resKey: rec.r, obj: rec.o });
        } else {
          store.deleteLocal(rec.r, rec.o);
          hub.publish({ type: 'DELETED', rv: rec.rv, resKey: rec.r, obj: rec.o, ...(prev ? { prev } : {}) });
        }
        replayed++;
      }
    }
    store.committedRv = store.rvCounter;
    opts.logger.info('store loaded', { objects: store.count(), resourceVersion: store.rvCounter, replayed, walFiles: walFiles.length });
    // Compact now: the old WAL files (and any torn tail) are folded into a fresh snapshot.
    await store.writeSnapshot(store.serialize());
    for (const { f } of walFiles) await fsp.rm(path.join(opts.dataDir, f), { force: true });
    store.wal = await Wal.open(path.join(opts.dataDir, `wal-${store.gen}.log`));
    return store;
  }

  /** The resourceVersion of the last durable write: what lists report and watches start from. */
  get resourceVersion(): number {
    return this.committedRv;
  }

  get walStats(): Readonly<{ batches: number; records: number; bytes: number }> {
    return this.wal?.stats ?? { batches: 0, records: 0, bytes: 0 };
  }

  count(): number {
    let n = 0;
    for (const m of this.data.values()) n += m.size;
    return n;
  }

  /** The durable object (what clients may read). */
  get(resKey: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const key = objectKey(namespace, name);
    const u = this.unsettled.get(resKey)?.get(key);
    return u ? u.durable : this.data.get(resKey)?.get(key);
  }

  /** The object with every accepted write applied, durable or not (for writers' checks). */
  getLatest(resKey: string, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.data.get(resKey)?.get(objectKey(namespace, name));
  }

  /** Resolves with the durable object once the writes accepted so far for it are settled. */
  async settled(resKey: string, namespace: string | undefined, name: string): Promise<KubeObject | undefined> {
    const u = this.unsettled.get(resKey)?.get(objectKey(namespace, name));
    if (u) await u.settled;
    return this.get(resKey, namespace, name);
  }

  /** Durable objects of one resource, optionally in one namespace, sorted by namespace/name. */
  list(resKey: string, namespace?: string): KubeObject[] {
    const m = this.data.get(resKey);
    const pending = this.unsettled.get(resKey);
    const pend = pending && pending.size > 0 ? pending : undefined;
    const out: KubeObject[] = [];
    const prefix = namespace === undefined ? undefined : `${namespace}/`;
    if (m) {
      for (const [k, o] of m) if ((prefix === undefined || k.startsWith(prefix)) && !pend?.has(k)) out.push(o);
    }
    if (pend) for (const [k, u] of pend) if (u.durable && (prefix === undefined || k.startsWith(prefix))) out.push(u.durable);
    return out.sort((a, b) => {
      const ka = objectKey(a.metadata.namespace, a.metadata.name ?? '');
      const kb = objectKey(b.metadata.namespace, b.metadata.name ?? '');
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
  }

  /** Every resource key that holds objects. */
  resourceKeys(): string[] {
    return [...this.data.keys()];
  }

  byUidLookup(uid: string): { resKey: string; obj: KubeObject } | undefined {
    const ref = this.byUid.get(uid);
    if (!ref) return undefined;
    const obj = this.data.get(ref.resKey)?.get(ref.key);
    return obj ? { resKey: ref.resKey, obj } : undefined;
  }

  /**
   * Stores `obj` (create or replace) with the next resourceVersion. `expectRv`: the current
   * object's resourceVersion must equal it ("" = must not exist). Resolves with the stored object
   * once it is durable. The caller must not mutate `obj` afterwards.
   */
  put(resKey: string, obj: KubeObject, expectRv?: string): Promise<KubeObject> {
    if (!this.wal) throw new CstorError('aborted', 'store is closed');
    const key = objectKey(obj.metadata.namespace, obj.metadata.name ?? '');
    const prev = this.data.get(resKey)?.get(key);
    if (expectRv !== undefined) {
      if (expectRv === '' && prev) throw new CstorError('already_exists', `${key} already exists`);
      if (expectRv !== '' && (!prev || prev.metadata.resourceVersion !== expectRv)) {
        throw new CstorError('conflict', `${key} was modified (resourceVersion ${prev?.metadata.resourceVersion ?? 'none'}, not ${expectRv})`);
      }
    }
    const rv = ++this.rvCounter;
    obj.metadata.resourceVersion = String(rv);
    const u = this.beginWrite(resKey, key, prev);
    this.setLocal(resKey, obj);
    const ev: ChangeEvent = prev ? { type: 'MODIFIED', rv, resKey, obj, prev } : { type: 'ADDED', rv, resKey, obj };
    return this.commit({ rv, r: resKey, t: 'put', o: obj }, ev, key, u).then(() => obj);
  }

  /**
   * Removes an object (expectRv as for put); resolves with its last state once durable. `final`:
   * that last state when the removal is an update (the last finalizer removed), else the current.
   */
  remove(resKey: string, namespace: string | undefined, name: string, expectRv?: string, final?: KubeObject): Promise<KubeObject> {
    if (!this.wal) throw new CstorError('aborted', 'store is closed');
    const key = objectKey(namespace, name);
    const prev = this.data.get(resKey)?.get(key);
    if (!prev) throw new CstorError('not_found', `${key} not found`);
    if (expectRv !== undefined && expectRv !== '' && prev.metadata.resourceVersion !== expectRv) {
      throw new CstorError('conflict', `${key} was modified (resourceVersion ${prev.metadata.resourceVersion ?? ''}, not ${expectRv})`);
    }
    const rv = ++this.rvCounter;
    // A deleted object is reported with the deletion's resourceVersion, as Kubernetes does.
    const base = final ?? prev;
    const last: KubeObject = { ...base, metadata: { ...base.metadata, resourceVersion: String(rv) } };
    const u = this.beginWrite(resKey, key, prev);
    this.deleteLocal(resKey, prev);
    const ev: ChangeEvent = { type: 'DELETED', rv, resKey, obj: last, prev };
    return this.commit({ rv, r: resKey, t: 'del', o: last }, ev, key, u).then(() => last);
  }

  /** Writes a snapshot, moves writes to a new WAL file and drops the older ones. */
  compact(): Promise<void> {
    if (this.snapshotting) return this.snapshotting;
    this.snapshotting = this.doCompact().finally(() => (this.snapshotting = null));
    return this.snapshotting;
  }

  /** Closes the files as a crash leaves them: no final snapshot (crash tests). */
  async closeAbruptly(): Promise<void> {
    if (this.snapshotting) await this.snapshotting.catch(() => {});
    await this.wal?.close();
    this.wal = null;
  }

  async close(): Promise<void> {
    if (this.snapshotting) await this.snapshotting.catch(() => {});
    if (!this.wal) return;
    this.opts.logger.info('closing the store', { resourceVersion: this.rvCounter, objects: this.count(), wal: this.wal.stats });
    await this.compact().catch((err: unknown) => this.opts.logger.warn('final snapshot failed', { error: (err as Error).message }));
    await this.wal.close();
    this.wal = null;
  }

  /** Marks a write to `key` pending; `prev` is its state before (durable when none is pending). */
  private beginWrite(resKey: string, key: string, prev: KubeObject | undefined): Unsettled {
    let pend = this.unsettled.get(resKey);
    if (!pend) this.unsettled.set(resKey, (pend = new Map()));
    let u = pend.get(key);
    if (!u) pend.set(key, (u = { durable: prev, pending: 0, settled: Promise.resolve() }));
    u.pending++;
    return u;
  }

  /** A pending write is durable (`ok`) or refused; the last one settled makes the key readable. */
  private endWrite(resKey: string, key: string, u: Unsettled, ok: boolean, after: KubeObject | undefined): void {
    u.pending--;
    if (ok) u.durable = after;
    if (u.pending > 0) return;
    this.unsettled.get(resKey)?.delete(key);
    // The accepted state is the last write's object: when that write (or any, in whatever order
    // they settled) was refused by the log, roll the accepted state back to the durable one.
    const latest = this.data.get(resKey)?.get(key);
    if (latest === u.durable) return;
    if (latest) this.deleteLocal(resKey, latest);
    if (u.durable) this.setLocal(resKey, u.durable);
  }

  private commit(rec: WalRecord, ev: ChangeEvent, key: string, u: Unsettled): Promise<void> {
    const wal = this.wal;
    if (!wal) return Promise.reject(new CstorError('aborted', 'store is closed'));
    const after = rec.t === 'put' ? rec.o : undefined;
    // Appended before any compaction below: the record precedes the rotation, so the snapshot
    // (which holds it) is written only once it is durable.
    // .then callbacks run in the order the WAL resolves records: resourceVersion order.
    const done = wal.append(JSON.stringify(rec)).then(
      () => {
        this.endWrite(rec.r, key, u, true, after);
        this.committedRv = rec.rv;
        this.hub.publish(ev);
      },
      (err: unknown) => {
        this.endWrite(rec.r, key, u, false, after);
        throw err;
      },
    );
    u.settled = done.then(
      () => undefined,
      () => undefined,
    );
    this.recordsSinceSnapshot++;
    if (this.recordsSinceSnapshot >= this.opts.snapshotEvery && !this.snapshotting) {
      this.compact().catch((err: unknown) => this.opts.logger.error('snapshot failed', { error: (err as Error).message }));
    }
    return done;
  }

  private async doCompact(): Promise<void> {
    const wal = this.wal;
    if (!wal) return;
    const oldPath = wal.path;
    // Same tick: the serialized state holds exactly the records queued before the rotation.
    const state = this.serialize();
    this.recordsSinceSnapshot = 0;
    this.gen++;
    const rotated = wal.rotate(path.join(this.opts.dataDir, `wal-${this.gen}.log`));
    // The state holds writes still on their way to the old log: the snapshot is written only once
    // they are durable (the rotation resolves after them), so a write the log refuses never
    // reaches a snapshot. Until the snapshot is in place the old log stays.
    await rotated;
    await this.writeSnapshot(state);
    await fsp.rm(oldPath, { force: true });
  }

  private serialize(): string {
    const parts: string[] = [];
    for (const [r, m] of this.data) for (const o of m.values()) parts.push(JSON.stringify({ r, o }));
    return `{"rv":${this.rvCounter},"objects":[${parts.join(',')}]}`;
  }

  private async writeSnapshot(state: string): Promise<void> {
    const final = path.join(this.opts.dataDir, SNAPSHOT);
    const tmp = `${final}.tmp`;
    const fh = await fsp.open(tmp, 'w');
    try {
      await fh.writeFile(state);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, final);
    await fsyncDir(this.opts.dataDir);
  }

  private setLocal(resKey: string, obj: KubeObject): void {
    let m = this.data.get(resKey);
    if (!m) this.data.set(resKey, (m = new Map()));
    const key = objectKey(obj.metadata.namespace, obj.metadata.name ?? '');
    m.set(key, obj);
    if (obj.metadata.uid) this.byUid.set(obj.metadata.uid, { resKey, key });
  }

  private deleteLocal(resKey: string, obj: KubeObject): void {
    const key = objectKey(obj.metadata.namespace, obj.metadata.name ?? '');
    this.data.get(resKey)?.delete(key);
    if (obj.metadata.uid) this.byUid.delete(obj.metadata.uid);
  }
}
