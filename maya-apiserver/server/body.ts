// Request bodies of the REST API: JSON, or YAML when Content-Type contains "yaml" (DESIGN.md §4).
// A body that does not parse is an `invalid` error naming the format and the problem (line and
// column where the parser gives them); a body past the size limit is `too_large`.
import type { Request } from 'express';
import { YAMLException, load as loadYaml } from 'js-yaml';
import { CstorError } from '../../lib/errors.ts';

/** Largest request body accepted; CASVolume and CASSnapshot requests are a few hundred bytes. */
export const maxBodyBytes = 1024 * 1024;

function readRaw(req: Request, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        reject(new CstorError('too_large', `the request body is larger than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!failed) resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', (err) => {
      if (!failed) reject(new CstorError('invalid', `reading the request body failed: ${err.message}`, { cause: err }));
    });
  });
}

export function isYamlContentType(contentType: string | undefined): boolean {
  return (contentType ?? '').toLowerCase().includes('yaml');
}

/** Parses text as JSON or YAML; `what` names the expected object in messages (e.g. "a CASVolume"). */
export function parseBodyText(text: string, contentType: string | undefined, what: string): unknown {
  if (text.trim() === '') throw new CstorError('invalid', `the request body is empty: ${what} is required`);
  if (isYamlContentType(contentType)) {
    try {
      return loadYaml(text);
    } catch (err) {
      const reason = err instanceof YAMLException ? err.message.split('\n')[0] : String(err);
      throw new CstorError('invalid', `the request body is not valid YAML: ${reason}`, { cause: err });
    }
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new CstorError('invalid', `the request body is not valid JSON: ${reason} (send Content-Type: application/yaml for YAML)`, { cause: err });
  }
}

/** Reads and parses the request body. */
export async function readBody(req: Request, what: string, limit = maxBodyBytes): Promise<unknown> {
  const text = await readRaw(req, limit);
  return parseBodyText(text, req.get('content-type'), what);
}
