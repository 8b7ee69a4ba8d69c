import { expect } from 'chai';
import { hasErrorCode } from './errors.ts';
import { quantityBytes, replicaSize, tryQuantityBytes } from './quantity.ts';

describe('lib/quantity', () => {
  const cases: [string | number, bigint][] = [
    ['1073741824', 1073741824n],
    ['5G', 5_000_000_000n],
    ['5Gi', 5n << 30n],
    ['1.5Ti', 3n << 39n],
    ['1.5Ki', 1536n],
    ['500M', 500_000_000n],
    ['128974848', 128974848n],
    ['129e6', 129_000_000n],
    ['1E3', 1000n],
    ['2E', 2_000_000_000_000_000_000n],
    ['0.5', 1n],
    ['.5k', 500n],
    ['+7Mi', 7n << 20n],
    [' 8Mi ', 8n << 20n],
    [4096, 4096n],
    ['12345678901234567890', 12345678901234567890n],
  ];
  for (const [input, want] of cases) {
    it(`${JSON.stringify(input)} is ${want} bytes`, () => {
      expect(quantityBytes(input)).to.equal(want);
    });
  }

  const bad: unknown[] = ['', '   ', '5GB', '5 G', '-5G', '0', '0Gi', '5g', 'Gi', '1.2.3', 'e3', null, undefined, {}, -1, 0, Number.NaN, '1e1000'];
  for (const input of bad) {
    it(`refuses ${JSON.stringify(input) ?? String(input)} with a clear error`, () => {
      let err: unknown;
      try {
        quantityBytes(input);
      } catch (e) {
        err = e;
      }
      expect(hasErrorCode(err, 'invalid'), String(err)).to.equal(true);
      expect((err as Error).message).to.match(/capacity/);
    });
  }

  it('rounds up to the block size, never down', () => {
    expect(replicaSize('5G', 4096)).to.equal(5_000_003_584);
    expect(replicaSize('5G', 4096) % 4096).to.equal(0);
    expect(replicaSize('5Gi', 4096)).to.equal(5 * 2 ** 30);
    expect(replicaSize('1', 4096)).to.equal(4096);
    expect(replicaSize('4097', 512)).to.equal(4608);
  });

  it('refuses a size past 2^53 as too_large', () => {
    expect(() => replicaSize('100Ei', 4096)).to.throw(/too large/);
  });
});

describe('lib/quantity tryQuantityBytes', () => {
  const cases: [unknown, number | undefined][] = [
    ['5G', 5e9],
    ['1.5Gi', 1.5 * 2 ** 30],
    ['0', 0],
    [4096, 4096],
    ['lots', undefined],
    ['-1G', undefined],
    ['5 G', undefined],
    ['', undefined],
    ['100Ei', undefined],
  ];
  for (const [input, want] of cases) {
    it(`${JSON.stringify(input)} → ${String(want)}`, () => expect(tryQuantityBytes(input)).to.equal(want));
  }
});
