import { expect } from 'chai';
import { CstorError, describeError, hasErrorCode, httpStatusFor, toCstorError } from './errors.ts';

describe('lib/errors', () => {
  it('keeps code, retryable default and cause', () => {
    const cause = new Error('disk on fire');
    const err = new CstorError('unavailable', 'pool p1 is down', { cause });
    expect(err.code).to.equal('unavailable');
    expect(err.retryable).to.equal(true);
    expect(err.cause).to.equal(cause);
    expect(hasErrorCode(err, 'unavailable', 'timeout')).to.equal(true);
    expect(hasErrorCode(err, 'invalid')).to.equal(false);
    expect(describeError(err)).to.equal('pool p1 is down: caused by: disk on fire');
  });
  it('wraps foreign errors and maps codes to HTTP statuses', () => {
    const wrapped = toCstorError(new TypeError('x is undefined'), 'internal', 'reconcile');
    expect(wrapped.code).to.equal('internal');
    expect(wrapped.message).to.equal('reconcile: x is undefined');
    expect(httpStatusFor('not_found')).to.equal(404);
    expect(httpStatusFor('not_ready')).to.equal(409);
    expect(httpStatusFor('invalid')).to.equal(400);
  });
});
