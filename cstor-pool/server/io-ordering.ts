// Orders the requests to one replica (shared by every connection to it) by arrival:
// - a write (write, unmap, write-if-newer, import write) waits for every earlier read or write
//   that overlaps its range, so overlapping writes land in arrival order and a read never sees a
//   write that arrived after it; disjoint writes run at once;
// - a read waits for earlier overlapping writes, so it sees every write that arrived before it
//   (reads never wait for reads);
// - a flush (sync) waits for every earlier write, and holds nothing back;
// - a barrier (snapshot create/destroy, rebuild and import steps, mark healthy) waits for
//   everything earlier and holds back everything later; a staged barrier (snapshot create, whose
//   cut comes before its durability) holds back everything later only until it says so.
// Dependencies are taken at arrival, so the order is exactly the order requests were decoded in.
// A write that has to wait has its io_seq held in the store meanwhile (`SeqHolder`), so that no
// checkpoint taken in between (a sync ahead of it, a close) claims an io_seq it has not written.

export type IoKind = 'read' | 'write' | 'flush' | 'barrier';

interface Entry {
  kind: IoKind;
  start: number;
  end: number;
  /** Settles (never rejects) when the operation has finished. */
  done: Promise<void>;
}

function conflicts(earlier: Entry, kind: IoKind, start: number, end: number): boolean {
  if (kind === 'barrier' || earlier.kind === 'barrier') return true;
  if (kind === 'flush') return earlier.kind === 'write';
  if (earlier.kind === 'flush') return false;
  if (kind === 'read' && earlier.kind === 'read') return false;
  return earlier.start < end && start < earlier.end;
}

const settle = (): void => {};

/** Replica.holdSeq: keeps checkpoints below an io_seq until the release is called. */
export interface SeqHolder {
  holdSeq(ioSeq: number): () => void;
}

export class IoOrdering {
  private readonly inflight = new Set<Entry>();

  constructor(private readonly seqs: SeqHolder | null = null) {}

  /** Operations not yet finished. */
  get size(): number {
    return this.inflight.size;
  }

  /**
   * Runs `fn` once every earlier conflicting operation has finished. `start`/`length` is the byte
   * range (ignored for flush and barrier). `ioSeq` (a write's): held in the store while it waits.
   */
  run<T>(kind: IoKind, start: number, length: number, fn: () => Promise<T>, ioSeq?: number): Promise<T> {
    const end = start + length;
    const deps: Promise<void>[] = [];
    for (const e of this.inflight) if (conflicts(e, kind, start, end)) deps.push(e.done);
    let result: Promise<T>;
    if (deps.length === 0) {
      result = fn();
    } else if (ioSeq === undefined || this.seqs === null) {
      result = Promise.all(deps).then(fn);
    } else {
      // Released once the write has settled (the store then counts it itself, done or failed).
      const release = this.seqs.holdSeq(ioSeq);
      result = Promise.all(deps).then(fn);
      void result.then(release, release);
    }
    const entry: Entry = { kind, start, end, done: result.then(settle, settle) };
    this.inflight.add(entry);
    void entry.done.then(() => this.inflight.delete(entry));
    return result;
  }

  /**
   * A barrier in two steps: `fn` runs once everything earlier has finished, and everything later
   * waits only until its `released` settles (or its `result` does, if that comes first); the
   * returned promise is `result`.
   */
  runStaged<T>(fn: () => { released: Promise<unknown>; result: Promise<T> }): Promise<T> {
    const deps: Promise<void>[] = [];
    for (const e of this.inflight) deps.push(e.done);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const begin = (): Promise<T> => {
      const staged = fn();
      void Promise.race([staged.released, staged.result]).then(release, release);
      return staged.result;
    };
    let result: Promise<T>;
    if (deps.length > 0) {
      result = Promise.all(deps).then(begin);
    } else {
      try {
        result = begin();
      } catch (err) {
        result = Promise.reject(err as Error);
      }
    }
    void result.then(release, release);
    const entry: Entry = { kind: 'barrier', start: 0, end: 0, done: held };
    this.inflight.add(entry);
    void held.then(() => this.inflight.delete(entry));
    return result;
  }
}
