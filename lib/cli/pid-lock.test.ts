import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CstorError } from '../errors.ts';
import { takePidLock } from './pid-lock.ts';

describe('cli/pid-lock', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pid-lock-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('one lock per subcommand and dir; a second take (even in this process) is a conflict naming the pid', () => {
    const pool = takePidLock(dir, 'pool');
    expect(() => takePidLock(dir, 'pool')).to.throw(CstorError, `another cstor pool (pid ${process.pid}) is running on ${dir}`);
    const target = takePidLock(dir, 'target'); // another name, another file
    pool.release();
    target.release();
    expect(fs.readdirSync(dir)).to.deep.equal([]);
  });

  it('a lock naming this pid that this process never took is stale (a restarted container reuses its pid)', () => {
    fs.writeFileSync(path.join(dir, 'pool.lock'), `${process.pid}\n`);
    const lock = takePidLock(dir, 'pool');
    expect(fs.readFileSync(path.join(dir, 'pool.lock'), 'utf8')).to.equal(`${process.pid}\n`);
    lock.release();
  });

  it('refuses a dir it cannot create the lock in, naming the lock file', () => {
    const missing = path.join(dir, 'missing');
    const err = (() => {
      try {
        takePidLock(missing, 'pool');
      } catch (e) {
        return e as CstorError;
      }
      return null;
    })();
    expect(err?.code).to.equal('invalid');
    expect(err?.message).to.match(new RegExp(`^cannot create the lock ${path.join(missing, 'pool.lock')}: ENOENT`));
  });
});
