// Installing the template objects: create, then leave equal objects alone, restore edited default
// templates, and refuse a broken directory before writing anything.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { CstorError } from '../../lib/errors.ts';
import { silentLogger } from '../../lib/logger.ts';
import { FakeKubeObjects } from '../../maya-apiserver/cas/fakes.ts';
import { defaultTemplateDir, installTemplates } from '../../maya-apiserver/cas/install.ts';
import { defaultTemplateNames, templateNameFor } from '../../maya-apiserver/cas/template-names.ts';

describe('CAS template install', () => {
  it('creates every object once, then leaves equal ones alone and restores edited ones', async () => {
    const kube = new FakeKubeObjects();
    const first = await installTemplates({ kube, logger: silentLogger(), namespace: 'openebs' });
    expect(first.created.length).to.be.greaterThan(30);
    expect(first.updated).to.deep.equal([]);
    expect(kube.all('RunTask').every((t) => t.metadata.namespace === 'openebs')).to.equal(true);
    for (const name of Object.values(defaultTemplateNames)) expect(kube.find('CASTemplate', name), name).to.not.equal(undefined);
    const ref = { apiVersion: 'openebs.io/v1alpha1', kind: 'RunTask', namespace: 'openebs', name: 'cstor-snapshot-create-healthy' };
    await kube.patch(ref, { spec: { assert: { message: 'edited' }, extra: 'x' } });
    const second = await installTemplates({ kube, logger: silentLogger(), namespace: 'openebs' });
    expect(second.created).to.deep.equal([]);
    expect(second.updated).to.deep.equal(['RunTask/cstor-snapshot-create-healthy']);
    const restored = await kube.get(ref);
    expect(restored['spec']).to.not.have.property('extra');
    expect(JSON.stringify(restored['spec'])).to.include('a snapshot needs a Healthy volume');
    const third = await installTemplates({ kube, logger: silentLogger(), namespace: 'openebs' });
    expect(third.updated).to.deep.equal([]);
    expect(third.unchanged).to.have.length(first.created.length);
  });

  it('refuses a directory with a broken template before writing anything, naming file, task and field', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cas-templates-'));
    const good = readFileSync(path.join(defaultTemplateDir, 'snapshot-create.yaml'), 'utf8');
    writeFileSync(path.join(dir, 'a.yaml'), readFileSync(path.join(defaultTemplateDir, 'volume-read.yaml'), 'utf8'));
    writeFileSync(path.join(dir, 'b.yaml'), good.replace('volume.status.phase == "Healthy"', 'volume.status.phase == '));
    const kube = new FakeKubeObjects();
    try {
      await installTemplates({ kube, logger: silentLogger(), namespace: 'openebs', dir });
      expect.fail('installed');
    } catch (err) {
      expect(err).to.be.instanceOf(CstorError);
      expect((err as CstorError).code).to.equal('invalid');
      expect((err as Error).message).to.equal(
        'b.yaml: RunTask cstor-snapshot-create-healthy (task healthy) is invalid: spec.assert.that: bad expression "volume.status.phase ==": at column 23: unexpected end of expression',
      );
    }
    expect(kube.dump()).to.deep.equal([]);
    writeFileSync(path.join(dir, 'b.yaml'), good.replace('- cstor-snapshot-create-take', '- cstor-snapshot-create-tkae'));
    try {
      await installTemplates({ kube, logger: silentLogger(), namespace: 'openebs', dir });
      expect.fail('installed');
    } catch (err) {
      expect((err as Error).message).to.equal(
        'b.yaml: CASTemplate cstor-snapshot-create-default names RunTasks that no file defines: cstor-snapshot-create-tkae',
      );
    }
    writeFileSync(path.join(dir, 'b.yaml'), 'kind: [');
    try {
      await installTemplates({ kube, logger: silentLogger(), namespace: 'openebs', dir });
      expect.fail('installed');
    } catch (err) {
      expect((err as Error).message).to.match(/^b\.yaml: not valid YAML: /);
    }
    expect(kube.dump()).to.deep.equal([]);
  });

  it('picks the template from the StorageClass annotation, else the default', () => {
    const sc = {
      apiVersion: 'storage.k8s.io/v1',
      kind: 'StorageClass',
      metadata: { name: 'x', annotations: { 'cas.openebs.io/create-volume-template': 'my-create', 'cas.openebs.io/delete-volume-template': ' ' } },
    };
    expect(templateNameFor('create-volume', sc)).to.equal('my-create');
    expect(templateNameFor('delete-volume', sc)).to.equal('cstor-volume-delete-default');
    expect(templateNameFor('create-snapshot', null)).to.equal('cstor-snapshot-create-default');
  });
});
