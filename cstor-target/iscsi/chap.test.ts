import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { chapResponse, newChallenge, parseChapBinary, verifyChap } from './chap.ts';

describe('CHAP (MD5)', () => {
  it('computes MD5(id || secret || challenge)', () => {
    const challenge = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const want = createHash('md5').update(Buffer.concat([Buffer.from([7]), Buffer.from('s3cret'), challenge])).digest();
    expect(chapResponse(7, 's3cret', challenge).equals(want)).to.equal(true);
  });

  it('verifies the right response and refuses a wrong user, secret or encoding', () => {
    const c = newChallenge();
    const creds = { user: 'u', secret: 'pw-123456789' };
    const good = `0x${chapResponse(c.id, creds.secret, c.challenge).toString('hex')}`;
    expect(verifyChap(c, creds, 'u', good)).to.equal(true);
    expect(verifyChap(c, creds, 'u', `0b${chapResponse(c.id, creds.secret, c.challenge).toString('base64')}`)).to.equal(true);
    expect(verifyChap(c, creds, 'other', good)).to.equal(false);
    expect(verifyChap(c, creds, 'u', `0x${chapResponse(c.id, 'wrong', c.challenge).toString('hex')}`)).to.equal(false);
    expect(verifyChap(c, creds, 'u', 'not-hex')).to.equal(false);
    expect(parseChapBinary('0xabc')).to.equal(undefined);
  });
});
