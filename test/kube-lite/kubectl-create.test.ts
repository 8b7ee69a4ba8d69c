// kubectl's imperative generators against kube-lite: `kubectl create namespace|configmap|secret|
// serviceaccount|service`. kubectl v1.32 sends these bodies as application/vnd.kubernetes.protobuf
// (kube-lite decodes them: kube-lite/api/protobuf/); Debian's kubectl 1.20.2 sends JSON. Both must
// work unchanged, and `kubectl get -o json` must show what was asked for.
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { stopAll } from '../support/daemon.ts';
import { kubectlBinaries, syncKubectl } from '../support/kubectl.ts';
import { raw, startKubeLiteProc, type KubeLiteProc } from './support.ts';

// `sends`: what -v=8 shows of the POST body. `serverDryRun`: kubectl 1.20 decides from the OpenAPI
// document whether a type supports dry-run, and kube-lite serves an empty one (docs/kube-lite.md).
const byTag = {
  new: { sends: /Content-Type: application\/vnd\.kubernetes\.protobuf/, serverDryRun: true },
  old: { sends: /Request Body: \{"apiVersion":"v1","kind":"Namespace"/, serverDryRun: false },
} as const;
const kubectls = kubectlBinaries.map((b) => ({ ...b, ...byTag[b.tag] }));

describe('kube-lite: kubectl create generators (protobuf bodies)', function () {
  this.timeout(120_000);
  let kl: KubeLiteProc;
  let dir: string;
  before(async () => {
    kl = await startKubeLiteProc();
    dir = fs.mkdtempSync(path.join(kl.dataDir, 'files-'));
  });
  after(stopAll);

  for (const { label, bin, tag, sends, serverDryRun } of kubectls) {
    describe(label, () => {
      const ns = `gen-${tag}`;
      const { k, ok } = syncKubectl(bin, () => kl.kubeconfig);
      const getJson = (...args: string[]): Record<string, unknown> => JSON.parse(ok('get', ...args, '-o', 'json')) as Record<string, unknown>;

      it('creates a namespace (and says which body format it sent)', () => {
        const r = k('create', 'namespace', ns, '-v=8');
        expect(r.code, r.err).to.equal(0);
        expect(r.out).to.equal(`namespace/${ns} created\n`);
        expect(r.err).to.match(/POST https:\/\/\S+\/api\/v1\/namespaces/);
        expect(r.err).to.match(sends);
        const o = getJson('namespace', ns);
        expect(o).to.deep.include({ apiVersion: 'v1', kind: 'Namespace' });
        expect(o.metadata).to.deep.include({ name: ns, labels: { 'kubernetes.io/metadata.name': ns } });
        expect(o.status).to.deep.equal({ phase: 'Active' });
        expect(o.spec).to.deep.equal({ finalizers: ['kubernetes'] });
      });

      it('creates a configmap from literals and a binary file', () => {
        const blob = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x80]);
        fs.writeFileSync(path.join(dir, `blob-${tag}`), blob);
        expect(ok('-n', ns, 'create', 'configmap', 'settings', '--from-literal=color=blue', '--from-literal=size=10 GiB', `--from-file=blob=${path.join(dir, `blob-${tag}`)}`)).to.equal('configmap/settings created\n');
        const o = getJson('-n', ns, 'configmap', 'settings');
        expect(o.data).to.deep.equal({ color: 'blue', size: '10 GiB' });
        expect(o.binaryData).to.deep.equal({ blob: blob.toString('base64') });
        expect(o.metadata).to.deep.include({ name: 'settings', namespace: ns });
      });

      it('creates generic and docker-registry secrets', () => {
        expect(ok('-n', ns, 'create', 'secret', 'generic', 'creds', '--from-literal=user=admin', '--from-literal=pass=s3cr3t ✓')).to.equal('secret/creds created\n');
        const o = getJson('-n', ns, 'secret', 'creds');
        expect(o.type).to.equal('Opaque');
        expect(o.data).to.deep.equal({ user: Buffer.from('admin').toString('base64'), pass: Buffer.from('s3cr3t ✓').toString('base64') });
        ok('-n', ns, 'create', 'secret', 'docker-registry', 'regcred', '--docker-server=registry.example.com', '--docker-username=u', '--docker-password=p');
        const d = getJson('-n', ns, 'secret', 'regcred');
        expect(d.type).to.equal('kubernetes.io/dockerconfigjson');
        const cfg = JSON.parse(Buffer.from(String((d.data as Record<string, string>)['.dockerconfigjson']), 'base64').toString()) as { auths: Record<string, { username: string }> };
        expect(cfg.auths['registry.example.com']?.username).to.equal('u');
      });

      it('creates a serviceaccount', () => {
        expect(ok('-n', ns, 'create', 'serviceaccount', 'robot')).to.equal('serviceaccount/robot created\n');
        const o = getJson('-n', ns, 'serviceaccount', 'robot');
        expect(o).to.deep.include({ apiVersion: 'v1', kind: 'ServiceAccount' });
        expect(o.metadata).to.deep.include({ name: 'robot', namespace: ns });
        expect(ok('-n', ns, 'get', 'sa')).to.match(/^NAME\s+SECRETS\s+AGE\nrobot\s+0\s+\d+s\n$/);
      });

      it('creates clusterip and externalname services with labels, selector and ports', () => {
        expect(ok('-n', ns, 'create', 'service', 'clusterip', 'web', '--tcp=80:8080', '--tcp=443:8443')).to.equal('service/web created\n');
        const o = getJson('-n', ns, 'service', 'web');
        expect(o.metadata).to.deep.include({ name: 'web', labels: { app: 'web' } });
        const spec = o.spec as Record<string, unknown>;
        expect(spec.selector).to.deep.equal({ app: 'web' });
        expect(spec.type).to.equal('ClusterIP');
        expect(spec.clusterIP).to.match(/^10\.96\.\d+\.\d+$/);
        expect(spec.ports).to.deep.equal([
          { name: '80-8080', protocol: 'TCP', port: 80, targetPort: 8080 },
          { name: '443-8443', protocol: 'TCP', port: 443, targetPort: 8443 },
        ]);
        ok('-n', ns, 'create', 'service', 'externalname', 'ext', '--external-name=db.example.com');
        const e = getJson('-n', ns, 'service', 'ext');
        expect(e.spec).to.deep.include({ type: 'ExternalName', externalName: 'db.example.com' });
        expect((e.spec as Record<string, unknown>).clusterIP).to.equal(undefined);
      });

      it('creates nodeport and loadbalancer services with node ports allocated', () => {
        const asked = tag === 'new' ? 30123 : 30124;
        ok('-n', ns, 'create', 'service', 'nodeport', 'np', '--tcp=80:8080', `--node-port=${asked}`);
        ok('-n', ns, 'create', 'service', 'loadbalancer', 'lb', '--tcp=5432');
        const np = getJson('-n', ns, 'service', 'np').spec as { type: string; ports: { nodePort: number }[] };
        expect(np.type).to.equal('NodePort');
        expect(np.ports.map((p) => p.nodePort)).to.deep.equal([asked]);
        const lb = getJson('-n', ns, 'service', 'lb').spec as { type: string; ports: { port: number; targetPort: number; nodePort: number }[] };
        expect(lb.type).to.equal('LoadBalancer');
        expect(lb.ports[0]).to.deep.include({ port: 5432, targetPort: 5432 });
        expect(lb.ports[0]!.nodePort).to.be.within(30000, 32767).and.not.equal(asked);
        const table = ok('-n', ns, 'get', 'svc', 'np', 'lb', 'ext');
        expect(table).to.match(new RegExp(`^np\\s+NodePort\\s+10\\.96\\.\\S+\\s+<none>\\s+80:${asked}/TCP\\s`, 'm'));
        expect(table).to.match(new RegExp(`^lb\\s+LoadBalancer\\s+10\\.96\\.\\S+\\s+<pending>\\s+5432:${lb.ports[0]!.nodePort}/TCP\\s`, 'm'));
        expect(table).to.match(/^ext\s+ExternalName\s+<none>\s+db\.example\.com\s+<none>\s/m);
      });

      it(`honours --save-config${serverDryRun ? ' and --dry-run=server' : ''}`, () => {
        if (serverDryRun) {
          expect(ok('-n', ns, 'create', 'configmap', 'dry', '--from-literal=a=b', '--dry-run=server', '-o', 'name')).to.equal('configmap/dry\n');
          expect(k('-n', ns, 'get', 'configmap', 'dry').code).to.not.equal(0);
        }
        ok('-n', ns, 'create', 'configmap', 'saved', '--from-literal=a=b', '--save-config');
        const o = getJson('-n', ns, 'configmap', 'saved');
        const ann = (o.metadata as { annotations: Record<string, string> }).annotations;
        expect(JSON.parse(ann['kubectl.kubernetes.io/last-applied-configuration']!)).to.deep.include({ kind: 'ConfigMap', data: { a: 'b' } });
      });

      it('gets the usual errors: an existing name (409), a bad name (422)', () => {
        const dup = k('-n', ns, 'create', 'configmap', 'settings', '--from-literal=x=y');
        expect(dup.code).to.not.equal(0);
        expect(dup.err).to.match(/AlreadyExists|already exists/);
        const bad = k('create', 'namespace', 'Bad_Name');
        expect(bad.code).to.not.equal(0);
        expect(bad.err).to.match(/Bad_Name.*(RFC 1123|invalid)/);
      });
    });
  }

  it('refuses a protobuf Pod with 415 naming the kind and the way out', async () => {
    const ld = (no: number, b: Buffer | string): Buffer => {
      const p = typeof b === 'string' ? Buffer.from(b) : b;
      return Buffer.concat([Buffer.from([(no << 3) | 2, p.length]), p]);
    };
    const body = Buffer.concat([Buffer.from('k8s\0', 'latin1'), ld(1, Buffer.concat([ld(1, 'v1'), ld(2, 'Pod')])), ld(2, ld(1, ld(1, 'p1')))]);
    const r = await raw(kl, '/api/v1/namespaces/default/pods', { method: 'POST', body, contentType: 'application/vnd.kubernetes.protobuf' });
    expect(r.status, r.text).to.equal(415);
    expect(r.json).to.deep.include({ kind: 'Status', reason: 'UnsupportedMediaType', code: 415 });
    expect(String(r.json.message)).to.match(/protobuf bodies of kind Pod \(v1\).*kubectl create -f/);
    const list = await raw(kl, '/api/v1/namespaces/default/pods');
    expect(list.json.items).to.deep.equal([]);
  });
});
