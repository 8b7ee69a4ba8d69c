// Label and field selectors, in the string forms of the `labelSelector` and `fieldSelector`
// query parameters:
//   label: a=b, a==b, a!=b, a in (x,y), a notin (x,y), a, !a   (comma-separated, all must hold)
//   field: f=v, f==v, f!=v                                       (comma-separated, all must hold)
import { CstorError } from '../../lib/errors.ts';

export type Requirement =
  | { op: 'eq' | 'neq'; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'exists' | 'notexists'; key: string };

export type Selector = readonly Requirement[];

/** Splits on commas outside parentheses. */
function splitTerms(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  out.push(cur);
  return out.map((t) => t.trim()).filter((t) => t.length > 0);
}

const keyRe = /^([a-z0-9A-Z]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?\/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$/;

function checkKey(key: string, term: string): string {
  if (!keyRe.test(key)) throw new CstorError('invalid', `unable to parse requirement: invalid label key "${key}" in "${term}"`);
  return key;
}

export function parseLabelSelector(s: string | undefined): Selector {
  if (!s) return [];
  return splitTerms(s).map((term): Requirement => {
    let m = /^(\S+?)\s+(in|notin)\s*\(([^)]*)\)$/.exec(term);
    if (m) {
      const values = m[3]!.split(',').map((v) => v.trim()).filter((v) => v.length > 0);
      return { op: m[2] === 'in' ? 'in' : 'notin', key: checkKey(m[1]!, term), values };
    }
    m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(term);
    if (m) return { op: m[2] === '!=' ? 'neq' : 'eq', key: checkKey(m[1]!, term), value: m[3]! };
    m = /^!\s*(\S+)$/.exec(term);
    if (m) return { op: 'notexists', key: checkKey(m[1]!, term) };
    if (/^\S+$/.test(term)) return { op: 'exists', key: checkKey(term, term) };
    throw new CstorError('invalid', `unable to parse requirement: "${term}"`);
  });
}

export function parseFieldSelector(s: string | undefined, known: (field: string) => boolean): Selector {
  if (!s) return [];
  return splitTerms(s).map((term): Requirement => {
    const m = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m) throw new CstorError('invalid', `invalid selector: '${s}'; can't understand '${term}'`);
    const key = m[1]!;
    if (!known(key)) throw new CstorError('invalid', `"${key}" is not a known field selector: only "metadata.name", "metadata.namespace"`, { details: { field: key } });
    return { op: m[2] === '!=' ? 'neq' : 'eq', key, value: m[3]!.trim() };
  });
}

/** Whether `get(key)` (undefined = absent) satisfies every requirement. */
export function matches(sel: Selector, get: (key: string) => string | undefined): boolean {
  for (const r of sel) {
    const v = get(r.key);
    switch (r.op) {
      case 'eq':
        if (v !== r.value) return false;
        break;
      case 'neq':
        if (v === r.value) return false;
        break;
      case 'in':
        if (v === undefined || !r.values.includes(v)) return false;
        break;
      case 'notin':
        if (v !== undefined && r.values.includes(v)) return false;
        break;
      case 'exists':
        if (v === undefined) return false;
        break;
      case 'notexists':
        if (v !== undefined) return false;
        break;
    }
  }
  return true;
}
