import { expect } from 'chai';
import { silentLogger } from '../lib/logger.ts';
import { FakeClock } from '../lib/kube/fake-clock.ts';
import type { CustomResourceDefinition } from '../lib/kube/types/crd.ts';
import { CstorError } from '../lib/errors.ts';
import { builtinCrd, defaultCrdDir, ensureSnapshotCrds, loadCrd, snapshotCrdNames } from './crds.ts';
import type { VolumeSnapshot } from '../lib/kube/types/volume-snapshot.ts';
import { snapshotUpdateMatters } from './controller.ts';
import { buildConfig } from './main.ts';
import { isCstorVolume, nanosOfSnapshotId, parseClaimRef, snapshotDataName, snapshotId, uuidFromUid, volumeSnapshotRefName } from './naming.ts';

describe('snapshot-controller naming', () => {
  it('formats ids, data names and refs as DESIGN.md §3 says', () => {
    const id = snapshotId('pvc-1', 'snap', 1_767_323_045_123_456_789n);
    expect(id).to.equal('pvc-1_snap_1767323045123456789');
    expect(nanosOfSnapshotId(id)).to.equal('1767323045123456789');
    const uid = '6f1c2a4e-0000-4000-8000-000000000001';
    expect(snapshotDataName(uid)).to.equal(snapshotDataName(uid));
    expect(snapshotDataName(uid)).to.not.equal(snapshotDataName(uid.replace(/1$/, '2')));
    expect(uuidFromUid(uid)).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(volumeSnapshotRefName({ metadata: { name: 's', namespace: 'ns', uid }, spec: { persistentVolumeClaimName: 'c' } })).to.equal(`ns/s-${uid}`);
  });

  it('parses claim references, refusing other namespaces', () => {
    expect(parseClaimRef('c', 'ns')).to.deep.equal({ namespace: 'ns', name: 'c' });
    expect(parseClaimRef('ns/c', 'ns')).to.deep.equal({ namespace: 'ns', name: 'c' });
    expect(parseClaimRef('other/c', 'ns')).to.deep.equal({ crossNamespace: 'other' });
    expect(parseClaimRef('', 'ns')).to.equal(undefined);
  });

  it('knows a cStor iSCSI volume', () => {
    const iscsi = { targetPortal: '1.2.3.4:3260', iqn: 'iqn.2016-09.com.openebs.cstor:pv', lun: 0 };
    expect(isCstorVolume({ metadata: {}, spec: { iscsi } })).to.equal(true);
    expect(isCstorVolume({ metadata: {}, spec: { iscsi: { ...iscsi, iqn: 'iqn.2003-01.org.linux:x' } } })).to.equal(false);
    expect(isCstorVolume({ metadata: { labels: { 'openebs.io/cas-type': 'cstor' } }, spec: { iscsi: { ...iscsi, iqn: 'iqn.x:y' } } })).to.equal(true);
    expect(isCstorVolume({ metadata: { labels: { 'openebs.io/cas-type': 'cstor' } }, spec: {} })).to.equal(false);
  });
});

describe('snapshot-controller CRDs and config', () => {
  it('loads both CRDs from deploy/crds with the right scope and a status subresource', () => {
    for (const name of snapshotCrdNames) {
      for (const crd of [loadCrd(name, defaultCrdDir, silentLogger()), builtinCrd(name)]) {
        expect(crd.metadata.name).to.equal(name);
        expect(crd.spec.scope).to.equal(name.startsWith('volumesnapshots.') ? 'Namespaced' : 'Cluster');
        expect(crd.spec.versions[0]).to.deep.include({ name: 'v1', served: true, storage: true });
        expect(crd.spec.versions[0]?.subresources?.status).to.deep.equal({});
      }
    }
  });

  it('creates absent CRDs and waits until they are Established', async () => {
    const stored = new Map<string, CustomResourceDefinition>();
    const created: string[] = [];
    const clock = new FakeClock();
    stored.set(snapshotCrdNames[0], { ...builtinCrd(snapshotCrdNames[0]), status: { conditions: [{ type: 'Established', status: 'True' }] } });
    const client = {
      get: async (ref: { name: string }) => {
        const c = stored.get(ref.name);
        if (!c) throw new CstorError('not_found', `${ref.name} not found`);
        return c;
      },
      create: async (crd: CustomResourceDefinition) => {
        created.push(crd.metadata.name!);
        stored.set(crd.metadata.name!, crd);
        clock.setTimer(() => stored.set(crd.metadata.name!, { ...crd, status: { conditions: [{ type: 'Established', status: 'True' }] } }), 250);
        return crd;
      },
    };
    let done = false;
    const p = ensureSnapshotCrds({ client, logger: silentLogger(), clock, dir: '/nonexistent' }).then(() => (done = true));
    await clock.advance(150);
    expect(done).to.equal(false);
    await clock.advance(400);
    await p;
    expect(created).to.deep.equal([snapshotCrdNames[1]]);
  });

  it('builds a config from flags and env, listing every problem', () => {
    const base = { kubeconfig: undefined, namespace: undefined, 'mapi-addr': undefined, metrics: undefined, 'leader-elect': 'true', 'lease-name': 'snapshot-controller', 'lease-duration': '15', identity: 'me', workers: '16', 'log-level': undefined };
    const c = buildConfig(base, { OPENEBS_NAMESPACE: 'storage', MAPI_ADDR: 'http://10.0.0.1:5656' });
    expect(c).to.deep.include({ namespace: 'storage', mapiAddr: 'http://10.0.0.1:5656', leaderElect: true, leaseDurationMs: 15_000, workers: 16, identity: 'me' });
    expect(buildConfig({ ...base, 'mapi-addr': 'x:1' }, { MAPI_ADDR: 'y:2' }).mapiAddr).to.equal('x:1');
    expect(buildConfig(base, {}).namespace).to.equal('openebs');
    expect(() => buildConfig({ ...base, 'leader-elect': 'maybe', workers: '0', metrics: 'nope' }, {})).to.throw(CstorError, /--leader-elect: "maybe".*--workers: "0".*--metrics: "nope"/);
  });
});

describe('snapshot-controller wiring', () => {
  it('re-reconciles on spec, metadata, deletion and resync, not on status-only writes', () => {
    const base: VolumeSnapshot = { metadata: { name: 's', namespace: 'ns', uid: 'u', resourceVersion: '1', generation: 1 }, spec: { persistentVolumeClaimName: 'c' } };
    const cases: [string, VolumeSnapshot, boolean][] = [
      ['periodic resync (same resourceVersion)', base, true],
      ['status only', { ...base, metadata: { ...base.metadata, resourceVersion: '2' }, status: { conditions: [{ type: 'Ready', status: 'True' }] } }, false],
      ['spec', { ...base, metadata: { ...base.metadata, resourceVersion: '2', generation: 2 }, spec: { persistentVolumeClaimName: 'd' } }, true],
      ['deletion', { ...base, metadata: { ...base.metadata, resourceVersion: '2', deletionTimestamp: '2026-01-01T00:00:00Z' } }, true],
      ['finalizers', { ...base, metadata: { ...base.metadata, resourceVersion: '2', finalizers: ['x'] } }, true],
    ];
    for (const [what, next, expected] of cases) expect(snapshotUpdateMatters(base, next), what).to.equal(expected);
  });
});
