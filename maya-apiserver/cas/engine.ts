// The CAS engine: loads a CASTemplate and its RunTasks through KubeObjects at run time (parsed
// results cached by resourceVersion, so an edited object changes the next run), runs the tasks in
// order, rolls back what the run created (in reverse) when a task fails, and renders the output.
// Errors name the task: "task cvr-create (3 of 6) failed: <message>", code from the cause.
import { CstorError, describeError, toCstorError, type ErrorCode } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import type { OperationMetrics } from '../../lib/metrics.ts';
import { isTruthy, typeName, type EvalEnv } from './expr.ts';
import { createFunctions } from './functions.ts';
import { checkTemplate, parseCasTemplate, type CasTemplateDef, type LoadedTemplate } from './cas-template.ts';
import { parseRunTask, type HttpCall, type RunTaskDef, type TargetSpec, type TaskAction } from './run-task.ts';
import { evalExpr, renderValue } from './template-value.ts';
import type { ObjectReader } from './watched-objects.ts';
import {
  describeRef,
  isJsonObject,
  realClock,
  refOf,
  type Clock,
  type HttpCaller,
  type Json,
  type JsonObject,
  type KubeObject,
  type KubeObjects,
  type ObjectRef,
} from './ports.ts';

export const casApiVersion = 'openebs.io/v1alpha1';

export interface CasEngineOptions {
  kube: KubeObjects;
  http: HttpCaller;
  logger: Logger;
  /** The openebs namespace: where RunTasks live (unless a template says otherwise); `env.namespace`. */
  namespace: string;
  /** Values templates read as `env` (e.g. targetIP, targetPortal, targetMgmtAddress); `namespace` is added. */
  env?: JsonObject;
  clock?: Clock;
  uuid?: () => string;
  /** Times each run, by template name (e.g. operationMetrics(registry, 'mapi_cas')). */
  metrics?: OperationMetrics;
  /**
   * Where CASTemplates and RunTasks are read at the start of each run (default: `kube`, the API
   * server). m-apiserver passes a WatchedObjects (./watched-objects.ts): the same reads, answered
   * from a watch-fed cache while its watch is live.
   */
  templates?: ObjectReader;
}

export interface RunOptions {
  /** The flow's input, seen as `request`. */
  request: Json;
  /** Overrides of the template's `spec.defaults`, seen (merged) as `config`. */
  config?: JsonObject;
  /** Context for this run's log lines (e.g. {volume}). */
  logContext?: Record<string, string>;
  signal?: AbortSignal;
  /**
   * The template, already being read for this run by `load(templateName)` (the flows start
   * reading the default template while they look up the StorageClass that picks it).
   */
  loaded?: Promise<LoadedTemplate>;
}

interface Undo {
  what: string;
  run: () => Promise<void>;
}

const maxWaitPolls = 100_000;

function round2(ms: number): number {
  return Math.round(ms * 100) / 100;
}

const callerCodes: ReadonlySet<ErrorCode> = new Set(['invalid', 'not_found', 'already_exists', 'conflict', 'not_ready']);

/** Maps an HTTP status from a mgmt API to an error code. */
function codeForStatus(status: number): ErrorCode {
  if (status === 400 || status === 422) return 'invalid';
  if (status === 404) return 'not_found';
  if (status === 409) return 'conflict';
  if (status === 413) return 'too_large';
  if (status === 504) return 'timeout';
  return 'unavailable';
}

function bodyMessage(body: Json): string {
  if (isJsonObject(body)) {
    const e = body['error'] ?? body['message'];
    if (typeof e === 'string') return e;
  }
  if (typeof body === 'string') return body.slice(0, 300);
  return JSON.stringify(body).slice(0, 300);
}

export class CasEngine {
  private readonly kube: KubeObjects;
  private readonly http: HttpCaller;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly namespace: string;
  private readonly env: JsonObject;
  private readonly functions: EvalEnv['functions'];
  private readonly metrics: OperationMetrics | undefined;
  private readonly templateCache = new Map<string, { rv: string; def: CasTemplateDef }>();
  private readonly taskCache = new Map<string, { rv: string; def: RunTaskDef }>();
  /** Checked templates by name, valid for one set of resourceVersions (template and tasks). */
  private readonly loadedCache = new Map<string, { rvs: string; loaded: LoadedTemplate }>();
  private readonly templates: ObjectReader;

  /** The openebs namespace (`env.namespace`): where CStorVolumes and CStorVolumeReplicas live. */
  get openebsNamespace(): string {
    return this.namespace;
  }

