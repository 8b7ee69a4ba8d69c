// A watch-fed read cache for the objects that pick and define a CAS flow: CASTemplates, RunTasks
// (in m-apiserver's namespace), and the PersistentVolume → StorageClass lookup of the flows layer.
// Each kind has an informer (lib/kube: list, then watch, rewatch/relist forever); reads are served
// from its cache only while it is LIVE: listed at least once AND its watch stream is open right
// now. Otherwise (starting, watch cut and being re-established, API server gone) a read goes to
// the API server, exactly as without the cache. So an edit of a template takes effect on the
// first run after its watch event reached m-apiserver (on one host, before the editor even gets
// its answer: kube-lite writes the event to open watches before answering the write), and never
// later than the informer's periodic relist, even over a half-open connection.
//
// Misses: a template object absent from a live cache is read from the API server (an object
// created a moment ago works at once; a really missing one gets the API server's not found). For
// PVs and StorageClasses (`trustMisses`), absent from a live cache means absent: a volume made
// through REST has no PV, and asking for it on every snapshot is what the cache saves.
//
// Objects handed out are the cache's own: read them, never change them.
import { Counter, Gauge, type Registry } from 'prom-client';
import { CstorError } from '../../lib/errors.ts';
import type { BackoffOptions } from '../../lib/kube/backoff.ts';
import { Informer } from '../../lib/kube/informer.ts';
import type { KubeClients } from '../../lib/kube/kube-clients.ts';
import type { ListOptions, ListWatchSource, WatchHandle, WatchOptions } from '../../lib/kube/list-watch.ts';
import type { ResourceType } from '../../lib/kube/resource-type.ts';
import { resources } from '../../lib/kube/resources.ts';
import type { KubeList, KubeObject as LibKubeObject, WatchEvent } from '../../lib/kube/types/meta.ts';
import type { Logger } from '../../lib/logger.ts';
import { describeRef, type KubeObject, type ObjectRef } from './ports.ts';

/** The one read the engine (templates) and the flows (PV, StorageClass) need. */
export interface ObjectReader {
  get(ref: ObjectRef): Promise<KubeObject>;
}

export interface WatchedKind {
  apiVersion: string;
  kind: string;
  /** For a namespaced kind, the one namespace watched; reads in other namespaces go to the API server. */
  namespace?: string;
  source: ListWatchSource<LibKubeObject>;
  /** While live, an object missing from the cache is not_found without asking the API server. */
  trustMisses: boolean;
}

export interface WatchedObjectsOptions {
  kinds: WatchedKind[];
  /** Where reads go while a kind is not live (and for kinds not watched). */
  fallback: ObjectReader;
  logger: Logger;
  registry?: Registry;
  /** Periodic relist of each informer (bounds staleness over a silent, half-open watch). Default 5 min. */
  resyncPeriodMs?: number;
  /** Between failed lists and watches (default: the informer's, 250 ms doubling to 30 s). */
  backoff?: BackoffOptions;
}

const casCrd = (plural: string, kind: string, namespaced: boolean): ResourceType => ({ group: 'openebs.io', version: 'v1alpha1', plural, kind, namespaced });

/**
 * What m-apiserver watches: CASTemplates, RunTasks of its namespace (a template's other
 * `taskNamespace` is read from the API server), PVs and StorageClasses (misses trusted).
 */
