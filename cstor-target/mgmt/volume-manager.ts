// The volumes a target serves: one ReplicatedVolume per volume, exposed through the iSCSI portal,
// remembered in a state file (tmp-file + rename) so a restarted target serves them again.
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseReplicaAddress } from '../../lib/replica-protocol/address.ts';
import { fsyncDir } from '../../lib/fsync-dir.ts';
import type { WriteCacheStore } from '../scsi/disk.ts';
import { CstorError, describeError } from '../../lib/errors.ts';
import type { BlockDevice } from '../../lib/block-device.ts';
import type { Logger } from '../../lib/logger.ts';
import { dns1123LabelProblems } from '../../lib/names.ts';
import type { ReplicaClient } from '../../lib/replica-protocol/types.ts';
import { ReplicatedVolume } from '../replication/replicated-volume.ts';

export interface VolumeSpec {
  name: string;
  /** Bytes. */
  capacity: number;
  replicationFactor: number;
  /** Replica addresses ("host:port" of each pool's replica port), one per replica. */
  replicas: string[];
  blockSize: number;
}

/** What the manager needs from the iSCSI portal (cstor-target/iscsi/portal.ts implements it). */
export interface TargetPortal {
  addTarget(opts: { volume: string; device: BlockDevice; writeCache?: WriteCacheStore }): unknown;
  removeTarget(volume: string): Promise<void>;
  hasTarget(volume: string): boolean;
}

export interface VolumeManagerOptions {
  connect: (address: string) => Promise<ReplicaClient>;
  portal: TargetPortal | null;
  /** Where served volumes are remembered; null: nowhere (a restart forgets them). */
  stateFile: string | null;
  logger: Logger;
  targetId: string;
  quiesceTimeoutMs?: number;
  /** ReplicatedVolumeOptions.readStickiness for every volume (default 0). */
  readStickiness?: number;
}

interface StateFile {
  version: 1;
  volumes: VolumeSpec[];
  /** volume → replicas that missed a write or a snapshot and must be rebuilt before they are trusted. */
  suspects?: Record<string, string[]>;
  /** volume → the highest io_seq this target may send (ReplicatedVolume's IoSeqStore). */
  ioSeqReserved?: Record<string, number>;
  /** Volumes whose initiator turned the write cache off (MODE SELECT, WCE=0). */
  writeCacheOff?: string[];
}

/** Validates a PUT body into a VolumeSpec, naming every problem. */
export function parseVolumeSpec(name: string, body: unknown): VolumeSpec {
  const problems: string[] = [];
  const nameProblems = dns1123LabelProblems(name);
  if (nameProblems.length > 0) problems.push(`volume name ${JSON.stringify(name)} is invalid: ${nameProblems.join('; ')}`);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new CstorError(
      'invalid',
      'request body must be a JSON object like {"capacity": 1073741824, "replicationFactor": 3, "replicas": ["10.0.0.1:3232", ...]} (send Content-Type: application/json)',
    );
  }
  const b = body as Record<string, unknown>;
  const known = new Set(['capacity', 'replicationFactor', 'replicas', 'blockSize']);
  for (const k of Object.keys(b)) if (!known.has(k)) problems.push(`unknown field "${k}"`);
  const blockSize = b.blockSize ?? 512;
  if (blockSize !== 512 && blockSize !== 4096) problems.push('blockSize must be 512 or 4096');
  const capacity = b.capacity;
  if (typeof capacity !== 'number' || !Number.isSafeInteger(capacity) || capacity <= 0) {
    problems.push('capacity must be a positive integer number of bytes');
  } else if (typeof blockSize === 'number' && capacity % blockSize !== 0) {
    problems.push(`capacity ${capacity} is not a multiple of the block size ${String(blockSize)}`);
  }
  const rf = b.replicationFactor;
  if (typeof rf !== 'number' || !Number.isInteger(rf) || rf < 1 || rf > 16) problems.push('replicationFactor must be an integer in 1..16');
  const replicas = b.replicas;
  if (!Array.isArray(replicas) || replicas.some((r) => typeof r !== 'string')) {
    problems.push('replicas must be an array of "host:port" or "unix:/path" strings');
  } else {
    for (const r of replicas as string[]) {
      try {
        parseReplicaAddress(r);
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    if (typeof rf === 'number' && replicas.length !== rf) problems.push(`${replicas.length} replicas given for replicationFactor ${rf}`);
    if (new Set(replicas).size !== replicas.length) problems.push('replica addresses repeat');
  }
  if (problems.length > 0) throw new CstorError('invalid', `volume ${name}: ${problems.join('; ')}`);
  return { name, capacity: capacity as number, replicationFactor: rf as number, replicas: [...(replicas as string[])], blockSize: blockSize as number };
}

/** Why `v` is not a StateFile (fields of the wrong type), or null. Each volume is checked when served. */
function stateFileProblem(v: unknown): string | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not a JSON object';
  const s = v as Record<string, unknown>;
  if (!Array.isArray(s.volumes)) return '"volumes" is not a list';
  if (s.volumes.some((x) => typeof x !== 'object' || x === null)) return '"volumes" holds a non-object';
  for (const k of ['suspects', 'ioSeqReserved'] as const) {
    const m = s[k];
    if (m !== undefined && (typeof m !== 'object' || m === null || Array.isArray(m))) return `"${k}" is not an object`;
  }
  if (s.writeCacheOff !== undefined && !Array.isArray(s.writeCacheOff)) return '"writeCacheOff" is not a list';
  return null;
}

