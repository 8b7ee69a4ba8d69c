import { expect } from 'chai';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { oid, selfSignedCertificate } from './self-signed.ts';

describe('kube-lite self-signed certificate', () => {
  it('encodes OIDs as DER', () => {
    expect(oid('1.2.840.10045.4.3.2').toString('hex')).to.equal('06082a8648ce3d040302');
    expect(oid('2.5.29.17').toString('hex')).to.equal('0603551d11');
  });

  it('builds a CA certificate with the SANs, signed by its own key', () => {
    const { cert, key } = selfSignedCertificate('kube-lite', ['127.0.0.1', '::1', 'localhost']);
    const x = new X509Certificate(cert);
    expect(x.subject).to.equal('CN=kube-lite');
    expect(x.issuer).to.equal('CN=kube-lite');
    expect(x.ca).to.equal(true);
    expect(x.subjectAltName).to.equal('IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:localhost');
    expect(x.verify(x.publicKey)).to.equal(true);
    expect(x.checkPrivateKey(createPrivateKey(key))).to.equal(true);
    expect(new Date(x.validTo).getTime()).to.be.greaterThan(Date.now() + 365 * 86400_000);
  });

  it('is accepted by a TLS client that trusts it as its CA', async () => {
    const { cert, key } = selfSignedCertificate('kube-lite', ['127.0.0.1']);
    const server = https.createServer({ cert, key }, (_req, res) => res.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const body = await new Promise<string>((resolve, reject) => {
        https.get({ host: '127.0.0.1', port, path: '/', ca: cert }, (res) => {
          let s = '';
          res.on('data', (c: Buffer) => (s += c.toString()));
          res.on('end', () => resolve(s));
        }).on('error', reject);
      });
      expect(body).to.equal('ok');
    } finally {
      server.close();
    }
  });
});
