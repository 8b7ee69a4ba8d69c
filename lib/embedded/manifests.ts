// Reads the deploy/ manifests: every *.yaml / *.yml under a directory, recursively, in path order
// (so the file names' numeric prefixes order them), every document a Kubernetes object. A file
// that does not parse, or a document that is not an object with apiVersion, kind and
// metadata.name, is refused naming the file and the document.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAll } from 'js-yaml';
import { CstorError } from '../errors.ts';
import { isJsonObject, type JsonObject } from './three-way-patch.ts';

export const defaultDeployDir = fileURLToPath(new URL('../../deploy/', import.meta.url));

export interface Manifest {
  /** Path relative to the directory read, e.g. "crds/cstorpools.openebs.io.yaml". */
  file: string;
  /** 1-based document number within the file. */
  doc: number;
  object: ManifestObject;
}

export interface ManifestObject extends JsonObject {
  apiVersion: string;
  kind: string;
  metadata: JsonObject & { name: string; namespace?: string };
}

async function yamlFiles(dir: string, rel = ''): Promise<string[]> {
  const entries = await readdir(path.join(dir, rel), { withFileTypes: true });
  const out: string[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await yamlFiles(dir, p)));
    else if (/\.ya?ml$/.test(e.name)) out.push(p);
  }
  return out;
}

/** Parses one YAML stream; `file` names it in errors. */
export function parseManifests(text: string, file: string): Manifest[] {
  let docs: unknown[];
  try {
    docs = loadAll(text);
  } catch (err) {
    throw new CstorError('invalid', `${file}: not valid YAML: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const out: Manifest[] = [];
  docs.forEach((doc, i) => {
    if (doc === null || doc === undefined) return;
    const where = `${file} (document ${i + 1})`;
    if (!isJsonObject(doc)) throw new CstorError('invalid', `${where}: not a Kubernetes object`);
    const problems: string[] = [];
    if (typeof doc.apiVersion !== 'string' || !doc.apiVersion) problems.push('apiVersion is missing');
    if (typeof doc.kind !== 'string' || !doc.kind) problems.push('kind is missing');
    const meta = doc.metadata;
    if (!isJsonObject(meta) || typeof meta.name !== 'string' || !meta.name) problems.push('metadata.name is missing');
    if (problems.length > 0) throw new CstorError('invalid', `${where}: ${problems.join('; ')}`);
    out.push({ file, doc: i + 1, object: doc as ManifestObject });
  });
  return out;
}

/** Every manifest under `dir`, in path order. */
export async function loadManifests(dir: string = defaultDeployDir): Promise<Manifest[]> {
  const out: Manifest[] = [];
  for (const file of await yamlFiles(dir)) out.push(...parseManifests(await readFile(path.join(dir, file), 'utf8'), file));
  return out;
}
