// Installs a CustomResourceDefinition if it is absent and waits until it is Established, so a
// controller can create its CRDs at start (DESIGN.md §3) and then serve its resources.
import type { Logger } from '../logger.ts';
import { CstorError, hasErrorCode } from '../errors.ts';
import { realClock, sleep, type Clock } from './clock.ts';
import type { ResourceClient } from './resource-client.ts';
import { isCrdEstablished, type CustomResourceDefinition } from './types/crd.ts';

export interface EnsureCrdOptions {
  client: Pick<ResourceClient<CustomResourceDefinition>, 'get' | 'create'>;
  logger: Logger;
  clock?: Clock;
  /** Give up after this long (default 30 s). */
  timeoutMs?: number;
  pollMs?: number;
}

/** Creates `crd` unless one of that name exists; resolves with the Established CRD. */
export async function ensureCrd(crd: CustomResourceDefinition, options: EnsureCrdOptions): Promise<CustomResourceDefinition> {
  const name = crd.metadata.name;
  if (!name) throw new CstorError('invalid', 'the CRD has no metadata.name');
  const clock = options.clock ?? realClock;
  try {
    await options.client.create(crd);
    options.logger.info('created CRD', { crd: name });
  } catch (err) {
    if (!hasErrorCode(err, 'already_exists')) throw err;
  }
  const deadline = clock.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    const current = await options.client.get({ name });
    if (isCrdEstablished(current)) return current;
    if (clock.now() >= deadline) throw new CstorError('timeout', `CRD ${name} is not Established after ${options.timeoutMs ?? 30_000} ms`);
    await sleep(clock, options.pollMs ?? 100);
  }
}
