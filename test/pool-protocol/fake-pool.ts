// An in-memory Pool/Replica for protocol tests: whole-block maps per layer, no files. It follows
// the store contract (cstor-pool/store/types.ts) closely enough to test the server and client
// over it; clones copy the source's layers instead of sharing them.
import { checkRange } from '../../lib/block-device.ts';
import { CstorError } from '../../lib/errors.ts';
import { dns1123SubdomainProblems } from '../../lib/names.ts';
import type { ReplicaMode, ReplicaStats, RunPage, SnapshotInfo } from '../../lib/replica-protocol/types.ts';
import type { CreateReplicaOptions, Pool, PoolSpace, Replica, ReplicaInfo } from '../../cstor-pool/store/types.ts';

interface Block {
  data: Buffer;
  ioSeq: number;
}

interface Layer {
  name: string;
  ioSeq: number;
  createdAt: number;
  blocks: Map<number, Block>;
}

function checkName(name: string, what: string): void {
  const p = dns1123SubdomainProblems(name);
  if (p.length > 0) throw new CstorError('invalid', `${what} "${name}" is invalid: ${p.join('; ')}`);
}

export class FakeReplica implements Replica {
  mode: ReplicaMode = 'New';
  checkpointedIoSeq = 0;
  private highIoSeq = 0;
  layers: Layer[] = [];
  head = new Map<number, Block>();
  private importing = new Map<string, Layer>();
  private importAt = 0;
  private counters = { reads: 0, writes: 0, readBytes: 0, writeBytes: 0 };
  /** Test hook: delay every write by this many ms. */
  writeDelayMs = 0;
  /** Test hook: writes running now, and the most ever at once. */
  writesRunning = 0;
  maxWritesRunning = 0;

  constructor(
    readonly volume: string,
    readonly size: number,
    readonly blockSize: number,
    readonly cloneOf: string | null,
  ) {}

