import { expect } from 'chai';
import { silentLogger } from '../logger.ts';
import { FakeClock, flush } from './fake-clock.ts';
import { FakeListWatch } from './fake-list-watch.ts';
import { Informer } from './informer.ts';
import type { KubeObject, WatchEvent } from './types/meta.ts';

interface Thing extends KubeObject {
  spec: { pool: string; size: number };
}

function thing(name: string, pool = 'p1', size = 1): Thing {
  return { apiVersion: 'test/v1', kind: 'Thing', metadata: { name, namespace: 'ns' }, spec: { pool, size } };
}

function setup(options: { resyncPeriodMs?: number } = {}) {
  const clock = new FakeClock();
  const source = new FakeListWatch<Thing>();
  const events: string[] = [];
  const informer = new Informer<Thing>({
    source,
    name: 'things',
    logger: silentLogger(),
    clock,
    resyncPeriodMs: options.resyncPeriodMs ?? 0,
    backoff: { baseMs: 100, maxMs: 800 },
    watchTimeoutSeconds: 300,
    indexers: { pool: (t) => [t.spec.pool] },
  });
  informer.addHandlers({
    onAdd: (o) => events.push(`add ${o.metadata?.name}`),
    onUpdate: (old, o) => events.push(`update ${o.metadata?.name} ${old.spec.size}->${o.spec.size}`),
    onDelete: (o) => events.push(`delete ${o.metadata?.name}`),
  });
  return { clock, source, events, informer };
}

function cacheState(informer: Informer<Thing>): Record<string, number> {
  return Object.fromEntries(informer.cache.list().map((t) => [`${t.metadata?.namespace}/${t.metadata?.name}`, t.spec.size]));
}

function serverState(source: FakeListWatch<Thing>): Record<string, number> {
  return Object.fromEntries([...source.state()].map(([k, t]) => [k, t.spec.size]));
}

