import { expect } from 'chai';
import { CstorError } from '../errors.ts';
import { silentLogger } from '../logger.ts';
import { ensureCrd } from './ensure-crd.ts';
import { FakeClock } from './fake-clock.ts';
import type { CustomResourceDefinition } from './types/crd.ts';

const crd: CustomResourceDefinition = {
  metadata: { name: 'things.example.com' },
  spec: { group: 'example.com', names: { plural: 'things', kind: 'Thing' }, scope: 'Cluster', versions: [{ name: 'v1', served: true, storage: true }] },
};

describe('ensureCrd', () => {
  it('times out with a clear error when the CRD never becomes Established, and rethrows other create errors', async () => {
    const clock = new FakeClock();
    let gets = 0;
    const client = {
      create: async () => {
        throw new CstorError('already_exists', 'exists');
      },
      get: async () => {
        gets++;
        return { ...crd, status: { conditions: [{ type: 'Established', status: 'False' as const }] } };
      },
    };
    const result = ensureCrd(crd, { client, logger: silentLogger(), clock, timeoutMs: 1000, pollMs: 100 }).catch((e: unknown) => e);
    await clock.advance(1200);
    const err = await result;
    expect(err).to.have.property('code', 'timeout');
    expect((err as Error).message).to.equal('CRD things.example.com is not Established after 1000 ms');
    expect(gets).to.equal(11);

    const denied = { ...client, create: async (): Promise<CustomResourceDefinition> => Promise.reject(new CstorError('unauthorized', 'forbidden')) };
    const err2 = await ensureCrd(crd, { client: denied, logger: silentLogger(), clock }).catch((e: unknown) => e);
    expect(err2).to.have.property('code', 'unauthorized');
  });
});
