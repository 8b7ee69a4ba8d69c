// The HTTP front of kube-lite: bearer-token check, routing, body parsing, and the REST verbs
// over Operations. Every error becomes a Kubernetes Status body here (one place).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import * as yaml from 'js-yaml';
import { CstorError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import type { ResourceInfo, ResourceRegistry } from '../resources/registry.ts';
import { buildTable, type IncludeObject } from '../resources/tables.ts';
import { isJsonObject, type JsonObject, type KubeObject } from '../store/types.ts';
import type { ApiMetrics } from './metrics.ts';
import { coreVersions, group, groupList, resourceList, serverVersion } from './discovery.ts';
import { Operations, type DeleteOptions } from './operations.ts';
import { patchTypeOf } from './patch.ts';
import { decodeKubeProtobuf, protobufContentType } from './protobuf/decode.ts';
import { parsePath, type ResourcePath } from './router.ts';
import { badRequest, failure, gone, methodNotAllowed, notFound, statusFromError, unsupportedMediaType } from './status.ts';
import { serveWatch } from './watch.ts';

const maxBody = 3 * 1024 * 1024;
/** Past this many bytes a refused body is no longer read (the connection is closed). */
const maxDiscard = 64 * 1024 * 1024;

export interface HandlerContext {
  ops: Operations;
  registry: ResourceRegistry;
  token: string;
  logger: Logger;
  serverAddress: () => string;
  bookmarkIntervalMs: number;
  metrics: ApiMetrics;
}

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, err: unknown): void {
  const st = statusFromError(err);
  if (res.headersSent) {
    res.end();
    return;
  }
  send(res, st.code, st);
}

function authorized(req: IncomingMessage, token: string): boolean {
  const h = req.headers.authorization ?? '';
  const m = /^Bearer\s+(.+)$/i.exec(h);
  if (!m) return false;
  const a = Buffer.from(m[1]!.trim());
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (refused) {
        // Discard the rest so the client reads the 413 instead of a reset connection; a body
        // far past the limit gets the connection closed.
        if (size > maxDiscard) req.destroy();
        return;
      }
      if (size > maxBody) {
        refused = true;
        chunks.length = 0;
        reject(new CstorError('too_large', `the request body is larger than ${maxBody} bytes`, { details: { reason: 'RequestEntityTooLarge', httpStatus: 413 } }));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Deepest nesting of arrays and objects accepted in a body (the recursive code after parsing needs a bound). */
const maxDepth = 1000;

/** Refuses a body nested deeper than maxDepth (checked without recursion). */
function checkDepth(v: unknown): unknown {
  const stack: [unknown, number][] = [[v, 1]];
  while (stack.length > 0) {
    const [cur, depth] = stack.pop()!;
    if (typeof cur !== 'object' || cur === null) continue;
    if (depth > maxDepth) throw badRequest(`the request body is nested more than ${maxDepth} levels deep`);
    for (const child of Array.isArray(cur) ? cur : Object.values(cur)) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
  }
  return v;
}

async function parseBody(req: IncomingMessage): Promise<unknown> {
  return checkDepth(await parseBodyUnchecked(req));
}

async function parseBodyUnchecked(req: IncomingMessage): Promise<unknown> {
  const raw = await readBody(req);
  const ct = (req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase();
  if (ct === protobufContentType) {
    // kubectl's generators (`kubectl create namespace|configmap|secret|serviceaccount|service`).
    if (raw.length === 0) throw badRequest('the request body is empty');
    return decodeKubeProtobuf(raw);
  }
  const text = raw.toString('utf8');
  if (text.trim() === '') throw badRequest('the request body is empty');
  if (ct === 'application/yaml' || ct === 'application/apply-patch+yaml') {
    try {
      return yaml.load(text);
    } catch (err) {
      throw badRequest(`the request body is not valid YAML: ${(err as Error).message}`);
    }
  }
  if (ct.includes('protobuf')) throw unsupportedMediaType(`kube-lite accepts JSON, YAML and ${protobufContentType} bodies, not ${ct}`);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw badRequest(`the request body is not valid JSON: ${(err as Error).message}`);
  }
}

function wantsTable(req: IncomingMessage): boolean {
  return /as=Table/.test(req.headers.accept ?? '');
}

function includeObject(q: URLSearchParams): IncludeObject {
  const v = q.get('includeObject');
  return v === 'None' || v === 'Object' ? v : 'Metadata';
}

function isTrue(v: string | null): boolean {
  return v === 'true' || v === '1';
}

interface ContinueToken {
  start: string;
  /** The resourceVersion of the first page: later pages are of the same state, or refused. */
  rv?: number;
}

function encodeContinue(t: ContinueToken): string {
  return Buffer.from(JSON.stringify(t)).toString('base64url');
}

function decodeContinue(s: string): ContinueToken {
  try {
    const t = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as ContinueToken;
    if (typeof t.start !== 'string') throw new Error('no start key');
    if (t.rv !== undefined && !Number.isSafeInteger(t.rv)) throw new Error('bad resourceVersion');
    return t;
  } catch {
    throw badRequest(`continue key is not valid: ${s}`);
  }
}

export function createHandler(ctx: HandlerContext): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const start = performance.now();
    res.on('finish', () => {
      const parsed = parsePath(new URL(req.url ?? '/', 'http://kube-lite').pathname);
      const resource = parsed.kind === 'resource' ? parsed.path.resource : '';
      const isWatch = res.getHeader('Transfer-Encoding') === 'chunked';
      if (!isWatch) ctx.metrics.request(req.method ?? 'GET', resource, res.statusCode, (performance.now() - start) / 1000);
    });
    handle(ctx, req, res).catch((err: unknown) => {
      if (!(err instanceof CstorError)) ctx.logger.error('request failed', { method: req.method, url: req.url, error: (err as Error).stack ?? String(err) });
      sendError(res, err);
    });
  };
}

