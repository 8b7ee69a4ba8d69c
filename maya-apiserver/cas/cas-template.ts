// CASTemplate: an ordered list of RunTasks and an output.
//
//   apiVersion: openebs.io/v1alpha1
//   kind: CASTemplate
//   metadata: {name: cstor-snapshot-create-default}
//   spec:
//     defaults: {...}        # free-form values, seen by expressions as `config`
//     taskNamespace: openebs # optional: where its RunTasks live (default: the engine's namespace)
//     runTasks: [cstor-snapshot-create-volume, ...]
//     output: {...}          # a templated value: the flow's answer
//
// Loading checks every name an expression reads against what exists at that point of the flow
// (request, config, env, template, the results saved by earlier tasks, `item` in a forEach,
// `object` in a wait), so a typo is refused on load, naming the task and field.
import { CstorError } from '../../lib/errors.ts';
import type { Expr } from './expr.ts';
import type { CompiledExpr, RunTaskDef } from './run-task.ts';
import { compileValue, type Compiled } from './template-value.ts';
import { isJsonObject, type JsonObject, type KubeObject } from './ports.ts';

export interface CasTemplateDef {
  name: string;
  runTasks: string[];
  taskNamespace?: string;
  defaults: JsonObject;
  output: Compiled;
}

/** The template plus its tasks, checked together: what the engine runs. */
export interface LoadedTemplate {
  template: CasTemplateDef;
  tasks: RunTaskDef[];
}

const rootNames = ['request', 'config', 'env', 'template'];

export function parseCasTemplate(object: KubeObject): CasTemplateDef {
  const name = typeof object.metadata.name === 'string' ? object.metadata.name : '<unnamed>';
  const problems: string[] = [];
  if (object.kind !== 'CASTemplate') problems.push(`kind: must be CASTemplate, got ${JSON.stringify(object.kind)}`);
  const spec = object['spec'];
  let def: CasTemplateDef | undefined;
  if (!isJsonObject(spec)) {
    problems.push('spec: is required and must be an object');
  } else {
    const known = new Set(['defaults', 'taskNamespace', 'runTasks', 'output']);
    for (const key of Object.keys(spec)) if (!known.has(key)) problems.push(`spec.${key}: unknown field`);
    const runTasks = spec['runTasks'];
    if (!Array.isArray(runTasks) || runTasks.length === 0 || !runTasks.every((t) => typeof t === 'string' && t !== '')) {
      problems.push('spec.runTasks: must be a non-empty list of RunTask names');
    }
    const defaults = spec['defaults'] ?? {};
    if (!isJsonObject(defaults)) problems.push('spec.defaults: must be an object');
    const taskNamespace = spec['taskNamespace'];
    if (taskNamespace !== undefined && typeof taskNamespace !== 'string') problems.push('spec.taskNamespace: must be a string');
    let output: Compiled | undefined;
    if (spec['output'] === undefined || spec['output'] === null) {
      problems.push('spec.output: is required');
    } else {
      try {
        output = compileValue(spec['output'], 'spec.output');
      } catch (err) {
        if (!(err instanceof CstorError)) throw err;
        problems.push(err.message);
      }
    }
    if (output && Array.isArray(runTasks) && isJsonObject(defaults)) {
      def = { name, runTasks: runTasks as string[], defaults, output };
      if (typeof taskNamespace === 'string') def.taskNamespace = taskNamespace;
    }
  }
  if (problems.length > 0 || !def) {
    throw new CstorError('invalid', `CASTemplate ${name} is invalid: ${problems.join('; ')}`, { details: { casTemplate: name, problems } });
  }
  return def;
}

function collectVars(expr: Expr, out: Set<string>): void {
  switch (expr.kind) {
    case 'var':
      out.add(expr.name);
      return;
    case 'field':
      collectVars(expr.target, out);
      collectVars(expr.key, out);
      return;
    case 'call':
      expr.args.forEach((a) => collectVars(a, out));
      return;
    case 'list':
      expr.items.forEach((a) => collectVars(a, out));
      return;
    case 'not':
      collectVars(expr.operand, out);
      return;
    case 'binary':
      collectVars(expr.left, out);
      collectVars(expr.right, out);
      return;
    case 'literal':
      return;
  }
}

function varsOf(part: Compiled | CompiledExpr): Set<string> {
  const out = new Set<string>();
  const walk = (c: Compiled): void => {
    switch (c.k) {
      case 'expr':
        collectVars(c.expr, out);
        return;
      case 'interp':
        for (const p of c.parts) if (typeof p !== 'string') collectVars(p.expr, out);
        return;
      case 'list':
        c.items.forEach(walk);
        return;
      case 'object':
        c.entries.forEach(([, v]) => walk(v));
        return;
      case 'const':
        return;
    }
  };
  if ('expr' in part && 'src' in part && !('k' in part)) collectVars(part.expr, out);
  else walk(part as Compiled);
  return out;
}

/** Checks a template and its tasks together (ids unique, names read exist); throws `invalid`. */
export function checkTemplate(template: CasTemplateDef, tasks: RunTaskDef[]): LoadedTemplate {
  const problems: string[] = [];
  const ids = new Set<string>();
  const saved = new Set<string>();
  tasks.forEach((task, index) => {
    const label = `task ${task.id} (${index + 1} of ${tasks.length}, RunTask ${task.name})`;
    if (ids.has(task.id)) problems.push(`${label}: id ${task.id} is used by an earlier task`);
    if (task.forEach && (rootNames.includes(task.as) || saved.has(task.as))) {
      problems.push(`${label}: spec.as: the loop variable "${task.as}" would hide a value of the same name; pick another`);
    }
    ids.add(task.id);
    for (const { field, compiled } of task.parts) {
      const visible = new Set([...rootNames, ...saved]);
      const perItem = field !== 'spec.forEach' && field !== 'spec.when' && !field.startsWith('spec.stopIf');
      if (task.forEach && perItem) visible.add(task.as);
      if (field.startsWith('spec.wait.until') || field.startsWith('spec.wait.failIf') || field.startsWith('spec.wait.message')) visible.add('object');
      if (field === 'spec.stopIf') visible.add(task.save);
      for (const name of varsOf(compiled)) {
        if (!visible.has(name)) {
          problems.push(`${label}: ${field}: unknown name "${name}"; known here: ${[...visible].sort().join(', ')}`);
        }
      }
    }
    saved.add(task.save);
  });
  for (const name of varsOf(template.output)) {
    if (!rootNames.includes(name) && !saved.has(name)) {
      problems.push(`spec.output: unknown name "${name}"; known here: ${[...rootNames, ...saved].sort().join(', ')}`);
    }
  }
  if (problems.length > 0) {
    throw new CstorError('invalid', `CASTemplate ${template.name} is invalid: ${problems.join('; ')}`, {
      details: { casTemplate: template.name, problems },
    });
  }
  return { template, tasks };
}
