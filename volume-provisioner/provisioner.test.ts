// The iSCSI provisioner over a fake m-apiserver client: the CASVolume it asks for, the PV
// parts it builds from the answer, and the delete it sends.
import { expect } from 'chai';
import { CstorError } from '../lib/errors.ts';
import type { PersistentVolume } from '../lib/kube/types/core.ts';
import type { CasVolume, CasVolumeRequest, VolumeScope } from '../lib/maya-client/types.ts';
import { testClaim, testClass } from '../lib/provisioner/fakes.ts';
import { pvPartsFor } from '../lib/provisioner/iscsi-pv.ts';
import { IscsiVolumeProvisioner } from './provisioner.ts';

class FakeMaya {
  readonly created: CasVolumeRequest[] = [];
  readonly deleted: Array<{ name: string; scope: VolumeScope }> = [];
  answer: (req: CasVolumeRequest) => CasVolume = (req) => ({
    metadata: { name: req.metadata.name },
    spec: { iqn: `iqn.2016-09.com.openebs.cstor:${req.metadata.name}`, targetPortal: '10.0.0.5:3260', targetIP: '10.0.0.5', targetPort: '3260', lun: 0, capacity: req.spec.capacity },
    status: { Phase: 'Healthy' },
  });
  async createVolume(req: CasVolumeRequest): Promise<CasVolume> {
    this.created.push(req);
    return this.answer(req);
  }
  async deleteVolume(name: string, scope: VolumeScope = {}): Promise<void> {
    this.deleted.push({ name, scope });
  }
}

describe('volume-provisioner: IscsiVolumeProvisioner', () => {
  it('asks m-apiserver for the CASVolume of DESIGN.md §4 and builds the iSCSI PV parts', async () => {
    const maya = new FakeMaya();
    const p = new IscsiVolumeProvisioner(maya);
    const claim = testClaim('data', { namespace: 'apps', provisioner: p.name });
    const parts = await p.provision({ claim, storageClass: testClass('openebs-cstor-default', p.name), pvName: 'pvc-123', capacity: '5G' });
    expect(maya.created).to.deep.equal([
      {
        metadata: {
          name: 'pvc-123',
          namespace: 'apps',
          labels: { 'openebs.io/storageclass': 'openebs-cstor-default', 'openebs.io/namespace': 'apps', 'openebs.io/persistentvolumeclaim': 'data' },
        },
        spec: { capacity: '5G' },
      },
    ]);
    expect(parts).to.deep.equal({
      labels: { 'openebs.io/cas-type': 'cstor', 'openebs.io/storageclass': 'openebs-cstor-default' },
      spec: { iscsi: { targetPortal: '10.0.0.5:3260', iqn: 'iqn.2016-09.com.openebs.cstor:pvc-123', lun: 0, fsType: 'ext4', readOnly: false } },
    });
  });

  it('takes fsType from the class parameters', async () => {
    const maya = new FakeMaya();
    const p = new IscsiVolumeProvisioner(maya);
    const sc = { ...testClass('x', p.name), parameters: { fsType: 'xfs' } };
    const parts = await p.provision({ claim: testClaim('d', { provisioner: p.name }), storageClass: sc, pvName: 'pvc-1', capacity: '1G' });
    expect(parts.spec.iscsi?.fsType).to.equal('xfs');
  });

  it('builds the portal from targetIP and targetPort when targetPortal is absent; refuses an answer without either', () => {
    expect(pvPartsFor({ metadata: { name: 'v' }, spec: { targetIP: '1.2.3.4', targetPort: '3261' } }, 'sc').spec.iscsi?.targetPortal).to.equal('1.2.3.4:3261');
    expect(pvPartsFor({ metadata: { name: 'v' }, spec: { targetIP: '1.2.3.4' } }, 'sc').spec.iscsi?.iqn).to.equal('iqn.2016-09.com.openebs.cstor:v');
    expect(() => pvPartsFor({ metadata: { name: 'v' }, spec: {} }, 'sc')).to.throw(CstorError, /answered volume v without spec.targetPortal or spec.targetIP/);
  });

  it('deletes the volume named after the PV, with the claim namespace and class as scope', async () => {
    const maya = new FakeMaya();
    const pv: PersistentVolume = { metadata: { name: 'pvc-9' }, spec: { storageClassName: 'sc', claimRef: { namespace: 'apps', name: 'data' } } };
    await new IscsiVolumeProvisioner(maya).delete(pv);
    expect(maya.deleted).to.deep.equal([{ name: 'pvc-9', scope: { namespace: 'apps', storageClass: 'sc' } }]);
  });
});
