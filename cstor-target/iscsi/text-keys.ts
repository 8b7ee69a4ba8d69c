// iSCSI text parameters (RFC 7143 §6): "key=value" strings, each ended by a NUL byte.
import { CstorError } from '../../lib/errors.ts';

export type KeyValues = Array<[string, string]>;

const MAX_KEY = 63;
const MAX_VALUE = 8192;

export function decodeKeys(data: Buffer): KeyValues {
  const out: KeyValues = [];
  const text = data.toString('utf8');
  for (const part of text.split('\0')) {
    if (part.length === 0) continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new CstorError('protocol', `iSCSI text parameter without "=": ${JSON.stringify(part.slice(0, 64))}`);
    const key = part.slice(0, eq);
    const value = part.slice(eq + 1);
    if (key.length > MAX_KEY) throw new CstorError('protocol', `iSCSI text key longer than ${MAX_KEY} bytes`);
    if (value.length > MAX_VALUE) throw new CstorError('protocol', `iSCSI text value of ${key} longer than ${MAX_VALUE} bytes`);
    out.push([key, value]);
  }
  return out;
}

export function encodeKeys(kv: KeyValues): Buffer {
  if (kv.length === 0) return Buffer.alloc(0);
  return Buffer.from(kv.map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
}
