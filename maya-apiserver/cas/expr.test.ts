import { expect } from 'chai';
import { evaluate, ExprError, parseExpr, type Value } from './expr.ts';
import { createFunctions, functionNames, quantityBytes } from './functions.ts';
import { FakeClock } from './fakes.ts';
import type { Json } from './ports.ts';
import { compileValue, renderValue } from './template-value.ts';

const clock = new FakeClock(Date.parse('2026-01-02T03:04:05Z'));
const functions = createFunctions({ clock, uuid: () => 'u-1' });
const vars = new Map<string, Json>([
  ['request', { metadata: { name: 'pvc-1', labels: { 'openebs.io/storageclass': 'fast' } }, spec: { capacity: '5G' } }],
  ['pools', [
    { metadata: { name: 'p1' }, status: { phase: 'Online' } },
    { metadata: { name: 'p2' }, status: { phase: 'Offline' } },
    { metadata: { name: 'p3' }, status: { phase: 'Online' } },
    { metadata: { name: 'p4' }, status: { phase: 'Online' } },
  ]],
  ['cvrs', [
    { metadata: { labels: { 'cstorpool.openebs.io/name': 'p1' } } },
    { metadata: { labels: { 'cstorpool.openebs.io/name': 'p1' } } },
    { metadata: { labels: { 'cstorpool.openebs.io/name': 'p3' } } },
  ]],
  ['n', 3],
]);

function ev(src: string): Value {
  return evaluate(parseExpr(src, functionNames), { vars, functions });
}

function parseError(src: string): string {
  try {
    parseExpr(src, functionNames);
  } catch (err) {
    expect(err).to.be.instanceOf(ExprError);
    return (err as Error).message;
  }
  return expect.fail(`"${src}" parsed`);
}

describe('CAS expressions', () => {
  it('reads paths, brackets and list indexes', () => {
    expect(ev('request.metadata.name')).to.equal('pvc-1');
    expect(ev('request.metadata.labels["openebs.io/storageclass"]')).to.equal('fast');
    expect(ev("pools[1].metadata.name")).to.equal('p2');
    expect(ev('request.spec.missing.deeper')).to.equal(undefined);
    expect(ev('nothing')).to.equal(undefined);
  });

  it('never reaches prototypes', () => {
    expect(ev('request.constructor')).to.equal(undefined);
    expect(ev('request["__proto__"]')).to.equal(undefined);
    expect(ev('request.toString')).to.equal(undefined);
  });

  it('compares, combines and calls functions', () => {
    expect(ev('n == 3 && !(n > 3) || false')).to.equal(true);
    expect(ev('request.metadata.name + "-" + "p1"')).to.equal('pvc-1-p1');
    expect(ev('n + 1')).to.equal(4);
    expect(ev('default(request.spec.replicas, 3)')).to.equal(3);
    expect(ev('join(pluck(pools, "metadata.name"), ",")')).to.equal('p1,p2,p3,p4');
    expect(ev('lower("ABC") + upper("x")')).to.equal('abcX');
    expect(ev('len(pools)')).to.equal(4);
    expect(ev('contains(["a", "b"], "b")')).to.equal(true);
    expect(ev('pluck(where(pools, "status.phase", "Online"), ["metadata", "name"])')).to.deep.equal(['p1', 'p3', 'p4']);
    expect(ev('bytes("5G") < bytes("5Gi")')).to.equal(true);
    expect(ev('quorum(3)')).to.equal(2);
    expect(ev('int("42")')).to.equal(42);
    expect(ev('now()')).to.equal('2026-01-02T03:04:05.000Z');
    expect(ev('uuid()')).to.equal('u-1');
    const a = ev('unixNanos()') as string;
    const b = ev('unixNanos()') as string;
    expect(BigInt(b) > BigInt(a)).to.equal(true);
    expect(a).to.equal(`${Date.parse('2026-01-02T03:04:05Z')}000000`);
  });

  it('pickPools picks Online pools holding the fewest replicas', () => {
    expect(ev('pluck(pickPools(pools, cvrs, 2), "metadata.name")')).to.deep.equal(['p4', 'p3']);
    expect(ev('pluck(pickPools(pools, cvrs, 5), "metadata.name")')).to.deep.equal(['p4', 'p3', 'p1']);
    // A volume's own replicas put their pools first, and do not count as load.
    const withOwn = new Map(vars);
    withOwn.set('mine', [{ metadata: { labels: { 'cstorpool.openebs.io/name': 'p1', 'openebs.io/persistent-volume': 'v' } } }, { metadata: { labels: { 'cstorpool.openebs.io/name': 'p1' } } }]);
    const pick = evaluate(parseExpr('pluck(pickPools(pools, mine, 2, "v"), "metadata.name")', functionNames), { vars: withOwn, functions });
    expect(pick).to.deep.equal(['p1', 'p3']);
  });

  it('refuses bad expressions with the column', () => {
    expect(parseError('request.metadata.name +')).to.equal('at column 24: unexpected end of expression');
    expect(parseError('a..b')).to.equal("at column 3: expected a field name after '.', found '.'");
    expect(parseError('frob(1)')).to.match(/^at column 1: unknown function frob\(\); known: bytes, casConfig, contains, default/);
    expect(parseError('"abc')).to.equal('at column 1: unterminated string');
    expect(parseError('a # b')).to.equal("at column 3: unexpected character '#'");
    expect(parseError('a b')).to.equal("at column 3: unexpected 'b'");
    expect(parseError('f(a')).to.match(/unknown function f\(\)/);
    expect(parseError('default(a')).to.equal("at column 10: expected ')' to close the arguments of default(), found end of expression");
  });

  it('fails evaluation precisely', () => {
    expect(() => ev('n < "x"')).to.throw(ExprError, 'n < "x": cannot compare number < string');
    expect(() => ev('default(1)')).to.throw(ExprError, 'default() takes 2 arguments, got 1');
    expect(() => ev('request.metadata.name.x')).to.throw(ExprError, 'cannot read field "x" of a string');
    expect(() => ev('bytes("lots")')).to.throw(ExprError, '"lots" is not a capacity');
  });

  it('templated values: whole expressions keep their type, parts render into strings', () => {
    const env = { vars, functions };
    expect(renderValue(compileValue('{{ pools[0].metadata }}', 'f'), env, 'f')).to.deep.equal({ name: 'p1' });
    expect(renderValue(compileValue('{{ n }}', 'f'), env, 'f')).to.equal(3);
    expect(renderValue(compileValue('vol-{{ request.metadata.name }}-{{ n }}', 'f'), env, 'f')).to.equal('vol-pvc-1-3');
    expect(renderValue(compileValue({ a: ['{{ n }}', 'x'] }, 'f'), env, 'f')).to.deep.equal({ a: [3, 'x'] });
    expect(() => renderValue(compileValue('{{ request.spec.nope }}', 'spec.x'), env, 'spec.x')).to.throw(
      'spec.x: {{ request.spec.nope }} has no value',
    );
    expect(() => compileValue('a {{ b', 'spec.y')).to.throw('spec.y: "{{" without a closing "}}" in "a {{ b"');
    expect(() => compileValue('{{ a + }}', 'spec.z')).to.throw('spec.z: bad expression "a +": at column 4: unexpected end of expression');
  });

  it('parses quantities', () => {
    expect(quantityBytes('1Gi')).to.equal(1073741824);
    expect(quantityBytes('5G')).to.equal(5e9);
    expect(quantityBytes('1.5Ki')).to.equal(1536);
    expect(quantityBytes(4096)).to.equal(4096);
    expect(() => quantityBytes('5X')).to.throw(ExprError);
  });
});