function sameSpec(a: VolumeSpec, b: VolumeSpec): boolean {
  return (
    a.capacity === b.capacity &&
    a.replicationFactor === b.replicationFactor &&
    a.blockSize === b.blockSize &&
    a.replicas.length === b.replicas.length &&
    a.replicas.every((r, i) => r === b.replicas[i])
  );
}

export class VolumeManager {
  private readonly volumes = new Map<string, { spec: VolumeSpec; volume: ReplicatedVolume }>();
  private readonly suspects = new Map<string, Set<string>>();
  private readonly ioSeqReserved = new Map<string, number>();
  private readonly writeCacheOff = new Set<string>();
  private readonly log: Logger;
  private saving: Promise<void> = Promise.resolve();

  constructor(private readonly options: VolumeManagerOptions) {
    this.log = options.logger;
  }

  /** Serves again every volume in the state file. */
  async load(): Promise<void> {
    const file = this.options.stateFile;
    if (!file) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(await fs.readFile(file, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new CstorError('io', `state file ${file} is unreadable: ${describeError(err)}`, { cause: err });
    }
    const shapeProblem = stateFileProblem(parsed);
    if (shapeProblem) throw new CstorError('io', `state file ${file} is not a target state file: ${shapeProblem}; fix or move it away`);
    const state = parsed as StateFile;
    for (const [name, list] of Object.entries(state.suspects ?? {})) {
      if (Array.isArray(list)) this.suspects.set(name, new Set(list.filter((a): a is string => typeof a === 'string')));
    }
    for (const [name, n] of Object.entries(state.ioSeqReserved ?? {})) {
      if (Number.isSafeInteger(n) && n >= 0) this.ioSeqReserved.set(name, n);
    }
    for (const name of state.writeCacheOff ?? []) if (typeof name === 'string') this.writeCacheOff.add(name);
    for (const raw of state.volumes ?? []) {
      try {
        if (typeof raw.name !== 'string') throw new CstorError('invalid', `volume name ${JSON.stringify(raw.name)} is not a string`);
        const spec = parseVolumeSpec(raw.name, { capacity: raw.capacity, replicationFactor: raw.replicationFactor, replicas: raw.replicas, blockSize: raw.blockSize });
        this.start(spec);
        this.log.info('volume served again from the state file', { volume: spec.name });
      } catch (err) {
        this.log.error('volume in the state file not served', { volume: raw.name, error: describeError(err) });
      }
    }
  }

  /** Serves a volume; idempotent for the same spec, `conflict` for a different one. Returns true when newly served. */
  async serve(spec: VolumeSpec): Promise<boolean> {
    const cur = this.volumes.get(spec.name);
    if (cur) {
      if (sameSpec(cur.spec, spec)) return false;
      throw new CstorError('conflict', `volume ${spec.name} is already served with another spec (capacity ${cur.spec.capacity}, replicas ${cur.spec.replicas.join(',')}); stop it first`);
    }
    this.start(spec);
    try {
      await this.save();
    } catch (err) {
      // Not remembered, so not served: a restart would forget it, and the caller retries anyway.
      const cur = this.volumes.get(spec.name);
      this.volumes.delete(spec.name);
      if (this.options.portal?.hasTarget(spec.name)) await this.options.portal.removeTarget(spec.name).catch(() => {});
      await cur?.volume.stop().catch(() => {});
      throw err;
    }
    return true;
  }

  private start(spec: VolumeSpec): void {
    const volume = new ReplicatedVolume({
      volume: spec.name,
      size: spec.capacity,
      blockSize: spec.blockSize,
      replicationFactor: spec.replicationFactor,
      replicas: spec.replicas,
      connect: this.options.connect,
      logger: this.log,
      suspects: {
        load: () => this.suspects.get(spec.name) ?? new Set(),
        mark: async (address) => {
          let set = this.suspects.get(spec.name);
          if (!set) this.suspects.set(spec.name, (set = new Set()));
          set.add(address);
          await this.save();
        },
        clear: async (address) => {
          this.suspects.get(spec.name)?.delete(address);
          await this.save();
        },
      },
      // Only with a state file: without one a restart forgets the reservation anyway.
      ...(this.options.stateFile
        ? {
            ioSeq: {
              load: () => this.ioSeqReserved.get(spec.name) ?? 0,
              reserve: async (upTo: number) => {
                this.ioSeqReserved.set(spec.name, Math.max(upTo, this.ioSeqReserved.get(spec.name) ?? 0));
                await this.save();
              },
            },
          }
        : {}),
      targetId: this.options.targetId,
      ...(this.options.quiesceTimeoutMs !== undefined ? { quiesceTimeoutMs: this.options.quiesceTimeoutMs } : {}),
      ...(this.options.readStickiness !== undefined ? { readStickiness: this.options.readStickiness } : {}),
    });
    const writeCache: WriteCacheStore = {
      enabled: !this.writeCacheOff.has(spec.name),
      save: async (enabled) => {
        if (enabled) this.writeCacheOff.delete(spec.name);
        else this.writeCacheOff.add(spec.name);
        await this.save();
      },
    };
    this.options.portal?.addTarget({ volume: spec.name, device: volume, writeCache });
    this.volumes.set(spec.name, { spec, volume });
    volume.start();
    this.log.info('serving volume', { volume: spec.name, capacity: spec.capacity, replicas: spec.replicas });
  }

  /** Stops serving a volume (idempotent): the iSCSI target goes first, then the replicas are synced and closed. */
  async stop(name: string): Promise<boolean> {
    const cur = this.volumes.get(name);
    if (!cur) return false;
    this.volumes.delete(name);
    // Suspect marks, the io_seq reservation and the write-cache setting are kept: a stop and serve
    // (a changed replica set) must not trust a replica that missed a write or a snapshot, reuse an
    // io_seq a drain that timed out left in flight, or forget a cache an initiator turned off.
    try {
      await this.save();
    } catch (err) {
      // Still in the state file, so still served: a restart must not serve a volume we stopped.
      if (!this.volumes.has(name)) this.volumes.set(name, cur);
      throw err;
    }
    if (this.options.portal?.hasTarget(name)) await this.options.portal.removeTarget(name);
    await cur.volume.stop();
    this.log.info('stopped serving volume', { volume: name });
    return true;
  }

  get(name: string): ReplicatedVolume {
    const cur = this.volumes.get(name);
    if (!cur) throw new CstorError('not_found', `volume ${name} is not served by this target`);
    return cur.volume;
  }

  spec(name: string): VolumeSpec | undefined {
    return this.volumes.get(name)?.spec;
  }

  list(): ReplicatedVolume[] {
    return [...this.volumes.values()].map((v) => v.volume);
  }

  /** Stops every volume (the state file keeps them for the next start). */
  async close(): Promise<void> {
    await Promise.allSettled(
      [...this.volumes.values()].map(async ({ spec, volume }) => {
        if (this.options.portal?.hasTarget(spec.name)) await this.options.portal.removeTarget(spec.name).catch(() => {});
        await volume.stop();
      }),
    );
    this.volumes.clear();
    // A save still in flight (a suspect mark, an io_seq reservation) ends before close() does.
    await this.saving.catch(() => {});
  }

  private save(): Promise<void> {
    const file = this.options.stateFile;
    if (!file) return Promise.resolve();
    const suspects: Record<string, string[]> = {};
    for (const [name, set] of this.suspects) if (set.size > 0) suspects[name] = [...set];
    const ioSeqReserved: Record<string, number> = {};
    for (const [name, n] of this.ioSeqReserved) ioSeqReserved[name] = n;
    const state: StateFile = {
      version: 1,
      volumes: [...this.volumes.values()].map((v) => v.spec),
      suspects,
      ioSeqReserved,
      writeCacheOff: [...this.writeCacheOff],
    };
    const write = async (): Promise<void> => {
      try {
        await fs.mkdir(path.dirname(file), { recursive: true });
        const tmp = `${file}.tmp`;
        const fh = await fs.open(tmp, 'w');
        try {
          await fh.writeFile(JSON.stringify(state, null, 2));
          await fh.sync();
        } finally {
          await fh.close();
        }
        await fs.rename(tmp, file);
        // The rename itself durable: a suspect mark or an io_seq reservation is relied on once saved.
        await fsyncDir(path.dirname(file));
      } catch (err) {
        throw new CstorError('io', `cannot save the state file ${file}: ${describeError(err)}`, { cause: err });
      }
    };
    this.saving = this.saving.then(write, write);
    return this.saving;
  }
}
