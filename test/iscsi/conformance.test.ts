// libiscsi's iscsi-test-cu ALL list against our portal and Debian's tgtd in one run: ours must
// pass at least as many tests as tgtd. The runner is bench/iscsi/conformance.ts (usable by hand).
import { expect } from 'chai';
import { formatResult, runConformance } from '../../bench/iscsi/conformance.ts';

describe('iSCSI conformance (iscsi-test-cu ALL, ours vs tgtd)', function () {
  this.timeout(360_000);

  it('passes at least as many iscsi-test-cu tests as tgtd', async () => {
    const { ours, tgtd } = await runConformance({ suiteTimeoutSec: 90 });
    console.log(`      ${formatResult(ours).replace(/\n/g, '\n      ')}`);
    console.log(`      ${formatResult(tgtd!).replace(/\n/g, '\n      ')}`);
    expect(ours.total).to.be.greaterThan(200);
    expect(tgtd!.passed, 'tgtd ran the suite').to.be.greaterThan(150);
    expect(ours.passed).to.be.at.least(tgtd!.passed);
  });
});
