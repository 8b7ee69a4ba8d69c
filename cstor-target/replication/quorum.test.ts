import { expect } from 'chai';
import { consistencyFactor, degradedQuorum, isAcked, isReady, phaseOf } from './quorum.ts';

describe('replication rules (quorum.ts)', () => {
  it('CF = floor(RF/2)+1 and the degraded quorum max(RF-CF+1, CF)', () => {
    const table = [
      { rf: 1, cf: 1, dq: 1 },
      { rf: 2, cf: 2, dq: 2 },
      { rf: 3, cf: 2, dq: 2 },
      { rf: 4, cf: 3, dq: 3 },
      { rf: 5, cf: 3, dq: 3 },
    ];
    for (const { rf, cf, dq } of table) {
      expect(consistencyFactor(rf), `CF of RF ${rf}`).to.equal(cf);
      expect(degradedQuorum(rf), `degraded quorum of RF ${rf}`).to.equal(dq);
    }
  });

  it('readiness and phase for healthy/degraded mixes, RF 1..5', () => {
    const table: { rf: number; h: number; d: number; phase: string }[] = [
      { rf: 1, h: 1, d: 0, phase: 'Healthy' },
      { rf: 1, h: 0, d: 1, phase: 'Degraded' },
      { rf: 1, h: 0, d: 0, phase: 'Offline' },
      { rf: 2, h: 2, d: 0, phase: 'Healthy' },
      { rf: 2, h: 1, d: 1, phase: 'Degraded' },
      { rf: 2, h: 1, d: 0, phase: 'Offline' },
      { rf: 2, h: 0, d: 2, phase: 'Degraded' },
      { rf: 2, h: 0, d: 1, phase: 'Offline' },
      { rf: 3, h: 3, d: 0, phase: 'Healthy' },
      { rf: 3, h: 2, d: 0, phase: 'Healthy' },
      { rf: 3, h: 2, d: 1, phase: 'Healthy' },
      { rf: 3, h: 1, d: 1, phase: 'Degraded' },
      { rf: 3, h: 1, d: 2, phase: 'Degraded' },
      { rf: 3, h: 1, d: 0, phase: 'Offline' },
      { rf: 3, h: 0, d: 2, phase: 'Degraded' },
      { rf: 3, h: 0, d: 1, phase: 'Offline' },
      { rf: 4, h: 4, d: 0, phase: 'Healthy' },
      { rf: 4, h: 3, d: 0, phase: 'Healthy' },
      { rf: 4, h: 2, d: 1, phase: 'Degraded' },
      { rf: 4, h: 2, d: 0, phase: 'Offline' },
      { rf: 4, h: 1, d: 1, phase: 'Offline' },
      { rf: 4, h: 0, d: 3, phase: 'Degraded' },
      { rf: 4, h: 0, d: 2, phase: 'Offline' },
      { rf: 5, h: 5, d: 0, phase: 'Healthy' },
      { rf: 5, h: 3, d: 0, phase: 'Healthy' },
      { rf: 5, h: 2, d: 1, phase: 'Degraded' },
      { rf: 5, h: 1, d: 2, phase: 'Degraded' },
      { rf: 5, h: 2, d: 0, phase: 'Offline' },
      { rf: 5, h: 0, d: 3, phase: 'Degraded' },
      { rf: 5, h: 0, d: 2, phase: 'Offline' },
    ];
    for (const { rf, h, d, phase } of table) {
      expect(phaseOf(rf, h, d), `RF ${rf} healthy ${h} degraded ${d}`).to.equal(phase);
      expect(isReady(rf, h, d), `ready RF ${rf} healthy ${h} degraded ${d}`).to.equal(phase !== 'Offline');
      if (phase === 'Offline') expect(phaseOf(rf, h, d, false)).to.equal('Init');
    }
  });

  it('write acknowledgement: healthy OKs >= CF or total OKs >= max(RF-CF+1, CF)', () => {
    const table: { rf: number; hOk: number; tOk: number; acked: boolean }[] = [
      { rf: 1, hOk: 1, tOk: 1, acked: true },
      { rf: 1, hOk: 0, tOk: 1, acked: true },
      { rf: 1, hOk: 0, tOk: 0, acked: false },
      { rf: 2, hOk: 1, tOk: 1, acked: false },
      { rf: 2, hOk: 1, tOk: 2, acked: true },
      { rf: 2, hOk: 0, tOk: 2, acked: true },
      { rf: 3, hOk: 2, tOk: 2, acked: true },
      { rf: 3, hOk: 1, tOk: 2, acked: true },
      { rf: 3, hOk: 1, tOk: 1, acked: false },
      { rf: 3, hOk: 0, tOk: 2, acked: true },
      { rf: 4, hOk: 3, tOk: 3, acked: true },
      { rf: 4, hOk: 2, tOk: 3, acked: true },
      { rf: 4, hOk: 2, tOk: 2, acked: false },
      { rf: 5, hOk: 3, tOk: 3, acked: true },
      { rf: 5, hOk: 1, tOk: 3, acked: true },
      { rf: 5, hOk: 2, tOk: 2, acked: false },
    ];
    for (const { rf, hOk, tOk, acked } of table) {
      expect(isAcked(rf, hOk, tOk), `RF ${rf} healthy ok ${hOk} total ok ${tOk}`).to.equal(acked);
    }
  });
});
