// An in-memory ReplicaClient with a copy-on-write layer chain and fault injection, so the
// replication engine is tested without a pool. A FakeReplicaStore plays the pool's replica (it
// survives reconnects, like data on disk); a FakeReplicaClient is one connection to it.
import { CstorError } from '../../lib/errors.ts';
import type {
  BlockRun,
  OpenRequest,
  ReplicaClient,
  ReplicaMode,
  ReplicaStats,
  ReplicaStatus,
  RunPage,
  SnapshotInfo,
} from '../../lib/replica-protocol/types.ts';

interface Layer {
  name: string;
  ioSeq: number;
  createdAt: number;
  blocks: Map<number, Buffer>;
}

interface HeadBlock {
  data: Buffer;
  ioSeq: number;
}

type Op = keyof Omit<ReplicaClient, 'address' | 'onClose'>;

/** A fault rule: the next `count` calls of `op` (or of any op) fail, hang, or are delayed. */
export interface FaultRule {
  op: Op | '*';
  kind: 'error' | 'hang' | 'delay' | 'disconnect';
  /** How many calls it applies to (default 1); Infinity for all. delayMs: for delay, and for a late error. */
  count?: number;
  delayMs?: number;
}

export class FakeReplicaStore {
  mode: ReplicaMode = 'New';
  checkpointedIoSeq = 0;
  highestIoSeq = 0;
  layers: Layer[] = [];
  head = new Map<number, HeadBlock>();
  /** Where imported layers go (beneath snapshots created since rebuildStart). */
  private importAt = 0;
  private readonly importing = new Map<string, Layer>();
  /** False: connecting fails (the pool is down). */
  up = true;
  readonly clients = new Set<FakeReplicaClient>();
  reads = 0;
  writes = 0;

  constructor(
    readonly volume: string,
    readonly size: number,
    readonly blockSize = 512,
  ) {}

  /** Kills the pool: every connection drops, new ones are refused until revive(). */
  crash(): void {
    this.up = false;
    for (const c of [...this.clients]) c.disconnect(new CstorError('unavailable', 'pool crashed'));
  }

  revive(): void {
    this.up = true;
  }

  blockIndexes(offset: number, length: number): number[] {
    if (offset % this.blockSize !== 0 || length % this.blockSize !== 0 || offset < 0 || offset + length > this.size) {
      throw new CstorError('invalid', `bad range ${offset}+${length}`);
    }
    const out: number[] = [];
    for (let b = offset / this.blockSize; b < (offset + length) / this.blockSize; b++) out.push(b);
    return out;
  }

  /** The data at the head (layers: how many snapshot layers from the bottom to consider, default all + head). */
  readView(offset: number, length: number, throughSnapshot?: string): Buffer {
    const out = Buffer.alloc(length);
    let layers = this.layers;
    let useHead = true;
    if (throughSnapshot !== undefined) {
      const i = this.layers.findIndex((l) => l.name === throughSnapshot);
      if (i < 0) throw new CstorError('not_found', `snapshot ${throughSnapshot} not found`);
      layers = this.layers.slice(0, i + 1);
      useHead = false;
    }
    for (const b of this.blockIndexes(offset, length)) {
      let data: Buffer | undefined = useHead ? this.head.get(b)?.data : undefined;
      for (let i = layers.length - 1; data === undefined && i >= 0; i--) data = layers[i]!.blocks.get(b);
      data?.copy(out, b * this.blockSize - offset);
    }
    return out;
  }

  write(offset: number, data: Buffer, ioSeq: number): void {
    if (this.mode === 'New') throw new CstorError('conflict', 'write to a New replica');
    const idx = this.blockIndexes(offset, data.length);
    idx.forEach((b, i) => {
      const chunk = Buffer.from(data.subarray(i * this.blockSize, (i + 1) * this.blockSize));
      this.head.set(b, { data: chunk, ioSeq });
    });
    this.highestIoSeq = Math.max(this.highestIoSeq, ioSeq);
    this.writes++;
  }

