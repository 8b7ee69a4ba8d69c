// The functions template expressions may call. Each checks its arguments and fails with a message
// naming itself; none reaches outside the values it is given (time and ids come from injected sources).
import { randomUUID } from 'node:crypto';
import { load } from 'js-yaml';
import { ExprError, isTruthy, readField, typeName, type ExprFunction, type Value } from './expr.ts';
import { isJsonObject, type Clock, type Json } from './ports.ts';

export const functionNames: ReadonlySet<string> = new Set([
  'default',
  'if',
  'join',
  'split',
  'lower',
  'upper',
  'len',
  'first',
  'contains',
  'pluck',
  'where',
  'pickPools',
  'casConfig',
  'bytes',
  'quorum',
  'int',
  'string',
  'now',
  'unixNanos',
  'uuid',
]);

export interface FunctionSources {
  clock: Clock;
  uuid?: () => string;
}

function arity(name: string, args: Value[], min: number, max = min): void {
  if (args.length < min || args.length > max) {
    const want = min === max ? `${min}` : `${min} to ${max}`;
    throw new ExprError(`${name}() takes ${want} argument${max === 1 ? '' : 's'}, got ${args.length}`);
  }
}

function str(name: string, value: Value, what: string): string {
  if (typeof value !== 'string') throw new ExprError(`${name}(): ${what} must be a string, got ${typeName(value)}`);
  return value;
}

function list(name: string, value: Value, what: string): Json[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new ExprError(`${name}(): ${what} must be a list, got ${typeName(value)}`);
  return value;
}

/** A path: 'a.b.c' or ['a', 'b', 'key.with.dots']. */
function pathOf(name: string, value: Value): string[] {
  if (typeof value === 'string') return value === '' ? [] : value.split('.');
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  throw new ExprError(`${name}(): a path is 'a.b.c' or a list of keys, got ${typeName(value)}`);
}

function readPath(value: Value, path: string[]): Value {
  let cur = value;
  for (const key of path) cur = readField(cur, key, path.join('.'));
  return cur;
}

const quantitySuffixes: Readonly<Record<string, number>> = {
  '': 1,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
};

/** Bytes of a Kubernetes-style quantity: 5368709120, "5G", "5Gi", "1.5Ti". */
export function quantityBytes(value: Value): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return Math.floor(value);
  if (typeof value !== 'string') throw new ExprError(`bytes(): a capacity must be a string like "5G" or a number, got ${typeName(value)}`);
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([kKMGTP]i?)?\s*$/.exec(value);
  const factor = m ? quantitySuffixes[m[2] ?? ''] : undefined;
  if (!m || factor === undefined) throw new ExprError(`bytes(): "${value}" is not a capacity (examples: 5G, 5Gi, 1073741824)`);
  return Math.floor(Number(m[1]) * factor);
}

