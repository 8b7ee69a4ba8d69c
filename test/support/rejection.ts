// The CstorError a promise rejects with; the test fails if it resolves or rejects with anything else.
import { expect } from 'chai';
import { CstorError } from '../../lib/errors.ts';

export async function rejection(p: Promise<unknown>): Promise<CstorError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(CstorError);
    return err as CstorError;
  }
  return expect.fail('expected a rejection');
}