  snapshotCreate(name: string, ioSeq: number): void {
    if (this.layers.some((l) => l.name === name)) return;
    const blocks = new Map<number, Buffer>();
    for (const [b, h] of this.head) blocks.set(b, h.data);
    this.layers.push({ name, ioSeq, createdAt: Date.now(), blocks });
    this.head = new Map();
  }

  snapshotDestroy(name: string): void {
    const i = this.layers.findIndex((l) => l.name === name);
    if (i < 0) return;
    const layer = this.layers[i]!;
    const child = this.layers[i + 1];
    if (child) {
      for (const [b, d] of layer.blocks) if (!child.blocks.has(b)) child.blocks.set(b, d);
    } else {
      for (const [b, d] of layer.blocks) if (!this.head.has(b)) this.head.set(b, { data: d, ioSeq: 0 });
    }
    this.layers.splice(i, 1);
    if (i < this.importAt) this.importAt--;
  }

  snapshotList(): SnapshotInfo[] {
    return this.layers.map((l) => ({ name: l.name, ioSeq: l.ioSeq, createdAt: l.createdAt, usedBytes: l.blocks.size * this.blockSize }));
  }

  readLayer(name: string, cursor: number, maxBytes: number): RunPage {
    const layer = this.layers.find((l) => l.name === name);
    if (!layer) throw new CstorError('not_found', `snapshot ${name} not found`);
    const keys = [...layer.blocks.keys()].sort((a, b) => a - b);
    const runs: BlockRun[] = [];
    let i = cursor;
    let bytes = 0;
    while (i < keys.length && (bytes === 0 || bytes + this.blockSize <= maxBytes)) {
      const start = keys[i]!;
      const parts: Buffer[] = [];
      let b = start;
      while (i < keys.length && keys[i] === b && (bytes === 0 || bytes + this.blockSize <= maxBytes)) {
        parts.push(layer.blocks.get(b)!);
        bytes += this.blockSize;
        i++;
        b++;
      }
      runs.push({ offset: start * this.blockSize, data: Buffer.concat(parts) });
    }
    return { runs, next: i < keys.length ? i : null };
  }

  rebuildStart(keepThrough: string | null): void {
    let keep = 0;
    if (keepThrough !== null) {
      keep = this.layers.findIndex((l) => l.name === keepThrough) + 1;
      if (keep === 0) throw new CstorError('not_found', `snapshot ${keepThrough} not found`);
    }
    this.mode = 'Rebuilding';
    this.layers = this.layers.slice(0, keep);
    this.head = new Map();
    this.importAt = keep;
    this.importing.clear();
  }

  importLayerBegin(name: string, ioSeq: number): void {
    if (this.mode !== 'Rebuilding') throw new CstorError('conflict', 'not rebuilding');
    this.importing.set(name, { name, ioSeq, createdAt: Date.now(), blocks: new Map() });
  }

  importLayerWrite(name: string, offset: number, data: Buffer): void {
    const layer = this.importing.get(name);
    if (!layer) throw new CstorError('conflict', `no import of ${name} in progress`);
    this.blockIndexes(offset, data.length).forEach((b, i) => {
      layer.blocks.set(b, Buffer.from(data.subarray(i * this.blockSize, (i + 1) * this.blockSize)));
    });
  }

  importLayerEnd(name: string): void {
    const layer = this.importing.get(name);
    if (!layer) throw new CstorError('conflict', `no import of ${name} in progress`);
    this.importing.delete(name);
    this.layers.splice(this.importAt, 0, layer);
    this.importAt++;
  }

  rebuildDone(): void {
    if (this.mode !== 'Rebuilding') throw new CstorError('conflict', 'not rebuilding');
    this.mode = 'Healthy';
  }

  markHealthy(): void {
    if (this.mode !== 'New') throw new CstorError('conflict', `markHealthy of a ${this.mode} replica`);
    this.mode = 'Healthy';
  }
}

export class FakeReplicaClient implements ReplicaClient {
  private closed = false;
  private readonly listeners: ((err?: Error) => void)[] = [];
  private readonly inflight = new Set<(err: Error) => void>();
  private readonly openedAt = Date.now();
  inflightRead = 0;
  inflightWrite = 0;
  readonly calls: { op: Op; args: unknown[] }[] = [];

