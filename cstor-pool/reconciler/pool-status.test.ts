import { expect } from 'chai';
import { CstorError, hasErrorCode } from '../../lib/errors.ts';
import { silentLogger } from '../../lib/logger.ts';
import { FakeClock } from '../../lib/kube/fake-clock.ts';
import { PoolStatusWriter, type PoolClient } from './pool-status.ts';
import type { CStorPool } from './types.ts';

function setup(o: { exists?: boolean; fail?: CstorError } = {}) {
  const calls: string[] = [];
  const objects = new Map<string, CStorPool>();
  if (o.exists) objects.set('pool-a', { metadata: { name: 'pool-a' } });
  let fail = o.fail;
  const client: PoolClient = {
    create: async (obj) => {
      calls.push(`create ${obj.metadata?.name}`);
      objects.set(obj.metadata?.name ?? '', structuredClone(obj) as CStorPool);
      return obj;
    },
    patchStatus: async (ref, status) => {
      calls.push(`patchStatus ${ref.name}`);
      if (fail) {
        const e = fail;
        fail = undefined;
        throw e;
      }
      const cur = objects.get(ref.name);
      if (!cur) throw new CstorError('not_found', `cstorpools "${ref.name}" not found`);
      cur.status = { ...(cur.status ?? {}), ...(status as object) };
      for (const [k, v] of Object.entries(cur.status)) if (v === null) delete (cur.status as Record<string, unknown>)[k];
      return cur;
    },
  };
  const writer = new PoolStatusWriter({
    poolName: 'pool-a',
    client,
    store: { space: async () => ({ usedBytes: 4096, freeBytes: 1_000_000 }), listReplicas: async () => [] },
    address: '10.0.0.1:3232',
    mgmtAddress: '10.0.0.1:9501',
    spec: { path: '/var/lib/p', node: 'n1' },
    clock: new FakeClock(Date.parse('2026-01-02T03:04:05Z')),
    logger: silentLogger(),
  });
  return { calls, objects, writer };
}

describe('pool reconciler: CStorPool status', () => {
  it('creates the CStorPool when absent, then writes its status', async () => {
    const { calls, objects, writer } = setup();
    await writer.write('Online');
    expect(calls).to.deep.equal(['patchStatus pool-a', 'create pool-a', 'patchStatus pool-a']);
    expect(objects.get('pool-a')?.spec).to.deep.equal({ path: '/var/lib/p', node: 'n1' });
    expect(objects.get('pool-a')?.status).to.deep.equal({
      phase: 'Online',
      address: '10.0.0.1:3232',
      mgmtAddress: '10.0.0.1:9501',
      capacity: { total: 1_004_096, used: 4096, free: 1_000_000 },
      replicas: 0,
      lastUpdateTime: '2026-01-02T03:04:05Z',
    });
  });

  it('Offline carries a reason; Online again clears it', async () => {
    const { objects, writer } = setup({ exists: true });
    await writer.write('Offline');
    expect(objects.get('pool-a')?.status).to.deep.include({ phase: 'Offline', reason: 'PoolStopped' });
    await writer.write('Online');
    expect(objects.get('pool-a')?.status?.reason).to.equal(undefined);
    expect(objects.get('pool-a')?.status?.phase).to.equal('Online');
  });

  it('an API error other than not_found is thrown (the loop retries it)', async () => {
    const { calls, writer } = setup({ exists: true, fail: new CstorError('unavailable', 'down') });
    let err: unknown;
    await writer.write('Online').catch((e: unknown) => (err = e));
    expect(hasErrorCode(err, 'unavailable')).to.equal(true);
    expect(calls).to.deep.equal(['patchStatus pool-a']);
  });
});
