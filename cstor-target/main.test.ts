// The target daemon's config: read stickiness comes from the environment, read only here.
import { expect } from 'chai';
import { targetConfig } from './main.ts';

const base = ['--iscsi', '127.0.0.1:0', '--mgmt', '127.0.0.1:0'];

describe('cstor target: config', () => {
  it('takes read stickiness from $CSTOR_TARGET_READ_STICKINESS (a whole number > 0), else 0', () => {
    expect(targetConfig(base, {})?.readStickiness).to.equal(0);
    expect(targetConfig(base, { CSTOR_TARGET_READ_STICKINESS: '32' })?.readStickiness).to.equal(32);
    expect(targetConfig(base, { CSTOR_TARGET_READ_STICKINESS: '-3' })?.readStickiness).to.equal(0);
    expect(targetConfig(base, { CSTOR_TARGET_READ_STICKINESS: '2.5' })?.readStickiness).to.equal(0);
  });
});
