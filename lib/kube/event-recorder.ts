// Records core v1 Events about objects, like client-go's recorder: one Event per
// (object, type, reason, message), repeats bump its count and lastTimestamp instead of creating
// duplicates. Recording never throws to the caller: a failure is logged as a warning (an Event
// is a hint for humans, not state a controller depends on).
import type { Logger } from '../logger.ts';
import { describeError, hasErrorCode } from '../errors.ts';
import { realClock, type Clock } from './clock.ts';
import type { ResourceClient } from './resource-client.ts';
import { kubeTime } from './time-format.ts';
import type { CoreEvent, EventType } from './types/core.ts';
import type { KubeObject, ObjectReference } from './types/meta.ts';

export type EventClient = Pick<ResourceClient<CoreEvent>, 'create' | 'mergePatch'>;

export interface EventRecorderOptions {
  client: EventClient;
  /** source.component and reportingComponent, e.g. "volumesnapshot-controller". */
  component: string;
  /** source.host and reportingInstance (default: the component). */
  host?: string;
  logger: Logger;
  clock?: Clock;
  /** Aggregation entries kept (oldest dropped first); default 4096. */
  maxCacheEntries?: number;
}

interface Recorded {
  name: string;
  namespace: string;
  count: number;
}

/** What an Event is about: the object itself, or a reference to it. */
export type EventSubject = KubeObject | ObjectReference;

export class EventRecorder {
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly recorded = new Map<string, Recorded>();
  /** Per aggregation key, the last write in flight: writes for one key run one after another. */
  private readonly chains = new Map<string, Promise<void>>();
  private seq = 0;

  constructor(private readonly options: EventRecorderOptions) {
    this.clock = options.clock ?? realClock;
    this.logger = options.logger;
  }

  /** Records an Event; the promise always resolves (await it only to know it was written). */
  event(subject: EventSubject, type: EventType, reason: string, message: string): Promise<void> {
    const ref = toReference(subject);
    // Events about cluster-scoped objects (PVs, StorageClasses) live in "default", as client-go does.
    const namespace = ref.namespace || 'default';
    const key = JSON.stringify([namespace, ref.kind, ref.name, ref.uid ?? '', type, reason, message]);
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev
      .then(() => this.write(key, namespace, ref, { type, reason, message }))
      .catch((err: unknown) => {
        this.logger.warn('could not record event', { reason, object: `${ref.kind}/${namespace}/${ref.name}`, error: describeError(err) });
      });
    this.chains.set(key, next);
    void next.finally(() => {
      if (this.chains.get(key) === next) this.chains.delete(key);
    });
    return next;
  }

  private async write(key: string, namespace: string, ref: ObjectReference, what: { type: EventType; reason: string; message: string }): Promise<void> {
    const now = kubeTime(this.clock.now());
    const seen = this.recorded.get(key);
    if (seen) {
      try {
        await this.options.client.mergePatch({ name: seen.name, namespace: seen.namespace }, { count: seen.count + 1, lastTimestamp: now });
        seen.count++;
        this.remember(key, seen);
        return;
      } catch (err) {
        if (!hasErrorCode(err, 'not_found')) throw err;
        this.recorded.delete(key); // expired or deleted: start a new Event
      }
    }
    const host = this.options.host ?? this.options.component;
    for (let attempt = 0; ; attempt++) {
      const name = `${ref.name}.${this.uniqueSuffix()}`;
      const event: CoreEvent = {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace },
        involvedObject: ref,
        type: what.type,
        reason: what.reason,
        message: what.message,
        source: { component: this.options.component, host },
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
        reportingComponent: this.options.component,
        reportingInstance: host,
      };
      try {
        await this.options.client.create(event);
        this.remember(key, { name, namespace, count: 1 });
        return;
      } catch (err) {
        if (attempt < 2 && hasErrorCode(err, 'already_exists')) continue;
        throw err;
      }
    }
  }

  /** Hex nanoseconds since the epoch, made unique within this process (client-go: "%x" of UnixNano). */
  private uniqueSuffix(): string {
    return (BigInt(this.clock.now()) * 1_000_000n + BigInt(this.seq++ % 1_000_000)).toString(16);
  }

  private remember(key: string, entry: Recorded): void {
    this.recorded.delete(key);
    this.recorded.set(key, entry);
    const max = this.options.maxCacheEntries ?? 4096;
    while (this.recorded.size > max) {
      const oldest = this.recorded.keys().next().value;
      if (oldest === undefined) break;
      this.recorded.delete(oldest);
    }
  }
}

function toReference(subject: EventSubject): ObjectReference {
  if ('metadata' in subject && subject.metadata) {
    const m = subject.metadata;
    const ref: ObjectReference = { kind: subject.kind, apiVersion: subject.apiVersion, name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion };
    return dropUndefined(ref);
  }
  return dropUndefined({ ...(subject as ObjectReference) });
}

function dropUndefined(ref: ObjectReference): ObjectReference {
  const out: ObjectReference = {};
  for (const [k, v] of Object.entries(ref) as [keyof ObjectReference, string | undefined][]) if (v !== undefined && v !== '') out[k] = v;
  return out;
}