describe('Informer', () => {
  it('lists, syncs, then follows the watch into the cache and handlers', async () => {
    const { source, events, informer } = setup();
    source.put(thing('a'));
    source.put(thing('b'));
    informer.start();
    await informer.waitForSync();
    expect(informer.hasSynced).to.equal(true);
    expect(events).to.deep.equal(['add a', 'add b']);
    await flush();
    source.put(thing('c'));
    source.put(thing('a', 'p1', 2));
    source.remove('ns/b');
    expect(events.slice(2)).to.deep.equal(['add c', 'update a 1->2', 'delete b']);
    expect(cacheState(informer)).to.deep.equal(serverState(source));
    expect(informer.cache.get('ns/a')?.spec.size).to.equal(2);
    await informer.stop();
  });

  it('restarts a broken watch from the last resourceVersion with growing backoff, missing nothing', async () => {
    const { clock, source, events, informer } = setup();
    source.put(thing('a'));
    informer.start();
    await informer.waitForSync();
    await flush();
    expect(source.openWatches).to.equal(1);
    source.put(thing('a', 'p1', 2)); // seen: the watch is healthy, so the first retry is immediate
    source.down = true;
    source.breakWatches();
    source.down = false;
    source.put(thing('b')); // while no watch is open
    await flush();
    expect(source.openWatches).to.equal(1);
    expect(source.watchCalls.at(-1)?.resourceVersion).to.equal('2');
    expect(events).to.deep.equal(['add a', 'update a 1->2', 'add b']);
    expect(source.listCalls, 'no relist needed').to.equal(1);

    // now the server stays down: unhealthy watch attempts back off 100, 200, 400, 800, 800 ms
    source.down = true;
    source.breakWatches();
    const t0 = clock.now();
    const before = source.watchCalls.length;
    await clock.advance(100 + 200 + 400 + 800 + 800 - 1);
    expect(source.watchCalls.length - before).to.equal(5); // immediate + 4 retries
    await clock.advance(1);
    expect(source.watchCalls.length - before).to.equal(6);
    expect(clock.now() - t0).to.equal(2300);
    source.down = false;
    source.put(thing('c'));
    await clock.advance(800);
    expect(source.openWatches).to.equal(1);
    expect(events.at(-1)).to.equal('add c');
    expect(informer.counters.failures).to.be.greaterThan(4);
    await informer.stop();
  });

  it('relists on 410 and diffs the relist into deletes for objects removed while it was not watching', async () => {
    const { clock, source, events, informer } = setup();
    source.put(thing('a'));
    source.put(thing('b'));
    source.put(thing('c'));
    informer.start();
    await informer.waitForSync();
    await flush();
    source.down = true;
    source.breakWatches();
    // while down: b deleted, c updated, d created, then history compacted (resourceVersions expire)
    source.remove('ns/b');
    source.put(thing('c', 'p2', 5));
    source.put(thing('d'));
    source.compact();
    source.down = false;
    await clock.advance(100);
    expect(source.listCalls).to.equal(2);
    expect(events.slice(3).sort()).to.deep.equal(['add d', 'delete b', 'update c 1->5']);
    expect(cacheState(informer)).to.deep.equal(serverState(source));
    expect(informer.cache.byIndex('pool', 'p2').map((t) => t.metadata?.name)).to.deep.equal(['c']);
    expect(informer.cache.byIndex('pool', 'p1').map((t) => t.metadata?.name).sort()).to.deep.equal(['a', 'd']);
    source.remove('ns/a');
    expect(events.at(-1)).to.equal('delete a');
    await informer.stop();
  });

  it('reports an object deleted and re-created under the same name while away as delete then add', async () => {
    const { clock, source, events, informer } = setup();
    source.put({ ...thing('a'), metadata: { name: 'a', namespace: 'ns', uid: 'u1' } });
    informer.start();
    await informer.waitForSync();
    await flush();
    source.down = true;
    source.breakWatches();
    source.remove('ns/a');
    source.put({ ...thing('a', 'p1', 7), metadata: { name: 'a', namespace: 'ns', uid: 'u2' } });
    source.compact();
    source.down = false;
    await clock.advance(100);
    expect(events).to.deep.equal(['add a', 'delete a', 'add a']);
    expect(informer.cache.get('ns/a')?.metadata?.uid).to.equal('u2');
    await informer.stop();
  });

  it('relists when the watch stream carries an ERROR 410 event', async () => {
    const { source, events, informer } = setup();
    source.put(thing('a'));
    informer.start();
    await informer.waitForSync();
    await flush();
    source.sendError(410, 'Expired');
    await flush();
    expect(source.listCalls).to.equal(2);
    expect(source.openWatches).to.equal(1);
    source.put(thing('z'));
    expect(events).to.deep.equal(['add a', 'add z']);
    await informer.stop();
  });

  it('relists every resync period, re-announcing unchanged objects as updates', async () => {
    const { clock, source, events, informer } = setup({ resyncPeriodMs: 60_000 });
    source.put(thing('a'));
    informer.start();
    await informer.waitForSync();
    await flush();
    await clock.advance(60_000);
    expect(source.listCalls).to.equal(2);
    expect(events).to.deep.equal(['add a', 'update a 1->1']);
    expect(source.openWatches).to.equal(1);
    await clock.advance(60_000);
    expect(source.listCalls).to.equal(3);
    await informer.stop();
    expect(source.openWatches).to.equal(0);
  });

  it('rewatches at once after a normal close of a healthy watch', async () => {
    const { clock, source, informer } = setup();
    informer.start();
    await informer.waitForSync();
    await flush();
    await clock.advance(20_000);
    source.closeWatches();
    await flush();
    expect(source.openWatches).to.equal(1);
    expect(source.watchCalls).to.have.length(2);
    await informer.stop();
  });

  it('keeps retrying the first list while the server is down, then syncs', async () => {
    const { clock, source, informer } = setup();
    source.down = true;
    source.put(thing('a'));
    informer.start();
    await clock.advance(100 + 200 + 400);
    expect(source.listCalls).to.equal(4);
    expect(informer.hasSynced).to.equal(false);
    source.down = false;
    await clock.advance(800);
    expect(informer.hasSynced).to.equal(true);
    expect(informer.cache.size).to.equal(1);
    await informer.stop();
  });

  it('rejects waitForSync when stopped before syncing, and a throwing handler does not stop it', async () => {
    const { source, informer } = setup();
    source.down = true;
    informer.start();
    const wait = informer.waitForSync();
    await informer.stop();
    let err: unknown;
    await wait.catch((e: unknown) => (err = e));
    expect(err).to.have.property('code', 'aborted');

    const s2 = setup();
    s2.informer.addHandlers({ onAdd: () => { throw new Error('handler bug'); } });
    s2.source.put(thing('a'));
    s2.informer.start();
    await s2.informer.waitForSync();
    await flush();
    s2.source.put(thing('b'));
    expect(s2.events).to.deep.equal(['add a', 'add b']);
    await s2.informer.stop();
  });

  it('stop() does not wait for a list or a watch request the server never answers', async () => {
    for (const hang of ['list', 'watch'] as const) {
      const { source, informer } = setup();
      source.put(thing('a'));
      let lateWatchAborted = false;
      let answer: () => void = () => {};
      if (hang === 'list') source.list = () => new Promise(() => {});
      else {
        const real = source.watch.bind(source);
        source.watch = (options, onEvent) =>
          new Promise((resolve) => {
            answer = () =>
              void real(options, onEvent).then((h) =>
                resolve({
                  done: h.done,
                  abort: () => {
                    lateWatchAborted = true;
                    h.abort();
                  },
                }),
              );
          });
      }
      informer.start();
      await flush();
      const stopped = await Promise.race([informer.stop().then(() => 'stopped'), new Promise((r) => setTimeout(() => r('hung'), 500))]);
      expect(stopped, `stop() with a hanging ${hang}`).to.equal('stopped');
      if (hang === 'watch') {
        answer();
        await flush();
        expect(lateWatchAborted, 'the watch that opened after stop() was ended').to.equal(true);
        expect(source.openWatches).to.equal(0);
      }
    }
  });

  it('replays to handlers exactly the server history under random watch breaks, closes, 410s and relists', async () => {
    let seed = 5;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let round = 0; round < 20; round++) {
      const { clock, source, informer } = setup({ resyncPeriodMs: round % 2 === 0 ? 3_000 : 0 });
      // A model of what the handlers said: every event must be consistent with it.
      const model = new Map<string, number>();
      const problems: string[] = [];
      informer.addHandlers({
        onAdd: (o) => {
          const k = `ns/${o.metadata?.name}`;
          if (model.has(k)) problems.push(`add of present ${k}`);
          model.set(k, o.spec.size);
        },
        onUpdate: (old, o) => {
          const k = `ns/${o.metadata?.name}`;
          if (model.get(k) !== old.spec.size) problems.push(`update of ${k} from ${old.spec.size}, handlers knew ${model.get(k)}`);
          model.set(k, o.spec.size);
        },
        onDelete: (o) => {
          const k = `ns/${o.metadata?.name}`;
          if (!model.delete(k)) problems.push(`delete of absent ${k}`);
        },
      });
      informer.start();
      await informer.waitForSync();
      for (let step = 0; step < 60; step++) {
        const r = rnd();
        const name = `o${Math.floor(rnd() * 6)}`;
        if (r < 0.45) source.put(thing(name, 'p1', Math.floor(rnd() * 1000)));
        else if (r < 0.65) {
          if (source.state().has(`ns/${name}`)) source.remove(`ns/${name}`);
        } else if (r < 0.72) source.breakWatches();
        else if (r < 0.78) source.closeWatches();
        else if (r < 0.84) {
          source.compact();
          source.breakWatches();
        } else if (r < 0.88) source.sendError(410, 'Expired');
        else if (r < 0.92) source.down = !source.down;
        else await clock.advance(Math.floor(rnd() * 2_000));
      }
      source.down = false;
      source.breakWatches();
      await clock.advance(5_000);
      await clock.advance(5_000);
      expect(problems, `round ${round}`).to.deep.equal([]);
      expect(Object.fromEntries(model), `round ${round}: handlers end where the server is`).to.deep.equal(serverState(source));
      expect(cacheState(informer)).to.deep.equal(serverState(source));
      await informer.stop();
    }
  });

  it('takes the resourceVersion of a BOOKMARK (no handler call) and rewatches from it', async () => {
    const { clock, source, events, informer } = setup();
    source.put(thing('a'));
    let send: ((e: WatchEvent<Thing>) => void) | undefined;
    const real = source.watch.bind(source);
    source.watch = (options, onEvent) => {
      send = onEvent;
      return real(options, onEvent);
    };
    informer.start();
    await informer.waitForSync();
    await flush();
    expect(source.watchCalls.at(-1)?.allowWatchBookmarks).to.equal(true);
    // Other objects (filtered out by a selector, say) moved the server on to 1000.
    send!({ type: 'BOOKMARK', object: { ...thing('ignored'), metadata: { resourceVersion: '1000' } } as Thing });
    expect(informer.resourceVersion).to.equal('1000');
    expect(events).to.deep.equal(['add a']);
    expect(informer.cache.size).to.equal(1);
    source.breakWatches();
    await clock.advance(10);
    expect(source.watchCalls.at(-1)?.resourceVersion).to.equal('1000');
    await informer.stop();
  });
});
