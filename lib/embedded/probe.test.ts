import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { probeSubcommand } from './probe.ts';

const realBin = fileURLToPath(new URL('../../bin/cstor.js', import.meta.url));

describe('embedded/probe', () => {
  it('reads the flags a registered subcommand declares', () => {
    const kl = probeSubcommand(realBin, 'kube-lite');
    expect(kl.exists).to.equal(true);
    expect([...(kl.flags ?? [])]).to.include.members(['--listen', '--data-dir', '--history-size']);
    const pool = probeSubcommand(realBin, 'pool');
    expect([...(pool.flags ?? [])]).to.include.members(['--name', '--data-dir', '--listen', '--mgmt']);
    // …and those a main takes from the shared daemonOptions (lib/cli/daemon-options.ts).
    for (const sub of ['pool', 'target', 'mapi']) {
      expect([...(probeSubcommand(realBin, sub).flags ?? [])], sub).to.include.members(['--kubeconfig', '--log-level', '--log-format', '--namespace']);
    }
    expect(probeSubcommand(realBin, 'up').flags?.has('--data-dir')).to.equal(true);
  });

  it('says why a subcommand is not available: not registered, or its module missing', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cstor-probe-'));
    try {
      fs.mkdirSync(path.join(dir, 'bin'));
      fs.writeFileSync(
        path.join(dir, 'bin', 'cstor.ts'),
        [
          "  there: { summary: 'x', load: () => import('../there/main.ts') },",
          "  'not-yet': { summary: 'y', load: () => import('../not-yet/main.ts') },",
        ].join('\n'),
      );
      fs.mkdirSync(path.join(dir, 'there'));
      fs.writeFileSync(path.join(dir, 'there', 'main.ts'), "options: {\n  kubeconfig: {\n    type: 'string',\n  },\n  'dry-run': { type: 'boolean' },\n}");
      const bin = path.join(dir, 'bin', 'cstor.js');
      expect(probeSubcommand(bin, 'there')).to.deep.equal({ name: 'there', exists: true, flags: new Set(['--kubeconfig', '--dry-run']) });
      expect(probeSubcommand(bin, 'not-yet')).to.deep.include({ exists: false, problem: 'not-yet/main.ts does not exist yet' });
      expect(probeSubcommand(bin, 'nope')).to.deep.include({ exists: false, problem: 'cstor nope is not registered in bin/cstor.ts' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
