import { expect } from 'chai';
import { parsePath } from './router.ts';

describe('kube-lite router', () => {
  it('parses core, group, namespaced, watch and subresource paths', () => {
    expect(parsePath('/api')).to.deep.equal({ kind: 'core-versions' });
    expect(parsePath('/apis')).to.deep.equal({ kind: 'group-list' });
    expect(parsePath('/apis/storage.k8s.io')).to.deep.equal({ kind: 'group', group: 'storage.k8s.io' });
    expect(parsePath('/api/v1')).to.deep.equal({ kind: 'resource-list', group: '', version: 'v1' });
    expect(parsePath('/api/v1/namespaces/default/pods/p1')).to.deep.equal({
      kind: 'resource',
      path: { group: '', version: 'v1', resource: 'pods', namespace: 'default', name: 'p1', watchPath: false },
    });
    expect(parsePath('/api/v1/namespaces/ns1')).to.deep.equal({ kind: 'resource', path: { group: '', version: 'v1', resource: 'namespaces', name: 'ns1', watchPath: false } });
    expect(parsePath('/api/v1/namespaces/ns1/status')).to.deep.equal({
      kind: 'resource',
      path: { group: '', version: 'v1', resource: 'namespaces', name: 'ns1', subresource: 'status', watchPath: false },
    });
    expect(parsePath('/apis/openebs.io/v1alpha1/watch/namespaces/x/cstorvolumes')).to.deep.equal({
      kind: 'resource',
      path: { group: 'openebs.io', version: 'v1alpha1', resource: 'cstorvolumes', namespace: 'x', watchPath: true },
    });
    expect(parsePath('/api/v1/namespaces/a/persistentvolumeclaims/c/status').kind).to.equal('resource');
    expect(parsePath('/metrics')).to.deep.equal({ kind: 'other', path: '/metrics' });
  });
});
