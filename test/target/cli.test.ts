// `cstor target` as a command: help, and bad flags refused with every problem named.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { cstorBin, repoRoot } from '../support/daemon.ts';

function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cstorBin, 'target', ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('cstor target (command line)', () => {
  it('--help prints the options and the mgmt routes', () => {
    const r = run(['--help']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.match(/^Usage: cstor target \[options\]/);
    for (const flag of ['--iscsi HOST:PORT', '--mgmt HOST:PORT', '--data-dir DIR']) expect(r.stdout).to.include(flag);
    expect(r.stdout).to.include('PUT/GET/DELETE /v1/volumes/VOLUME');
  });

  it('refuses bad flags with exit code 2, naming every problem', () => {
    const r = run(['--iscsi', 'nope', '--replica-timeout', '5', '--log-format', 'xml']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include('--iscsi: "nope" is not HOST:PORT');
    expect(r.stderr).to.include('--replica-timeout "5" must be an integer number of ms');
    expect(r.stderr).to.include('--log-format must be json or text');
    const unknown = run(['--bogus']);
    expect(unknown.code).to.equal(2);
    expect(unknown.stderr).to.match(/bogus/);
  });
});
