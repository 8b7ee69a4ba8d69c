// The benches' own `--name VALUE` flags, read from process.argv at a bench's top level (the
// `cstor` subcommands use lib/cli/args.ts instead). A bad value throws naming the flag.

/** The value after `--name`, or undefined when the flag is absent or has no value after it. */
export function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** `--name VALUE`, or `dflt` when absent. */
export function argString(name: string, dflt: string): string {
  return argValue(name) ?? dflt;
}

/** Whether the bare flag `--name` is given. */
export function hasFlag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}

/** `--name N` as a positive integer, or `dflt` when absent; anything else throws. */
export function positiveArg(name: string, dflt: number): number {
  const text = argValue(name);
  const v = text === undefined ? dflt : Number(text);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} must be a positive integer, not ${text}`);
  return v;
}
