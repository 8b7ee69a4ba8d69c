import { expect } from 'chai';
import type { KubeObject } from '../store/types.ts';
import { applyCreateDefaults, type DefaultsContext } from './defaults.ts';
import { builtinResources } from './registry.ts';

const services = builtinResources.find((r) => r.resKey === '/services')!;

function ctx(used: Set<number>): DefaultsContext {
  return { defaultStorageClass: () => undefined, usedNodePorts: () => new Set(used) };
}

function svc(type: string, ports: Record<string, unknown>[]): KubeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name: 's', namespace: 'default' }, spec: { type, ports } };
}

describe('kube-lite service defaults', () => {
  it('gives each port of a NodePort service a distinct free node port, keeping a requested one', () => {
    const used = new Set<number>();
    for (let p = 30000; p <= 32767; p++) if (p !== 30500 && p !== 31000 && p !== 32767) used.add(p);
    const o = svc('NodePort', [{ port: 80 }, { port: 81, nodePort: 30001 }, { port: 82 }, { port: 83 }]);
    applyCreateDefaults(services, o, ctx(used));
    const ports = (o.spec as { ports: { nodePort?: number; targetPort: number; protocol: string }[] }).ports;
    expect(ports[1]!.nodePort).to.equal(30001);
    expect(new Set([ports[0]!.nodePort, ports[2]!.nodePort, ports[3]!.nodePort])).to.deep.equal(new Set([30500, 31000, 32767]));
    expect(ports[0]).to.deep.include({ targetPort: 80, protocol: 'TCP' });
  });

  it('leaves nodePort unset when the range is full, and for ClusterIP services', () => {
    const full = new Set<number>();
    for (let p = 30000; p <= 32767; p++) full.add(p);
    const lb = svc('LoadBalancer', [{ port: 80 }]);
    applyCreateDefaults(services, lb, ctx(full));
    expect((lb.spec as { ports: Record<string, unknown>[] }).ports[0]!.nodePort).to.equal(undefined);
    expect(lb.spec).to.deep.include({ allocateLoadBalancerNodePorts: true, externalTrafficPolicy: 'Cluster' });
    const cip = svc('ClusterIP', [{ port: 80 }]);
    applyCreateDefaults(services, cip, ctx(new Set()));
    expect((cip.spec as { ports: Record<string, unknown>[] }).ports[0]!.nodePort).to.equal(undefined);
    expect(cip.spec).to.deep.include({ ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack', sessionAffinity: 'None' });
  });
});
