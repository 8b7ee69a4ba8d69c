import { expect } from 'chai';
import { jsonPatch, mergePatch, strategicMerge } from './patch.ts';

describe('kube-lite patches', () => {
  it('merge patch merges maps, deletes on null, replaces lists', () => {
    const out = mergePatch({ a: 1, b: { c: 2, d: 3 }, l: [1, 2] }, { a: null, b: { c: 5 }, l: [3] });
    expect(out).to.deep.equal({ b: { c: 5, d: 3 }, l: [3] });
  });

  it('json patch applies add/replace/remove/move/copy/test', () => {
    const out = jsonPatch({ a: { b: [1, 2] }, x: 'y' }, [
      { op: 'add', path: '/a/b/-', value: 3 },
      { op: 'replace', path: '/x', value: 'z' },
      { op: 'add', path: '/a~1b', value: true },
      { op: 'remove', path: '/a/b/0' },
      { op: 'copy', from: '/x', path: '/c' },
      { op: 'move', from: '/c', path: '/d' },
      { op: 'test', path: '/d', value: 'z' },
    ]);
    expect(out).to.deep.equal({ a: { b: [2, 3] }, x: 'z', 'a/b': true, d: 'z' });
  });

  it('json patch refuses a failed test and a missing path', () => {
    expect(() => jsonPatch({ a: 1 }, [{ op: 'test', path: '/a', value: 2 }])).to.throw(/test failed/);
    expect(() => jsonPatch({ a: 1 }, [{ op: 'remove', path: '/b' }])).to.throw(/does not exist/);
    expect(() => jsonPatch({ a: 1 }, { op: 'add' })).to.throw(/JSON array/);
  });

  it('strategic merge merges containers by name and conditions by type', () => {
    const target = {
      spec: { containers: [{ name: 'a', image: 'x:1' }, { name: 'b', image: 'y:1' }] },
      status: { conditions: [{ type: 'Ready', status: 'False' }, { type: 'Init', status: 'True' }] },
    };
    const out = strategicMerge(target, {
      spec: { containers: [{ name: 'b', image: 'y:2' }, { name: 'c', image: 'z' }] },
      status: { conditions: [{ type: 'Ready', status: 'True' }] },
    });
    expect(out).to.deep.equal({
      spec: { containers: [{ name: 'a', image: 'x:1' }, { name: 'b', image: 'y:2' }, { name: 'c', image: 'z' }] },
      status: { conditions: [{ type: 'Ready', status: 'True' }, { type: 'Init', status: 'True' }] },
    });
  });

  it('strategic merge unions finalizers, honours $patch delete and $deleteFromPrimitiveList', () => {
    const target = { metadata: { finalizers: ['a', 'b'] }, spec: { containers: [{ name: 'a' }, { name: 'b' }] } };
    const out = strategicMerge(target, {
      metadata: { finalizers: ['c'], '$deleteFromPrimitiveList/finalizers': ['a'] },
      spec: { containers: [{ name: 'a', $patch: 'delete' }], '$setElementOrder/containers': [{ name: 'b' }] },
    });
    expect(out).to.deep.equal({ metadata: { finalizers: ['b', 'c'] }, spec: { containers: [{ name: 'b' }] } });
  });

  it('strategic merge honours $retainKeys and $patch replace', () => {
    const out = strategicMerge({ s: { a: 1, b: 2, c: 3 }, m: { x: 1 } }, { s: { $retainKeys: ['a'], a: 5 }, m: { $patch: 'replace', y: 2 } });
    expect(out).to.deep.equal({ s: { a: 5 }, m: { y: 2 } });
  });
});
