// RunTask: one declarative, typed step of a CAS template. The spec holds common fields and exactly
// one action key, validated on load (every problem listed, each with the task and field named):
//
//   spec:
//     id: cvr-create            # short name: in messages, and the name its result is saved under
//     when: "existing == null"  # optional: skip the task (its result is null) unless true
//     forEach: "pools"          # optional: run once per list item, bound to `item` (or `as:`)
//     save: cvrs                # optional: save the result under another name (default: id)
//     stopIf: "existing != null"  # optional: after this task, skip the rest and render the output
//     messages: {not_found: "volume {{ request.metadata.name }} not found"}  # per error code
//     <action>: {...}           # one of get, list, create, patch, delete, http, wait, assert, set
//
// See docs/cas-engine.md for each action's fields and results.
import { CstorError, errorCodes, type ErrorCode } from '../../lib/errors.ts';
import type { Expr } from './expr.ts';
import { compileExpr, compileValue, type Compiled } from './template-value.ts';
import { isJsonObject, type HttpMethod, type Json, type JsonObject, type KubeObject } from './ports.ts';

export const actionTypes = ['get', 'list', 'create', 'patch', 'delete', 'http', 'wait', 'assert', 'set'] as const;
export type ActionType = (typeof actionTypes)[number];

export interface CompiledExpr {
  expr: Expr;
  src: string;
}

export interface TargetSpec {
  apiVersion: Compiled;
  kind: Compiled;
  namespace?: Compiled;
  name: Compiled;
}

export interface HttpCall {
  method: HttpMethod;
  url: Compiled;
  body?: Compiled;
}

export type TaskAction =
  | { type: 'get'; target: TargetSpec; optional: boolean }
  | { type: 'list'; apiVersion: Compiled; kind: Compiled; namespace?: Compiled; labels?: Compiled; selector?: Compiled }
  | { type: 'create'; object: Compiled; ifExists: 'fail' | 'adopt'; undo: boolean }
  | { type: 'patch'; target: TargetSpec; patch: Compiled; subresource: 'main' | 'status' }
  | { type: 'delete'; target: TargetSpec; ignoreNotFound: boolean }
  | { type: 'http'; call: HttpCall; okStatus: number[]; statusCodes: Partial<Record<number, ErrorCode>>; undo?: HttpCall }
  | {
      type: 'wait';
      target: TargetSpec;
      until: CompiledExpr;
      failIf?: { that: CompiledExpr; code: ErrorCode; message: Compiled };
      timeoutSeconds: number;
      intervalMs: number;
      maxIntervalMs: number;
      message: Compiled;
    }
  | { type: 'assert'; that: CompiledExpr; code: ErrorCode; message: Compiled }
  | { type: 'set'; value: Compiled };

export interface RunTaskDef {
  /** The RunTask object's name. */
  name: string;
  id: string;
  when?: CompiledExpr;
  forEach?: CompiledExpr;
  /** The loop variable of forEach. */
  as: string;
  save: string;
  stopIf?: CompiledExpr;
  messages: Partial<Record<ErrorCode, Compiled>>;
  action: TaskAction;
  /** Every compiled piece, with its field path, for the name check across tasks. */
  parts: Array<{ field: string; compiled: Compiled | CompiledExpr }>;
}

const identifier = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const reservedNames = new Set(['request', 'config', 'env', 'template', 'item', 'object', 'true', 'false', 'null']);
const httpMethods: readonly HttpMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

/** Reads one object's fields, recording problems and the fields nobody asked for. */
class FieldReader {
  private readonly seen = new Set<string>();
  constructor(
    private readonly obj: JsonObject,
    readonly path: string,
    private readonly problems: string[],
    private readonly parts: RunTaskDef['parts'],
  ) {}

  problem(field: string, message: string): void {
    this.problems.push(`${this.path}.${field}: ${message}`);
  }

  raw(field: string): Json | undefined {
    this.seen.add(field);
    return Object.hasOwn(this.obj, field) ? this.obj[field] : undefined;
  }

