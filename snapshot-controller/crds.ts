// The two legacy snapshot CRDs (DESIGN.md §3), created at start when absent, then waited on
// until Established. The definitions come from deploy/crds/ (the same files a real cluster
// applies); a minimal built-in definition is used when a file is missing.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { load } from 'js-yaml';
import type { Logger } from '../lib/logger.ts';
import { CstorError, describeError, hasErrorCode } from '../lib/errors.ts';
import { realClock, sleep, type Clock } from '../lib/kube/clock.ts';
import type { ResourceClient } from '../lib/kube/resource-client.ts';
import { isCrdEstablished, type CustomResourceDefinition } from '../lib/kube/types/crd.ts';
import { snapshotGroup, snapshotVersion } from '../lib/kube/types/volume-snapshot.ts';

export const defaultCrdDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'deploy', 'crds');

export const snapshotCrdNames = [`volumesnapshots.${snapshotGroup}`, `volumesnapshotdatas.${snapshotGroup}`] as const;

export type CrdClient = Pick<ResourceClient<CustomResourceDefinition>, 'get' | 'create'>;

const conditionSchema = {
  type: 'object',
  required: ['type', 'status'],
  properties: { type: { type: 'string' }, status: { type: 'string' }, lastTransitionTime: { type: 'string' }, reason: { type: 'string' }, message: { type: 'string' } },
};

/** The built-in definition of one of the two CRDs (used when deploy/crds/ lacks it). */
export function builtinCrd(name: (typeof snapshotCrdNames)[number]): CustomResourceDefinition {
  const isData = name.startsWith('volumesnapshotdatas.');
  const kind = isData ? 'VolumeSnapshotData' : 'VolumeSnapshot';
  const plural = isData ? 'volumesnapshotdatas' : 'volumesnapshots';
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name },
    spec: {
      group: snapshotGroup,
      scope: isData ? 'Cluster' : 'Namespaced',
      names: { kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase() },
      versions: [
        {
          name: snapshotVersion,
          served: true,
          storage: true,
          subresources: { status: {} },
          schema: {
            openAPIV3Schema: {
              type: 'object',
              'x-kubernetes-preserve-unknown-fields': true,
              properties: { status: { type: 'object', properties: { creationTimestamp: { type: 'string' }, conditions: { type: 'array', items: conditionSchema } } } },
            },
          },
        },
      ],
    },
  };
}

/** Reads `<dir>/<name>.yaml` when present and valid for `name`; else the built-in definition. */
export function loadCrd(name: (typeof snapshotCrdNames)[number], dir: string, logger: Logger): CustomResourceDefinition {
  const file = path.join(dir, `${name}.yaml`);
  if (!fs.existsSync(file)) return builtinCrd(name);
  let doc: unknown;
  try {
    doc = load(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CstorError('invalid', `${file}: not valid YAML: ${describeError(err)}`, { cause: err });
  }
  const crd = doc as CustomResourceDefinition | null;
  if (!crd || crd.kind !== 'CustomResourceDefinition' || crd.metadata?.name !== name) {
    throw new CstorError('invalid', `${file}: expected the CustomResourceDefinition "${name}"`);
  }
  logger.debug('loaded CRD definition', { file });
  return crd;
}

export interface EnsureCrdsOptions {
  client: CrdClient;
  logger: Logger;
  dir?: string;
  clock?: Clock;
  /** How long to wait for Established (default 60 s). */
  timeoutMs?: number;
}

/** Creates each CRD that is absent, then waits until both are Established. */
export async function ensureSnapshotCrds(options: EnsureCrdsOptions): Promise<void> {
  const clock = options.clock ?? realClock;
  const dir = options.dir ?? defaultCrdDir;
  for (const name of snapshotCrdNames) {
    try {
      await options.client.get({ name });
      continue;
    } catch (err) {
      if (!hasErrorCode(err, 'not_found')) throw err;
    }
    try {
      await options.client.create(loadCrd(name, dir, options.logger));
      options.logger.info('created CRD', { crd: name });
    } catch (err) {
      if (!hasErrorCode(err, 'already_exists')) throw err; // another replica won the race
    }
  }
  const deadline = clock.now() + (options.timeoutMs ?? 60_000);
  for (const name of snapshotCrdNames) {
    for (;;) {
      const crd = await options.client.get({ name });
      if (isCrdEstablished(crd)) break;
      if (clock.now() >= deadline) throw new CstorError('timeout', `CRD ${name} is not Established after ${options.timeoutMs ?? 60_000} ms`);
      await sleep(clock, 100);
    }
  }
}
