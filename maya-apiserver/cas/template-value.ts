// Templated values. Any string in a task or output may hold `{{ expression }}` parts:
//   - a string that is exactly one `{{ expr }}` takes the expression's value as is (an object, a
//     list, a number...), so `object: '{{ volume }}'` passes a whole object;
//   - otherwise each part is rendered into the string (objects and lists as JSON).
// A part whose value is undefined (a path that leads nowhere) is an error naming the field and the
// expression, unless wrapped in default(...): templates never silently render "<no value>".
import { CstorError } from '../../lib/errors.ts';
import { ExprError, evaluate, parseExpr, type EvalEnv, type Expr, type Value } from './expr.ts';
import { functionNames } from './functions.ts';
import { isJsonObject, type Json } from './ports.ts';

export type Compiled =
  | { k: 'const'; value: Json }
  | { k: 'expr'; expr: Expr; src: string }
  | { k: 'interp'; parts: Array<string | { expr: Expr; src: string }> }
  | { k: 'list'; items: Compiled[] }
  | { k: 'object'; entries: Array<[string, Compiled]> };

const whole = /^\s*\{\{([\s\S]*?)\}\}\s*$/;

function compileOne(src: string, field: string): Expr {
  try {
    return parseExpr(src.trim(), functionNames);
  } catch (err) {
    if (err instanceof ExprError) throw new CstorError('invalid', `${field}: bad expression "${src.trim()}": ${err.message}`);
    throw err;
  }
}

function compileString(s: string, field: string): Compiled {
  if (!s.includes('{{')) {
    if (s.includes('}}')) throw new CstorError('invalid', `${field}: "}}" without an opening "{{"`);
    return { k: 'const', value: s };
  }
  const m = whole.exec(s);
  if (m && !(m[1] as string).includes('{{') && !(m[1] as string).includes('}}')) {
    const src = m[1] as string;
    return { k: 'expr', expr: compileOne(src, field), src: src.trim() };
  }
  const parts: Array<string | { expr: Expr; src: string }> = [];
  let rest = s;
  while (rest.length > 0) {
    const open = rest.indexOf('{{');
    const strayClose = rest.indexOf('}}');
    if (strayClose !== -1 && (open === -1 || strayClose < open)) throw new CstorError('invalid', `${field}: "}}" without an opening "{{" in "${s}"`);
    if (open === -1) {
      parts.push(rest);
      break;
    }
    if (open > 0) parts.push(rest.slice(0, open));
    const close = rest.indexOf('}}', open + 2);
    if (close === -1) throw new CstorError('invalid', `${field}: "{{" without a closing "}}" in "${s}"`);
    const src = rest.slice(open + 2, close);
    if (src.includes('{{')) throw new CstorError('invalid', `${field}: nested "{{" in "${s}"`);
    parts.push({ expr: compileOne(src, field), src: src.trim() });
    rest = rest.slice(close + 2);
  }
  return { k: 'interp', parts };
}

/** Compiles a templated JSON value; `field` names it in errors (e.g. `spec.create.object`). */
export function compileValue(value: Json, field: string): Compiled {
  if (typeof value === 'string') return compileString(value, field);
  if (Array.isArray(value)) return { k: 'list', items: value.map((v, i) => compileValue(v, `${field}[${i}]`)) };
  if (isJsonObject(value)) return { k: 'object', entries: Object.entries(value).map(([key, v]) => [key, compileValue(v, `${field}.${key}`)]) };
  return { k: 'const', value };
}

/** Compiles an expression field (`when`, `until`, `that`, `forEach`): a bare expression, braces optional. */
export function compileExpr(value: Json | undefined, field: string): { expr: Expr; src: string } {
  if (typeof value === 'boolean') return { expr: { kind: 'literal', value }, src: String(value) };
  if (typeof value !== 'string') throw new CstorError('invalid', `${field}: must be an expression string, got ${value === undefined ? 'nothing' : JSON.stringify(value)}`);
  const m = whole.exec(value);
  const src = (m ? (m[1] as string) : value).trim();
  return { expr: compileOne(src, field), src };
}

/** Evaluates an expression, turning evaluation errors into `invalid`-free task errors with the field named. */
export function evalExpr(compiled: { expr: Expr; src: string }, env: EvalEnv, field: string): Value {
  try {
    return evaluate(compiled.expr, env);
  } catch (err) {
    if (err instanceof ExprError) throw new CstorError('internal', `${field}: {{ ${compiled.src} }}: ${err.message}`, { cause: err });
    throw err;
  }
}

function undefinedError(field: string, src: string): CstorError {
  return new CstorError('internal', `${field}: {{ ${src} }} has no value (a missing field? wrap optional values in default(..., fallback))`);
}

function toText(value: Json): string {
  if (value === null) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

export function renderValue(c: Compiled, env: EvalEnv, field: string): Json {
  switch (c.k) {
    case 'const':
      return c.value;
    case 'expr': {
      const v = evalExpr(c, env, field);
      if (v === undefined) throw undefinedError(field, c.src);
      return v;
    }
    case 'interp':
      return c.parts
        .map((p) => {
          if (typeof p === 'string') return p;
          const v = evalExpr(p, env, field);
          if (v === undefined) throw undefinedError(field, p.src);
          return toText(v);
        })
        .join('');
    case 'list':
      return c.items.map((item, i) => renderValue(item, env, `${field}[${i}]`));
    case 'object': {
      const out: Record<string, Json> = {};
      for (const [key, v] of c.entries) out[key] = renderValue(v, env, `${field}.${key}`);
      return out;
    }
  }
}
