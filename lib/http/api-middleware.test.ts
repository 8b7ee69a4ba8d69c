import { expect } from 'chai';
import { CstorError } from '../errors.ts';
import { toApiError } from './api-middleware.ts';

function httpError(message: string, props: Record<string, unknown>): Error {
  return Object.assign(new Error(message), props);
}

describe('http/api-middleware toApiError', () => {
  it('keeps a CstorError as it is', () => {
    const e = new CstorError('not_found', 'volume v is not served');
    expect(toApiError(e)).to.equal(e);
  });

  it('maps body-parser errors by type: malformed JSON, too large, other body problems', () => {
    expect(toApiError(httpError('Unexpected token', { type: 'entity.parse.failed', status: 400 }))).to.include({ code: 'invalid', message: 'malformed JSON body: Unexpected token' });
    expect(toApiError(httpError('request entity too large', { type: 'entity.too.large', status: 413 }))).to.include({ code: 'too_large' });
    expect(toApiError(httpError('unsupported charset "LATIN9"', { type: 'charset.unsupported', status: 415 }))).to.include({ code: 'invalid' });
  });

  it('maps other client errors express raises (a 4xx status, e.g. bad percent-encoding in a path) to invalid, not 500', () => {
    const e = toApiError(httpError("Failed to decode param '%E0%A4%A'", { status: 400 }));
    expect(e).to.include({ code: 'invalid', message: "bad request: Failed to decode param '%E0%A4%A'" });
    expect(toApiError(httpError('too big', { status: 413 })).code).to.equal('too_large');
  });

  it('anything else is internal, with the cause chain in the message', () => {
    const e = toApiError(new Error('boom', { cause: new Error('root') }));
    expect(e.code).to.equal('internal');
    expect(e.message).to.equal('boom: caused by: root');
    expect(toApiError(httpError('server side', { status: 503 })).code).to.equal('internal');
    expect(toApiError('a string').code).to.equal('internal');
    expect(toApiError(null).code).to.equal('internal');
  });
});
