import { expect } from 'chai';
import { kubeApiError, kubeNetworkError } from './api-errors.ts';

function statusBody(code: number, reason: string, message: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message, ...extra });
}

describe('kube api errors', () => {
  const table: [number, string, string][] = [
    [404, 'NotFound', 'not_found'],
    [409, 'AlreadyExists', 'already_exists'],
    [409, 'Conflict', 'conflict'],
    [410, 'Expired', 'gone'],
    [422, 'Invalid', 'invalid'],
    [400, 'BadRequest', 'invalid'],
    [401, 'Unauthorized', 'unauthorized'],
    [403, 'Forbidden', 'unauthorized'],
    [500, 'InternalError', 'unavailable'],
    [503, 'ServiceUnavailable', 'unavailable'],
    [429, 'TooManyRequests', 'unavailable'],
  ];
  for (const [http, reason, code] of table) {
    it(`maps ${http} ${reason} to ${code}, keeping reason and message`, () => {
      const err = kubeApiError('get things ns/a', http, statusBody(http, reason, `the message for ${reason}`));
      expect(err.code).to.equal(code);
      expect(err.message).to.equal(`get things ns/a: ${http} ${reason}: the message for ${reason}`);
      expect(err.details).to.include({ httpStatus: http, reason });
    });
  }

  it('keeps field causes of a 422', () => {
    const causes = [{ reason: 'FieldValueInvalid', field: 'metadata.name', message: 'a lowercase RFC 1123 subdomain' }];
    const err = kubeApiError('create things', 422, statusBody(422, 'Invalid', 'Thing "A" is invalid', { details: { causes } }));
    expect(err.details.causes).to.deep.equal(causes);
    expect(err.retryable).to.equal(false);
  });

  it('reports a non-Status body as text and marks network failures unavailable and retryable', () => {
    const err = kubeApiError('list things', 502, '<html>bad gateway</html>');
    expect(err.code).to.equal('unavailable');
    expect(err.message).to.contain('bad gateway');
    const net = kubeNetworkError('watch things', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }));
    expect(net.code).to.equal('unavailable');
    expect(net.retryable).to.equal(true);
    expect(net.details).to.deep.equal({ errno: 'ECONNREFUSED' });
  });
});
