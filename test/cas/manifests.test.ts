// Every manifest in deploy/crds and deploy/cas-templates parses and validates: CRDs are structural,
// name what DESIGN.md §3 names, and carry status and printer columns; every template object fits
// its CRD and loads with its tasks.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { loadAll } from 'js-yaml';
import { loadTemplateObjects } from '../../maya-apiserver/cas/install.ts';
import { crdSchema, structuralProblems, valueProblems } from './schema.ts';

const root = fileURLToPath(new URL('../../deploy/', import.meta.url));

type Doc = Record<string, unknown>;

function docs(dir: string): Array<{ file: string; doc: Doc }> {
  const out: Array<{ file: string; doc: Doc }> = [];
  for (const file of readdirSync(path.join(root, dir)).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const doc of loadAll(readFileSync(path.join(root, dir, file), 'utf8'))) if (doc) out.push({ file, doc: doc as Doc });
  }
  return out;
}

interface Crd {
  metadata: { name: string };
  spec: {
    group: string;
    scope: string;
    names: { kind: string; plural: string };
    versions: Array<{
      name: string;
      served: boolean;
      storage: boolean;
      subresources?: { status?: object };
      additionalPrinterColumns?: Array<{ name: string; type: string; jsonPath: string }>;
      schema: { openAPIV3Schema: Record<string, unknown> };
    }>;
  };
}

const crds = docs('crds').map((d) => d.doc as unknown as Crd);

describe('deploy manifests', () => {
  it('has the CRDs of DESIGN.md §3 with the right group, version and scope', () => {
    const got = crds.map((c) => `${c.metadata.name} ${c.spec.names.kind} ${c.spec.scope} ${c.spec.versions.map((v) => v.name).join(',')}`).sort();
    expect(got).to.deep.equal([
      'castemplates.openebs.io CASTemplate Cluster v1alpha1',
      'cstorpools.openebs.io CStorPool Cluster v1alpha1',
      'cstorvolumereplicas.openebs.io CStorVolumeReplica Namespaced v1alpha1',
      'cstorvolumes.openebs.io CStorVolume Namespaced v1alpha1',
      'runtasks.openebs.io RunTask Namespaced v1alpha1',
      'volumesnapshotdatas.volumesnapshot.external-storage.k8s.io VolumeSnapshotData Cluster v1',
      'volumesnapshots.volumesnapshot.external-storage.k8s.io VolumeSnapshot Namespaced v1',
    ]);
  });

  for (const crd of crds) {
    it(`${crd.metadata.name}: apiextensions v1, structural, one storage version, printer columns`, () => {
      const doc = crd as unknown as Doc;
      expect(doc['apiVersion']).to.equal('apiextensions.k8s.io/v1');
      expect(doc['kind']).to.equal('CustomResourceDefinition');
      expect(crd.metadata.name).to.equal(`${crd.spec.names.plural}.${crd.spec.group}`);
      expect(crd.spec.versions.filter((v) => v.storage)).to.have.length(1);
      for (const v of crd.spec.versions) {
        expect(v.served).to.equal(true);
        expect(structuralProblems(v.schema.openAPIV3Schema)).to.deep.equal([]);
        const columns = v.additionalPrinterColumns ?? [];
        expect(columns.map((c) => c.name)).to.include('Age');
        for (const c of columns) {
          expect(c.jsonPath, c.name).to.match(/^\./);
          expect(['string', 'integer', 'number', 'boolean', 'date']).to.include(c.type);
        }
      }
    });
  }

  it('cStor objects have a status subresource and Phase / Capacity columns', () => {
    for (const kind of ['CStorPool', 'CStorVolume', 'CStorVolumeReplica']) {
      const crd = crds.find((c) => c.spec.names.kind === kind) as Crd;
      const v = crd.spec.versions[0] as Crd['spec']['versions'][number];
      expect(v.subresources?.status, kind).to.deep.equal({});
      expect((v.additionalPrinterColumns ?? []).map((c) => c.name), kind).to.include.members(['Phase', 'Capacity', 'Age']);
    }
    const cv = crds.find((c) => c.spec.names.kind === 'CStorVolume') as Crd;
    expect((cv.spec.versions[0]?.additionalPrinterColumns ?? []).map((c) => c.name)).to.include('Replicas');
  });

  it('the schema checker catches what it should', () => {
    expect(structuralProblems({ type: 'object', properties: { a: {} } })).to.deep.equal(['openAPIV3Schema.properties.a: has no type']);
    expect(valueProblems({ type: 'object', properties: { a: { type: 'string' } } }, { a: 1, b: 2 })).to.deep.equal([
      '.a: must be a string, got 1',
      '.b: unknown field (the API server would prune it)',
    ]);
  });

  it('every CAS template object fits its CRD and loads with its tasks', async () => {
    const objects = await loadTemplateObjects();
    expect(objects.length).to.be.greaterThan(30);
    for (const o of objects) {
      expect(valueProblems(crdSchema(o.kind), o), `${o.kind} ${String(o.metadata.name)}`).to.deep.equal([]);
    }
    const templates = objects.filter((o) => o.kind === 'CASTemplate').map((o) => o.metadata.name).sort();
    expect(templates).to.deep.equal([
      'cstor-snapshot-create-default',
      'cstor-snapshot-delete-default',
      'cstor-snapshot-list-default',
      'cstor-snapshot-read-default',
      'cstor-volume-clone-default',
      'cstor-volume-create-default',
      'cstor-volume-delete-default',
      'cstor-volume-list-default',
      'cstor-volume-read-default',
    ]);
  });
});
