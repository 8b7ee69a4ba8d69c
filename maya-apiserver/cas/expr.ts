// The template expression language: small, readable and safe. An expression reads values by path
// (`request.metadata.name`, `volume.metadata.labels["openebs.io/storageclass"]`), compares them
// (== != < <= > >=), combines them (&& || ! and + for numbers or strings), and calls a fixed set of
// functions (./functions.ts). No assignment, no loops, no access to prototypes or to anything but
// the values a run holds. Expressions are parsed when a template is loaded, so a bad one is refused
// before any task runs.
//
// Grammar:
//   expr    := or
//   or      := and ('||' and)*
//   and     := cmp ('&&' cmp)*
//   cmp     := add (('=='|'!='|'<'|'<='|'>'|'>=') add)?
//   add     := unary ('+' unary)*
//   unary   := '!' unary | postfix
//   postfix := primary ('.' IDENT | '[' expr ']')*
//   primary := IDENT '(' [expr (',' expr)*] ')' | IDENT | STRING | NUMBER | true | false | null
//            | '(' expr ')' | '[' [expr (',' expr)*] ']'
//   IDENT   := [A-Za-z_][A-Za-z0-9_-]*      (so task ids like `cvr-create` are names)
//   STRING  := '...' | "..."  with \\ \' \" \n \t escapes
import type { Json } from './ports.ts';

export type Expr =
  | { kind: 'literal'; value: Json }
  | { kind: 'var'; name: string }
  | { kind: 'field'; target: Expr; key: Expr }
  | { kind: 'call'; name: string; args: Expr[] }
  | { kind: 'list'; items: Expr[] }
  | { kind: 'not'; operand: Expr }
  | { kind: 'binary'; op: BinaryOp; left: Expr; right: Expr };

export type BinaryOp = '==' | '!=' | '<' | '<=' | '>' | '>=' | '&&' | '||' | '+';

/** A value while evaluating: JSON, or undefined for a path that leads nowhere. */
export type Value = Json | undefined;

/** A bad expression (at load) or a failed evaluation (at run time). */
export class ExprError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExprError';
  }
}

type Token =
  | { t: 'ident'; v: string; at: number }
  | { t: 'str'; v: string; at: number }
  | { t: 'num'; v: number; at: number }
  | { t: 'op'; v: string; at: number }
  | { t: 'end'; at: number };

const operators = ['==', '!=', '<=', '>=', '&&', '||', '<', '>', '!', '+', '.', ',', '(', ')', '[', ']'];

function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const at = i + 1;
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(src.slice(i)) as RegExpExecArray;
      tokens.push({ t: 'ident', v: m[0], at });
      i += m[0].length;
      continue;
    }
    if (/[0-9]/.test(c)) {
      const m = /^[0-9]+(\.[0-9]+)?/.exec(src.slice(i)) as RegExpExecArray;
      tokens.push({ t: 'num', v: Number(m[0]), at });
      i += m[0].length;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      let v = '';
      for (;;) {
        if (j >= src.length) throw new ExprError(`at column ${at}: unterminated string`);
        const d = src[j] as string;
        if (d === c) break;
        if (d === '\\') {
          const e = src[j + 1];
          if (e === 'n') v += '\n';
          else if (e === 't') v += '\t';
          else if (e === '\\' || e === '"' || e === "'") v += e;
          else throw new ExprError(`at column ${j + 1}: unknown escape \\${e ?? ''}`);
          j += 2;
          continue;
        }
        v += d;
        j++;
      }
      tokens.push({ t: 'str', v, at });
      i = j + 1;
      continue;
    }
    const op = operators.find((o) => src.startsWith(o, i));
    if (op === undefined) throw new ExprError(`at column ${at}: unexpected character '${c}'`);
    tokens.push({ t: 'op', v: op, at });
    i += op.length;
  }
  tokens.push({ t: 'end', at: src.length + 1 });
  return tokens;
}

function describeToken(tok: Token): string {
  switch (tok.t) {
    case 'end':
      return 'end of expression';
    case 'str':
      return `string "${tok.v}"`;
    default:
      return `'${String(tok.v)}'`;
  }
}

