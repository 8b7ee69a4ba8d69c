// The engine over the fakes with small templates of the tests' own: rollback, load-time refusal,
// run-time reading of edited templates, waits, when/forEach/stopIf.
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { CstorError } from '../../lib/errors.ts';
import { silentLogger } from '../../lib/logger.ts';
import { operationMetrics } from '../../lib/metrics.ts';
import { CasEngine } from '../../maya-apiserver/cas/engine.ts';
import { FakeClock, FakeKubeObjects, FakeTargetMgmt } from '../../maya-apiserver/cas/fakes.ts';
import type { Json, JsonObject, KubeObject } from '../../maya-apiserver/cas/ports.ts';
import { parseRunTask } from '../../maya-apiserver/cas/run-task.ts';
import { rejection } from '../support/rejection.ts';

const ns = 'openebs';

function template(name: string, runTasks: string[], output: Json = { ok: true }): KubeObject {
  return { apiVersion: 'openebs.io/v1alpha1', kind: 'CASTemplate', metadata: { name }, spec: { runTasks, output } };
}

function task(name: string, spec: JsonObject): KubeObject {
  return { apiVersion: 'openebs.io/v1alpha1', kind: 'RunTask', metadata: { name, namespace: ns }, spec };
}

function configMap(nameExpr: string, extra: JsonObject = {}): JsonObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: nameExpr, namespace: ns }, data: { v: '1' }, ...extra };
}

function setup(): { kube: FakeKubeObjects; http: FakeTargetMgmt; clock: FakeClock; engine: CasEngine } {
  const clock = new FakeClock();
  const kube = new FakeKubeObjects(clock);
  const http = new FakeTargetMgmt();
  const engine = new CasEngine({ kube, http, clock, logger: silentLogger(), namespace: ns, env: { target: '127.0.0.1:9500' } });
  return { kube, http, clock, engine };
}

