// Which `cstor` subcommands exist and which flags each accepts, so `cstor up` passes a daemon
// only flags it knows and skips a subcommand that does not exist yet (the system keeps working
// while components grow). Read from the sources, not by running `cstor <sub> --help`: on a busy
// 2-core machine each --help costs seconds of TypeScript loading, the source read costs nothing.
// It relies on two house conventions: bin/cstor.ts registers `name: { ..., load: () =>
// import('<module>') }`, and each main declares its flags as `name: { type: 'string'|'boolean', ... }`
// for parseCommand (lib/cli/args.ts), in its own source or in the module of a shared
// `options: someOptions(...)` function it imports.
import fs from 'node:fs';
import path from 'node:path';

export interface SubcommandInfo {
  name: string;
  exists: boolean;
  /** Flags the subcommand declares, e.g. "--kubeconfig"; null when they could not be read (pass all). */
  flags: ReadonlySet<string> | null;
  /** Why it does not exist. */
  problem?: string;
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');

export function probeSubcommand(cstorBin: string, name: string): SubcommandInfo {
  const binDir = path.dirname(cstorBin);
  let registry: string;
  try {
    registry = fs.readFileSync(path.join(binDir, 'cstor.ts'), 'utf8');
  } catch (err) {
    return { name, exists: false, flags: null, problem: `cannot read bin/cstor.ts: ${(err as Error).message}` };
  }
  const entry = new RegExp(`^\\s*'?${escape(name)}'?\\s*:\\s*\\{[^\\n]*?import\\('([^']+)'\\)`, 'm').exec(registry);
  if (!entry?.[1]) return { name, exists: false, flags: null, problem: `cstor ${name} is not registered in bin/cstor.ts` };
  const modulePath = path.resolve(binDir, entry[1]);
  let source: string;
  try {
    source = fs.readFileSync(modulePath, 'utf8');
  } catch {
    return { name, exists: false, flags: null, problem: `${path.relative(path.dirname(binDir), modulePath)} does not exist yet` };
  }
  const flags = new Set<string>();
  for (const text of [source, sharedOptionsSource(source, modulePath)]) {
    for (const m of text.matchAll(/^\s*'?([a-z][a-z0-9-]*)'?\s*:\s*\{\s*type:\s*'(?:string|boolean)'/gm)) flags.add(`--${m[1]!}`);
  }
  return { name, exists: true, flags: flags.size > 0 ? flags : null };
}

/**
 * A main may take its options from a shared function (`options: provisionerOptions(...)`): then
 * the flags are declared in the module that function is imported from. '' when there is none.
 */
function sharedOptionsSource(source: string, modulePath: string): string {
  const call = /^\s*options:\s*([A-Za-z_$][\w$]*)\(/m.exec(source)?.[1];
  if (!call) return '';
  const from = new RegExp(`import\\s*\\{[^}]*\\b${escape(call)}\\b[^}]*\\}\\s*from\\s*'(\\.[^']+)'`).exec(source)?.[1];
  if (!from) return '';
  try {
    return fs.readFileSync(path.resolve(path.dirname(modulePath), from), 'utf8');
  } catch {
    return '';
  }
}
