// The serving certificate: self-signed (self-signed.ts, node:crypto only), generated once per
// data directory (DIR/tls.crt, DIR/tls.key) and put in the kubeconfig as
// certificate-authority-data.
// Why TLS: kubectl (client-go) does not send a bearer token over plain http, so a token-protected
// server must speak https for kubectl to work with no extra flags.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { selfSignedCertificate } from './self-signed.ts';

export interface TlsMaterial {
  cert: string;
  key: string;
}

export async function loadOrCreateTls(dataDir: string, hosts: string[]): Promise<TlsMaterial> {
  const certPath = path.join(dataDir, 'tls.crt');
  const keyPath = path.join(dataDir, 'tls.key');
  if (fs.existsSync(certPath) && fs.existsSync(keyPath)) {
    return { cert: await fsp.readFile(certPath, 'utf8'), key: await fsp.readFile(keyPath, 'utf8') };
  }
  const names = new Set(['127.0.0.1', '::1', 'localhost']);
  for (const h of hosts) if (h && h !== '0.0.0.0' && h !== '::') names.add(h);
  const { cert, key } = selfSignedCertificate('kube-lite', [...names]);
  await fsp.writeFile(`${keyPath}.tmp`, key, { mode: 0o600 });
  await fsp.writeFile(`${certPath}.tmp`, cert);
  await fsp.rename(`${keyPath}.tmp`, keyPath);
  await fsp.rename(`${certPath}.tmp`, certPath);
  return { cert, key };
}
