// `cstor mapi` flags and env → the frozen config, every problem listed at once.
import { expect } from 'chai';
import { CstorError } from '../lib/errors.ts';
import { mapiConfig } from './main.ts';

describe('cstor mapi: config', () => {
  it('takes flags, with env fallbacks and the target IP from the portal', () => {
    const c = mapiConfig(['--listen', '127.0.0.1:0', '--target-portal', '10.0.0.7:3260'], { TARGET_MGMT_ADDR: '10.0.0.7:9500', OPENEBS_NAMESPACE: 'storage' });
    expect(c).to.deep.include({ listen: { host: '127.0.0.1', port: 0 }, namespace: 'storage', targetIP: '10.0.0.7', targetPortal: '10.0.0.7:3260', targetMgmtAddress: '10.0.0.7:9500', install: true });
    expect(Object.isFrozen(c)).to.equal(true);
  });

  it('defaults: 0.0.0.0:5656, namespace openebs, no target addresses', () => {
    const c = mapiConfig([], {});
    expect(c).to.deep.include({ listen: { host: '0.0.0.0', port: 5656 }, namespace: 'openebs', install: true, httpTimeoutMs: 30000 });
    expect(c?.targetPortal).to.equal(undefined);
  });

  it('lists every problem at once', () => {
    let err: unknown;
    try {
      mapiConfig(['--listen', 'nope', '--target-mgmt', 'x', '--http-timeout', '5', '--log-format', 'xml'], {});
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(CstorError);
    const message = (err as CstorError).message;
    expect((err as CstorError).code).to.equal('invalid');
    expect(message).to.include('--listen: "nope" is not HOST:PORT');
    expect(message).to.include('--target-mgmt: "x" is not HOST:PORT');
    expect(message).to.include('--http-timeout "5"');
    expect(message).to.include('--log-format must be json or text');
  });

  it('--template-cache: off by default (reads at every run), watch on request, anything else refused', () => {
    expect(mapiConfig([], {})?.templateCache).to.equal('off');
    expect(mapiConfig(['--template-cache', 'watch'], {})?.templateCache).to.equal('watch');
    expect(() => mapiConfig(['--template-cache', 'always'], {})).to.throw(CstorError, '--template-cache "always" must be watch or off');
  });

  it('refuses unknown flags', () => {
    expect(() => mapiConfig(['--frob'], {})).to.throw(CstorError, /--frob/);
  });
});