export function templateCacheKinds(clients: KubeClients, namespace: string): WatchedKind[] {
  const cas = 'openebs.io/v1alpha1';
  return [
    { apiVersion: cas, kind: 'CASTemplate', source: clients.for(casCrd('castemplates', 'CASTemplate', false)), trustMisses: false },
    { apiVersion: cas, kind: 'RunTask', namespace, source: clients.for(casCrd('runtasks', 'RunTask', true)), trustMisses: false },
    { apiVersion: 'v1', kind: 'PersistentVolume', source: clients.for(resources.persistentVolumes), trustMisses: true },
    { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', source: clients.for(resources.storageClasses), trustMisses: true },
  ];
}

/** How a read was answered: from the cache (hit, miss), or by the API server (and why). */
export type ReadResult = 'hit' | 'miss' | 'miss_checked' | 'not_live' | 'not_watched';

/** A ListWatchSource that knows whether a watch stream is open right now. */
class LiveSource implements ListWatchSource<LibKubeObject> {
  private open = 0;

  constructor(private readonly inner: ListWatchSource<LibKubeObject>) {}

  get watching(): boolean {
    return this.open > 0;
  }

  list(options: ListOptions): Promise<KubeList<LibKubeObject>> {
    return this.inner.list(options);
  }

  async watch(options: WatchOptions, onEvent: (event: WatchEvent<LibKubeObject>) => void): Promise<WatchHandle> {
    const handle = await this.inner.watch(options, onEvent);
    this.open++;
    let counted = true;
    const closed = (): void => {
      if (!counted) return;
      counted = false;
      this.open--;
    };
    handle.done.then(closed, closed);
    return {
      done: handle.done,
      abort: () => {
        closed();
        handle.abort();
      },
    };
  }
}

interface Entry {
  kind: WatchedKind;
  source: LiveSource;
  informer: Informer<LibKubeObject>;
}

export class WatchedObjects implements ObjectReader {
  private readonly entries = new Map<string, Entry>();
  private readonly fallback: ObjectReader;
  private readonly counts = new Map<string, number>();
  private readonly reads: Counter | undefined;

  constructor(options: WatchedObjectsOptions) {
    this.fallback = options.fallback;
    const logger = options.logger.child({ component: 'watch-cache' });
    for (const kind of options.kinds) {
      const source = new LiveSource(kind.source);
      const informer = new Informer<LibKubeObject>({
        source,
        name: kind.kind,
        logger,
        resyncPeriodMs: options.resyncPeriodMs ?? 5 * 60_000,
        ...(options.backoff ? { backoff: options.backoff } : {}),
        ...(kind.namespace ? { namespace: kind.namespace } : {}),
      });
      this.entries.set(WatchedObjects.key(kind.apiVersion, kind.kind), { kind, source, informer });
    }
    if (options.registry) {
      this.reads = new Counter({
        name: 'mapi_watch_cache_reads_total',
        help: 'Reads of template objects, PVs and StorageClasses by how they were answered: hit, miss (from the cache); miss_checked, not_live, not_watched (by the API server)',
        labelNames: ['kind', 'result'],
        registers: [options.registry],
      });
      const entries = this.entries;
      new Gauge({
        name: 'mapi_watch_cache_live',
        help: '1 while the watch cache of a kind serves reads (listed, watch open), else 0',
        labelNames: ['kind'],
        registers: [options.registry],
        collect() {
          for (const e of entries.values()) this.set({ kind: e.kind.kind }, e.informer.hasSynced && e.source.watching ? 1 : 0);
        },
      });
    }
  }

  private static key(apiVersion: string, kind: string): string {
    return `${apiVersion}|${kind}`;
  }

  start(): void {
    for (const e of this.entries.values()) e.informer.start();
  }

  /** Waits until every kind has listed once, at most `timeoutMs`; answers whether they all have. */
  async waitForSync(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      const synced = Promise.all([...this.entries.values()].map((e) => e.informer.waitForSync())).then(() => true as const);
      return await Promise.race([synced, timeout]);
    } catch {
      return false; // stopped before syncing
    } finally {
      clearTimeout(timer);
    }
  }

  async stop(): Promise<void> {
    await Promise.all([...this.entries.values()].map((e) => e.informer.stop()));
  }

  /** Whether reads of this kind are served from the cache right now. */
  isLive(apiVersion: string, kind: string): boolean {
    const e = this.entries.get(WatchedObjects.key(apiVersion, kind));
    return e !== undefined && e.informer.hasSynced && e.source.watching;
  }

  /** Reads answered so far, by `Kind/result` (e.g. `RunTask/hit`). */
  stats(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }

  private count(kind: string, result: ReadResult): void {
    const k = `${kind}/${result}`;
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
    this.reads?.inc({ kind, result });
  }

  async get(ref: ObjectRef): Promise<KubeObject> {
    const e = this.entries.get(WatchedObjects.key(ref.apiVersion, ref.kind));
    if (!e || (e.kind.namespace !== undefined && ref.namespace !== e.kind.namespace)) {
      this.count(ref.kind, 'not_watched');
      return this.fallback.get(ref);
    }
    if (!(e.informer.hasSynced && e.source.watching)) {
      this.count(ref.kind, 'not_live');
      return this.fallback.get(ref);
    }
    const hit = e.informer.cache.getByName(ref.name, e.kind.namespace);
    if (hit) {
      this.count(ref.kind, 'hit');
      return hit as unknown as KubeObject;
    }
    if (e.kind.trustMisses) {
      this.count(ref.kind, 'miss');
      throw new CstorError('not_found', `${describeRef(ref)} not found (watch cache)`);
    }
    this.count(ref.kind, 'miss_checked');
    return this.fallback.get(ref);
  }
}
