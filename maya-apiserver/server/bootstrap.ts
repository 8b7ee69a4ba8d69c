// What m-apiserver installs at start, idempotently: its namespace (when absent), the CRDs of
// deploy/crds (created when absent, their spec updated when it differs; waited on until
// Established) and the CAS templates of deploy/cas-templates (maya-apiserver/cas/install.ts).
// Each step retries with backoff while the API server is unreachable, so m-apiserver may start
// before it.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAll } from 'js-yaml';
import { CstorError, describeError, hasErrorCode } from '../../lib/errors.ts';
import { backoffDelay } from '../../lib/kube/backoff.ts';
import { ensureCrd } from '../../lib/kube/ensure-crd.ts';
import type { ResourceClient } from '../../lib/kube/resource-client.ts';
import type { CustomResourceDefinition } from '../../lib/kube/types/crd.ts';
import type { Logger } from '../../lib/logger.ts';
import { installTemplates } from '../cas/install.ts';
import type { KubeObjects } from '../cas/ports.ts';

export const defaultCrdDir = fileURLToPath(new URL('../../deploy/crds/', import.meta.url));

/** Parses every *.yaml of `dir` into CRDs; a file that is not one is `invalid`, naming the file. */
export async function loadCrds(dir: string = defaultCrdDir): Promise<CustomResourceDefinition[]> {
  const out: CustomResourceDefinition[] = [];
  for (const file of (await readdir(dir)).filter((f) => f.endsWith('.yaml')).sort()) {
    const docs = loadAll(await readFile(path.join(dir, file), 'utf8'));
    for (const doc of docs) {
      if (doc === null || doc === undefined) continue;
      const crd = doc as CustomResourceDefinition;
      if (crd.kind !== 'CustomResourceDefinition' || !crd.metadata?.name) throw new CstorError('invalid', `${file}: not a CustomResourceDefinition with a name`);
      out.push(crd);
    }
  }
  return out;
}

export interface InstallCrdsOptions {
  client: Pick<ResourceClient<CustomResourceDefinition>, 'get' | 'create' | 'mergePatch'>;
  logger: Logger;
  dir?: string;
}

/** Creates missing CRDs, merge-patches the spec of changed ones, waits until each is Established. */
export async function installCrds(options: InstallCrdsOptions): Promise<{ created: string[]; updated: string[] }> {
  const result = { created: [] as string[], updated: [] as string[] };
  for (const crd of await loadCrds(options.dir)) {
    const name = crd.metadata.name as string;
    let existing: CustomResourceDefinition | undefined;
    try {
      existing = await options.client.get({ name });
    } catch (err) {
      if (!hasErrorCode(err, 'not_found')) throw err;
    }
    if (!existing) {
      await ensureCrd(crd, { client: options.client, logger: options.logger });
      result.created.push(name);
      continue;
    }
    if (!isSubset(crd.spec, existing.spec)) {
      await options.client.mergePatch({ name }, { spec: crd.spec });
      result.updated.push(name);
      options.logger.info('updated CRD', { crd: name });
    }
    await ensureCrd(crd, { client: options.client, logger: options.logger });
  }
  return result;
}

/** True when every field of `want` is in `have` with the same value (server defaults in `have` are ignored). */
export function isSubset(want: unknown, have: unknown): boolean {
  if (Array.isArray(want)) return Array.isArray(have) && want.length === have.length && want.every((w, i) => isSubset(w, have[i]));
  if (want !== null && typeof want === 'object') {
    if (have === null || typeof have !== 'object' || Array.isArray(have)) return false;
    return Object.entries(want).every(([k, v]) => isSubset(v, (have as Record<string, unknown>)[k]));
  }
  return want === have;
}

export interface BootstrapOptions {
  kube: KubeObjects;
  crdClient: InstallCrdsOptions['client'];
  logger: Logger;
  namespace: string;
  signal?: AbortSignal;
  crdDir?: string;
  templateDir?: string;
}

/** Namespace, CRDs, templates; retried while the API server is unreachable (not on bad input). */
export async function bootstrap(options: BootstrapOptions): Promise<void> {
  const { kube, logger, namespace } = options;
  await withRetries('ensure namespace', options, async () => {
    try {
      await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: namespace });
    } catch (err) {
      if (!hasErrorCode(err, 'not_found')) throw err;
      try {
        await kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
        logger.info('created namespace', { namespace });
      } catch (e) {
        if (!hasErrorCode(e, 'already_exists')) throw e;
      }
    }
  });
  await withRetries('install CRDs', options, async () => {
    const r = await installCrds({ client: options.crdClient, logger, ...(options.crdDir ? { dir: options.crdDir } : {}) });
    logger.info('CRDs installed', r);
  });
  await withRetries('install CAS templates', options, async () => {
    const r = await installTemplates({ kube, logger, namespace, ...(options.templateDir ? { dir: options.templateDir } : {}) });
    logger.info('CAS templates installed', { created: r.created.length, updated: r.updated.length, unchanged: r.unchanged.length });
  });
}

async function withRetries(what: string, options: { logger: Logger; signal?: AbortSignal }, fn: () => Promise<void>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    if (options.signal?.aborted) throw new CstorError('aborted', `${what}: stopped`);
    try {
      await fn();
      return;
    } catch (err) {
      if (!hasErrorCode(err, 'unavailable', 'timeout', 'conflict') || attempt >= 60) throw err;
      const ms = backoffDelay({ baseMs: 200, maxMs: 5000, jitter: 0.2 }, attempt);
      options.logger.warn(`${what} failed; retrying`, { attempt, retryInMs: Math.round(ms), error: describeError(err) });
      await new Promise((r) => setTimeout(r, ms));
    }
  }
}