  private block(index: number): Buffer | undefined {
    const h = this.head.get(index);
    if (h) return h.data;
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const b = this.layers[i]!.blocks.get(index);
      if (b) return b.data;
    }
    return undefined;
  }

  async readAt(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    const out = Buffer.alloc(length);
    for (let o = 0; o < length; o += this.blockSize) this.block((offset + o) / this.blockSize)?.copy(out, o);
    this.counters.reads++;
    this.counters.readBytes += length;
    return out;
  }
  async readInto(offset: number, buf: Buffer): Promise<void> {
    const data = await this.readAt(offset, buf.length);
    data.copy(buf);
  }
  async readSnapshotAt(name: string, offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    const at = this.layers.findIndex((l) => l.name === name);
    if (at < 0) throw new CstorError('not_found', `snapshot ${name} not found in ${this.volume}`);
    const out = Buffer.alloc(length);
    for (let o = 0; o < length; o += this.blockSize) {
      for (let i = at; i >= 0; i--) {
        const b = this.layers[i]!.blocks.get((offset + o) / this.blockSize);
        if (b) {
          b.data.copy(out, o);
          break;
        }
      }
    }
    return out;
  }
  stats(): ReplicaStats {
    const used = (this.head.size + this.layers.reduce((n, l) => n + l.blocks.size, 0)) * this.blockSize;
    return { ...this.counters, usedBytes: used, snapshots: this.layers.length };
  }
  async writeAt(offset: number, data: Buffer): Promise<void> {
    await this.write(offset, data, this.highIoSeq + 1);
  }
  async write(offset: number, data: Buffer, ioSeq: number): Promise<void> {
    checkRange(this, offset, data.length);
    this.writesRunning++;
    this.maxWritesRunning = Math.max(this.maxWritesRunning, this.writesRunning);
    if (this.writeDelayMs > 0) await new Promise((r) => setTimeout(r, this.writeDelayMs));
    this.writesRunning--;
    for (let o = 0; o < data.length; o += this.blockSize) {
      this.head.set((offset + o) / this.blockSize, { data: Buffer.from(data.subarray(o, o + this.blockSize)), ioSeq });
    }
    this.highIoSeq = Math.max(this.highIoSeq, ioSeq);
    this.counters.writes++;
    this.counters.writeBytes += data.length;
  }
  async unmap(offset: number, length: number): Promise<void> {
    await this.unmapSeq(offset, length, this.highIoSeq + 1);
  }
  async unmapSeq(offset: number, length: number, ioSeq: number): Promise<void> {
    checkRange(this, offset, length);
    for (let o = 0; o < length; o += this.blockSize) this.head.set((offset + o) / this.blockSize, { data: Buffer.alloc(this.blockSize), ioSeq });
    this.highIoSeq = Math.max(this.highIoSeq, ioSeq);
  }
  async sync(): Promise<void> {
    this.checkpointedIoSeq = this.highIoSeq;
  }
  async snapshotCreate(name: string, ioSeq: number): Promise<void> {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/.test(name)) throw new CstorError('invalid', `snapshot name "${name}" is invalid`);
    if (this.layers.some((l) => l.name === name)) return;
    this.layers.push({ name, ioSeq, createdAt: Date.now(), blocks: this.head });
    this.head = new Map();
  }
  async snapshotDestroy(name: string): Promise<void> {
    const i = this.layers.findIndex((l) => l.name === name);
    if (i < 0) return;
    const [layer] = this.layers.splice(i, 1);
    const child = this.layers[i]?.blocks ?? this.head;
    for (const [k, b] of layer!.blocks) if (!child.has(k)) child.set(k, b);
  }
  snapshots(): SnapshotInfo[] {
    return this.layers.map((l) => ({ name: l.name, ioSeq: l.ioSeq, createdAt: l.createdAt, usedBytes: l.blocks.size * this.blockSize }));
  }
  async readLayer(name: string, cursor: number, maxBytes: number): Promise<RunPage> {
    const layer = this.layers.find((l) => l.name === name);
    if (!layer) throw new CstorError('not_found', `snapshot ${name} not found in ${this.volume}`);
    return this.page(layer.blocks, cursor, maxBytes, () => true, false);
  }
  async readHeadSince(sinceIoSeq: number, cursor: number, maxBytes: number): Promise<RunPage> {
    return this.page(this.head, cursor, maxBytes, (b) => b.ioSeq > sinceIoSeq, true);
  }
  private page(blocks: Map<number, Block>, cursor: number, maxBytes: number, want: (b: Block) => boolean, withSeq: boolean): RunPage {
    const keys = [...blocks.keys()].filter((k) => k >= cursor && want(blocks.get(k)!)).sort((a, b) => a - b);
    const runs: RunPage['runs'] = [];
    let bytes = 0;
    let i = 0;
    while (i < keys.length && bytes + this.blockSize <= Math.max(maxBytes, this.blockSize)) {
      const start = keys[i]!;
      const parts: Buffer[] = [];
      let seq = 0;
      let k = start;
      while (i < keys.length && keys[i] === k && bytes + this.blockSize <= Math.max(maxBytes, this.blockSize)) {
        const b = blocks.get(k)!;
        parts.push(b.data);
        seq = Math.max(seq, b.ioSeq);
        bytes += this.blockSize;
        i++;
        k++;
      }
      runs.push(withSeq ? { offset: start * this.blockSize, data: Buffer.concat(parts), ioSeq: seq } : { offset: start * this.blockSize, data: Buffer.concat(parts) });
    }
    return { runs, next: i < keys.length ? keys[i]! : null };
  }
  async rebuildStart(keepThrough: string | null): Promise<void> {
    const keep = keepThrough === null ? 0 : this.layers.findIndex((l) => l.name === keepThrough) + 1;
    if (keepThrough !== null && keep === 0) throw new CstorError('not_found', `snapshot ${keepThrough} not found`);
    this.layers = this.layers.slice(0, keep);
    this.importAt = keep;
    this.head = new Map();
    this.mode = 'Rebuilding';
  }
  async importLayerBegin(name: string, ioSeq: number): Promise<void> {
    this.importing.set(name, { name, ioSeq, createdAt: Date.now(), blocks: new Map() });
  }
  async importLayerWrite(name: string, offset: number, data: Buffer): Promise<void> {
    const l = this.importing.get(name);
    if (!l) throw new CstorError('conflict', `no import of ${name} in progress`);
    for (let o = 0; o < data.length; o += this.blockSize) l.blocks.set((offset + o) / this.blockSize, { data: Buffer.from(data.subarray(o, o + this.blockSize)), ioSeq: l.ioSeq });
  }
  async importLayerEnd(name: string): Promise<void> {
    const l = this.importing.get(name);
    if (!l) throw new CstorError('conflict', `no import of ${name} in progress`);
    this.importing.delete(name);
    this.layers.splice(this.importAt++, 0, l);
  }
  async writeIfNewer(offset: number, data: Buffer, ioSeq: number): Promise<void> {
    for (let o = 0; o < data.length; o += this.blockSize) {
      const k = (offset + o) / this.blockSize;
      const cur = this.head.get(k);
      if (!cur || cur.ioSeq < ioSeq) this.head.set(k, { data: Buffer.from(data.subarray(o, o + this.blockSize)), ioSeq });
    }
    this.highIoSeq = Math.max(this.highIoSeq, ioSeq);
  }
  async rebuildDone(): Promise<void> {
    this.mode = 'Healthy';
  }
  async markHealthy(): Promise<void> {
    if (this.mode === 'New') this.mode = 'Healthy';
  }
  async info(): Promise<ReplicaInfo> {
    return {
      volume: this.volume,
      size: this.size,
      blockSize: this.blockSize,
      mode: this.mode,
      checkpointedIoSeq: this.checkpointedIoSeq,
      snapshots: this.snapshots(),
      cloneOf: this.cloneOf,
      clones: [],
      usedBytes: (this.head.size + this.layers.reduce((n, l) => n + l.blocks.size, 0)) * this.blockSize,
    };
  }
  async close(): Promise<void> {}
}

