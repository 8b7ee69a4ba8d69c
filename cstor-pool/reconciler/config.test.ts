// The pool daemon's Kubernetes flags (cstor-pool/main.ts poolConfig) and the controller's
// update filter.
import { expect } from 'chai';
import { hasErrorCode } from '../../lib/errors.ts';
import { poolConfig } from '../main.ts';
import { isWildcard } from '../../lib/advertise.ts';
import { cvrUpdateMatters } from './controller.ts';
import type { CStorVolumeReplica } from './types.ts';

const base = ['--name', 'pool-a', '--data-dir', '/tmp/x', '--listen', '127.0.0.1:0', '--mgmt', '127.0.0.1:0'];

describe('pool reconciler: daemon flags', () => {
  it('without --kubeconfig, KUBECONFIG or a service account: no Kubernetes, as before', () => {
    const c = poolConfig(base, { HOME: '/root' });
    expect(c?.kube).to.equal(undefined);
    expect(c?.namespace).to.equal('openebs');
    expect(c?.advertise).to.equal('127.0.0.1');
  });

  it('--kubeconfig, or KUBECONFIG, turns Kubernetes on; OPENEBS_NAMESPACE and --namespace pick the namespace', () => {
    expect(poolConfig([...base, '--kubeconfig', '/k'], {})?.kube).to.deep.equal({ kubeconfigPath: '/k' });
    expect(poolConfig(base, { KUBECONFIG: '/k2' })?.kube).to.deep.equal({});
    expect(poolConfig(base, { OPENEBS_NAMESPACE: 'storage' })?.namespace).to.equal('storage');
    expect(poolConfig([...base, '--namespace', 'ns1'], { OPENEBS_NAMESPACE: 'storage' })?.namespace).to.equal('ns1');
    expect(poolConfig([...base, '--advertise', '10.1.2.3'], {})?.advertise).to.equal('10.1.2.3');
  });

  it('--writeback-bytes, else $CSTOR_POOL_WRITEBACK_BYTES, else 1 MiB; a bad value is named', () => {
    expect(poolConfig(base, {})?.writebackBytes).to.equal(1024 * 1024);
    expect(poolConfig(base, { CSTOR_POOL_WRITEBACK_BYTES: '0' })?.writebackBytes).to.equal(0);
    expect(poolConfig([...base, '--writeback-bytes', '4194304'], { CSTOR_POOL_WRITEBACK_BYTES: '0' })?.writebackBytes).to.equal(4194304);
    let err: unknown;
    try {
      poolConfig([...base, '--writeback-bytes', '1e6'], {});
    } catch (e) {
      err = e;
    }
    expect(hasErrorCode(err, 'invalid')).to.equal(true);
    expect((err as Error).message).to.match(/--writeback-bytes "1e6" is not a byte count/);
  });

  it('a wildcard listen address publishes a real host', () => {
    const c = poolConfig(['--name', 'p', '--data-dir', '/tmp/x', '--listen', '0.0.0.0:3232'], {});
    expect(isWildcard(c?.advertise ?? '')).to.equal(false);
    expect(c?.advertise).to.match(/^\d+\.\d+\.\d+\.\d+$/);
  });

  it('refuses a bad namespace and a bad --advertise, naming both', () => {
    let err: unknown;
    try {
      poolConfig([...base, '--namespace', 'Bad_NS', '--advertise', 'a b'], {});
    } catch (e) {
      err = e;
    }
    expect(hasErrorCode(err, 'invalid')).to.equal(true);
    expect((err as Error).message).to.match(/namespace "Bad_NS" is invalid/).and.match(/--advertise "a b" is not a host/);
  });
});

describe('pool reconciler: which CVR updates enqueue', () => {
  const cvr = (over: Partial<CStorVolumeReplica['metadata']> = {}, spec = { capacity: '1G' }, status = {}): CStorVolumeReplica => ({
    metadata: { name: 'v-p', namespace: 'openebs', uid: 'u', resourceVersion: '1', finalizers: ['f'], labels: { a: 'b' }, ...over },
    spec,
    status,
  });
  const cases: [string, CStorVolumeReplica, CStorVolumeReplica, boolean][] = [
    ['periodic resync (same resourceVersion)', cvr(), cvr(), true],
    ['our own status write', cvr(), cvr({ resourceVersion: '2' }, { capacity: '1G' }, { phase: 'Init' }), false],
    ['deletion', cvr(), cvr({ resourceVersion: '2', deletionTimestamp: 't' }), true],
    ['finalizers changed', cvr(), cvr({ resourceVersion: '2', finalizers: [] }), true],
    ['spec changed', cvr(), cvr({ resourceVersion: '2' }, { capacity: '2G' }), true],
    ['labels changed', cvr(), cvr({ resourceVersion: '2', labels: { a: 'c' } }), true],
    ['recreated (uid)', cvr(), cvr({ resourceVersion: '2', uid: 'u2' }), true],
  ];
  for (const [name, a, b, want] of cases) {
    it(`${name} → ${want ? 'enqueued' : 'skipped'}`, () => {
      expect(cvrUpdateMatters(a, b)).to.equal(want);
    });
  }
});
