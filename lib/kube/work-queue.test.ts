import { expect } from 'chai';
import { Registry } from 'prom-client';
import { silentLogger } from '../logger.ts';
import { FakeClock, flush } from './fake-clock.ts';
import { promQueueMetrics } from './queue-metrics.ts';
import { runWorkers } from './run-workers.ts';
import { WorkQueue } from './work-queue.ts';

describe('WorkQueue', () => {
  it('holds a waiting key once however often it is added, in first-added order', async () => {
    const q = new WorkQueue({ name: 't', clock: new FakeClock() });
    q.add('ns/a');
    q.add('ns/b');
    q.add('ns/a');
    q.add('ns/a');
    expect(q.length).to.equal(2);
    expect(await q.get()).to.equal('ns/a');
    expect(await q.get()).to.equal('ns/b');
    expect(q.length).to.equal(0);
  });

  it('never hands a key being processed to a second worker, and processes it again after done()', async () => {
    const q = new WorkQueue({ name: 't', clock: new FakeClock() });
    q.add('ns/a');
    const first = await q.get();
    expect(first).to.equal('ns/a');
    q.add('ns/a'); // re-added while processing
    q.add('ns/a');
    expect(q.length, 'not ready while processing').to.equal(0);
    let second: string | undefined = 'pending';
    void q.get().then((k) => (second = k));
    await flush();
    expect(second, 'second worker still waiting').to.equal('pending');
    q.done('ns/a');
    await flush();
    expect(second).to.equal('ns/a');
    q.done('ns/a');
    expect(q.length).to.equal(0);
  });

  it('grows the per-key backoff exponentially up to the cap, and forget() resets it', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ name: 't', clock, backoff: { baseMs: 10, maxMs: 100 } });
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const before = clock.now();
      q.addRateLimited('ns/a');
      expect(q.length).to.equal(0);
      // find when it becomes ready, 1 ms at a time
      let waited = 0;
      while (q.length === 0 && waited < 1000) {
        await clock.advance(1);
        waited++;
      }
      delays.push(clock.now() - before);
      expect(await q.get()).to.equal('ns/a');
      q.done('ns/a');
    }
    expect(delays).to.deep.equal([10, 20, 40, 80, 100, 100]);
    expect(q.numRequeues('ns/a')).to.equal(6);
    q.forget('ns/a');
    expect(q.numRequeues('ns/a')).to.equal(0);
    q.addRateLimited('ns/a');
    await clock.advance(9);
    expect(q.length).to.equal(0);
    await clock.advance(1);
    expect(q.length).to.equal(1);
  });

  it('keeps backoff per key: one failing key does not slow another', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ name: 't', clock, backoff: { baseMs: 10, maxMs: 1000 } });
    for (let i = 0; i < 4; i++) {
      q.addRateLimited('ns/bad');
      await clock.advance(1000);
      expect(await q.get()).to.equal('ns/bad');
      q.done('ns/bad');
    }
    q.addRateLimited('ns/bad'); // 160 ms
    q.addRateLimited('ns/good'); // 10 ms
    await clock.advance(10);
    expect(q.length).to.equal(1);
    expect(await q.get()).to.equal('ns/good');
    await clock.advance(150);
    expect(await q.get()).to.equal('ns/bad');
  });

  it('addAfter delays a key, the earliest time wins, and a plain add is not held back', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ name: 't', clock });
    q.addAfter('ns/a', 1000);
    q.addAfter('ns/a', 500);
    q.addAfter('ns/a', 2000);
    expect(q.delayedCount).to.equal(1);
    await clock.advance(499);
    expect(q.length).to.equal(0);
    await clock.advance(1);
    expect(q.length).to.equal(1);
    q.addAfter('ns/b', 100);
    q.add('ns/b');
    expect(q.length).to.equal(2);
    q.addAfter('ns/c', 0);
    expect(q.length).to.equal(3);
  });

  it('shutDown releases waiting workers and drops delayed keys', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ name: 't', clock });
    const waiting = q.get();
    q.addAfter('ns/a', 100);
    q.shutDown();
    expect(await waiting).to.equal(undefined);
    expect(clock.pending).to.equal(0);
    q.add('ns/b');
    expect(await q.get()).to.equal(undefined);
  });

  it('records depth, adds, retries and durations in the registry, sharing metrics between queues', async () => {
    const registry = new Registry();
    const clock = new FakeClock();
    const q1 = new WorkQueue({ name: 'one', clock, metrics: promQueueMetrics(registry, 'one') });
    const q2 = new WorkQueue({ name: 'two', clock, metrics: promQueueMetrics(registry, 'two') });
    q1.add('a');
    q1.add('b');
    q1.add('a');
    q2.addRateLimited('x');
    const text = await registry.metrics();
    expect(text).to.match(/workqueue_depth\{name="one"\} 2/);
    expect(text).to.match(/workqueue_adds_total\{name="one"\} 2/);
    expect(text).to.match(/workqueue_retries_total\{name="two"\} 1/);
  });
});

