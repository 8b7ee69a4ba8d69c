import { expect } from 'chai';
import { componentArgs, componentEnv, embeddedComponents, type ComponentContext } from './components.ts';
import type { Manifest } from './manifests.ts';
import { embeddedOverrides, mapiServiceManifests } from './system.ts';

function ctx(addresses: Record<string, string>): ComponentContext {
  return {
    dataDir: '/d',
    host: '127.0.0.1',
    kubeconfig: '/d/kubeconfig',
    namespace: 'openebs',
    port: (c, l) => (addresses[`${c}/${l}`] ? Number(addresses[`${c}/${l}`]!.split(':')[1]) : 0),
    address: (c, l) => addresses[`${c}/${l}`],
  };
}
const def = (name: string) => embeddedComponents.find((c) => c.name === name)!;
const flagsOf = (args: string[]): Record<string, string> => Object.fromEntries(args.slice(1).flatMap((a, i, all) => (i % 2 === 0 ? [[a, all[i + 1]!]] : [])));

describe('embedded/components', () => {
  it('lists kube-lite, three pools, a target, m-apiserver and the three controllers, in stages', () => {
    expect(embeddedComponents.map((c) => `${c.stage}:${c.name}`)).to.deep.equal([
      '0:kube-lite', '1:pool-1', '1:pool-2', '1:pool-3', '1:target', '2:mapi', '3:volume-provisioner', '3:snapshot-controller', '3:snapshot-provisioner',
    ]);
  });

  it('passes only the flags a subcommand declares, and the others’ announced addresses', () => {
    const c = ctx({ 'target/iscsi': '127.0.0.1:3260', 'target/mgmt': '127.0.0.1:9500', 'mapi/api': '127.0.0.1:5656' });
    expect(componentArgs(def('target'), c, new Set(['--iscsi', '--mgmt', '--data-dir', '--target-id']))).to.deep.equal([
      'target', '--iscsi', '127.0.0.1:3260', '--mgmt', '127.0.0.1:9500', '--data-dir', '/d/target', '--target-id', 'embedded-target',
    ]);
    expect(flagsOf(componentArgs(def('target'), c, null))).to.include({ '--advertise': '127.0.0.1', '--kubeconfig': '/d/kubeconfig', '--namespace': 'openebs' });
    expect(flagsOf(componentArgs(def('mapi'), c, null))).to.deep.equal({
      '--listen': '127.0.0.1:5656', '--kubeconfig': '/d/kubeconfig', '--namespace': 'openebs',
      '--target-portal': '127.0.0.1:3260', '--target-ip': '127.0.0.1', '--target-mgmt': '127.0.0.1:9500',
    });
    expect(flagsOf(componentArgs(def('snapshot-controller'), c, null))['--mapi-addr']).to.equal('http://127.0.0.1:5656');
    expect(componentArgs(def('pool-2'), c, null).slice(0, 5)).to.deep.equal(['pool', '--name', 'pool-2', '--data-dir', '/d/pools/pool-2']);
    // before m-apiserver announced itself: no --mapi-addr rather than a wrong one
    expect(componentArgs(def('volume-provisioner'), ctx({}), null)).to.not.include('--mapi-addr');
  });

  it('gives every child the pod-style environment', () => {
    const env = componentEnv(ctx({ 'mapi/api': '127.0.0.1:5656', 'target/iscsi': '127.0.0.1:3260', 'target/mgmt': '127.0.0.1:9500' }), { PATH: '/bin' }, 'host-a');
    expect(env).to.deep.equal({
      PATH: '/bin', KUBECONFIG: '/d/kubeconfig', OPENEBS_NAMESPACE: 'openebs', NODE_NAME: 'host-a', POD_IP: '127.0.0.1',
      MAPI_ADDR: 'http://127.0.0.1:5656', TARGET_PORTAL: '127.0.0.1:3260', TARGET_IP: '127.0.0.1', TARGET_MGMT_ADDR: '127.0.0.1:9500',
    });
  });

  it('points only the maya-apiserver-service at the local m-apiserver', () => {
    const svc = (name: string): Manifest => ({
      file: 'f', doc: 1,
      object: { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'openebs' }, spec: { selector: { app: 'x' }, ports: [{ name: 'api', port: 5656 }] } },
    });
    const [maya, other] = embeddedOverrides([svc('maya-apiserver-service'), svc('other')], '127.0.0.1', 40000);
    expect(maya!.object.spec).to.deep.equal({ clusterIP: '127.0.0.1', clusterIPs: ['127.0.0.1'], ports: [{ name: 'api', port: 40000, targetPort: 40000, protocol: 'TCP' }] });
    expect(other!.object.spec).to.deep.equal(svc('other').object.spec);
    expect(embeddedOverrides([svc('maya-apiserver-service')], '127.0.0.1', 0)[0]!.object.spec).to.deep.equal(svc('x').object.spec);
    const ep = mapiServiceManifests('127.0.0.1', 40000)[1]!.object;
    expect(ep.kind).to.equal('Endpoints');
    expect(ep.subsets).to.deep.equal([{ addresses: [{ ip: '127.0.0.1' }], ports: [{ name: 'api', port: 40000, protocol: 'TCP' }] }]);
  });
});