async function handle(ctx: HandlerContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (!authorized(req, ctx.token)) {
    send(res, 401, failure(401, 'Unauthorized', 'Unauthorized: a valid bearer token is required (see the kubeconfig kube-lite wrote in its data directory)'));
    return;
  }
  const url = new URL(req.url ?? '/', 'http://kube-lite');
  const method = req.method ?? 'GET';
  const p = url.pathname;
  switch (p) {
    case '/version':
      return send(res, 200, serverVersion);
    case '/healthz':
    case '/readyz':
    case '/livez':
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
      return;
    case '/openapi/v2':
      // An empty OpenAPI document (a zero-length protobuf message parses as an empty Document):
      // kubectl then skips schema validation and falls back to its built-in patch metadata.
      res.writeHead(200, { 'Content-Type': 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf', 'Content-Length': 0 });
      res.end();
      return;
    case '/metrics':
      res.writeHead(200, { 'Content-Type': ctx.metrics.registry.contentType });
      res.end(await ctx.metrics.registry.metrics());
      return;
    case '/openapi/v3':
      return send(res, 200, { paths: {} });
    default:
      break;
  }
  const parsed = parsePath(p);
  switch (parsed.kind) {
    case 'core-versions':
      return send(res, 200, coreVersions(ctx.serverAddress()));
    case 'group-list':
      return send(res, 200, groupList(ctx.registry));
    case 'group': {
      const g = group(ctx.registry, parsed.group);
      if (!g) throw notFound('groups', '', parsed.group);
      return send(res, 200, g);
    }
    case 'resource-list': {
      const l = resourceList(ctx.registry, parsed.group, parsed.version);
      if (!l) throw notFound('groupversions', parsed.group, parsed.version);
      return send(res, 200, l);
    }
    case 'other':
      send(res, 404, failure(404, 'NotFound', `the server could not find the requested resource (${method} ${p})`, {}));
      return;
    case 'resource':
      return handleResource(ctx, req, res, parsed.path, url.searchParams, method);
  }
}

async function handleResource(ctx: HandlerContext, req: IncomingMessage, res: ServerResponse, rp: ResourcePath, q: URLSearchParams, method: string): Promise<void> {
  const info = ctx.registry.lookup(rp.group, rp.version, rp.resource);
  if (!info) {
    send(res, 404, failure(404, 'NotFound', `the server could not find the requested resource (${rp.group ? `${rp.resource}.${rp.group}` : rp.resource})`, { group: rp.group, kind: rp.resource }));
    return;
  }
  if (!info.namespaced && rp.namespace !== undefined) throw notFound(rp.resource, rp.group, rp.name ?? '');
  if (rp.subresource !== undefined && (rp.subresource !== 'status' || !info.hasStatus)) {
    throw notFound(`${info.resource}/${rp.subresource}`, info.group, rp.name ?? '');
  }
  const ops = ctx.ops;
  const version = rp.version;
  const ns = info.namespaced ? rp.namespace : undefined;
  const subresource = rp.subresource === 'status' ? ('status' as const) : undefined;
  const dryRun = q.has('dryRun');

  if (rp.name === undefined) {
    if (method === 'GET' && (rp.watchPath || isTrue(q.get('watch')))) return startWatch(ctx, req, res, info, version, ns, undefined, q);
    switch (method) {
      case 'GET':
        return sendList(ctx, req, res, info, version, ns, q);
      case 'POST': {
        const body = await parseBody(req);
        const created = await ops.create(info, ns, body, { dryRun, version });
        return send(res, 201, Operations.output(info, version, created));
      }
      case 'DELETE': {
        const { items } = ops.list(info, ns, { labelSelector: q.get('labelSelector') ?? undefined, fieldSelector: q.get('fieldSelector') ?? undefined });
        const opts = await deleteOptions(req, q);
        const out: KubeObject[] = [];
        for (const o of items) {
          try {
            out.push((await ops.delete(info, o.metadata.namespace, o.metadata.name ?? '', opts)).obj);
          } catch (err) {
            if (!(err instanceof CstorError && err.code === 'not_found')) throw err;
          }
        }
        return send(res, 200, Operations.listBody(info, version, out, ops.store.resourceVersion));
      }
      default:
        throw methodNotAllowed(`${method} is not supported on a collection of ${info.resource}`);
    }
  }

  const name = rp.name;
  switch (method) {
    case 'GET':
      if (rp.watchPath || isTrue(q.get('watch'))) return startWatch(ctx, req, res, info, version, ns, name, q);
      if (wantsTable(req)) {
        const o = ops.get(info, ns, name);
        return send(res, 200, buildTable(info, version, [o], { resourceVersion: o.metadata.resourceVersion ?? '' }, includeObject(q)));
      }
      return send(res, 200, Operations.output(info, version, ops.get(info, ns, name)));
    case 'PUT': {
      const body = await parseBody(req);
      const o = await ops.update(info, ns, name, body, { ...(subresource ? { subresource } : {}), dryRun, version });
      return send(res, 200, Operations.output(info, version, o));
    }
    case 'PATCH': {
      const type = patchTypeOf(req.headers['content-type']);
      if (!type) throw unsupportedMediaType(`the body of the request was in an unknown format (${req.headers['content-type'] ?? 'none'}) - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml${info.custom ? '' : ', application/strategic-merge-patch+json'}`);
      const body = await parseBody(req);
      const o = await ops.patch(info, ns, name, type, body, { ...(subresource ? { subresource } : {}), dryRun, version });
      return send(res, 200, Operations.output(info, version, o));
    }
    case 'DELETE': {
      if (subresource) throw methodNotAllowed(`DELETE is not supported on ${info.resource}/status`);
      // Kubernetes answers 200 with the object, gone or still there (finalizers, namespaces).
      const { obj } = await ops.delete(info, ns, name, await deleteOptions(req, q));
      return send(res, 200, Operations.output(info, version, obj));
    }
    default:
      throw methodNotAllowed(`${method} is not supported on ${info.resource}`);
  }
}

async function deleteOptions(req: IncomingMessage, q: URLSearchParams): Promise<DeleteOptions> {
  let body: JsonObject = {};
  const len = Number(req.headers['content-length'] ?? '0');
  if (len > 0 || req.headers['transfer-encoding']) {
    const raw = (await readBody(req)).toString('utf8').trim();
    if (raw) {
      try {
        const parsed = JSON.parse(raw) as unknown;
        if (isJsonObject(parsed)) body = parsed;
      } catch (err) {
        throw badRequest(`the DeleteOptions body is not valid JSON: ${(err as Error).message}`);
      }
    }
  }
  const policy = q.get('propagationPolicy') ?? (typeof body.propagationPolicy === 'string' ? body.propagationPolicy : undefined);
  if (policy !== undefined && policy !== 'Background' && policy !== 'Foreground' && policy !== 'Orphan') {
    throw badRequest(`propagationPolicy must be Background, Foreground or Orphan, not ${policy}`);
  }
  const opts: DeleteOptions = {};
  if (policy) opts.propagationPolicy = policy;
  if (isJsonObject(body.preconditions)) {
    const pre = body.preconditions;
    opts.preconditions = {
      ...(typeof pre.uid === 'string' ? { uid: pre.uid } : {}),
      ...(typeof pre.resourceVersion === 'string' ? { resourceVersion: pre.resourceVersion } : {}),
    };
  }
  if (q.has('dryRun') || (Array.isArray(body.dryRun) && body.dryRun.length > 0)) opts.dryRun = true;
  if (body.orphanDependents === true && !opts.propagationPolicy) opts.propagationPolicy = 'Orphan';
  return opts;
}

function sendList(ctx: HandlerContext, req: IncomingMessage, res: ServerResponse, info: ResourceInfo, version: string, ns: string | undefined, q: URLSearchParams): void {
  const list = ctx.ops.list(info, ns, { labelSelector: q.get('labelSelector') ?? undefined, fieldSelector: q.get('fieldSelector') ?? undefined });
  let { resourceVersion } = list;
  let page = list.items;
  const extra: JsonObject = {};
  const cont = q.get('continue');
  if (cont) {
    const token = decodeContinue(cont);
    if (token.rv !== undefined) {
      // Pages must be of one state, as etcd serves them: the later pages are the current state
      // only when nothing of this resource (in this scope) changed since the first page; else 410
      // (client-go's pager then lists without pages). Otherwise an informer watching from the
      // list's resourceVersion would miss changes to the objects of the pages already read.
      if (changedSince(ctx, info, ns, token.rv)) {
        throw gone('The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
      }
      resourceVersion = token.rv;
    }
    page = page.filter((o) => `${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}` > token.start);
  }
  const limit = Number(q.get('limit') ?? '0');
  if (Number.isInteger(limit) && limit > 0 && page.length > limit) {
    const last = page[limit - 1]!;
    extra.continue = encodeContinue({ start: `${last.metadata.namespace ?? ''}/${last.metadata.name ?? ''}`, rv: resourceVersion });
    extra.remainingItemCount = page.length - limit;
    page = page.slice(0, limit);
  }
  if (wantsTable(req)) {
    send(res, 200, buildTable(info, version, page, { resourceVersion: String(resourceVersion), ...extra }, includeObject(q)));
    return;
  }
  send(res, 200, Operations.listBody(info, version, page, resourceVersion, extra));
}

/** Whether an object of `info` in scope changed after resourceVersion `rv` (or the history is gone). */
function changedSince(ctx: HandlerContext, info: ResourceInfo, ns: string | undefined, rv: number): boolean {
  let events;
  try {
    events = ctx.ops.store.hub.since(rv);
  } catch {
    return true;
  }
  return events.some((e) => e.resKey === info.resKey && (ns === undefined || e.obj.metadata.namespace === ns));
}

function startWatch(ctx: HandlerContext, req: IncomingMessage, res: ServerResponse, info: ResourceInfo, version: string, ns: string | undefined, name: string | undefined, q: URLSearchParams): void {
  const fieldSelector = [q.get('fieldSelector'), name !== undefined ? `metadata.name=${name}` : null].filter(Boolean).join(',');
  const selectors = ctx.ops.selectors(info, { labelSelector: q.get('labelSelector') ?? undefined, fieldSelector });
  const rvParam = q.get('resourceVersion');
  let fromRv: number | undefined;
  if (rvParam !== null && rvParam !== '' && rvParam !== '0') {
    fromRv = Number(rvParam);
    if (!Number.isSafeInteger(fromRv) || fromRv < 0) throw badRequest(`resourceVersion ${rvParam} is not a valid resource version`);
  }
  const timeout = q.get('timeoutSeconds');
  serveWatch({ store: ctx.ops.store, bookmarkIntervalMs: ctx.bookmarkIntervalMs }, req, res, {
    info,
    version,
    ...(ns !== undefined ? { namespace: ns } : {}),
    selectors,
    ...(fromRv !== undefined ? { fromRv } : {}),
    table: wantsTable(req),
    include: includeObject(q),
    ...(timeout ? { timeoutSeconds: Number(timeout) } : {}),
    bookmarks: isTrue(q.get('allowWatchBookmarks')),
  });
  // Reached only when the watch started (a 410 throws above, before anything is written).
  ctx.metrics.request('WATCH', info.resource, 200, 0);
  ctx.metrics.watchOpened(info.resource);
  res.on('close', () => ctx.metrics.watchClosed(info.resource));
}