export class FakePool implements Pool {
  readonly replicas = new Map<string, FakeReplica>();
  constructor(
    readonly name = 'fake',
    readonly dir = '/nonexistent',
  ) {}

  async createReplica(o: CreateReplicaOptions): Promise<ReplicaInfo> {
    checkName(o.volume, 'volume name');
    const existing = this.replicas.get(o.volume);
    if (existing) {
      if (existing.size !== o.size) throw new CstorError('already_exists', `replica ${o.volume} exists with size ${existing.size}`);
      return existing.info();
    }
    let r: FakeReplica;
    if (o.cloneOf) {
      const src = this.replicas.get(o.cloneOf.volume);
      const at = src?.layers.findIndex((l) => l.name === o.cloneOf!.snapshot) ?? -1;
      if (!src || at < 0) throw new CstorError('not_found', `snapshot ${o.cloneOf.volume}@${o.cloneOf.snapshot} not found`);
      r = new FakeReplica(o.volume, o.size, src.blockSize, `${o.cloneOf.volume}@${o.cloneOf.snapshot}`);
      r.layers = src.layers.slice(0, at + 1).map((l) => ({ ...l, blocks: new Map(l.blocks) }));
    } else {
      r = new FakeReplica(o.volume, o.size, o.blockSize ?? 4096, null);
    }
    this.replicas.set(o.volume, r);
    return r.info();
  }
  async openReplica(volume: string): Promise<Replica> {
    const r = this.replicas.get(volume);
    if (!r) throw new CstorError('not_found', `replica ${volume} not found`);
    return r;
  }
  async deleteReplica(volume: string): Promise<void> {
    this.replicas.delete(volume);
  }
  async listReplicas(): Promise<ReplicaInfo[]> {
    return Promise.all([...this.replicas.values()].map((r) => r.info()));
  }
  async getReplica(volume: string): Promise<ReplicaInfo | null> {
    return this.replicas.get(volume)?.info() ?? null;
  }
  async space(): Promise<PoolSpace> {
    const infos = await this.listReplicas();
    return { usedBytes: infos.reduce((n, i) => n + i.usedBytes, 0), freeBytes: 1 << 30 };
  }
  async close(): Promise<void> {}
}