  constructor(
    readonly address: string,
    readonly store: FakeReplicaStore,
    readonly faults: FaultRule[] = [],
  ) {
    store.clients.add(this);
  }

  /** Drops the connection: every request in flight fails, listeners hear once. */
  disconnect(err: Error = new CstorError('unavailable', `connection to ${this.address} lost`)): void {
    if (this.closed) return;
    this.closed = true;
    this.store.clients.delete(this);
    for (const reject of [...this.inflight]) reject(err);
    this.inflight.clear();
    for (const l of this.listeners) l(err);
  }

  private call<T>(op: Op, args: unknown[], fn: () => T): Promise<T> {
    this.calls.push({ op, args });
    if (this.closed) return Promise.reject(new CstorError('unavailable', `connection to ${this.address} closed`));
    const rule = this.faults.find((f) => (f.op === op || f.op === '*') && (f.count ?? 1) > 0);
    if (rule) rule.count = (rule.count ?? 1) - 1;
    const isRead = op === 'read';
    const isWrite = op === 'write' || op === 'unmap';
    if (isRead) this.inflightRead++;
    if (isWrite) this.inflightWrite++;
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        if (timer) clearTimeout(timer);
        this.inflight.delete(fail);
        if (isRead) this.inflightRead--;
        if (isWrite) this.inflightWrite--;
      };
      const fail = (err: Error): void => {
        done();
        reject(err);
      };
      this.inflight.add(fail);
      const run = (): void => {
        if (this.closed) return;
        done();
        try {
          resolve(fn());
        } catch (err) {
          reject(err);
        }
      };
      if (!rule) return void setImmediate(run);
      switch (rule.kind) {
        case 'error': {
          const err = new CstorError('io', `injected ${op} error on ${this.address}`);
          if (rule.delayMs !== undefined) timer = setTimeout(() => fail(err), rule.delayMs);
          else setImmediate(() => fail(err));
          return;
        }
        case 'hang':
          return;
        case 'delay':
          timer = setTimeout(run, rule.delayMs ?? 10);
          return;
        case 'disconnect':
          return void setImmediate(() => this.disconnect());
      }
    });
  }

  open(req: OpenRequest): Promise<ReplicaStatus> {
    return this.call('open', [req], () => {
      if (req.size !== this.store.size) throw new CstorError('invalid', `size ${req.size} != ${this.store.size}`);
      return this.statusNow();
    });
  }

  private statusNow(): ReplicaStatus {
    const s = this.store;
    return {
      volume: s.volume,
      mode: s.mode,
      checkpointedIoSeq: s.checkpointedIoSeq,
      size: s.size,
      blockSize: s.blockSize,
      inflightRead: this.inflightRead,
      inflightWrite: this.inflightWrite,
      upTime: Math.floor((Date.now() - this.openedAt) / 1000),
    };
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.call('read', [offset, length], () => {
      this.store.reads++;
      return this.store.readView(offset, length);
    });
  }
  write(offset: number, data: Buffer, ioSeq: number): Promise<void> {
    const copy = Buffer.from(data);
    return this.call('write', [offset, copy.length, ioSeq], () => this.store.write(offset, copy, ioSeq));
  }
  unmap(offset: number, length: number, ioSeq: number): Promise<void> {
    return this.call('unmap', [offset, length, ioSeq], () => this.store.write(offset, Buffer.alloc(length), ioSeq));
  }
  sync(): Promise<number> {
    return this.call('sync', [], () => {
      this.store.checkpointedIoSeq = this.store.highestIoSeq;
      return this.store.checkpointedIoSeq;
    });
  }
  status(): Promise<ReplicaStatus> {
    return this.call('status', [], () => this.statusNow());
  }
  stats(): Promise<ReplicaStats> {
    return this.call('stats', [], () => ({
      reads: this.store.reads,
      writes: this.store.writes,
      readBytes: 0,
      writeBytes: 0,
      usedBytes: 0,
      snapshots: this.store.layers.length,
    }));
  }
  snapshotCreate(name: string, ioSeq: number): Promise<void> {
    return this.call('snapshotCreate', [name, ioSeq], () => this.store.snapshotCreate(name, ioSeq));
  }
  snapshotDestroy(name: string): Promise<void> {
    return this.call('snapshotDestroy', [name], () => this.store.snapshotDestroy(name));
  }
  snapshotList(): Promise<SnapshotInfo[]> {
    return this.call('snapshotList', [], () => this.store.snapshotList());
  }
  readLayer(name: string, cursor: number, maxBytes: number): Promise<RunPage> {
    return this.call('readLayer', [name, cursor], () => this.store.readLayer(name, cursor, maxBytes));
  }
  readHeadSince(_sinceIoSeq: number, _cursor: number, _maxBytes: number): Promise<RunPage> {
    return this.call('readHeadSince', [], () => ({ runs: [], next: null }));
  }
  rebuildStart(keepThrough: string | null): Promise<void> {
    return this.call('rebuildStart', [keepThrough], () => this.store.rebuildStart(keepThrough));
  }
  importLayerBegin(name: string, ioSeq: number): Promise<void> {
    return this.call('importLayerBegin', [name, ioSeq], () => this.store.importLayerBegin(name, ioSeq));
  }
  importLayerWrite(name: string, offset: number, data: Buffer): Promise<void> {
    return this.call('importLayerWrite', [name, offset], () => this.store.importLayerWrite(name, offset, data));
  }
  importLayerEnd(name: string): Promise<void> {
    return this.call('importLayerEnd', [name], () => this.store.importLayerEnd(name));
  }
  writeIfNewer(offset: number, data: Buffer, ioSeq: number): Promise<void> {
    return this.call('writeIfNewer', [offset, ioSeq], () => {
      this.store.blockIndexes(offset, data.length).forEach((b, i) => {
        const cur = this.store.head.get(b);
        if (!cur || cur.ioSeq < ioSeq) {
          this.store.head.set(b, { data: Buffer.from(data.subarray(i * this.store.blockSize, (i + 1) * this.store.blockSize)), ioSeq });
        }
      });
    });
  }
  rebuildDone(): Promise<void> {
    return this.call('rebuildDone', [], () => this.store.rebuildDone());
  }
  markHealthy(): Promise<void> {
    return this.call('markHealthy', [], () => this.store.markHealthy());
  }
  async close(): Promise<void> {
    this.disconnect(new CstorError('aborted', `connection to ${this.address} closed`));
  }
  onClose(listener: (err?: Error) => void): void {
    this.listeners.push(listener);
  }
}

