// The promoter's command line: flags and env → one frozen config, every problem listed at once;
// and the pure helpers (quantities, near names).
import { expect } from 'chai';
import { CstorError } from '../lib/errors.ts';
import { nearestName } from './clone-source.ts';
import { snapshotProvisionerConfig } from './main.ts';
import { tryQuantityBytes } from '../lib/quantity.ts';

describe('snapshot-provisioner: config', () => {
  it('reads flags, then env, then defaults', () => {
    const c = snapshotProvisionerConfig(['--kubeconfig', '/k', '--metrics', '127.0.0.1:0', '--identity', 'p-1', '--leader-elect', 'false'], { MAPI_ADDR: '10.0.0.1', OPENEBS_NAMESPACE: 'ob' });
    expect(c).to.deep.equal({
      kubeconfig: '/k',
      mapiAddr: '10.0.0.1',
      namespace: 'ob',
      metrics: { host: '127.0.0.1', port: 0 },
      leaderElect: false,
      leaseDurationMs: 15_000,
      identity: 'p-1',
      workers: 4,
      logLevel: 'info',
    });
    expect(Object.isFrozen(c)).to.equal(true);
    expect(snapshotProvisionerConfig(['--mapi-addr', 'http://m:1'], { MAPI_ADDR: 'x' })?.mapiAddr).to.equal('http://m:1');
    expect(snapshotProvisionerConfig([], {})?.identity).to.match(/^.+-\d+-[0-9a-f]{6}$/);
  });

  it('lists every problem at once', () => {
    let err: unknown;
    try {
      snapshotProvisionerConfig(['--metrics', 'nope', '--workers', '0', '--leader-elect', 'maybe', '--lease-duration', '1', '--identity', ' '], {});
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(CstorError);
    expect((err as CstorError).code).to.equal('invalid');
    const msg = (err as CstorError).message;
    for (const part of ['--metrics: "nope" is not HOST:PORT', '--leader-elect "maybe"', '--lease-duration "1"', '--workers "0"', '--identity is empty']) expect(msg).to.include(part);
  });

  it('refuses an unknown flag', () => {
    expect(() => snapshotProvisionerConfig(['--nope'], {})).to.throw(CstorError, /--nope/);
  });
});

describe('snapshot-provisioner: quantities and near names', () => {
  const q: Array<[string, number | undefined]> = [
    ['5G', 5e9],
    ['1Gi', 2 ** 30],
    ['500M', 5e8],
    ['1e3', 1000],
    ['1.5Gi', 1.5 * 2 ** 30],
    ['4999999999', 4999999999],
    ['lots', undefined],
    ['-1G', undefined],
    ['5 G', undefined],
    ['', undefined],
  ];
  for (const [v, bytes] of q) it(`"${v}" → ${String(bytes)}`, () => expect(tryQuantityBytes(v)).to.equal(bytes));

  it('suggests the closest name within 2 edits, none when nothing is close', () => {
    expect(nearestName('snapshot-dmeo', ['snapshot-demo', 'other'])).to.equal('snapshot-demo');
    expect(nearestName('snapshot-demo1', ['snapshot-demo', 'snapshot-demo12'])).to.equal('snapshot-demo');
    expect(nearestName('snap-x', ['snapshot-demo'])).to.equal(undefined);
    expect(nearestName('ab', ['cd'])).to.equal(undefined);
  });
});
