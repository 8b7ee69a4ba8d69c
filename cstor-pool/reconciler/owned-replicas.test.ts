import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { hasErrorCode } from '../../lib/errors.ts';
import { FileOwnedReplicas } from './owned-replicas.ts';

describe('pool reconciler: owned-replicas record', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'owned-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('persists adds and removes across reopen, and removes leftover tmp files', async () => {
    const a = await FileOwnedReplicas.open(dir);
    await a.add('pv1', { cvr: 'openebs/pv1-p', uid: 'u1', createdAt: 5 });
    await a.add('pv2', { cvr: 'openebs/pv2-p', uid: 'u2', createdAt: 6 });
    await Promise.all([a.remove('pv1'), a.add('pv3', { cvr: 'openebs/pv3-p', uid: 'u3', createdAt: 7 })]);
    fs.writeFileSync(path.join(dir, 'reconciler', 'deadbeef.tmp'), 'half');
    const b = await FileOwnedReplicas.open(dir);
    expect([...b.list().keys()]).to.deep.equal(['pv2', 'pv3']);
    expect(b.get('pv3')).to.deep.equal({ cvr: 'openebs/pv3-p', uid: 'u3', createdAt: 7 });
    expect(fs.readdirSync(path.join(dir, 'reconciler'))).to.deep.equal(['owned.json']);
  });

  it('refuses a damaged record with a clear error (the sweep must not guess)', async () => {
    fs.mkdirSync(path.join(dir, 'reconciler'));
    fs.writeFileSync(path.join(dir, 'reconciler', 'owned.json'), '{"format":1,"replicas":');
    let err: unknown;
    await FileOwnedReplicas.open(dir).catch((e: unknown) => (err = e));
    expect(hasErrorCode(err, 'io')).to.equal(true);
    expect((err as Error).message).to.match(/owned.json is not JSON/);
    fs.writeFileSync(path.join(dir, 'reconciler', 'owned.json'), '{"format":1,"replicas":{"pv1":{"cvr":3}}}');
    await FileOwnedReplicas.open(dir).catch((e: unknown) => (err = e));
    expect((err as Error).message).to.match(/entry pv1 is malformed/);
  });
});
