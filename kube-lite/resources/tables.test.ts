import { expect } from 'chai';
import { buildTable, evalJsonPath, humanDuration } from './tables.ts';
import { builtinResources } from './registry.ts';

describe('kube-lite tables', () => {
  it('formats ages as kubectl does', () => {
    const s = 1000;
    expect(humanDuration(5 * s)).to.equal('5s');
    expect(humanDuration(119 * s)).to.equal('119s');
    expect(humanDuration(185 * s)).to.equal('3m5s');
    expect(humanDuration(30 * 60 * s)).to.equal('30m');
    expect(humanDuration(5 * 3600 * s + 60 * s)).to.equal('5h1m');
    expect(humanDuration(30 * 3600 * s)).to.equal('30h');
    expect(humanDuration(3 * 86400 * s)).to.equal('3d');
    expect(humanDuration(40 * 86400 * s)).to.equal('40d');
  });

  it('evaluates the JSONPath subset of printer columns', () => {
    const o = { status: { conditions: [{ type: 'A', status: 'False' }, { type: 'Ready', status: 'True' }] }, spec: { list: [1, 2] } };
    expect(evalJsonPath(o, '.status.conditions[?(@.type=="Ready")].status')).to.deep.equal(['True']);
    expect(evalJsonPath(o, '.spec.list[1]')).to.deep.equal([2]);
    expect(evalJsonPath(o, '.spec.list[*]')).to.deep.equal([1, 2]);
    expect(evalJsonPath(o, '.spec.missing')).to.deep.equal([]);
  });

  it('prints a PV row like kubectl', () => {
    const pvInfo = builtinResources.find((r) => r.resKey === '/persistentvolumes')!;
    const pv = {
      metadata: { name: 'pv1', creationTimestamp: new Date(Date.now() - 10_000).toISOString() },
      spec: { capacity: { storage: '5G' }, accessModes: ['ReadWriteOnce'], persistentVolumeReclaimPolicy: 'Delete', claimRef: { namespace: 'default', name: 'c1' }, storageClassName: 'sc' },
      status: { phase: 'Bound' },
    };
    const t = buildTable(pvInfo, 'v1', [pv], { resourceVersion: '1' }) as { columnDefinitions: { name: string }[]; rows: { cells: unknown[] }[] };
    expect(t.columnDefinitions.map((c) => c.name).slice(0, 9)).to.deep.equal(['Name', 'Capacity', 'Access Modes', 'Reclaim Policy', 'Status', 'Claim', 'StorageClass', 'Reason', 'Age']);
    expect(t.rows[0]!.cells.slice(0, 8)).to.deep.equal(['pv1', '5G', 'RWO', 'Delete', 'Bound', 'default/c1', 'sc', '']);
  });
});
