// What the layer store's unit tests share.
import { expect } from 'chai';
import { hasErrorCode, type ErrorCode } from '../../lib/errors.ts';

export const KiB = 1024;
export const MiB = 1024 * KiB;

export function fill(byte: number, len: number): Buffer {
  return Buffer.alloc(len, byte);
}

/** Expects `p` to reject with a CstorError of `code`. */
export async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect(hasErrorCode(err, code), String(err)).to.equal(true);
    return;
  }
  expect.fail(`expected a ${code} error`);
}
