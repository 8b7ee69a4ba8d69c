// Argument parsing for the `cstor` subcommands: node's util.parseArgs plus help text and
// fail-fast validation that lists every problem at once.
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CstorError } from '../errors.ts';

export interface OptionSpec {
  type: 'string' | 'boolean';
  description: string;
  /** Shown in help and used when the flag is absent. */
  default?: string | boolean;
  required?: boolean;
  multiple?: boolean;
  short?: string;
  /** Placeholder in help, e.g. HOST:PORT. */
  value?: string;
}

export interface CommandSpec<O extends Record<string, OptionSpec>> {
  name: string;
  summary: string;
  options: O;
  /** Extra paragraphs after the option list. */
  notes?: string;
}

type ValueOf<S extends OptionSpec> = S['type'] extends 'boolean'
  ? boolean
  : S['multiple'] extends true
    ? string[]
    : S['required'] extends true
      ? string
      : S['default'] extends string
        ? string
        : string | undefined;

export type ParsedOptions<O extends Record<string, OptionSpec>> = { [K in keyof O]: ValueOf<O[K]> };

export function helpText<O extends Record<string, OptionSpec>>(spec: CommandSpec<O>): string {
  const lines = [`Usage: cstor ${spec.name} [options]`, '', spec.summary, '', 'Options:'];
  const entries = Object.entries(spec.options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
    const extra = [o.required ? 'required' : '', o.default !== undefined ? `default: ${String(o.default)}` : '']
      .filter(Boolean)
      .join('; ');
    return [flag, `${o.description}${extra ? ` (${extra})` : ''}`] as const;
  });
  entries.push(['-h, --help', 'Show this help.']);
  const width = Math.max(...entries.map(([f]) => f.length)) + 2;
  for (const [flag, desc] of entries) lines.push(`  ${flag.padEnd(width)}${desc}`);
  if (spec.notes) lines.push('', spec.notes);
  return lines.join('\n') + '\n';
}

/**
 * Parses argv for one subcommand. Returns null after printing help for --help; throws an
 * `invalid` CstorError naming every problem (unknown flags, missing required ones).
 */
export function parseCommand<O extends Record<string, OptionSpec>>(
  spec: CommandSpec<O>,
  argv: readonly string[],
  out: NodeJS.WritableStream = process.stdout,
): ParsedOptions<O> | null {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, o] of Object.entries(spec.options)) {
    options[name] = { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) };
  }
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof options; strict: true; allowPositionals: false; tokens: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false, tokens: true });
  } catch (err) {
    throw new CstorError('invalid', `cstor ${spec.name}: ${(err as Error).message} (see --help)`, { cause: err });
  }
  const values: Record<string, unknown> = parsed.values;
  if (values.help === true) {
    out.write(helpText(spec));
    return null;
  }
  const problems: string[] = [];
  // A single-valued flag given twice is a conflict, not "the last one wins".
  const seen = new Set<string>();
  for (const t of parsed.tokens) {
    if (t.kind !== 'option' || options[t.name]?.multiple || t.name === 'help') continue;
    if (seen.has(t.name) && !problems.includes(`--${t.name} is given more than once`)) problems.push(`--${t.name} is given more than once`);
    seen.add(t.name);
  }
  const result: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(spec.options)) {
    const v = values[name];
    if (v === undefined) {
      if (o.required) problems.push(`--${name} is required`);
      result[name] = o.default ?? (o.type === 'boolean' ? false : o.multiple ? [] : undefined);
    } else {
      result[name] = v;
    }
  }
  if (problems.length > 0) throw new CstorError('invalid', `cstor ${spec.name}: ${problems.join('; ')} (see --help)`);
  return result as ParsedOptions<O>;
}

/** Splits "HOST:PORT" (IPv6 as "[::1]:PORT"); port 0 means "any free port". */
export function parseHostPort(value: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new CstorError('invalid', `${flag}: "${value}" is not HOST:PORT`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/**
 * Creates `dir` if absent and checks that it is a directory this process can write (a probe file
 * is created and removed: access(2) says yes to root even on a read-only mount); else an `invalid`
 * error naming the flag, the path and why. Daemons call it before they listen.
 */
export async function ensureWritableDir(dir: string, flag: string): Promise<void> {
  const probe = path.join(dir, `.write-probe-${process.pid}`);
  try {
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(probe, '');
    await fs.rm(probe, { force: true });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new CstorError('invalid', `${flag} ${dir}: not a writable directory (${e.code ?? e.message})`, { cause: err });
  }
}
