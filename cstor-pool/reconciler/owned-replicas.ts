// Which replicas of the pool the reconciler created for a CStorVolumeReplica: the only ones
// the orphan sweep may ever delete (a replica made through the mgmt API, or a pool directory
// pointed at the wrong cluster, is never touched). Recorded BEFORE the replica is created (an
// intent: a crash between the two leaves a record for a replica that may not exist, which the
// sweep or the next create resolves), removed AFTER it is deleted.
//
// On disk: <pool dir>/reconciler/owned.json  {format: 1, replicas: {<volume>: {cvr, uid, createdAt, rebuild?}}}
// replaced by tmp file + fsync + rename + fsync(dir). The store ignores this directory.
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CstorError } from '../../lib/errors.ts';

export interface OwnedEntry {
  /** The CStorVolumeReplica key ("ns/name") the replica was created for. */
  cvr: string;
  uid: string;
  createdAt: number;
  /**
   * The replica is a re-creation of one that held data (its CVR said so): it must be put in
   * Rebuilding mode before a target sees it, never left New (a target takes a volume whose
   * replicas are all New as fresh and serves it empty). Kept until the replica is deleted.
   */
  rebuild?: boolean;
}

export interface OwnedReplicas {
  list(): ReadonlyMap<string, OwnedEntry>;
  get(volume: string): OwnedEntry | undefined;
  add(volume: string, entry: OwnedEntry): Promise<void>;
  remove(volume: string): Promise<void>;
}

/** In memory only: unit tests. */
export class MemoryOwnedReplicas implements OwnedReplicas {
  readonly entries = new Map<string, OwnedEntry>();
  list(): ReadonlyMap<string, OwnedEntry> {
    return this.entries;
  }
  get(volume: string): OwnedEntry | undefined {
    return this.entries.get(volume);
  }
  async add(volume: string, entry: OwnedEntry): Promise<void> {
    this.entries.set(volume, entry);
  }
  async remove(volume: string): Promise<void> {
    this.entries.delete(volume);
  }
}

export class FileOwnedReplicas implements OwnedReplicas {
  private readonly entries = new Map<string, OwnedEntry>();
  private writing: Promise<void> = Promise.resolve();

  private constructor(readonly dir: string) {}

  static async open(poolDir: string): Promise<FileOwnedReplicas> {
    const dir = path.join(poolDir, 'reconciler');
    await fs.mkdir(dir, { recursive: true });
    const owned = new FileOwnedReplicas(dir);
    for (const f of await fs.readdir(dir)) if (f.endsWith('.tmp')) await fs.rm(path.join(dir, f), { force: true });
    let text: string | undefined;
    try {
      text = await fs.readFile(path.join(dir, 'owned.json'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CstorError('io', `cannot read ${dir}/owned.json`, { cause: err });
    }
    if (text !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (err) {
        throw new CstorError('io', `${dir}/owned.json is not JSON: fix it, or remove it (the replicas it listed are then never swept as orphans)`, { cause: err });
      }
      const replicas = (parsed as { format?: unknown; replicas?: unknown }).replicas;
      if ((parsed as { format?: unknown }).format !== 1 || !replicas || typeof replicas !== 'object') {
        throw new CstorError('io', `${dir}/owned.json: want {format: 1, replicas: {...}}`);
      }
      for (const [volume, e] of Object.entries(replicas as Record<string, Partial<OwnedEntry>>)) {
        if (typeof e?.cvr !== 'string' || typeof e.uid !== 'string') throw new CstorError('io', `${dir}/owned.json: entry ${volume} is malformed`);
        owned.entries.set(volume, { cvr: e.cvr, uid: e.uid, createdAt: Number(e.createdAt ?? 0), ...(e.rebuild === true ? { rebuild: true } : {}) });
      }
    }
    return owned;
  }

  list(): ReadonlyMap<string, OwnedEntry> {
    return this.entries;
  }

  get(volume: string): OwnedEntry | undefined {
    return this.entries.get(volume);
  }

  add(volume: string, entry: OwnedEntry): Promise<void> {
    const cur = this.entries.get(volume);
    if (cur && cur.uid === entry.uid && cur.cvr === entry.cvr && (cur.rebuild ?? false) === (entry.rebuild ?? false)) return Promise.resolve();
    this.entries.set(volume, entry);
    return this.save();
  }

  remove(volume: string): Promise<void> {
    if (!this.entries.has(volume)) return Promise.resolve();
    this.entries.delete(volume);
    return this.save();
  }

  /** Writes the whole map; writes are serialized, each one writes the map as it is then. */
  private save(): Promise<void> {
    const next = this.writing.catch(() => {}).then(() => this.write());
    this.writing = next;
    return next;
  }

  private async write(): Promise<void> {
    const body = JSON.stringify({ format: 1, replicas: Object.fromEntries([...this.entries].sort(([a], [b]) => (a < b ? -1 : 1))) }, null, 1);
    const tmp = path.join(this.dir, `${randomBytes(8).toString('hex')}.tmp`);
    const fh = await fs.open(tmp, 'w');
    try {
      await fh.writeFile(body);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, path.join(this.dir, 'owned.json'));
    const d = await fs.open(this.dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }
}
