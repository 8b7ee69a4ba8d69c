// An m-apiserver answer describing another volume (name or IQN) is refused: a PV built from it
// would send the claim's IO to someone else's volume. Both provisioners use the same check.
import { expect } from 'chai';
import { CstorError } from '../lib/errors.ts';
import type { CasVolume, CasVolumeRequest } from '../lib/maya-client/types.ts';
import { testClaim, testClass } from '../lib/provisioner/fakes.ts';
import { checkVolumeAnswer, IscsiVolumeProvisioner } from './provisioner.ts';

function answer(name: string, iqn?: string): CasVolume {
  return { metadata: { name }, spec: { ...(iqn ? { iqn } : {}), targetPortal: '10.0.0.5:3260' }, status: { Phase: 'Healthy' } };
}

describe('volume-provisioner: the m-apiserver answer must be the volume asked for', () => {
  it('refuses an answer naming another volume, before any PV part is built', async () => {
    const requests: CasVolumeRequest[] = [];
    const p = new IscsiVolumeProvisioner({
      createVolume: async (req) => {
        requests.push(req);
        return answer('pvc-someone-else');
      },
      deleteVolume: async () => undefined,
    });
    const claim = testClaim('data', { provisioner: p.name });
    let caught: unknown;
    try {
      await p.provision({ claim, storageClass: testClass('sc', p.name), pvName: 'pvc-123', capacity: '1G' });
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(CstorError);
    expect((caught as CstorError).code).to.equal('protocol');
    expect((caught as CstorError).message).to.equal('m-apiserver answered volume pvc-someone-else for a volume named pvc-123');
    expect(requests).to.have.length(1);
  });

  it('refuses an answer whose IQN is another volume\'s; accepts its own name and IQN, or none', () => {
    expect(() => checkVolumeAnswer(answer('pvc-123', 'iqn.2016-09.com.openebs.cstor:pvc-9'), 'pvc-123')).to.throw(
      CstorError,
      'm-apiserver answered IQN iqn.2016-09.com.openebs.cstor:pvc-9 for volume pvc-123 (expected iqn.2016-09.com.openebs.cstor:pvc-123)',
    );
    expect(() => checkVolumeAnswer(answer('pvc-123', 'iqn.2016-09.com.openebs.cstor:pvc-123'), 'pvc-123')).to.not.throw();
    expect(() => checkVolumeAnswer({ metadata: { name: '' }, spec: { targetPortal: '10.0.0.5:3260' } }, 'pvc-123')).to.not.throw();
  });
});