/** A set of fake pools by address: `connect` is what the engine is given. */
export class FakeCluster {
  readonly stores = new Map<string, FakeReplicaStore>();
  /** Fault rules applied to the next connection of an address. */
  readonly pendingFaults = new Map<string, FaultRule[]>();
  readonly clients: FakeReplicaClient[] = [];

  constructor(
    readonly volume: string,
    readonly size: number,
    readonly addresses: readonly string[],
    readonly blockSize = 512,
  ) {
    for (const a of addresses) this.stores.set(a, new FakeReplicaStore(volume, size, blockSize));
  }

  store(address: string): FakeReplicaStore {
    const s = this.stores.get(address);
    if (!s) throw new Error(`no store ${address}`);
    return s;
  }

  /** The live client of an address (the newest one still connected). */
  client(address: string): FakeReplicaClient {
    const c = [...this.store(address).clients].at(-1);
    if (!c) throw new Error(`no client for ${address}`);
    return c;
  }

  readonly connect = async (address: string): Promise<ReplicaClient> => {
    const store = this.store(address);
    if (!store.up) throw new CstorError('unavailable', `connect ${address}: connection refused`);
    const faults = this.pendingFaults.get(address) ?? [];
    this.pendingFaults.delete(address);
    const c = new FakeReplicaClient(address, store, faults);
    this.clients.push(c);
    return c;
  };
}
