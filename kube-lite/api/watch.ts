// Watch streams: newline-delimited {"type", "object"} events over a chunked response, in
// resourceVersion order with no gaps. With selectors, an object that stops matching is sent as
// DELETED and one that starts matching as ADDED, as Kubernetes does.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ResourceInfo } from '../resources/registry.ts';
import { buildTable, type IncludeObject } from '../resources/tables.ts';
import type { Store } from '../store/store.ts';
import type { ChangeEvent, KubeObject, WatchEventType } from '../store/types.ts';
import { Operations, type Selectors } from './operations.ts';

export interface WatchRequest {
  info: ResourceInfo;
  version: string;
  namespace?: string;
  selectors: Selectors;
  /** Events after this resourceVersion; undefined = current state as ADDED events first. */
  fromRv?: number;
  table: boolean;
  include: IncludeObject;
  timeoutSeconds?: number;
  bookmarks: boolean;
}

export interface WatchContext {
  store: Store;
  bookmarkIntervalMs: number;
}

/** Encoded watch lines per stored object (objects are immutable once stored). */
const encoded = new WeakMap<KubeObject, Map<string, string>>();

export function serveWatch(ctx: WatchContext, req: IncomingMessage, res: ServerResponse, w: WatchRequest): void {
  const { info, version } = w;
  const inScope = (o: KubeObject): boolean => !info.namespaced || w.namespace === undefined || o.metadata.namespace === w.namespace;
  const selected = (o: KubeObject): boolean => inScope(o) && Operations.matchesSelectors(info, w.selectors, o);
  const encode = (type: WatchEventType | 'BOOKMARK', o: KubeObject): string => {
    if (w.table) return `${JSON.stringify({ type, object: buildTable(info, version, [o], { resourceVersion: o.metadata.resourceVersion ?? '' }, w.include) })}\n`;
    // Many watchers of one resource share one serialization of each object.
    const key = `${type}/${version}`;
    let perObject = encoded.get(o);
    if (!perObject) encoded.set(o, (perObject = new Map()));
    let line = perObject.get(key);
    if (line === undefined) {
      line = `${JSON.stringify({ type, object: Operations.output(info, version, o) })}\n`;
      perObject.set(key, line);
    }
    return line;
  };
  let lastRv = w.fromRv ?? ctx.store.resourceVersion;
  const startRv = lastRv;
  const translate = (ev: ChangeEvent): string | undefined => {
    if (ev.rv <= startRv) return undefined;
    // Every event, of any resource, advances the bookmark's resourceVersion: events arrive in
    // resourceVersion order, so all of this watch's events up to ev.rv have been sent. (A bookmark
    // that followed only this resource's events would leave a quiet watch with a resourceVersion
    // the history drops, so its next watch got 410 and a full relist.)
    lastRv = ev.rv;
    if (ev.resKey !== info.resKey) return undefined;
    const now = selected(ev.obj);
    const before = ev.prev !== undefined && selected(ev.prev);
    if (ev.type === 'DELETED') return before || now ? encode('DELETED', ev.obj) : undefined;
    if (ev.type === 'ADDED') return now ? encode('ADDED', ev.obj) : undefined;
    if (now && before) return encode('MODIFIED', ev.obj);
    if (now) return encode('ADDED', ev.obj);
    if (before) return encode('DELETED', ev.obj);
    return undefined;
  };

  const queue: string[] = [];
  const onEvent = (ev: ChangeEvent): void => {
    let line: string | undefined;
    try {
      line = translate(ev);
    } catch (err) {
      // An event this watch cannot encode: end the watch rather than skip the event silently
      // (the client watches again from the last resourceVersion it saw).
      end();
      throw err;
    }
    if (line !== undefined) queue.push(line);
    flush();
  };
  // Throws `gone` (410) before anything is written when fromRv is past the window.
  const sub = ctx.store.hub.subscribe(startRv, onEvent);
  res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache, private' });
  res.flushHeaders();
  if (w.fromRv === undefined) {
    for (const o of ctx.store.list(info.resKey, info.namespaced ? w.namespace : undefined)) {
      if (selected(o) && Number(o.metadata.resourceVersion) <= startRv) queue.push(encode('ADDED', o));
    }
  }
  for (const ev of sub.backlog) {
    const line = translate(ev);
    if (line !== undefined) queue.push(line);
  }

  let waitingDrain = false;
  function flush(): void {
    if (waitingDrain || res.writableEnded) return;
    while (queue.length > 0) {
      const chunk = queue.splice(0, 256).join('');
      if (!res.write(chunk)) {
        waitingDrain = true;
        res.once('drain', () => {
          waitingDrain = false;
          flush();
        });
        return;
      }
    }
  }
  flush();

  const timers: NodeJS.Timeout[] = [];
  const end = (): void => {
    sub.unsubscribe();
    for (const t of timers) clearTimeout(t);
    if (!res.writableEnded) res.end();
  };
  if (w.timeoutSeconds !== undefined && w.timeoutSeconds > 0) timers.push(setTimeout(end, w.timeoutSeconds * 1000));
  if (w.bookmarks) {
    const tick = (): void => {
      queue.push(`${JSON.stringify({ type: 'BOOKMARK', object: { kind: info.kind, apiVersion: info.group ? `${info.group}/${version}` : version, metadata: { resourceVersion: String(lastRv) } } })}\n`);
      flush();
      timers.push(setTimeout(tick, ctx.bookmarkIntervalMs).unref());
    };
    timers.push(setTimeout(tick, ctx.bookmarkIntervalMs).unref());
  }
  req.on('close', end);
  res.on('close', end);
}
