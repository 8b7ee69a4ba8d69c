import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CstorError } from '../errors.ts';
import { lockDataDir } from './dir-lock.ts';

function conflict(dir: string): CstorError {
  try {
    lockDataDir(dir).release();
  } catch (err) {
    expect(err).to.be.instanceOf(CstorError);
    return err as CstorError;
  }
  return expect.fail('lockDataDir did not refuse');
}

describe('embedded/dir-lock', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'up-lock-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('one holder at a time: a second lock (two `up`s at once) is a conflict naming the pid; free again after release', () => {
    const lock = lockDataDir(dir);
    expect(fs.readFileSync(path.join(dir, 'up.lock'), 'utf8')).to.equal(`${process.pid}\n`);
    const err = conflict(dir);
    expect(err.code).to.equal('conflict');
    expect(err.message).to.equal(`another cstor up (pid ${process.pid}) is running on ${dir} (${path.join(dir, 'up.lock')}); stop it first`);
    lock.release();
    lock.release();
    expect(fs.existsSync(path.join(dir, 'up.lock'))).to.equal(false);
    lockDataDir(dir).release();
  });

  it('takes over a stale lock: a dead pid, or a live pid that is not a cstor up', () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    fs.writeFileSync(path.join(dir, 'up.lock'), `${dead}\n`);
    const lock = lockDataDir(dir);
    expect(fs.readFileSync(path.join(dir, 'up.lock'), 'utf8')).to.equal(`${process.pid}\n`);
    lock.release();
    fs.writeFileSync(path.join(dir, 'up.lock'), '1\n'); // init: alive, not a cstor up
    lockDataDir(dir).release();
  });

  it('an empty lock file is a holder mid-write while recent, stale once old', () => {
    const file = path.join(dir, 'up.lock');
    fs.writeFileSync(file, '');
    expect(conflict(dir).message).to.match(/another cstor up \(pid unknown\)/);
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(file, old, old);
    lockDataDir(dir).release();
  });

  it('release leaves a lock another process took over alone', () => {
    const lock = lockDataDir(dir);
    fs.writeFileSync(path.join(dir, 'up.lock'), '1\n');
    lock.release();
    expect(fs.readFileSync(path.join(dir, 'up.lock'), 'utf8')).to.equal('1\n');
  });
});
