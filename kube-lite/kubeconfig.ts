// The bearer token (generated once, kept in DIR/token) and the kubeconfig kube-lite writes for
// kubectl and @kubernetes/client-node (DIR/kubeconfig, context "kube-lite").
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

export async function loadOrCreateToken(dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'token');
  if (fs.existsSync(file)) {
    const t = (await fsp.readFile(file, 'utf8')).trim();
    if (t) return t;
  }
  const token = randomBytes(24).toString('base64url');
  await fsp.writeFile(`${file}.tmp`, `${token}\n`, { mode: 0o600 });
  await fsp.rename(`${file}.tmp`, file);
  return token;
}

export function kubeconfigYaml(server: string, token: string, caPem: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    '# kube-lite: a development Kubernetes API server (not for production).',
    'clusters:',
    '- name: kube-lite',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${Buffer.from(caPem).toString('base64')}`,
    'users:',
    '- name: kube-lite',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: kube-lite',
    '  context:',
    '    cluster: kube-lite',
    '    user: kube-lite',
    '    namespace: default',
    'current-context: kube-lite',
    'preferences: {}',
    '',
  ].join('\n');
}

export async function writeKubeconfig(dataDir: string, server: string, token: string, caPem: string): Promise<string> {
  const file = path.join(dataDir, 'kubeconfig');
  await fsp.writeFile(`${file}.tmp`, kubeconfigYaml(server, token, caPem), { mode: 0o600 });
  await fsp.rename(`${file}.tmp`, file);
  return file;
}
