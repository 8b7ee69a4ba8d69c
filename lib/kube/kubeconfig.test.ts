import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { loadKubeConfig } from './kubeconfig.ts';
import { writeTestKubeconfig } from './test-kubeconfig.ts';

describe('loadKubeConfig', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kubeconfig-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('prefers the explicit path, then KUBECONFIG, then in-cluster, then ~/.kube/config', () => {
    writeTestKubeconfig(path.join(dir, 'explicit'), { server: 'http://127.0.0.1:1', token: 't1', namespace: 'ns1' });
    writeTestKubeconfig(path.join(dir, 'env'), { server: 'http://127.0.0.1:2', token: 't2' });
    writeTestKubeconfig(path.join(dir, 'home', '.kube', 'config'), { server: 'http://127.0.0.1:4', token: 't4' });
    const sa = path.join(dir, 'sa');
    fs.mkdirSync(sa);
    fs.writeFileSync(path.join(sa, 'token'), 'sa-token');
    fs.writeFileSync(path.join(sa, 'namespace'), 'openebs\n');
    const env = { KUBECONFIG: path.join(dir, 'env'), KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443', HOME: path.join(dir, 'home') };

    const a = loadKubeConfig({ kubeconfigPath: path.join(dir, 'explicit'), env, serviceAccountDir: sa });
    expect(a.source).to.equal(`explicit path ${path.join(dir, 'explicit')}`);
    expect(a.kubeConfig.getCurrentCluster()?.server).to.equal('http://127.0.0.1:1');
    expect(a.namespace).to.equal('ns1');

    const b = loadKubeConfig({ env, serviceAccountDir: sa });
    expect(b.kubeConfig.getCurrentCluster()?.server).to.equal('http://127.0.0.1:2');

    const c = loadKubeConfig({ env: { ...env, KUBECONFIG: undefined }, serviceAccountDir: sa });
    expect(c.source).to.equal('in-cluster');
    expect(c.kubeConfig.getCurrentCluster()?.server).to.equal('https://10.0.0.1:443');
    expect(c.namespace).to.equal('openebs');

    const d = loadKubeConfig({ env: { HOME: env.HOME }, serviceAccountDir: sa });
    expect(d.kubeConfig.getCurrentCluster()?.server).to.equal('http://127.0.0.1:4');
  });

  it('sends the in-cluster token as a bearer token', async () => {
    const sa = path.join(dir, 'sa');
    fs.mkdirSync(sa);
    fs.writeFileSync(path.join(sa, 'token'), 'sa-token');
    const { kubeConfig } = loadKubeConfig({ env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' }, serviceAccountDir: sa });
    expect(kubeConfig.getCurrentCluster()?.server).to.equal('https://[fd00::1]:6443');
    const opts: { headers: Record<string, string> } = { headers: {} };
    await kubeConfig.applyToHTTPSOptions(opts);
    expect(opts.headers.Authorization).to.equal('Bearer sa-token');
  });

  it('lists everything it tried when nothing applies', () => {
    let err: unknown;
    try {
      loadKubeConfig({ env: { HOME: dir }, serviceAccountDir: path.join(dir, 'none') });
    } catch (e) {
      err = e;
    }
    expect(err).to.have.property('code', 'invalid');
    const msg = (err as Error).message;
    expect(msg).to.contain('explicit path (none given)');
    expect(msg).to.contain('KUBECONFIG (not set)');
    expect(msg).to.contain('in-cluster (KUBERNETES_SERVICE_HOST/PORT not set)');
    expect(msg).to.contain(`${path.join(dir, '.kube', 'config')} (missing)`);
  });

  it('names a bad explicit file or a KUBECONFIG naming nothing', () => {
    expect(() => loadKubeConfig({ kubeconfigPath: path.join(dir, 'nope'), env: {} })).to.throw(/cannot load kubeconfig .*nope/);
    fs.writeFileSync(path.join(dir, 'bad'), 'apiVersion: v1\nkind: Config\ncurrent-context: x\n');
    expect(() => loadKubeConfig({ kubeconfigPath: path.join(dir, 'bad'), env: {} })).to.throw(/current context "x" is not defined/);
    expect(() => loadKubeConfig({ env: { KUBECONFIG: `${dir}/a:${dir}/b` } })).to.throw(/KUBECONFIG names no existing file/);
  });
});
