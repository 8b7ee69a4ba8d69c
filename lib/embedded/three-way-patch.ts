// The JSON merge patch that brings a live object to a manifest, the way `kubectl apply` does for
// merge-patched objects: fields the manifest sets are set (when the live value differs), fields
// the previous apply set (the last-applied annotation) and the manifest no longer has are
// removed, and fields nobody applied (server defaults, status, what controllers wrote) are left
// alone. An empty patch means "unchanged", so applying twice writes nothing.

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** The annotation kubectl uses: sharing it keeps `kubectl apply` and `cstor up` compatible. */
export const lastAppliedAnnotation = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * The annotation's value as kubectl writes it (Go's json.Marshal: keys sorted, compact, HTML
 * characters escaped, then a newline), so `kubectl apply` of an unchanged file after `cstor up` reports "unchanged".
 */
export function lastAppliedValue(manifest: Json): string {
  const sort = (v: Json): Json => {
    if (Array.isArray(v)) return v.map(sort);
    if (isJsonObject(v)) return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort(v[k]!)]));
    return v;
  };
  // Go's encoder also escapes <, >, & and the JS line separators
  const goEscapes: Record<string, string> = { '<': '\\u003c', '>': '\\u003e', '&': '\\u0026', '\u2028': '\\u2028', '\u2029': '\\u2029' };
  return JSON.stringify(sort(manifest)).replace(/[<>&\u2028\u2029]/g, (c) => goEscapes[c] ?? c) + '\n';
}

export function isJsonObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * True when every field of `want` is in `have` with the same value (objects: recursively;
 * arrays: same length, element by element; so a server default such as a port's protocol
 * does not count as a difference).
 */
export function isSubset(want: Json | undefined, have: Json | undefined): boolean {
  if (isJsonObject(want)) {
    if (!isJsonObject(have)) return false;
    return Object.entries(want).every(([k, v]) => isSubset(v, have[k]));
  }
  if (Array.isArray(want)) {
    if (!Array.isArray(have) || have.length !== want.length) return false;
    return want.every((v, i) => isSubset(v, have[i]));
  }
  return want === have;
}

/**
 * @param original what the previous apply wrote (the last-applied annotation), or {} if none
 * @param modified the manifest now
 * @param current  the live object
 */
export function threeWayMergePatch(original: JsonObject, modified: JsonObject, current: JsonObject): JsonObject {
  const patch: JsonObject = {};
  for (const key of Object.keys(original)) {
    if (!Object.hasOwn(modified, key) && Object.hasOwn(current, key)) patch[key] = null;
  }
  for (const [key, want] of Object.entries(modified)) {
    const have = current[key];
    if (isJsonObject(want) && isJsonObject(have)) {
      const before = original[key];
      const sub = threeWayMergePatch(isJsonObject(before) ? before : {}, want, have);
      if (Object.keys(sub).length > 0) patch[key] = sub;
    } else if (!isSubset(want, have)) {
      patch[key] = structuredClone(want);
    }
  }
  return patch;
}
