// CHAP authentication during login (RFC 7143 §12.1.3, RFC 1994) with MD5 (CHAP_A=5):
// response = MD5(identifier byte || secret || challenge).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export interface ChapCredentials {
  readonly user: string;
  readonly secret: string;
}

export interface ChapChallenge {
  readonly id: number;
  readonly challenge: Buffer;
}

export function newChallenge(): ChapChallenge {
  return { id: randomBytes(1)[0]!, challenge: randomBytes(16) };
}

export function chapResponse(id: number, secret: string, challenge: Buffer): Buffer {
  return createHash('md5').update(Buffer.from([id])).update(secret, 'utf8').update(challenge).digest();
}

/** Parses a CHAP binary value: 0x-prefixed hex or 0b-prefixed base64. */
export function parseChapBinary(v: string): Buffer | undefined {
  if (/^0[xX][0-9a-fA-F]+$/.test(v) && v.length % 2 === 0) return Buffer.from(v.slice(2), 'hex');
  if (/^0[bB][A-Za-z0-9+/=]+$/.test(v)) return Buffer.from(v.slice(2), 'base64');
  return undefined;
}

export function verifyChap(c: ChapChallenge, creds: ChapCredentials, user: string, response: string): boolean {
  const got = parseChapBinary(response);
  if (!got || user !== creds.user) return false;
  const want = chapResponse(c.id, creds.secret, c.challenge);
  return got.length === want.length && timingSafeEqual(got, want);
}