export function createFunctions(sources: FunctionSources): ReadonlyMap<string, ExprFunction> {
  const uuid = sources.uuid ?? randomUUID;
  let lastNanos = 0n;
  const fns: Record<string, ExprFunction> = {
    default(args) {
      arity('default', args, 2);
      const [v, fallback] = args;
      return v === undefined || v === null || v === '' ? fallback : v;
    },
    if(args) {
      // if(condition, then, else): both branches are values (evaluated; expressions have no effects).
      arity('if', args, 3);
      return isTruthy(args[0]) ? args[1] : args[2];
    },
    join(args) {
      arity('join', args, 2);
      const sep = str('join', args[1], 'the separator');
      return list('join', args[0], 'the first argument')
        .map((v) => (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v)))
        .join(sep);
    },
    split(args) {
      arity('split', args, 2);
      const s = str('split', args[0], 'the first argument');
      return s === '' ? [] : s.split(str('split', args[1], 'the separator'));
    },
    lower(args) {
      arity('lower', args, 1);
      return str('lower', args[0], 'the argument').toLowerCase();
    },
    upper(args) {
      arity('upper', args, 1);
      return str('upper', args[0], 'the argument').toUpperCase();
    },
    len(args) {
      arity('len', args, 1);
      const v = args[0];
      if (v === undefined || v === null) return 0;
      if (typeof v === 'string' || Array.isArray(v)) return v.length;
      if (isJsonObject(v)) return Object.keys(v).length;
      throw new ExprError(`len(): takes a list, string or object, got ${typeName(v)}`);
    },
    first(args) {
      arity('first', args, 1);
      return list('first', args[0], 'the argument')[0] ?? null;
    },
    contains(args) {
      arity('contains', args, 2);
      const [haystack, needle] = args;
      if (typeof haystack === 'string') return haystack.includes(str('contains', needle, 'the second argument'));
      return list('contains', haystack, 'the first argument').some((v) => v === needle);
    },
    pluck(args) {
      arity('pluck', args, 2);
      const path = pathOf('pluck', args[1]);
      return list('pluck', args[0], 'the first argument').map((item) => readPath(item, path) ?? null);
    },
    where(args) {
      arity('where', args, 3);
      const path = pathOf('where', args[1]);
      const want = args[2];
      return list('where', args[0], 'the first argument').filter((item) => readPath(item, path) === want);
    },
    pickPools(args) {
      // pickPools(pools, replicas, count[, volume]): `count` Online pools. Pools already holding a
      // replica of `volume` come first (a create cut short and run again reuses them rather than
      // leaving them behind); then those holding the fewest replicas of other volumes, so volumes
      // spread; ties by name. Fewer when fewer are Online: assert on len() after.
      arity('pickPools', args, 3, 4);
      const count = args[2];
      if (typeof count !== 'number' || !Number.isInteger(count) || count < 1) {
        throw new ExprError(`pickPools(): the count must be a positive integer, got ${JSON.stringify(count ?? null)}`);
      }
      const volume = args[3] === undefined || args[3] === null ? undefined : str('pickPools', args[3], 'the volume');
      const used = new Map<string, number>();
      const own = new Set<string>();
      for (const cvr of list('pickPools', args[1], 'the replicas')) {
        const pool = readPath(cvr, ['metadata', 'labels', 'cstorpool.openebs.io/name']);
        if (typeof pool !== 'string') continue;
        if (volume !== undefined && readPath(cvr, ['metadata', 'labels', 'openebs.io/persistent-volume']) === volume) own.add(pool);
        else used.set(pool, (used.get(pool) ?? 0) + 1);
      }
      const online = list('pickPools', args[0], 'the pools').filter(
        (p) => readPath(p, ['status', 'phase']) === 'Online' && readPath(p, ['metadata', 'deletionTimestamp']) === undefined,
      );
      const nameOf = (p: Json): string => String(readPath(p, ['metadata', 'name']) ?? '');
      const rank = (p: Json): number => (own.has(nameOf(p)) ? -1 : (used.get(nameOf(p)) ?? 0));
      online.sort((a, b) => rank(a) - rank(b) || nameOf(a).localeCompare(nameOf(b)));
      return online.slice(0, count);
    },
    casConfig(args) {
      // casConfig(storageClass, name): the value of `name` in the class's cas.openebs.io/config
      // annotation (cStor's YAML list of {name, value}), or null when absent.
      arity('casConfig', args, 2);
      const name = str('casConfig', args[1], 'the name');
      const text = readPath(args[0], ['metadata', 'annotations', 'cas.openebs.io/config']);
      if (text === undefined || text === null || text === '') return null;
      if (typeof text !== 'string') throw new ExprError('casConfig(): the cas.openebs.io/config annotation must be a string');
      let entries: unknown;
      try {
        entries = load(text);
      } catch (err) {
        throw new ExprError(`casConfig(): the cas.openebs.io/config annotation is not valid YAML: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
      }
      if (!Array.isArray(entries)) throw new ExprError('casConfig(): the cas.openebs.io/config annotation must be a YAML list of {name, value}');
      for (const e of entries as unknown[]) {
        if (isJsonObject(e as Json) && (e as Record<string, Json>)['name'] === name) {
          const v = (e as Record<string, Json>)['value'];
          return v === undefined ? null : typeof v === 'object' && v !== null ? v : String(v);
        }
      }
      return null;
    },
    bytes(args) {
      arity('bytes', args, 1);
      return quantityBytes(args[0]);
    },
    quorum(args) {
      // The consistency factor of a replication factor: floor(RF/2)+1.
      arity('quorum', args, 1);
      const n = args[0];
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new ExprError(`quorum(): takes a positive integer, got ${JSON.stringify(n ?? null)}`);
      return Math.floor(n / 2) + 1;
    },
    int(args) {
      arity('int', args, 1);
      const v = args[0];
      if (typeof v === 'number' && Number.isInteger(v)) return v;
      if (typeof v === 'string' && /^-?[0-9]+$/.test(v.trim())) return Number(v.trim());
      throw new ExprError(`int(): ${JSON.stringify(v ?? null)} is not an integer`);
    },
    string(args) {
      arity('string', args, 1);
      const v = args[0];
      if (v === undefined || v === null) return '';
      return typeof v === 'object' ? JSON.stringify(v) : String(v);
    },
    now(args) {
      arity('now', args, 0);
      return new Date(sources.clock.now()).toISOString();
    },
    unixNanos(args) {
      // Strictly increasing within a process, so two ids taken in the same millisecond differ.
      arity('unixNanos', args, 0);
      let nanos = BigInt(Math.floor(sources.clock.now())) * 1_000_000n;
      if (nanos <= lastNanos) nanos = lastNanos + 1n;
      lastNanos = nanos;
      return nanos.toString();
    },
    uuid(args) {
      arity('uuid', args, 0);
      return uuid();
    },
  };
  return new Map(Object.entries(fns));
}