  constructor(options: CasEngineOptions) {
    this.kube = options.kube;
    this.http = options.http;
    this.logger = options.logger;
    this.clock = options.clock ?? realClock;
    this.namespace = options.namespace;
    this.env = { ...(options.env ?? {}), namespace: options.namespace };
    this.functions = createFunctions(options.uuid ? { clock: this.clock, uuid: options.uuid } : { clock: this.clock });
    this.metrics = options.metrics;
    this.templates = options.templates ?? options.kube;
  }

  /**
   * Reads the template and its RunTasks now (through `templates`) and checks them; parsing and
   * checking are skipped when every resourceVersion is one seen before. The RunTasks the template
   * named last time are read together with the template (one round trip instead of two); when the
   * template names others now, those are read once it has come.
   */
  async load(templateName: string): Promise<LoadedTemplate> {
    const last = this.loadedCache.get(templateName)?.loaded.template;
    const guessedNamespace = last ? (last.taskNamespace ?? this.namespace) : undefined;
    const guessed = new Map<string, Promise<KubeObject>>();
    for (const name of last?.runTasks ?? []) {
      const read = this.templates.get({ apiVersion: casApiVersion, kind: 'RunTask', namespace: guessedNamespace as string, name });
      read.catch(() => undefined); // observed below, unless the template no longer names it
      guessed.set(name, read);
    }
    let object: KubeObject;
    try {
      object = await this.templates.get({ apiVersion: casApiVersion, kind: 'CASTemplate', name: templateName });
    } catch (err) {
      throw this.loadError(err, `CASTemplate ${templateName}`);
    }
    const template = this.cached(this.templateCache, object, () => this.asLoadError(() => parseCasTemplate(object)));
    const namespace = template.taskNamespace ?? this.namespace;
    const objects = await Promise.all(
      template.runTasks.map(async (name) => {
        try {
          const early = namespace === guessedNamespace ? guessed.get(name) : undefined;
          return await (early ?? this.templates.get({ apiVersion: casApiVersion, kind: 'RunTask', namespace, name }));
        } catch (err) {
          throw this.loadError(err, `RunTask ${namespace}/${name} (named by CASTemplate ${templateName})`);
        }
      }),
    );
    const rvs = [object, ...objects].map((o) => (typeof o.metadata.resourceVersion === 'string' ? o.metadata.resourceVersion : '')).join(',');
    const memo = this.loadedCache.get(templateName);
    if (memo && memo.rvs === rvs && !rvs.split(',').includes('')) return memo.loaded;
    const tasks = objects.map((task) => this.cached(this.taskCache, task, () => this.asLoadError(() => parseRunTask(task))));
    const loaded = this.asLoadError(() => checkTemplate(template, tasks));
    this.loadedCache.set(templateName, { rvs, loaded });
    return loaded;
  }

  private cached<T>(cache: Map<string, { rv: string; def: T }>, object: KubeObject, parse: () => T): T {
    const key = `${String(object.metadata.namespace ?? '')}/${String(object.metadata.name)}`;
    const rv = typeof object.metadata.resourceVersion === 'string' ? object.metadata.resourceVersion : '';
    const hit = cache.get(key);
    if (hit && rv !== '' && hit.rv === rv) return hit.def;
    const def = parse();
    if (rv !== '') cache.set(key, { rv, def });
    return def;
  }

  private loadError(err: unknown, what: string): CstorError {
    const e = toCstorError(err, 'unavailable');
    if (e.code === 'not_found') {
      return new CstorError('internal', `${what} not found: are the CAS templates installed (deploy/cas-templates)?`, { cause: err });
    }
    return new CstorError(e.code, `cannot read ${what}: ${e.message}`, { cause: err });
  }

