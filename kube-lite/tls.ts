// The serving certificate: self-signed, generated once per data directory with the openssl
// command (DIR/tls.crt, DIR/tls.key), and put in the kubeconfig as certificate-authority-data.
// Why TLS: kubectl (client-go) does not send a bearer token over plain http, so a token-protected
// server must speak https for kubectl to work with no extra flags.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { CstorError } from '../lib/errors.ts';

const run = promisify(execFile);

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
  const names = new Set(['IP:127.0.0.1', 'IP:::1', 'DNS:localhost']);
  for (const h of hosts) if (h && h !== '0.0.0.0' && h !== '::') names.add(isIP(h) ? `IP:${h}` : `DNS:${h}`);
  const tmpCert = `${certPath}.tmp`;
  const tmpKey = `${keyPath}.tmp`;
  try {
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', tmpKey, '-out', tmpCert, '-days', '3650', '-subj', '/CN=kube-lite',
      '-addext', `subjectAltName=${[...names].join(',')}`,
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign',
      '-addext', 'extendedKeyUsage=serverAuth',
    ]);
  } catch (err) {
    throw new CstorError('unavailable', `cannot create the serving certificate with openssl (is the openssl command installed?): ${(err as Error).message}`, { cause: err, retryable: false });
  }
  await fsp.chmod(tmpKey, 0o600);
  await fsp.rename(tmpKey, keyPath);
  await fsp.rename(tmpCert, certPath);
  return { cert: await fsp.readFile(certPath, 'utf8'), key: await fsp.readFile(keyPath, 'utf8') };
}
