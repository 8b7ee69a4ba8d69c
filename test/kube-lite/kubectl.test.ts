// kubectl against kube-lite: the machine's kubectl (v1.32) and Debian's 1.20 (env KUBECTL_OLD,
// default .ci/cache/kubectl-1.20/usr/bin/kubectl). No extra flags beyond --kubeconfig.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { stopAll } from '../support/daemon.ts';
import { kubectlBinaries, syncKubectl } from '../support/kubectl.ts';
import { eventually, startKubeLiteProc, type KubeLiteProc } from './support.ts';

const manifests = {
  'sc.yaml': `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: ext-class
provisioner: example.com/ext
reclaimPolicy: Delete
`,
  'pvc.yaml': `apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: claim1
  namespace: default
  labels: {app: demo}
spec:
  storageClassName: ext-class
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 5G}}
`,
  'crd.yaml': `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget, shortNames: [gd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
    additionalPrinterColumns:
    - {name: Color, type: string, jsonPath: .spec.color}
`,
  'gadget.yaml': `apiVersion: example.com/v1
kind: Gadget
metadata: {name: g1, namespace: default}
spec: {color: blue}
`,
};

for (const { label, bin } of kubectlBinaries) {
  describe(`kube-lite with ${label}`, function () {
    this.timeout(90_000);
    let kl: KubeLiteProc;
    let dir: string;
    const { k, ok } = syncKubectl(bin, () => kl.kubeconfig);

    before(async () => {
      kl = await startKubeLiteProc();
      dir = fs.mkdtempSync(path.join(kl.dataDir, 'manifests-'));
      for (const [f, text] of Object.entries(manifests)) fs.writeFileSync(path.join(dir, f), text);
    });
    after(stopAll);

    it('applies a StorageClass, a PVC, a CRD and a resource of it', async () => {
      expect(ok('apply', '-f', path.join(dir, 'sc.yaml'))).to.match(/storageclass.storage.k8s.io\/ext-class created/);
      expect(ok('apply', '-f', path.join(dir, 'pvc.yaml'))).to.match(/persistentvolumeclaim\/claim1 created/);
      expect(ok('apply', '-f', path.join(dir, 'crd.yaml'))).to.match(/customresourcedefinition.apiextensions.k8s.io\/gadgets.example.com created/);
      ok('wait', '--for=condition=Established', 'crd/gadgets.example.com', '--timeout=20s');
      const out = await eventually(() => {
        const r = k('apply', '-f', path.join(dir, 'gadget.yaml'));
        return r.code === 0 ? r.out : undefined;
      }, 'the gadget apply');
      expect(out).to.match(/gadget.example.com\/g1 created/);
      // A second apply is a patch computed from the last-applied annotation.
      fs.writeFileSync(path.join(dir, 'gadget.yaml'), manifests['gadget.yaml'].replace('blue', 'green'));
      expect(ok('apply', '-f', path.join(dir, 'gadget.yaml'))).to.match(/gadget.example.com\/g1 configured/);
      expect(ok('apply', '-f', path.join(dir, 'sc.yaml'))).to.match(/unchanged/);
      fs.writeFileSync(path.join(dir, 'pvc.yaml'), manifests['pvc.yaml'].replace('app: demo', 'app: demo2'));
      expect(ok('apply', '-f', path.join(dir, 'pvc.yaml'))).to.match(/persistentvolumeclaim\/claim1 configured/);
    });

    it('gets tables and YAML', () => {
      const pvc = ok('get', 'pvc');
      expect(pvc).to.match(/^NAME\s+STATUS\s+VOLUME\s+CAPACITY\s+ACCESS MODES\s+STORAGECLASS\s+/m);
      expect(pvc).to.match(/^claim1\s+Pending\s+ext-class\s+\d+s/m);
      expect(ok('get', 'sc')).to.match(/^ext-class\s+example.com\/ext\s+Delete\s+Immediate\s+false/m);
      expect(ok('get', 'gadgets')).to.match(/^NAME\s+COLOR\s*\ng1\s+green\s*$/m);
      expect(ok('get', 'gd', 'g1', '-o', 'yaml')).to.match(/color: green/);
      const y = ok('get', 'pvc', 'claim1', '-o', 'yaml');
      expect(y).to.match(/volume.kubernetes.io\/storage-provisioner: example.com\/ext/);
      expect(y).to.match(/app: demo2/);
      expect(ok('get', 'ns')).to.match(/^default\s+Active/m);
      expect(ok('get', 'pvc', '-l', 'app=demo2', '-o', 'name')).to.equal('persistentvolumeclaim/claim1\n');
    });

    it('describes a claim and a custom resource', () => {
      const d = ok('describe', 'pvc', 'claim1');
      expect(d).to.match(/Name:\s+claim1/);
      expect(d).to.match(/StorageClass:\s+ext-class/);
      expect(d).to.match(/Status:\s+Pending/);
      expect(d).to.match(/Normal\s+ExternalProvisioning\s+.*persistentvolume-controller\s+Waiting for a volume to be created either by the external provisioner 'example.com\/ext'/);
      expect(ok('describe', 'gadget', 'g1')).to.match(/Color:\s+green/);
    });

    it('watches with get -w and sees an update arrive', async () => {
      const proc = spawn(bin, ['--kubeconfig', kl.kubeconfig, 'get', 'gadgets', '-w'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
      proc.stderr.on('data', (c: Buffer) => (out += c.toString()));
      try {
        await eventually(() => /g1\s+green/.test(out), 'the initial row');
        ok('patch', 'gadget', 'g1', '--type=merge', '-p', '{"spec":{"color":"red"}}');
        await eventually(() => /g1\s+red/.test(out), `the updated row (output so far: ${out})`);
      } finally {
        proc.kill('SIGKILL');
      }
    });

    it('deletes what it applied', async () => {
      expect(ok('delete', '-f', path.join(dir, 'gadget.yaml'))).to.match(/"g1" deleted/);
      expect(ok('delete', 'pvc', 'claim1')).to.match(/"claim1" deleted/);
      expect(ok('delete', '-f', path.join(dir, 'sc.yaml'))).to.match(/"ext-class" deleted/);
      expect(ok('delete', '-f', path.join(dir, 'crd.yaml'))).to.match(/"gadgets.example.com" deleted/);
      const r = k('get', 'pvc', 'claim1');
      expect(r.code).to.not.equal(0);
      expect(r.err).to.match(/NotFound|not found/);
      expect(ok('get', 'sc', '-o', 'name')).to.equal('');
    });
  });
}
