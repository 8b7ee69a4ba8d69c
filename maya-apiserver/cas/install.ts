// Installs the CAS template objects (CASTemplate + RunTask) from deploy/cas-templates/: at
// m-apiserver start and by `cstor up`. Every file is parsed and every template checked with its
// tasks before anything is written, so a broken file changes nothing. Existing objects are
// brought to the file's content with a merge patch (labels, annotations, spec); equal ones are
// left alone. Admins who want their own flow create a template under another name and point a
// StorageClass annotation at it: the default names belong to this installer.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAll } from 'js-yaml';
import { CstorError, hasErrorCode } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { checkTemplate, parseCasTemplate } from './cas-template.ts';
import { casApiVersion } from './engine.ts';
import { diffMergePatch } from './merge-patch.ts';
import { parseRunTask, type RunTaskDef } from './run-task.ts';
import { isJsonObject, refOf, type JsonObject, type KubeObject, type KubeObjects } from './ports.ts';

export const defaultTemplateDir = fileURLToPath(new URL('../../deploy/cas-templates/', import.meta.url));

/** Parses one YAML stream of CASTemplate/RunTask objects; `source` names it in errors. */
export function parseTemplateYaml(text: string, source: string): KubeObject[] {
  let docs: unknown[];
  try {
    docs = loadAll(text);
  } catch (err) {
    throw new CstorError('invalid', `${source}: not valid YAML: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const objects: KubeObject[] = [];
  docs.forEach((doc, i) => {
    if (doc === null || doc === undefined) return;
    if (!isJsonObject(doc as never) || !isJsonObject((doc as JsonObject)['metadata'])) {
      throw new CstorError('invalid', `${source}: document ${i + 1} is not a Kubernetes object (apiVersion, kind, metadata)`);
    }
    const o = doc as KubeObject;
    if (o.apiVersion !== casApiVersion || (o.kind !== 'CASTemplate' && o.kind !== 'RunTask')) {
      throw new CstorError('invalid', `${source}: document ${i + 1} must be a ${casApiVersion} CASTemplate or RunTask, got ${String(o.apiVersion)} ${String(o.kind)}`);
    }
    objects.push(o);
  });
  return objects;
}

/** Reads every *.yaml in `dir`, checks each template with its tasks; throws `invalid` naming the file. */
export async function loadTemplateObjects(dir: string = defaultTemplateDir, namespace = 'openebs'): Promise<KubeObject[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).sort();
  const objects: Array<{ object: KubeObject; file: string }> = [];
  for (const file of files) {
    for (const object of parseTemplateYaml(await readFile(path.join(dir, file), 'utf8'), file)) objects.push({ object, file });
  }
  const tasks = new Map<string, RunTaskDef>();
  const templates: Array<{ object: KubeObject; file: string }> = [];
  for (const { object, file } of objects) {
    const name = String(object.metadata.name);
    try {
      if (object.kind === 'RunTask') {
        if (tasks.has(name)) throw new CstorError('invalid', `RunTask ${name} is defined twice`);
        tasks.set(name, parseRunTask(object));
        object.metadata.namespace = namespace;
      } else {
        templates.push({ object, file });
      }
    } catch (err) {
      throw new CstorError('invalid', `${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }
  for (const { object, file } of templates) {
    try {
      const def = parseCasTemplate(object);
      const missing = def.runTasks.filter((t) => !tasks.has(t));
      if (missing.length > 0) throw new CstorError('invalid', `CASTemplate ${def.name} names RunTasks that no file defines: ${missing.join(', ')}`);
      checkTemplate(
        def,
        def.runTasks.map((t) => tasks.get(t) as RunTaskDef),
      );
    } catch (err) {
      throw new CstorError('invalid', `${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }
  return objects.map((o) => o.object);
}

export interface InstallResult {
  created: string[];
  updated: string[];
  unchanged: string[];
}

export interface InstallOptions {
  kube: KubeObjects;
  logger: Logger;
  /** The openebs namespace, where RunTasks go. */
  namespace: string;
  dir?: string;
}

/** Creates or updates every template object; returns what it did, by `Kind/name`. */
export async function installTemplates(options: InstallOptions): Promise<InstallResult> {
  const objects = await loadTemplateObjects(options.dir ?? defaultTemplateDir, options.namespace);
  const result: InstallResult = { created: [], updated: [], unchanged: [] };
  for (const object of objects) {
    const ref = refOf(object);
    const label = `${object.kind}/${ref.name}`;
    let current: KubeObject | undefined;
    try {
      current = await options.kube.get(ref);
    } catch (err) {
      if (!hasErrorCode(err, 'not_found')) throw err;
    }
    if (!current) {
      try {
        await options.kube.create(object);
        result.created.push(label);
        continue;
      } catch (err) {
        if (!hasErrorCode(err, 'already_exists')) throw err;
        current = await options.kube.get(ref);
      }
    }
    const pick = (o: KubeObject): JsonObject => ({
      metadata: { labels: o.metadata.labels ?? {}, annotations: o.metadata.annotations ?? {} },
      spec: isJsonObject(o['spec']) ? o['spec'] : {},
    });
    const patch = diffMergePatch(pick(current), pick(object));
    if (Object.keys(patch).length === 0) {
      result.unchanged.push(label);
      continue;
    }
    await options.kube.patch(ref, patch);
    result.updated.push(label);
  }
  options.logger.info('cas templates installed', {
    created: result.created.length,
    updated: result.updated.length,
    unchanged: result.unchanged.length,
  });
  return result;
}