  private asLoadError<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      // A broken template is the server's misconfiguration, not the caller's bad input.
      if (err instanceof CstorError && err.code === 'invalid') throw new CstorError('internal', err.message, { cause: err, details: err.details });
      throw err;
    }
  }

  /** Runs a template: loads it, runs its tasks, rolls back on failure, returns the rendered output. */
  run(templateName: string, options: RunOptions): Promise<Json> {
    return this.metrics ? this.metrics.observe(templateName, () => this.runOnce(templateName, options)) : this.runOnce(templateName, options);
  }

  private async runOnce(templateName: string, options: RunOptions): Promise<Json> {
    const loadStarted = performance.now();
    const { template, tasks } = await (options.loaded ?? this.load(templateName));
    const loadMs = round2(performance.now() - loadStarted);
    const log = this.logger.child({ casTemplate: templateName, ...(options.logContext ?? {}) });
    // Task by task: one info line per run (`tasks`: each task's outcome and time), and a line per
    // task at debug level (they cost more than a fast flow's own work at info).
    const debug = log.isDebugEnabled();
    const trace: string[] = [];
    const started = this.clock.now();
    const vars = new Map<string, Json>([
      ['request', options.request],
      ['config', { ...template.defaults, ...(options.config ?? {}) }],
      ['env', this.env],
      ['template', { name: templateName }],
    ]);
    const env: EvalEnv = { vars, functions: this.functions };
    const undos: Undo[] = [];
    if (debug) log.debug('cas run started', { tasks: tasks.length, loadMs });
    for (const [index, task] of tasks.entries()) {
      const label = `task ${task.id} (${index + 1} of ${tasks.length})`;
      const taskLog = (): Logger => log.child({ task: task.id, runTask: task.name });
      const t0 = performance.now();
      try {
        if (options.signal?.aborted) throw new CstorError('aborted', 'the run was cancelled');
        if (task.when && !isTruthy(evalExpr(task.when, env, 'spec.when'))) {
          // Skipped: its result is null, unless an earlier task saved a value under the same name.
          if (!vars.has(task.save)) vars.set(task.save, null);
          trace.push(`${task.id} skipped`);
          if (debug) taskLog().debug('task skipped', { index: index + 1, when: task.when.src });
          continue;
        }
        let result: Json;
        if (task.forEach) {
          const items = evalExpr(task.forEach, env, 'spec.forEach') ?? null;
          if (items !== null && !Array.isArray(items)) {
            throw new CstorError('internal', `spec.forEach: {{ ${task.forEach.src} }} must be a list, got ${typeName(items)}`);
          }
          const results: Json[] = [];
          for (const item of items ?? []) {
            vars.set(task.as, item);
            results.push(await this.runAction(task, env, undos, options.signal));
          }
          vars.delete(task.as);
          result = results;
        } else {
          result = await this.runAction(task, env, undos, options.signal);
        }
        vars.set(task.save, result);
        const ms = round2(performance.now() - t0);
        trace.push(`${task.id} ${ms}ms`);
        if (debug) taskLog().debug('task done', { index: index + 1, action: task.action.type, ms });
        if (task.stopIf && isTruthy(evalExpr(task.stopIf, env, 'spec.stopIf'))) {
          trace.push('stop');
          if (debug) taskLog().debug('flow stops early', { stopIf: task.stopIf.src });
          break;
        }
      } catch (err) {
        const failure = this.taskError(err, task, label, env, templateName, index);
        taskLog().info('task failed', { index: index + 1, code: failure.code, error: describeError(err) });
        vars.delete(task.as);
        const undone = undos.length;
        const rollbackProblems = await this.rollback(undos, log);
        // The caller's mistakes (bad input, missing or not-ready objects) are warnings; the rest errors.
        const level = callerCodes.has(failure.code) && rollbackProblems.length === 0 ? 'warn' : 'error';
        trace.push(`${task.id} failed`);
        log.log(level, 'cas run failed', { task: task.id, code: failure.code, error: failure.message, rolledBack: undone, ms: this.clock.now() - started, loadMs, tasks: trace.join(', ') });
        if (rollbackProblems.length === 0) throw failure;
        throw new CstorError(failure.code, `${failure.message}; rollback incomplete: ${rollbackProblems.join('; ')}`, {
          cause: failure.cause,
          details: { ...failure.details, rollbackFailures: rollbackProblems },
        });
      }
    }
    let output: Json;
    try {
      output = renderValue(template.output, env, 'spec.output');
    } catch (err) {
      const e = toCstorError(err);
      const rollbackProblems = await this.rollback(undos, log);
      const suffix = rollbackProblems.length > 0 ? `; rollback incomplete: ${rollbackProblems.join('; ')}` : '';
      throw new CstorError(e.code, `CASTemplate ${templateName} output failed: ${e.message}${suffix}`, { cause: err });
    }
    log.info('cas run succeeded', { ms: this.clock.now() - started, loadMs, tasks: trace.join(', ') });
    return output;
  }

  private taskError(err: unknown, task: RunTaskDef, label: string, env: EvalEnv, templateName: string, index: number): CstorError {
    const cause = toCstorError(err);
    const custom = task.messages[cause.code];
    let message = cause.message;
    if (custom) {
      try {
        message = String(renderValue(custom, env, `spec.messages.${cause.code}`));
      } catch (renderErr) {
        message = `${cause.message} (and spec.messages.${cause.code} failed: ${toCstorError(renderErr).message})`;
      }
    }
    return new CstorError(cause.code, `${label} failed: ${message}`, {
      cause: err,
      retryable: cause.retryable,
      details: { ...cause.details, casTemplate: templateName, task: task.id, taskIndex: index + 1, runTask: task.name },
    });
  }

  private async rollback(undos: Undo[], log: Logger): Promise<string[]> {
    const problems: string[] = [];
    for (const undo of [...undos].reverse()) {
      try {
        await undo.run();
        log.info('rolled back', { undo: undo.what });
      } catch (err) {
        problems.push(`${undo.what}: ${describeError(err)}`);
        log.error('rollback step failed', { undo: undo.what, error: describeError(err) });
      }
    }
    undos.length = 0;
    return problems;
  }

  private renderString(c: TargetSpec['name'], env: EvalEnv, field: string): string {
    const v = renderValue(c, env, field);
    if (typeof v !== 'string' && typeof v !== 'number') throw new CstorError('internal', `${field}: must render to a string, got ${typeName(v)}`);
    return String(v);
  }

  private renderTarget(t: TargetSpec, env: EvalEnv, field: string): ObjectRef {
    const name = this.renderString(t.name, env, `${field}.name`);
    const ref: ObjectRef = {
      apiVersion: this.renderString(t.apiVersion, env, `${field}.apiVersion`),
      kind: this.renderString(t.kind, env, `${field}.kind`),
      name,
    };
    if (name === '') throw new CstorError('invalid', `${field}.name: the name of the ${ref.kind} is empty`);
    if (t.namespace) {
      const ns = this.renderString(t.namespace, env, `${field}.namespace`);
      if (ns !== '') ref.namespace = ns;
    }
    return ref;
  }

  private renderCall(call: HttpCall, env: EvalEnv, field: string): { method: HttpCall['method']; url: string; body?: Json } {
    const url = this.renderString(call.url, env, `${field}.url`);
    return call.body ? { method: call.method, url, body: renderValue(call.body, env, `${field}.body`) } : { method: call.method, url };
  }

  private async runAction(task: RunTaskDef, env: EvalEnv, undos: Undo[], signal?: AbortSignal): Promise<Json> {
    const action: TaskAction = task.action;
    const field = `spec.${action.type}`;
    switch (action.type) {
      case 'get': {
        const ref = this.renderTarget(action.target, env, field);
        try {
          return await this.kube.get(ref);
        } catch (err) {
          if (action.optional && err instanceof CstorError && err.code === 'not_found') return null;
          throw err;
        }
      }
      case 'list': {
        const selectors: string[] = [];
        if (action.labels) {
          const labels = renderValue(action.labels, env, `${field}.labels`);
          if (!isJsonObject(labels)) throw new CstorError('internal', `${field}.labels: must render to an object of labels`);
          for (const [k, v] of Object.entries(labels)) selectors.push(`${k}=${String(v)}`);
        }
        if (action.selector) {
          const s = this.renderString(action.selector, env, `${field}.selector`);
          if (s !== '') selectors.push(s);
        }
        const query: Parameters<KubeObjects['list']>[0] = {
          apiVersion: this.renderString(action.apiVersion, env, `${field}.apiVersion`),
          kind: this.renderString(action.kind, env, `${field}.kind`),
        };
        if (action.namespace) {
          const ns = this.renderString(action.namespace, env, `${field}.namespace`);
          if (ns !== '') query.namespace = ns;
        }
        if (selectors.length > 0) query.labelSelector = selectors.join(',');
        return await this.kube.list(query);
      }
      case 'create': {
        const object = renderValue(action.object, env, `${field}.object`);
        if (
          !isJsonObject(object) ||
          typeof object['apiVersion'] !== 'string' ||
          typeof object['kind'] !== 'string' ||
          !isJsonObject(object['metadata']) ||
          typeof object['metadata']['name'] !== 'string' ||
          object['metadata']['name'] === ''
        ) {
          throw new CstorError('internal', `${field}.object: must render to an object with apiVersion, kind and metadata.name`);
        }
        const kubeObject = object as KubeObject;
        const ref = refOf(kubeObject);
        let created: KubeObject;
        try {
          created = await this.kube.create(kubeObject);
        } catch (err) {
          if (!(action.ifExists === 'adopt' && err instanceof CstorError && err.code === 'already_exists')) throw err;
          created = await this.kube.get(ref);
        }
        if (action.undo) {
          undos.push({
            what: `delete ${describeRef(ref)}`,
            run: async () => {
              try {
                await this.kube.delete(ref);
              } catch (err) {
                if (!(err instanceof CstorError && err.code === 'not_found')) throw err;
              }
            },
          });
        }
        return created;
      }
      case 'patch': {
        const ref = this.renderTarget(action.target, env, field);
        const patch = renderValue(action.patch, env, `${field}.patch`);
        if (!isJsonObject(patch)) throw new CstorError('internal', `${field}.patch: must render to an object`);
        return action.subresource === 'status' ? await this.kube.patchStatus(ref, patch) : await this.kube.patch(ref, patch);
      }
      case 'delete': {
        const ref = this.renderTarget(action.target, env, field);
        try {
          await this.kube.delete(ref);
          return true;
        } catch (err) {
          if (action.ignoreNotFound && err instanceof CstorError && err.code === 'not_found') return false;
          throw err;
        }
      }
      case 'http': {
        const call = this.renderCall(action.call, env, field);
        const response = await this.callHttp(call);
        const ok = action.okStatus.length > 0 ? action.okStatus.includes(response.status) : response.status >= 200 && response.status < 300;
        if (!ok) {
          const code = action.statusCodes[response.status] ?? codeForStatus(response.status);
          throw new CstorError(code, `${call.method} ${call.url} answered ${response.status}: ${bodyMessage(response.body)}`, {
            details: { httpStatus: response.status },
          });
        }
        if (action.undo) {
          const undo = this.renderCall(action.undo, env, `${field}.undo`);
          undos.push({
            what: `${undo.method} ${undo.url}`,
            run: async () => {
              const r = await this.callHttp(undo);
              if (r.status >= 300 && r.status !== 404) throw new CstorError(codeForStatus(r.status), `answered ${r.status}: ${bodyMessage(r.body)}`);
            },
          });
        }
        return { status: response.status, body: response.body };
      }
      case 'wait':
        return await this.wait(action, env, field, signal);
      case 'assert': {
        if (isTruthy(evalExpr(action.that, env, `${field}.that`))) return true;
        throw new CstorError(action.code, String(renderValue(action.message, env, `${field}.message`)), { details: { assertion: action.that.src } });
      }
      case 'set':
        return renderValue(action.value, env, `${field}.value`);
    }
  }

  private async callHttp(call: { method: HttpCall['method']; url: string; body?: Json }): Promise<{ status: number; body: Json }> {
    try {
      return await this.http.request(call.method, call.url, call.body);
    } catch (err) {
      const e = toCstorError(err, 'unavailable');
      throw new CstorError(e.code, `${call.method} ${call.url}: ${e.message}`, { cause: err });
    }
  }

  private async wait(action: Extract<TaskAction, { type: 'wait' }>, env: EvalEnv, field: string, signal?: AbortSignal): Promise<Json> {
    const vars = env.vars as Map<string, Json>;
    const ref = this.renderTarget(action.target, env, field);
    const deadline = this.clock.now() + action.timeoutSeconds * 1000;
    let interval = action.intervalMs;
    try {
      for (let poll = 0; poll < maxWaitPolls; poll++) {
        const object = await this.kube.get(ref);
        vars.set('object', object);
        if (isTruthy(evalExpr(action.until, env, `${field}.until`))) return object;
        if (action.failIf && isTruthy(evalExpr(action.failIf.that, env, `${field}.failIf.that`))) {
          throw new CstorError(action.failIf.code, String(renderValue(action.failIf.message, env, `${field}.failIf.message`)));
        }
        const remaining = deadline - this.clock.now();
        if (remaining <= 0) {
          throw new CstorError('timeout', `${String(renderValue(action.message, env, `${field}.message`))} (waited ${action.timeoutSeconds}s)`);
        }
        if (signal?.aborted) throw new CstorError('aborted', `the run was cancelled while waiting for ${describeRef(ref)}`);
        await this.clock.sleep(Math.min(interval, remaining), signal);
        interval = Math.min(interval * 2, action.maxIntervalMs);
      }
      throw new CstorError('timeout', `${describeRef(ref)}: gave up after ${maxWaitPolls} polls`);
    } finally {
      vars.delete('object');
    }
  }
}
