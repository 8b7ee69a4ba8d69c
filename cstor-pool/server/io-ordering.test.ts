import { expect } from 'chai';
import { IoOrdering } from './io-ordering.ts';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('cstor-pool/server/io-ordering', () => {
  it('applies overlapping writes in arrival order and lets disjoint ones run at once', async () => {
    const o = new IoOrdering();
    const log: string[] = [];
    const a = deferred();
    const w1 = o.run('write', 0, 4096, async () => {
      log.push('w1 start');
      await a.promise;
      log.push('w1 end');
    });
    const w2 = o.run('write', 2048, 4096, async () => void log.push('w2'));
    const w3 = o.run('write', 8192, 4096, async () => void log.push('w3'));
    await new Promise((r) => setImmediate(r));
    expect(log).to.deep.equal(['w1 start', 'w3']);
    a.resolve();
    await Promise.all([w1, w2, w3]);
    expect(log).to.deep.equal(['w1 start', 'w3', 'w1 end', 'w2']);
    expect(o.size).to.equal(0);
  });

  it('makes reads wait for earlier overlapping writes, barriers wait for everything', async () => {
    const o = new IoOrdering();
    const log: string[] = [];
    const a = deferred();
    const w = o.run('write', 0, 512, async () => {
      await a.promise;
      log.push('w');
    });
    const r1 = o.run('read', 0, 512, async () => void log.push('r-overlap'));
    const r2 = o.run('read', 512, 512, async () => void log.push('r-disjoint'));
    const b = o.run('barrier', 0, 0, async () => void log.push('snap'));
    const r3 = o.run('read', 4096, 512, async () => void log.push('r-after-barrier'));
    await new Promise((r) => setImmediate(r));
    expect(log).to.deep.equal(['r-disjoint']);
    a.resolve();
    await Promise.all([w, r1, r2, b, r3]);
    expect(log).to.deep.equal(['r-disjoint', 'w', 'r-overlap', 'snap', 'r-after-barrier']);
  });

  it('a staged barrier waits for everything earlier, and holds later requests only until it releases them', async () => {
    const o = new IoOrdering();
    const log: string[] = [];
    const w0 = deferred();
    const cut = deferred();
    const durable = deferred();
    const early = o.run('write', 0, 512, async () => {
      await w0.promise;
      log.push('w-before');
    });
    const snap = o.runStaged(() => {
      log.push('snap start');
      return { released: cut.promise, result: durable.promise.then(() => void log.push('snap durable')) };
    });
    const later = o.run('write', 0, 512, async () => void log.push('w-after'));
    const sync = o.run('flush', 0, 0, async () => void log.push('flush'));
    await new Promise((r) => setImmediate(r));
    expect(log).to.deep.equal([]);
    w0.resolve();
    await new Promise((r) => setImmediate(r));
    expect(log).to.deep.equal(['w-before', 'snap start']);
    cut.resolve();
    await Promise.all([later, sync]);
    expect(log, 'later requests ran before the snapshot was durable').to.deep.equal(['w-before', 'snap start', 'w-after', 'flush']);
    durable.resolve();
    await Promise.all([early, snap]);
    expect(log.at(-1)).to.equal('snap durable');
    // A staged barrier that fails before its cut releases the requests behind it too.
    const failing = o.runStaged(() => ({ released: new Promise<void>(() => {}), result: Promise.reject(new Error('no')) }));
    const behind = o.run('read', 0, 512, async () => 'ran');
    await failing.then(
      () => expect.fail('expected a rejection'),
      (e: unknown) => expect((e as Error).message).to.equal('no'),
    );
    expect(await behind).to.equal('ran');
    await new Promise((r) => setImmediate(r));
    expect(o.size).to.equal(0);
  });

  it('makes a write wait for an earlier overlapping read, never a read for a read', async () => {
    const o = new IoOrdering();
    const log: string[] = [];
    const a = deferred();
    const r1 = o.run('read', 0, 4096, async () => {
      await a.promise;
      log.push('r1');
    });
    const r2 = o.run('read', 0, 4096, async () => void log.push('r2'));
    const w = o.run('write', 1024, 512, async () => void log.push('w'));
    const f = o.run('flush', 0, 0, async () => void log.push('sync'));
    await new Promise((r) => setImmediate(r));
    expect(log).to.deep.equal(['r2']);
    a.resolve();
    await Promise.all([r1, r2, w, f]);
    expect(log).to.deep.equal(['r2', 'r1', 'w', 'sync']);
  });

  it('keeps going after a failed operation', async () => {
    const o = new IoOrdering();
    const w1 = o.run('write', 0, 512, async () => {
      throw new Error('disk on fire');
    });
    const w2 = o.run('write', 0, 512, async () => 'ok');
    await w1.then(
      () => expect.fail('should reject'),
      (e: Error) => expect(e.message).to.equal('disk on fire'),
    );
    expect(await w2).to.equal('ok');
  });
  it('holds the io_seq of a write that has to wait (no checkpoint may claim it), and only then, until it settles', async () => {
    const held: number[] = [];
    const o = new IoOrdering({
      holdSeq: (seq) => {
        held.push(seq);
        return () => held.splice(held.indexOf(seq), 1);
      },
    });
    const a = deferred();
    const r = o.run('read', 0, 4096, () => a.promise);
    const w1 = o.run('write', 8192, 4096, async () => void expect(held).to.deep.equal([]), 10);
    const w2 = o.run('write', 0, 4096, async () => void expect(held, 'held while it runs (and the one behind it)').to.deep.equal([9, 11]), 9);
    const w3 = o.run('write', 0, 4096, () => Promise.reject(new Error('EIO')), 11);
    await w1;
    expect(held, 'the write waiting behind the read, and the one behind it').to.deep.equal([9, 11]);
    a.resolve();
    await Promise.all([r, w2, w3.catch(() => undefined)]);
    await new Promise((res) => setImmediate(res));
    expect(held, 'released once settled, failed or not').to.deep.equal([]);
  });
});
