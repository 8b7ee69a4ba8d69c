import { expect } from 'chai';
import { KeyedMutex } from './keyed-mutex.ts';

describe('KeyedMutex', () => {
  it('runs one operation at a time per key, in order, others freely; forgets idle keys', async () => {
    const mutex = new KeyedMutex();
    const log: string[] = [];
    const op = (key: string, tag: string, ticks: number) =>
      mutex.run(key, async () => {
        log.push(`start ${tag}`);
        for (let i = 0; i < ticks; i++) await Promise.resolve();
        log.push(`end ${tag}`);
        return tag;
      });
    const results = await Promise.all([op('v1', 'a', 5), op('v1', 'b', 1), op('v2', 'c', 1)]);
    expect(results).to.deep.equal(['a', 'b', 'c']);
    expect(log.indexOf('end a')).to.be.lessThan(log.indexOf('start b'));
    expect(log.indexOf('start c')).to.be.lessThan(log.indexOf('end a'));
    const failed = await mutex.run('v1', async () => Promise.reject(new Error('boom'))).catch((e: unknown) => e);
    expect((failed as Error).message).to.equal('boom');
    expect(await mutex.run('v1', async () => 'after a failure')).to.equal('after a failure');
    expect(mutex.size).to.equal(0);
  });
});
