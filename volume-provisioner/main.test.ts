// `cstor volume-provisioner` flags and env → the frozen config, every problem listed at once.
import { expect } from 'chai';
import { CstorError } from '../lib/errors.ts';
import { volumeProvisionerConfig } from './main.ts';

describe('cstor volume-provisioner: config', () => {
  it('MAPI_ADDR and OPENEBS_NAMESPACE from env; leader election on by default', () => {
    const c = volumeProvisionerConfig(['--identity', 'me'], { MAPI_ADDR: 'http://10.0.0.9:5656', OPENEBS_NAMESPACE: 'storage' });
    expect(c).to.deep.include({ mapiAddr: 'http://10.0.0.9:5656', namespace: 'storage', leaderElect: true, leaseDurationMs: 15000, identity: 'me', workers: 4 });
  });

  it('without MAPI_ADDR: no address (the Service is looked up at run time)', () => {
    const c = volumeProvisionerConfig(['--leader-elect', 'false', '--metrics', '127.0.0.1:0'], {});
    expect(c?.mapiAddr).to.equal(undefined);
    expect(c).to.deep.include({ leaderElect: false, metrics: { host: '127.0.0.1', port: 0 }, namespace: 'openebs' });
  });

  it('lists every problem at once', () => {
    expect(() => volumeProvisionerConfig(['--leader-elect', 'maybe', '--workers', '0', '--lease-duration', '1', '--metrics', 'x'], {})).to.throw(
      CstorError,
      /--metrics: "x" is not HOST:PORT; --leader-elect "maybe" is not true or false; --lease-duration "1" .*; --workers "0"/,
    );
  });
});
