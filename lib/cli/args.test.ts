import { expect } from 'chai';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CstorError } from '../errors.ts';
import { rejection } from '../../test/support/rejection.ts';
import { ensureWritableDir, parseCommand, parseHostPort } from './args.ts';

const spec = {
  name: 'demo',
  summary: 'a demo command',
  options: {
    name: { type: 'string', required: true, description: 'name' },
    listen: { type: 'string', default: '0.0.0.0:1', description: 'listener' },
    tag: { type: 'string', multiple: true, description: 'tags' },
    verbose: { type: 'boolean', description: 'chatty' },
  },
} as const;

function problem(argv: string[]): CstorError {
  try {
    parseCommand(spec, argv);
  } catch (err) {
    expect(err).to.be.instanceOf(CstorError);
    expect((err as CstorError).code).to.equal('invalid');
    return err as CstorError;
  }
  return expect.fail(`parseCommand(${argv.join(' ')}) did not throw`);
}

describe('cli/args', () => {
  it('parses flags, defaults and repeatable ones', () => {
    expect(parseCommand(spec, ['--name', 'a', '--tag', 'x', '--tag', 'y', '--verbose'])).to.deep.equal({ name: 'a', listen: '0.0.0.0:1', tag: ['x', 'y'], verbose: true });
  });

  it('refuses unknown flags, positionals, missing values and missing required flags, naming each', () => {
    expect(problem(['--name', 'a', '--bogus']).message).to.match(/^cstor demo: Unknown option '--bogus'/);
    expect(problem(['--name', 'a', 'extra']).message).to.match(/Unexpected argument 'extra'/);
    expect(problem(['--name']).message).to.match(/Option '--name <value>' argument missing/);
    expect(problem(['--name', '--listen', 'x']).message).to.match(/Option '--name' argument is ambiguous/);
    expect(problem(['--listen', 'x:1']).message).to.equal('cstor demo: --name is required (see --help)');
  });

  it('refuses a single-valued flag given twice (a conflict, not "the last wins"), once per flag', () => {
    expect(problem(['--name', 'a', '--listen', '1.1.1.1:1', '--listen', '2.2.2.2:2', '--listen=3.3.3.3:3', '--name', 'b']).message).to.equal(
      'cstor demo: --listen is given more than once; --name is given more than once (see --help)',
    );
    expect(problem(['--name', 'a', '--verbose', '--verbose']).message).to.match(/--verbose is given more than once/);
  });

  it('parseHostPort: refuses ports past 65535, a lone colon, no port; port 0 and IPv6 pass', () => {
    for (const bad of ['127.0.0.1:70000', ':', '127.0.0.1', '127.0.0.1:', 'a:b', '[::1]', '127.0.0.1:123456']) {
      expect(() => parseHostPort(bad, '--listen'), bad).to.throw(CstorError, `--listen: "${bad}" is not HOST:PORT`);
    }
    expect(parseHostPort('127.0.0.1:0', '--listen')).to.deep.equal({ host: '127.0.0.1', port: 0 });
    expect(parseHostPort('[::1]:65535', '--listen')).to.deep.equal({ host: '::1', port: 65535 });
    expect(parseHostPort(':80', '--listen')).to.deep.equal({ host: '0.0.0.0', port: 80 });
  });

  it('ensureWritableDir: creates the dir; refuses a path under a file or a file, naming flag and path', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'args-dir-'));
    try {
      await ensureWritableDir(path.join(root, 'a', 'b'), '--data-dir');
      expect((await fs.stat(path.join(root, 'a', 'b'))).isDirectory()).to.equal(true);
      expect(await fs.readdir(path.join(root, 'a', 'b')), 'no probe file left').to.deep.equal([]);
      await fs.writeFile(path.join(root, 'file'), 'x');
      const under = await rejection(ensureWritableDir(path.join(root, 'file', 'sub'), '--data-dir'));
      expect(under.code).to.equal('invalid');
      expect(under.message).to.equal(`--data-dir ${path.join(root, 'file', 'sub')}: not a writable directory (ENOTDIR)`);
      const file = await rejection(ensureWritableDir(path.join(root, 'file'), '--data-dir'));
      expect(file.message).to.match(/not a writable directory \((EEXIST|ENOTDIR)\)$/);
      expect(await fs.readFile(path.join(root, 'file'), 'utf8')).to.equal('x');
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});
