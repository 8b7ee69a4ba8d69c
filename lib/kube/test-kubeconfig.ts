// Writes a kubeconfig for a test API server (plain HTTP on loopback, bearer token).
import fs from 'node:fs';
import path from 'node:path';

export function writeTestKubeconfig(file: string, options: { server: string; token: string; namespace?: string }): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const ns = options.namespace ? `\n    namespace: ${options.namespace}` : '';
  fs.writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: ${options.server}
    insecure-skip-tls-verify: true
users:
- name: test
  user:
    token: ${options.token}
contexts:
- name: test
  context:
    cluster: test
    user: test${ns}
current-context: test
`,
  );
}
