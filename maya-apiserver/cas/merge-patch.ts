// JSON merge patch (RFC 7386): apply one, and compute the one that turns an object into another.
import { isJsonObject, type Json, type JsonObject } from './ports.ts';

export function applyMergePatch(target: Json | undefined, patch: Json): Json {
  if (!isJsonObject(patch)) return structuredClone(patch);
  const out: JsonObject = isJsonObject(target) ? structuredClone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = applyMergePatch(out[key], value);
  }
  return out;
}

/** The merge patch taking `from` to `to` (null removes a key); `{}` when they are equal. */
export function diffMergePatch(from: JsonObject, to: JsonObject): JsonObject {
  const patch: JsonObject = {};
  for (const key of Object.keys(from)) if (!Object.hasOwn(to, key)) patch[key] = null;
  for (const [key, value] of Object.entries(to)) {
    const old = from[key];
    if (isJsonObject(value) && isJsonObject(old)) {
      const sub = diffMergePatch(old, value);
      if (Object.keys(sub).length > 0) patch[key] = sub;
    } else if (JSON.stringify(old) !== JSON.stringify(value)) {
      patch[key] = structuredClone(value);
    }
  }
  return patch;
}