class Parser {
  private pos = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly functions: ReadonlySet<string>,
  ) {}

  private peek(): Token {
    return this.tokens[this.pos] as Token;
  }

  private next(): Token {
    const tok = this.peek();
    if (tok.t !== 'end') this.pos++;
    return tok;
  }

  private isOp(v: string): boolean {
    const tok = this.peek();
    return tok.t === 'op' && tok.v === v;
  }

  private expectOp(v: string, context: string): void {
    const tok = this.next();
    if (tok.t !== 'op' || tok.v !== v) throw new ExprError(`at column ${tok.at}: expected '${v}' ${context}, found ${describeToken(tok)}`);
  }

  parseAll(): Expr {
    const expr = this.parseOr();
    const tok = this.peek();
    if (tok.t !== 'end') throw new ExprError(`at column ${tok.at}: unexpected ${describeToken(tok)}`);
    return expr;
  }

  private parseOr(): Expr {
    let left = this.parseAnd();
    while (this.isOp('||')) {
      this.next();
      left = { kind: 'binary', op: '||', left, right: this.parseAnd() };
    }
    return left;
  }

  private parseAnd(): Expr {
    let left = this.parseCmp();
    while (this.isOp('&&')) {
      this.next();
      left = { kind: 'binary', op: '&&', left, right: this.parseCmp() };
    }
    return left;
  }

  private parseCmp(): Expr {
    const left = this.parseAdd();
    const tok = this.peek();
    if (tok.t === 'op' && ['==', '!=', '<', '<=', '>', '>='].includes(tok.v)) {
      this.next();
      return { kind: 'binary', op: tok.v as BinaryOp, left, right: this.parseAdd() };
    }
    return left;
  }

  private parseAdd(): Expr {
    let left = this.parseUnary();
    while (this.isOp('+')) {
      this.next();
      left = { kind: 'binary', op: '+', left, right: this.parseUnary() };
    }
    return left;
  }

  private parseUnary(): Expr {
    if (this.isOp('!')) {
      this.next();
      return { kind: 'not', operand: this.parseUnary() };
    }
    return this.parsePostfix();
  }

  private parsePostfix(): Expr {
    let target = this.parsePrimary();
    for (;;) {
      if (this.isOp('.')) {
        this.next();
        const tok = this.next();
        if (tok.t !== 'ident') throw new ExprError(`at column ${tok.at}: expected a field name after '.', found ${describeToken(tok)}`);
        target = { kind: 'field', target, key: { kind: 'literal', value: tok.v } };
      } else if (this.isOp('[')) {
        this.next();
        const key = this.parseOr();
        this.expectOp(']', 'to close an index');
        target = { kind: 'field', target, key };
      } else {
        return target;
      }
    }
  }

  private parseArgs(close: string, context: string): Expr[] {
    const args: Expr[] = [];
    if (this.isOp(close)) {
      this.next();
      return args;
    }
    for (;;) {
      args.push(this.parseOr());
      if (this.isOp(',')) {
        this.next();
        continue;
      }
      this.expectOp(close, context);
      return args;
    }
  }

  private parsePrimary(): Expr {
    const tok = this.next();
    switch (tok.t) {
      case 'str':
        return { kind: 'literal', value: tok.v };
      case 'num':
        return { kind: 'literal', value: tok.v };
      case 'ident': {
        if (tok.v === 'true') return { kind: 'literal', value: true };
        if (tok.v === 'false') return { kind: 'literal', value: false };
        if (tok.v === 'null') return { kind: 'literal', value: null };
        if (this.isOp('(')) {
          if (!this.functions.has(tok.v)) {
            throw new ExprError(`at column ${tok.at}: unknown function ${tok.v}(); known: ${[...this.functions].sort().join(', ')}`);
          }
          this.next();
          return { kind: 'call', name: tok.v, args: this.parseArgs(')', `to close the arguments of ${tok.v}()`) };
        }
        return { kind: 'var', name: tok.v };
      }
      case 'op':
        if (tok.v === '(') {
          const inner = this.parseOr();
          this.expectOp(')', 'to close a parenthesis');
          return inner;
        }
        if (tok.v === '[') return { kind: 'list', items: this.parseArgs(']', 'to close a list') };
        throw new ExprError(`at column ${tok.at}: unexpected ${describeToken(tok)}`);
      case 'end':
        throw new ExprError(`at column ${tok.at}: unexpected end of expression`);
    }
  }
}

/** Parses one expression; `functions` are the names calls may use. Throws ExprError. */
export function parseExpr(source: string, functions: ReadonlySet<string>): Expr {
  if (source.trim() === '') throw new ExprError('empty expression');
  return new Parser(tokenize(source), functions).parseAll();
}

/** The source form of an expression, for messages. */
export function formatExpr(expr: Expr): string {
  switch (expr.kind) {
    case 'literal':
      return JSON.stringify(expr.value);
    case 'var':
      return expr.name;
    case 'field':
      return expr.key.kind === 'literal' && typeof expr.key.value === 'string' && /^[A-Za-z_][A-Za-z0-9_-]*$/.test(expr.key.value)
        ? `${formatExpr(expr.target)}.${expr.key.value}`
        : `${formatExpr(expr.target)}[${formatExpr(expr.key)}]`;
    case 'call':
      return `${expr.name}(${expr.args.map(formatExpr).join(', ')})`;
    case 'list':
      return `[${expr.items.map(formatExpr).join(', ')}]`;
    case 'not':
      return `!${formatExpr(expr.operand)}`;
    case 'binary':
      return `${formatExpr(expr.left)} ${expr.op} ${formatExpr(expr.right)}`;
  }
}