describe('WorkQueue under random load', () => {
  it('never hands one key to two workers, and every add is followed by a processing that starts after it', async () => {
    let seed = 42;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const clock = new FakeClock();
    const q = new WorkQueue({ name: 'random', clock, backoff: { baseMs: 10, maxMs: 200 } });
    const keys = ['a', 'b', 'c', 'd'];
    /** Per key: sequence number of its last add (any kind that will deliver it), and of the last processing start. */
    let tick = 0;
    const lastAdd = new Map<string, number>();
    const lastStart = new Map<string, number>();
    const held = new Map<number, string>(); // worker → key
    const problems: string[] = [];
    const take = async (w: number): Promise<void> => {
      if (q.length === 0) return; // get() would wait (and a waiting get takes the next key)
      const key = await q.get();
      if (key === undefined) return;
      if ([...held.values()].includes(key)) problems.push(`${key} handed out twice`);
      held.set(w, key);
      lastStart.set(key, ++tick);
    };
    for (let step = 0; step < 3000; step++) {
      const r = rnd();
      const key = keys[Math.floor(rnd() * keys.length)]!;
      const w = Math.floor(rnd() * 3);
      if (r < 0.3) {
        q.add(key);
        lastAdd.set(key, ++tick);
      } else if (r < 0.4) {
        q.addAfter(key, Math.floor(rnd() * 50));
      } else if (r < 0.7) {
        if (!held.has(w)) await take(w);
      } else if (r < 0.9) {
        const k = held.get(w);
        if (k !== undefined) {
          if (rnd() < 0.3) q.addRateLimited(k);
          else q.forget(k);
          held.delete(w);
          q.done(k);
        }
      } else await clock.advance(Math.floor(rnd() * 100));
    }
    // Drain: finish what is held, then take and finish until nothing is left (delayed keys included).
    for (let round = 0; round < 200; round++) {
      for (const [w, k] of [...held]) {
        held.delete(w);
        q.forget(k);
        q.done(k);
      }
      await clock.advance(1_000);
      await take(0);
      if (!held.has(0) && q.length === 0 && q.delayedCount === 0) break;
    }
    expect(problems).to.deep.equal([]);
    for (const [k, added] of lastAdd) expect(lastStart.get(k) ?? 0, `key ${k} added after its last processing began`).to.be.above(added);
    q.shutDown();
  });
});

describe('runWorkers', () => {
  it('retries a failing key with growing backoff, and polls a requeueAfter key without counting failures', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ name: 't', clock, backoff: { baseMs: 100, maxMs: 10_000 } });
    const calls: { key: string; at: number }[] = [];
    let failuresLeft = 3;
    const done = runWorkers(
      q,
      async (key) => {
        calls.push({ key, at: clock.now() });
        if (key === 'ns/fail' && failuresLeft-- > 0) throw new Error('boom');
        if (key === 'ns/poll') return { requeueAfter: 1000 };
        return undefined;
      },
      { workers: 2, logger: silentLogger(), clock },
    );
    const t0 = clock.now();
    q.add('ns/fail');
    q.add('ns/poll');
    await clock.advance(3500);
    const fail = calls.filter((c) => c.key === 'ns/fail').map((c) => c.at - t0);
    const poll = calls.filter((c) => c.key === 'ns/poll').map((c) => c.at - t0);
    expect(fail).to.deep.equal([0, 100, 300, 700]); // 100, 200, 400 ms backoff, then success
    expect(q.numRequeues('ns/fail'), 'success forgets').to.equal(0);
    expect(poll).to.deep.equal([0, 1000, 2000, 3000]);
    expect(q.numRequeues('ns/poll'), 'polling is not a failure').to.equal(0);
    q.shutDown();
    await done;
  });

  it('runs different keys in parallel but never one key twice at once', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ name: 't', clock });
    const active = new Set<string>();
    let maxParallel = 0;
    let overlapSameKey = false;
    const seen: string[] = [];
    const done = runWorkers(
      q,
      async (key) => {
        if (active.has(key)) overlapSameKey = true;
        active.add(key);
        maxParallel = Math.max(maxParallel, active.size);
        seen.push(key);
        await new Promise<void>((r) => clock.setTimer(r, 50));
        active.delete(key);
      },
      { workers: 4, logger: silentLogger(), clock },
    );
    q.add('ns/a');
    q.add('ns/b');
    q.add('ns/c');
    await flush();
    q.add('ns/a'); // while a is processing
    q.add('ns/a');
    await clock.advance(200);
    expect(overlapSameKey).to.equal(false);
    expect(maxParallel).to.equal(3);
    expect(seen.filter((k) => k === 'ns/a')).to.have.length(2);
    q.shutDown();
    await done;
  });
});