describe('CAS engine', () => {
  it('rolls back what the flow created, in reverse order, when a task fails mid-flow', async () => {
    const { kube, http, engine } = setup();
    http.addVolume('v1');
    kube.seed({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'pre-existing', namespace: ns }, data: {} });
    kube.seed(
      template('t', ['t-first', 't-many', 't-snap', 't-fail', 't-never']),
      task('t-first', { id: 'first', create: { object: configMap('{{ request.name }}-first') } }),
      task('t-many', { id: 'many', forEach: 'request.items', create: { object: configMap('{{ request.name }}-{{ item }}') } }),
      task('t-snap', {
        id: 'snap',
        http: {
          method: 'POST',
          url: 'http://{{ env.target }}/v1/volumes/v1/snapshots',
          body: { name: 's1' },
          undo: { method: 'DELETE', url: 'http://{{ env.target }}/v1/volumes/v1/snapshots/s1' },
        },
      }),
      task('t-fail', { id: 'cvr-create', create: { object: configMap('pre-existing') } }),
      task('t-never', { id: 'never', create: { object: configMap('never') } }),
    );
    const before = kube.dump();
    const err = await rejection(engine.run('t', { request: { name: 'x', items: ['a', 'b'] } }));
    expect(err.code).to.equal('already_exists');
    expect(err.message).to.equal('task cvr-create (4 of 5) failed: ConfigMap openebs/pre-existing already exists');
    expect(err.details).to.include({ task: 'cvr-create', taskIndex: 4, runTask: 't-fail', casTemplate: 't' });
    // Everything the run created is gone, the pre-existing object is untouched, nothing else ran.
    const after = kube.dump();
    expect(after.map((o) => o.metadata.name)).to.deep.equal(before.map((o) => o.metadata.name));
    expect(after.find((o) => o.metadata.name === 'pre-existing')).to.deep.equal(before.find((o) => o.metadata.name === 'pre-existing'));
    expect(http.snapshotsOf('v1')).to.deep.equal([]);
    const deletes = kube.calls.filter((c) => c.verb === 'delete').map((c) => c.name);
    expect(deletes).to.deep.equal(['x-b', 'x-a', 'x-first']);
    expect(http.calls.map((c) => c.method)).to.deep.equal(['POST', 'DELETE']);
    expect(kube.calls.some((c) => c.name === 'never')).to.equal(false);
  });

  it('reports a rollback step that fails, with the original cause and code', async () => {
    const { kube, engine } = setup();
    kube.seed(
      template('t', ['t-a', 't-b']),
      task('t-a', { id: 'a', create: { object: configMap('a') } }),
      task('t-b', { id: 'b', assert: { that: 'false', code: 'conflict', message: 'b says no to {{ a.metadata.name }}' } }),
    );
    kube.failNext('delete', 'ConfigMap', new CstorError('unavailable', 'api server down'));
    const err = await rejection(engine.run('t', { request: {} }));
    expect(err.code).to.equal('conflict');
    expect(err.message).to.equal('task b (2 of 2) failed: b says no to a; rollback incomplete: delete ConfigMap openebs/a: api server down');
    expect(err.details['rollbackFailures']).to.deep.equal(['delete ConfigMap openebs/a: api server down']);
  });

  it('an expression that fails at run time names the task and field', async () => {
    const { kube, engine } = setup();
    kube.seed(template('t', ['t-a']), task('t-a', { id: 'a', create: { object: configMap('{{ request.nope }}') } }));
    const err = await rejection(engine.run('t', { request: {} }));
    expect(err.code).to.equal('internal');
    expect(err.message).to.match(/^task a \(1 of 1\) failed: spec\.create\.object\.metadata\.name: \{\{ request\.nope \}\} has no value/);
  });

  it('refuses on load a template with an unknown task type, a bad expression, an unknown name', async () => {
    const { kube, engine } = setup();
    kube.seed(template('t1', ['bad-type']), task('bad-type', { id: 'frob', frobnicate: { x: 1 } }));
    const e1 = await rejection(engine.run('t1', { request: {} }));
    expect(e1.code).to.equal('internal');
    expect(e1.message).to.equal(
      'RunTask bad-type (task frob) is invalid: spec: needs exactly one action (get, list, create, patch, delete, http, wait, assert, set); unknown task type "frobnicate"',
    );
    kube.seed(
      template('t2', ['bad-expr']),
      task('bad-expr', { id: 'volume', get: { apiVersion: 'v1', kind: 'ConfigMap', name: '{{ request.metadata.name + }}' } }),
    );
    const e2 = await rejection(engine.run('t2', { request: {} }));
    expect(e2.message).to.equal(
      'RunTask bad-expr (task volume) is invalid: spec.get.name: bad expression "request.metadata.name +": at column 24: unexpected end of expression',
    );
    kube.seed(
      template('t3', ['ok-get', 'typo']),
      task('ok-get', { id: 'volume', get: { apiVersion: 'v1', kind: 'ConfigMap', name: 'x' } }),
      task('typo', { id: 'check', assert: { that: 'volum.status.phase == "Healthy"', code: 'not_ready', message: 'no' } }),
    );
    const e3 = await rejection(engine.run('t3', { request: {} }));
    expect(e3.message).to.equal(
      'CASTemplate t3 is invalid: task check (2 of 2, RunTask typo): spec.assert.that: unknown name "volum"; known here: config, env, request, template, volume',
    );
    expect(kube.calls.filter((c) => c.kind === 'ConfigMap')).to.deep.equal([]);
  });

  it('lists every problem of a RunTask with its field', () => {
    const run = (spec: JsonObject): string => {
      try {
        parseRunTask(task('r', spec));
      } catch (err) {
        return (err as Error).message;
      }
      return expect.fail('parsed');
    };
    expect(run({ id: 'a', get: { kind: 'X', nmae: 'y' } })).to.equal(
      'RunTask r (task a) is invalid: spec.get.apiVersion: is required; spec.get.name: is required; spec.get.nmae: unknown field',
    );
    expect(run({ id: 'a', get: { apiVersion: 'v1', kind: 'X', name: 'y' }, set: { value: 1 } })).to.equal(
      'RunTask r (task a) is invalid: spec: needs exactly one action, found get and set',
    );
    expect(run({ get: { apiVersion: 'v1', kind: 'X', name: 'y' } })).to.equal('RunTask r is invalid: spec.id: must be a name like cvr-create (letters, digits, \'-\', \'_\'), got null');
    expect(run({ id: 'a', assert: { that: 'true', code: 'nope', message: 'm' } })).to.match(/spec\.assert\.code: must be one of invalid, not_found,/);
    expect(run({ id: 'a', wait: { apiVersion: 'v1', kind: 'X', name: 'y', until: 'object.ok', message: 'm', timeoutSeconds: -1 } })).to.equal(
      'RunTask r (task a) is invalid: spec.wait.timeoutSeconds: must be a number from 0 to 86400, got -1',
    );
    expect(run({ id: 'a', set: { value: 1 }, messages: { not_fund: 'x' } })).to.equal('RunTask r (task a) is invalid: spec.messages.not_fund: unknown field');
    expect(run({ id: 'a', http: { method: 'GET', url: 'http://x', statusCodes: { '404': 'gone-away', abc: 'invalid' } } })).to.equal(
      'RunTask r (task a) is invalid: spec.http.statusCodes.404: must be one of invalid, not_found, already_exists, conflict, not_ready, gone, unauthorized, too_large, protocol, io, timeout, unavailable, aborted, internal; spec.http.statusCodes.abc: is not an HTTP status',
    );
    expect(run({ id: 'a', http: { method: 'FETCH', url: 'http://x' } })).to.equal(
      'RunTask r (task a) is invalid: spec.http.method: must be one of GET, POST, PUT, PATCH, DELETE, got "FETCH"',
    );
  });

  it('reads templates at run time: editing a RunTask or CASTemplate changes the next run', async () => {
    const { kube, engine } = setup();
    kube.seed(template('t', ['t-a'], '{{ a }}'), task('t-a', { id: 'a', set: { value: 'first' } }));
    expect(await engine.run('t', { request: {} })).to.equal('first');
    await kube.patch({ apiVersion: 'openebs.io/v1alpha1', kind: 'RunTask', namespace: ns, name: 't-a' }, { spec: { set: { value: 'second' } } });
    expect(await engine.run('t', { request: {} })).to.equal('second');
    kube.seed(task('t-b', { id: 'b', set: { value: '{{ a }}+b' } }));
    await kube.patch({ apiVersion: 'openebs.io/v1alpha1', kind: 'CASTemplate', name: 't' }, { spec: { runTasks: ['t-a', 't-b'], output: '{{ b }}' } });
    expect(await engine.run('t', { request: {} })).to.equal('second+b');
    // A broken edit is refused on the next run, and fixing it works again.
    await kube.patch({ apiVersion: 'openebs.io/v1alpha1', kind: 'RunTask', namespace: ns, name: 't-b' }, { spec: { set: { value: '{{ a + }}' } } });
    expect((await rejection(engine.run('t', { request: {} }))).message).to.match(/^RunTask t-b \(task b\) is invalid: spec\.set\.value: bad expression/);
  });

  it('when skips a task (saved as null), stopIf ends the flow early, forEach collects results', async () => {
    const { kube, engine } = setup();
    kube.seed(
      template('t', ['t-a', 't-b', 't-c', 't-d'], { a: '{{ a }}', b: '{{ b }}', d: '{{ default(d, "not run") }}' }),
      task('t-a', { id: 'a', forEach: 'request.xs', as: 'x', set: { value: '{{ x + 1 }}' } }),
      task('t-b', { id: 'b', when: 'len(a) > 5', set: { value: 'never' } }),
      task('t-c', { id: 'c', set: { value: 'stop' }, stopIf: 'c == "stop"' }),
      task('t-d', { id: 'd', set: { value: 'ran' } }),
    );
    expect(await engine.run('t', { request: { xs: [1, 2, 3] } })).to.deep.equal({ a: [2, 3, 4], b: null, d: 'not run' });
  });

  it('wait polls with backoff until the condition holds, fails fast on failIf, times out with its message', async () => {
    const { kube, engine, clock } = setup();
    const waitSpec = (timeoutSeconds: number): JsonObject => ({
      id: 'ready',
      wait: {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        namespace: ns,
        name: 'w',
        until: 'object.data.phase == "Healthy"',
        failIf: { that: 'object.data.phase == "Error"', code: 'io', message: 'w went Error' },
        timeoutSeconds,
        intervalMs: 100,
        maxIntervalMs: 400,
        message: 'w is not Healthy (phase {{ object.data.phase }})',
      },
    });
    kube.seed({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'w', namespace: ns }, data: { phase: 'Init' } });
    kube.seed(template('t', ['t-w'], '{{ ready.data.phase }}'), task('t-w', waitSpec(5)));
    const t0 = clock.now();
    const err = await rejection(engine.run('t', { request: {} }));
    expect(err.code).to.equal('timeout');
    expect(err.message).to.equal('task ready (1 of 1) failed: w is not Healthy (phase Init) (waited 5s)');
    expect(clock.now() - t0).to.equal(5000);
    // A controller (a reactor on the fake clock's time) turns it Healthy after 1.5 s.
    const start = clock.now();
    let polls = 0;
    const gets = kube.calls.length;
    const healthyAt = start + 1500;
    const realGet = kube.get.bind(kube);
    kube.get = async (ref) => {
      polls++;
      if (clock.now() >= healthyAt) kube.applyPatch(ref, { data: { phase: 'Healthy' } });
      return realGet(ref);
    };
    expect(await engine.run('t', { request: {} })).to.equal('Healthy');
    expect(clock.now() - start).to.equal(100 + 200 + 400 + 400 + 400);
    expect(polls).to.be.greaterThan(3);
    expect(kube.calls.length).to.be.greaterThan(gets);
    kube.get = realGet;
    kube.applyPatch({ apiVersion: 'v1', kind: 'ConfigMap', namespace: ns, name: 'w' }, { data: { phase: 'Error' } });
    const e2 = await rejection(engine.run('t', { request: {} }));
    expect(e2.code).to.equal('io');
    expect(e2.message).to.equal('task ready (1 of 1) failed: w went Error');
  });

  it('get optional answers null; delete of a missing object succeeds; adopt takes an existing object', async () => {
    const { kube, engine } = setup();
    kube.seed({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'there', namespace: ns }, data: { v: 'old' } });
    kube.seed(
      template('t', ['t-g', 't-d', 't-c'], { g: '{{ g }}', d: '{{ d }}', c: '{{ c.data.v }}' }),
      task('t-g', { id: 'g', get: { apiVersion: 'v1', kind: 'ConfigMap', namespace: ns, name: 'missing', optional: true } }),
      task('t-d', { id: 'd', delete: { apiVersion: 'v1', kind: 'ConfigMap', namespace: ns, name: 'missing' } }),
      task('t-c', { id: 'c', create: { object: configMap('there'), ifExists: 'adopt' } }),
    );
    expect(await engine.run('t', { request: {} })).to.deep.equal({ g: null, d: false, c: 'old' });
  });

  it('a run cancelled mid-flow stops before the next task and rolls back', async () => {
    const { kube, engine } = setup();
    const controller = new AbortController();
    kube.seed(
      template('t', ['t-a', 't-b']),
      task('t-a', { id: 'a', create: { object: configMap('a') } }),
      task('t-b', { id: 'b', create: { object: configMap('b') } }),
    );
    kube.reactors.push(({ verb, object }) => {
      if (verb === 'create' && object.metadata.name === 'a') controller.abort();
    });
    const err = await rejection(engine.run('t', { request: {}, signal: controller.signal }));
    expect(err.code).to.equal('aborted');
    expect(err.message).to.equal('task b (2 of 2) failed: the run was cancelled');
    expect(kube.all('ConfigMap')).to.deep.equal([]);
  });

  it('times each run by template and outcome when given metrics', async () => {
    const kube = new FakeKubeObjects();
    const registry = new Registry();
    const engine = new CasEngine({ kube, http: new FakeTargetMgmt(), logger: silentLogger(), namespace: ns, metrics: operationMetrics(registry, 'mapi_cas') });
    kube.seed(template('t', ['t-a'], '{{ a }}'), task('t-a', { id: 'a', assert: { that: 'request.ok', code: 'invalid', message: 'not ok' } }));
    await engine.run('t', { request: { ok: true } });
    await rejection(engine.run('t', { request: { ok: false } }));
    const text = await registry.metrics();
    expect(text).to.match(/mapi_cas_operation_total_seconds_count\{operation_name="t",operation_status="success"\} 1/);
    expect(text).to.match(/mapi_cas_operation_total_seconds_count\{operation_name="t",operation_status="failure"\} 1/);
  });

  it('a missing template or RunTask is named', async () => {
    const { kube, engine } = setup();
    expect((await rejection(engine.run('nope', { request: {} }))).message).to.equal(
      'CASTemplate nope not found: are the CAS templates installed (deploy/cas-templates)?',
    );
    kube.seed(template('t', ['gone']));
    expect((await rejection(engine.run('t', { request: {} }))).message).to.equal(
      'RunTask openebs/gone (named by CASTemplate t) not found: are the CAS templates installed (deploy/cas-templates)?',
    );
  });
});
