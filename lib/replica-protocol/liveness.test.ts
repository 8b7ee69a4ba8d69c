import { expect } from 'chai';
import { hardLimitFactor, replicaTimeoutVerdict } from './liveness.ts';

describe('replica timeout rule (liveness.ts)', () => {
  const T = 1000;
  const cases: [string, number, number, number, boolean][] = [
    // [what, now, sentAt, lastHeard, dead]
    ['young request, silent replica', 900, 0, 0, false],
    ['old request, replica heard recently (other replies or keepalives)', 5000, 0, 4500, false],
    ['old request, nothing heard for T', 5000, 0, 4000, true],
    ['request just T old, last frame T ago', 1000, 0, 0, true],
    ['request older than the hard limit, keepalives flowing', hardLimitFactor * T, 0, hardLimitFactor * T - 1, true],
    ['request just under the hard limit, keepalives flowing', hardLimitFactor * T - 1, 0, hardLimitFactor * T - 2, false],
  ];
  for (const [what, now, sentAt, lastHeard, dead] of cases) {
    it(`${what} → ${dead ? 'dead' : 'alive'}`, () => {
      expect(replicaTimeoutVerdict({ now, sentAt, lastHeard, timeoutMs: T }) !== null).to.equal(dead);
    });
  }
});