export type ExprFunction = (args: Value[], env: EvalEnv) => Value;

export interface EvalEnv {
  /** Variables by name: request, config, env, each task's saved result, item, object. */
  vars: ReadonlyMap<string, Json>;
  functions: ReadonlyMap<string, ExprFunction>;
}

/** JSON type name of a value, for messages. */
export function typeName(value: Value): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'list';
  if (typeof value === 'object') return 'object';
  return typeof value;
}

/** false, null, undefined, '', 0 and [] are false; everything else is true. */
export function isTruthy(value: Value): boolean {
  if (value === undefined || value === null || value === false || value === '' || value === 0) return false;
  if (Array.isArray(value)) return value.length > 0;
  return true;
}

export function deepEqual(a: Value, b: Value): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return (a ?? null) === (b ?? null);
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  const ob = b as Record<string, Json>;
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(ob, k) && deepEqual((a as Record<string, Json>)[k], ob[k]));
}

/** Reads `key` of `target`; undefined for a missing key or a null/undefined target. Own keys only. */
export function readField(target: Value, key: Value, where: string): Value {
  if (target === undefined || target === null) return undefined;
  if (Array.isArray(target)) {
    // A name on a list reads nothing (so `default(body.items, body)` accepts both answer shapes).
    if (typeof key === 'string') return undefined;
    if (typeof key !== 'number' || !Number.isInteger(key)) throw new ExprError(`${where}: a list is indexed by an integer, not ${typeName(key)}`);
    return key >= 0 && key < target.length ? target[key] : undefined;
  }
  if (typeof target === 'object') {
    if (typeof key !== 'string') throw new ExprError(`${where}: an object field name must be a string, not ${typeName(key)}`);
    return Object.hasOwn(target, key) ? target[key] : undefined;
  }
  throw new ExprError(`${where}: cannot read field ${JSON.stringify(key)} of a ${typeName(target)}`);
}

function compare(op: BinaryOp, a: Value, b: Value, where: string): boolean {
  if (typeof a === 'number' && typeof b === 'number') {
    return op === '<' ? a < b : op === '<=' ? a <= b : op === '>' ? a > b : a >= b;
  }
  if (typeof a === 'string' && typeof b === 'string') {
    return op === '<' ? a < b : op === '<=' ? a <= b : op === '>' ? a > b : a >= b;
  }
  throw new ExprError(`${where}: cannot compare ${typeName(a)} ${op} ${typeName(b)} (both sides must be numbers, or both strings)`);
}

export function evaluate(expr: Expr, env: EvalEnv): Value {
  switch (expr.kind) {
    case 'literal':
      return expr.value;
    case 'var':
      if (!env.vars.has(expr.name)) return undefined;
      return env.vars.get(expr.name);
    case 'field':
      return readField(evaluate(expr.target, env), evaluate(expr.key, env), formatExpr(expr));
    case 'list':
      return expr.items.map((item) => evaluate(item, env) ?? null);
    case 'not':
      return !isTruthy(evaluate(expr.operand, env));
    case 'call': {
      const fn = env.functions.get(expr.name);
      if (!fn) throw new ExprError(`unknown function ${expr.name}()`);
      try {
        return fn(
          expr.args.map((a) => evaluate(a, env)),
          env,
        );
      } catch (err) {
        if (err instanceof ExprError && !err.message.startsWith(`${expr.name}(`)) throw new ExprError(`${formatExpr(expr)}: ${err.message}`);
        throw err;
      }
    }
    case 'binary': {
      if (expr.op === '&&') return isTruthy(evaluate(expr.left, env)) && isTruthy(evaluate(expr.right, env));
      if (expr.op === '||') {
        const left = evaluate(expr.left, env);
        return isTruthy(left) ? true : isTruthy(evaluate(expr.right, env));
      }
      const left = evaluate(expr.left, env);
      const right = evaluate(expr.right, env);
      if (expr.op === '==') return deepEqual(left, right);
      if (expr.op === '!=') return !deepEqual(left, right);
      if (expr.op === '+') {
        if (typeof left === 'number' && typeof right === 'number') return left + right;
        if ((typeof left === 'string' || typeof left === 'number') && (typeof right === 'string' || typeof right === 'number')) {
          return String(left) + String(right);
        }
        throw new ExprError(`${formatExpr(expr)}: cannot add ${typeName(left)} and ${typeName(right)}`);
      }
      return compare(expr.op, left, right, formatExpr(expr));
    }
  }
}