  private guard<T>(fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      if (err instanceof CstorError) {
        this.problems.push(err.message);
        return undefined;
      }
      throw err;
    }
  }

  value(field: string, required: boolean): Compiled | undefined {
    const v = this.raw(field);
    if (v === undefined || v === null) {
      if (required) this.problem(field, 'is required');
      return undefined;
    }
    const compiled = this.guard(() => compileValue(v, `${this.path}.${field}`));
    if (compiled) this.parts.push({ field: `${this.path}.${field}`, compiled });
    return compiled;
  }

  /** A templated string (a constant or `{{ }}` parts). */
  text(field: string, required: boolean): Compiled | undefined {
    const v = this.raw(field);
    if (v !== undefined && v !== null && typeof v !== 'string') {
      this.problem(field, `must be a string, got ${JSON.stringify(v)}`);
      return undefined;
    }
    return this.value(field, required);
  }

  expr(field: string, required: boolean): CompiledExpr | undefined {
    const v = this.raw(field);
    if (v === undefined || v === null) {
      if (required) this.problem(field, 'is required');
      return undefined;
    }
    const compiled = this.guard(() => compileExpr(v, `${this.path}.${field}`));
    if (compiled) this.parts.push({ field: `${this.path}.${field}`, compiled });
    return compiled;
  }

  bool(field: string, fallback: boolean): boolean {
    const v = this.raw(field);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') this.problem(field, `must be true or false, got ${JSON.stringify(v)}`);
    return v === true;
  }

  number(field: string, fallback: number, min: number, max: number): number {
    const v = this.raw(field);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      this.problem(field, `must be a number from ${min} to ${max}, got ${JSON.stringify(v)}`);
      return fallback;
    }
    return v;
  }

  oneOf<T extends string>(field: string, allowed: readonly T[], fallback: T | undefined): T | undefined {
    const v = this.raw(field);
    if (v === undefined || v === null) {
      if (fallback === undefined) this.problem(field, `is required (one of ${allowed.join(', ')})`);
      return fallback;
    }
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      this.problem(field, `must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
      return fallback;
    }
    return v as T;
  }

  sub(field: string, required: boolean): FieldReader | undefined {
    const v = this.raw(field);
    if (v === undefined || v === null) {
      if (required) this.problem(field, 'is required');
      return undefined;
    }
    if (!isJsonObject(v)) {
      this.problem(field, `must be an object, got ${JSON.stringify(v)}`);
      return undefined;
    }
    return new FieldReader(v, `${this.path}.${field}`, this.problems, this.parts);
  }

  /** Reports fields that were never read: typos and unknown options. */
  finish(): void {
    for (const key of Object.keys(this.obj)) {
      if (!this.seen.has(key)) this.problems.push(`${this.path}.${key}: unknown field`);
    }
  }
}

function readTarget(r: FieldReader): TargetSpec | undefined {
  const apiVersion = r.text('apiVersion', true);
  const kind = r.text('kind', true);
  const namespace = r.text('namespace', false);
  const name = r.text('name', true);
  if (!apiVersion || !kind || !name) return undefined;
  return namespace ? { apiVersion, kind, namespace, name } : { apiVersion, kind, name };
}

function readHttpCall(r: FieldReader): HttpCall | undefined {
  const method = r.oneOf('method', httpMethods, undefined);
  const url = r.text('url', true);
  const body = r.value('body', false);
  if (!method || !url) return undefined;
  return body ? { method, url, body } : { method, url };
}

function readAction(type: ActionType, r: FieldReader): TaskAction | undefined {
  switch (type) {
    case 'get': {
      const target = readTarget(r);
      const optional = r.bool('optional', false);
      return target && { type, target, optional };
    }
    case 'list': {
      const apiVersion = r.text('apiVersion', true);
      const kind = r.text('kind', true);
      const namespace = r.text('namespace', false);
      const labels = r.value('labels', false);
      const selector = r.text('selector', false);
      if (!apiVersion || !kind) return undefined;
      const action: TaskAction = { type, apiVersion, kind };
      if (namespace) action.namespace = namespace;
      if (labels) action.labels = labels;
      if (selector) action.selector = selector;
      return action;
    }
    case 'create': {
      const object = r.value('object', true);
      const ifExists = r.oneOf('ifExists', ['fail', 'adopt'] as const, 'fail');
      const undo = r.oneOf('undo', ['delete', 'none'] as const, 'delete');
      return object && ifExists && { type, object, ifExists, undo: undo === 'delete' };
    }
    case 'patch': {
      const target = readTarget(r);
      const patch = r.value('patch', true);
      const subresource = r.oneOf('subresource', ['main', 'status'] as const, 'main');
      return target && patch && subresource && { type, target, patch, subresource };
    }
    case 'delete': {
      const target = readTarget(r);
      const ignoreNotFound = r.bool('ignoreNotFound', true);
      return target && { type, target, ignoreNotFound };
    }
    case 'http': {
      const call = readHttpCall(r);
      const okRaw = r.raw('okStatus');
      let okStatus: number[] = [];
      if (okRaw !== undefined && okRaw !== null) {
        if (!Array.isArray(okRaw) || !okRaw.every((s) => typeof s === 'number' && Number.isInteger(s) && s >= 100 && s <= 599)) {
          r.problem('okStatus', `must be a list of HTTP statuses, got ${JSON.stringify(okRaw)}`);
        } else {
          okStatus = okRaw as number[];
        }
      }
      const statusCodes: Partial<Record<number, ErrorCode>> = {};
      const codesRaw = r.raw('statusCodes');
      if (codesRaw !== undefined && codesRaw !== null) {
        if (!isJsonObject(codesRaw)) {
          r.problem('statusCodes', `must map HTTP statuses to error codes, got ${JSON.stringify(codesRaw)}`);
        } else {
          for (const [status, code] of Object.entries(codesRaw)) {
            if (!/^[1-5][0-9][0-9]$/.test(status)) r.problem(`statusCodes.${status}`, 'is not an HTTP status');
            else if (typeof code !== 'string' || !(errorCodes as readonly string[]).includes(code)) r.problem(`statusCodes.${status}`, `must be one of ${errorCodes.join(', ')}`);
            else statusCodes[Number(status)] = code as ErrorCode;
          }
        }
      }
      const undoReader = r.sub('undo', false);
      const undo = undoReader ? readHttpCall(undoReader) : undefined;
      undoReader?.finish();
      if (!call) return undefined;
      return undo ? { type, call, okStatus, statusCodes, undo } : { type, call, okStatus, statusCodes };
    }
    case 'wait': {
      const target = readTarget(r);
      const until = r.expr('until', true);
      const failReader = r.sub('failIf', false);
      let failIf: { that: CompiledExpr; code: ErrorCode; message: Compiled } | undefined;
      if (failReader) {
        const that = failReader.expr('that', true);
        const code = failReader.oneOf('code', errorCodes, 'conflict');
        const message = failReader.text('message', true);
        failReader.finish();
        if (that && code && message) failIf = { that, code, message };
      }
      const timeoutSeconds = r.number('timeoutSeconds', 60, 0, 86_400);
      const intervalMs = r.number('intervalMs', 100, 1, 60_000);
      const maxIntervalMs = r.number('maxIntervalMs', 1000, 1, 60_000);
      const message = r.text('message', true);
      if (!target || !until || !message) return undefined;
      const action: TaskAction = { type, target, until, timeoutSeconds, intervalMs, maxIntervalMs: Math.max(maxIntervalMs, intervalMs), message };
      if (failIf) action.failIf = failIf;
      return action;
    }
    case 'assert': {
      const that = r.expr('that', true);
      const code = r.oneOf('code', errorCodes, undefined);
      const message = r.text('message', true);
      return that && code && message && { type, that, code, message };
    }
    case 'set': {
      const value = r.value('value', true);
      return value && { type, value };
    }
  }
}

/** Parses and validates a RunTask object; throws CstorError `invalid` listing every problem. */
export function parseRunTask(object: KubeObject): RunTaskDef {
  const name = typeof object.metadata.name === 'string' ? object.metadata.name : '<unnamed>';
  const problems: string[] = [];
  const parts: RunTaskDef['parts'] = [];
  const fail = (id: string | undefined): never => {
    throw new CstorError('invalid', `RunTask ${name}${id ? ` (task ${id})` : ''} is invalid: ${problems.join('; ')}`, {
      details: { runTask: name, problems },
    });
  };
  if (object.kind !== 'RunTask') problems.push(`kind: must be RunTask, got ${JSON.stringify(object.kind)}`);
  const spec = object['spec'];
  if (!isJsonObject(spec)) {
    problems.push('spec: is required and must be an object');
    return fail(undefined);
  }
  const r = new FieldReader(spec, 'spec', problems, parts);
  const idRaw = r.raw('id');
  let id = '';
  if (typeof idRaw !== 'string' || !identifier.test(idRaw)) {
    r.problem('id', `must be a name like cvr-create (letters, digits, '-', '_'), got ${JSON.stringify(idRaw ?? null)}`);
  } else if (reservedNames.has(idRaw)) {
    r.problem('id', `"${idRaw}" is reserved (request, config, env, template, item, object)`);
  } else {
    id = idRaw;
  }
  const when = r.expr('when', false);
  const forEach = r.expr('forEach', false);
  const asRaw = r.raw('as');
  const as = typeof asRaw === 'string' && identifier.test(asRaw) ? asRaw : 'item';
  if (asRaw !== undefined && asRaw !== as) r.problem('as', `must be a name, got ${JSON.stringify(asRaw)}`);
  if (asRaw !== undefined && forEach === undefined) r.problem('as', 'only makes sense with forEach');
  const saveRaw = r.raw('save');
  let save = id;
  if (saveRaw !== undefined) {
    if (typeof saveRaw !== 'string' || !identifier.test(saveRaw) || reservedNames.has(saveRaw)) {
      r.problem('save', `must be a name that is not reserved, got ${JSON.stringify(saveRaw)}`);
    } else {
      save = saveRaw;
    }
  }
  const stopIf = r.expr('stopIf', false);
  const messages: Partial<Record<ErrorCode, Compiled>> = {};
  const msgReader = r.sub('messages', false);
  if (msgReader) {
    for (const code of errorCodes) {
      const m = msgReader.text(code, false);
      if (m) messages[code] = m;
    }
    msgReader.finish();
  }
  const present = actionTypes.filter((t) => Object.hasOwn(spec, t));
  let action: TaskAction | undefined;
  if (present.length !== 1) {
    const known = new Set<string>(['id', 'when', 'forEach', 'as', 'save', 'stopIf', 'messages', ...actionTypes]);
    const unknown = Object.keys(spec).filter((k) => !known.has(k));
    problems.push(
      present.length === 0
        ? `spec: needs exactly one action (${actionTypes.join(', ')})${unknown.length > 0 ? `; unknown task type ${unknown.map((u) => `"${u}"`).join(', ')}` : ''}`
        : `spec: needs exactly one action, found ${present.join(' and ')}`,
    );
    for (const t of present) r.raw(t);
    for (const u of unknown) r.raw(u);
  } else {
    const type = present[0] as ActionType;
    const ar = r.sub(type, true);
    if (ar) {
      action = readAction(type, ar);
      ar.finish();
    }
  }
  r.finish();
  if (problems.length > 0 || !action) {
    if (problems.length === 0) problems.push('spec: the action is incomplete');
    return fail(id || undefined);
  }
  const def: RunTaskDef = { name, id, as, save, messages, action, parts };
  if (when) def.when = when;
  if (forEach) def.forEach = forEach;
  if (stopIf) def.stopIf = stopIf;
  return def;
}
