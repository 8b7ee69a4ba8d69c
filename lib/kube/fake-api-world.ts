// The common half of the reconcilers' in-memory test worlds: a manual clock, a log of every call,
// recorded Events, error injection per operation, and object patches that behave like the API
// server's (409 on a stale resourceVersion, status only through the status subresource, an object
// whose last finalizer goes while it is deleting is gone).
import { applyMergePatch } from '../json-merge-patch.ts';
import { CstorError } from '../errors.ts';
import { FakeClock } from './fake-clock.ts';
import type { ObjectMeta } from './types/meta.ts';

type Json = Record<string, unknown>;

export interface RecordedEvent {
  object: string;
  type: string;
  reason: string;
  message: string;
}

export class FakeApiWorld {
  readonly clock = new FakeClock(Date.parse('2026-01-02T03:04:05Z'));
  readonly events: RecordedEvent[] = [];
  readonly calls: string[] = [];
  private readonly faults = new Map<string, CstorError[]>();
  private rv = 100;
  private uidSeq = 0;

  /** The next `times` calls of `op` (e.g. "store.createReplica", "cvs.patchStatus") fail with `err`. */
  failNext(op: string, err: CstorError, times = 1): void {
    const list = this.faults.get(op) ?? [];
    for (let i = 0; i < times; i++) list.push(err);
    this.faults.set(op, list);
  }

  /** Logs `op what`, then throws the next error injected for `op`, if any. */
  protected call(op: string, what: string): void {
    this.calls.push(`${op} ${what}`);
    this.fault(op);
  }

  /** Throws the next error injected for `op`, if any, without logging a call. */
  protected fault(op: string): void {
    const err = this.faults.get(op)?.shift();
    if (err) throw err;
  }

  protected nextRv(): string {
    return String(++this.rv);
  }

  protected nextUid(): string {
    return `uid-${++this.uidSeq}`;
  }

  /** A merge patch of `objects[key]` as the API server applies one; returns the stored result. */
  protected patchIn<T extends { metadata: ObjectMeta }>(objects: Map<string, T>, resource: string, key: string, patch: Json, status: boolean): T {
    const cur = objects.get(key);
    if (!cur) throw new CstorError('not_found', `${resource} "${key}" not found`);
    const meta = patch.metadata as Json | undefined;
    if (meta?.resourceVersion !== undefined && meta.resourceVersion !== cur.metadata.resourceVersion) {
      throw new CstorError('conflict', `Operation cannot be fulfilled on ${resource} "${key}": the object has been modified`);
    }
    const body = JSON.parse(JSON.stringify(status ? { status: patch.status } : patch)) as Json;
    if (!status) {
      delete body.status;
      if (body.metadata) delete (body.metadata as Json).resourceVersion;
    }
    const next = applyMergePatch(cur, body) as T;
    next.metadata.resourceVersion = this.nextRv();
    if (next.metadata.deletionTimestamp && (next.metadata.finalizers ?? []).length === 0) {
      objects.delete(key);
      return next;
    }
    objects.set(key, next);
    return structuredClone(next);
  }
}
