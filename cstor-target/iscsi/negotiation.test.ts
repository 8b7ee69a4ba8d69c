import { expect } from 'chai';
import { defaultTargetLimits, negotiateOperational, rfcDefaults } from './negotiation.ts';
import type { KeyValues } from './text-keys.ts';
import { decodeKeys, encodeKeys } from './text-keys.ts';

function run(offered: KeyValues, discovery = false) {
  const params = rfcDefaults(defaultTargetLimits);
  const r = negotiateOperational(offered, params, defaultTargetLimits, discovery);
  return { params, answers: Object.fromEntries(r.answers), errors: r.errors };
}

describe('iSCSI operational negotiation', () => {
  const cases: Array<{ name: string; offered: KeyValues; answers: Record<string, string>; check?: (p: ReturnType<typeof run>['params']) => void }> = [
    { name: 'digests: first supported choice', offered: [['HeaderDigest', 'CRC32C,None'], ['DataDigest', 'None']], answers: { HeaderDigest: 'CRC32C', DataDigest: 'None' }, check: (p) => expect(p.headerDigest).to.equal(true) },
    { name: 'InitialR2T is an OR', offered: [['InitialR2T', 'Yes']], answers: { InitialR2T: 'Yes' } },
    { name: 'ImmediateData is an AND', offered: [['ImmediateData', 'No']], answers: { ImmediateData: 'No' } },
    { name: 'burst lengths take the minimum', offered: [['MaxBurstLength', '16777215'], ['FirstBurstLength', '4096']], answers: { MaxBurstLength: String(defaultTargetLimits.maxBurstLength), FirstBurstLength: '4096' }, check: () => undefined },
    { name: 'MaxConnections is 1', offered: [['MaxConnections', '8']], answers: { MaxConnections: '1' } },
    { name: 'ErrorRecoveryLevel is 0', offered: [['ErrorRecoveryLevel', '2']], answers: { ErrorRecoveryLevel: '0' } },
    { name: 'DefaultTime2Wait takes the maximum, Time2Retain the minimum', offered: [['DefaultTime2Wait', '0'], ['DefaultTime2Retain', '20']], answers: { DefaultTime2Wait: '2', DefaultTime2Retain: '0' } },
    { name: 'unknown keys are NotUnderstood', offered: [['X-com.example.Foo', '1']], answers: { 'X-com.example.Foo': 'NotUnderstood' } },
    { name: 'markers are off', offered: [['IFMarker', 'Yes'], ['OFMarkInt', '1~65535']], answers: { IFMarker: 'No', OFMarkInt: 'Irrelevant' } },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = run(c.offered);
      expect(r.errors).to.deep.equal([]);
      expect(r.answers).to.include(c.answers);
      c.check?.(r.params);
    });
  }

  it("records the initiator's MaxRecvDataSegmentLength without answering it", () => {
    const r = run([['MaxRecvDataSegmentLength', '4096']]);
    expect(r.params.maxXmitDataSegmentLength).to.equal(4096);
    expect(r.answers).to.not.have.property('MaxRecvDataSegmentLength');
  });

  it('answers session keys Irrelevant in a discovery session', () => {
    expect(run([['InitialR2T', 'No'], ['MaxBurstLength', '4096']], true).answers).to.include({ InitialR2T: 'Irrelevant', MaxBurstLength: 'Irrelevant' });
  });

  it('rejects values outside their range', () => {
    const r = run([['MaxBurstLength', '12'], ['InitialR2T', 'maybe']]);
    expect(r.answers).to.include({ MaxBurstLength: 'Reject', InitialR2T: 'Reject' });
    expect(r.errors.map((e) => e.key)).to.deep.equal(['MaxBurstLength', 'InitialR2T']);
  });

  it('round-trips text keys and refuses a pair without "="', () => {
    expect(decodeKeys(encodeKeys([['A', '1'], ['B', 'x=y']]))).to.deep.equal([['A', '1'], ['B', 'x=y']]);
    expect(() => decodeKeys(Buffer.from('novalue\0'))).to.throw(/without "="/);
  });
});
