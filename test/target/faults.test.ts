// RF=3 on three real `cstor pool` processes and a real `cstor target`, driven through iSCSI with
// qemu-io: a pool killed mid-stream, its rebuild (snapshots included), the target killed
// mid-stream, and a snapshot refused below quorum.
import { expect } from 'chai';
import path from 'node:path';
import { stopAll, type Daemon } from '../support/daemon.ts';
import { http, qemuIo, replicaImage, startPool, startTarget, tempDir, until, type PoolProc } from './support.ts';

const volume = 'vol1';
const size = 16 << 20;
const blockSize = 512;
const chunk = 32 << 10;
const patternOf = (i: number): number => (i % 250) + 1;

interface VolumeStatusBody {
  phase: string;
  rebuilding: string | null;
  replicaStatuses: { address: string; mode: string; checkpointedIOSeq: string; quorum: string; upTime: number }[];
}

describe('cstor target: RF=3 over three pool processes (kill -9 faults)', function () {
  this.timeout(180_000);
  let root: string;
  const pools: PoolProc[] = [];
  let target: Daemon;
  let targetDir: string;

  const mgmt = (): string => target.addresses.mgmt!;
  const portal = (): string => target.addresses.iscsi!;
  const status = async (): Promise<VolumeStatusBody> => {
    const res = await http(mgmt(), 'GET', `/v1/volumes/${volume}`);
    expect(res.status, JSON.stringify(res.data)).to.equal(200);
    return res.data as VolumeStatusBody;
  };
  const allHealthy = async (): Promise<boolean> => {
    const s = await status();
    return s.rebuilding === null && s.replicaStatuses.every((r) => r.mode === 'Healthy');
  };
  const writes = (from: number, count: number): string[] =>
    Array.from({ length: count }, (_, k) => `write -P ${patternOf(from + k)} ${(from + k) * chunk} ${chunk}`);
  const reads = (from: number, count: number): string[] =>
    Array.from({ length: count }, (_, k) => `read -P ${patternOf(from + k)} ${(from + k) * chunk} ${chunk}`);
  async function verify(from: number, count: number): Promise<void> {
    const run = qemuIo(portal(), volume, reads(from, count));
    const { code, lines } = await run.done;
    expect(code, lines.slice(-10).join('\n')).to.equal(0);
    expect(lines.filter((l) => /failed|error/i.test(l)), 'pattern verification').to.deep.equal([]);
    expect(lines.filter((l) => /^read \d+\/\d+ bytes/.test(l)).length).to.equal(count);
  }

  before(async () => {
    root = await tempDir('cstor-target-faults-');
    for (let i = 0; i < 3; i++) pools.push(await startPool(`pool${i}`, path.join(root, `pool${i}`)));
    for (const p of pools) {
      const res = await http(p.daemon.addresses.mgmt!, 'POST', '/v1/replicas', { volume, size, blockSize });
      expect(res.status, JSON.stringify(res.data)).to.be.oneOf([200, 201]);
    }
    targetDir = path.join(root, 'target');
    target = await startTarget(targetDir);
    const res = await http(mgmt(), 'PUT', `/v1/volumes/${volume}`, {
      capacity: size,
      replicationFactor: 3,
      blockSize,
      replicas: pools.map((p) => p.replicaAddress),
    });
    expect(res.status, JSON.stringify(res.data)).to.equal(201);
    await until(async () => (await status()).phase === 'Healthy', 20_000, 'volume Healthy');
    const again = await http(mgmt(), 'PUT', `/v1/volumes/${volume}`, { capacity: size, replicationFactor: 3, blockSize, replicas: pools.map((p) => p.replicaAddress) });
    expect(again.status, 'serve is idempotent').to.equal(200);
  });

  after(async () => {
    await stopAll();
  });

  it('kill -9 of one pool mid-stream: IO goes on, the pool is out; restarted, it is rebuilt (snapshots included) and Healthy', async () => {
    expect((await http(mgmt(), 'POST', `/v1/volumes/${volume}/snapshots`, { name: 's1' })).status).to.equal(201);
    const run = qemuIo(portal(), volume, writes(0, 200));
    await run.waitLines(/^wrote /, 40, 60_000);
    await pools[2]!.daemon.kill();
    const { code, lines } = await run.done;
    expect(code, lines.slice(-10).join('\n')).to.equal(0);
    expect(lines.filter((l) => /^wrote \d+\/\d+ bytes/.test(l)).length, 'every write of the stream acknowledged').to.equal(200);
    expect(lines.filter((l) => /failed|error/i.test(l))).to.deep.equal([]);

    const s = await status();
    expect(s.replicaStatuses[2]!.mode).to.equal('Offline');
    expect(s.replicaStatuses[2]!.quorum).to.equal('0');
    expect(s.replicaStatuses.slice(0, 2).map((r) => r.mode)).to.deep.equal(['Healthy', 'Healthy']);
    // DESIGN.md §6: healthy (2) >= CF (2) keeps the phase Healthy; only below CF is it Degraded.
    expect(s.phase).to.equal('Healthy');
    await verify(0, 200);

    // A snapshot while the pool is down: the rebuild must bring it over.
    expect((await http(mgmt(), 'POST', `/v1/volumes/${volume}/snapshots`, { name: 's2' })).status).to.equal(201);
    await verify(0, 10);
    const overwrite = qemuIo(portal(), volume, writes(5, 5).map((c) => c.replace(/-P \d+/, '-P 99')));
    expect((await overwrite.done).code).to.equal(0);

    pools[2] = await startPool('pool2', pools[2]!.dir, pools[2]!.replicaAddress);
    await until(allHealthy, 60_000, 'pool2 rebuilt and Healthy');
    const info = await http(pools[2]!.daemon.addresses.mgmt!, 'GET', `/v1/replicas/${volume}`);
    expect(info.data.mode).to.equal('Healthy');
    expect((info.data.snapshots as { name: string }[]).map((x) => x.name)).to.deep.equal(['s1', 's2']);
    const listed = await http(mgmt(), 'GET', `/v1/volumes/${volume}/snapshots`);
    expect((listed.data.items as { name: string }[]).map((x) => x.name)).to.deep.equal(['s1', 's2']);
  });

  it('kill -9 of the target mid-stream: restarted from its state file, every acknowledged write is there', async () => {
    const run = qemuIo(portal(), volume, writes(200, 150));
    await run.waitLines(/^wrote /, 30, 60_000);
    await target.kill();
    // The initiator would retry forever against a dead portal: stop it once its output settles.
    await new Promise((r) => setTimeout(r, 500));
    run.kill();
    const { lines } = await run.done;
    const acked = lines.filter((l) => /^wrote \d+\/\d+ bytes/.test(l)).length;
    expect(acked).to.be.at.least(30);

    target = await startTarget(targetDir);
    await until(async () => (await status()).phase === 'Healthy', 30_000, 'volume served again and Healthy');
    await verify(200, acked);
    await verify(0, 5);
    await until(allHealthy, 60_000, 'every replica Healthy after the restart');
  });

  it('all three replicas hold the same bytes, head and snapshots (read back through the replica protocol)', async () => {
    // Stop the target cleanly so nothing is in flight while the replicas are read.
    expect(await target.stop()).to.equal(0);
    const images = [];
    for (const p of pools) images.push(await replicaImage(p.replicaAddress, volume, size, blockSize));
    const [a, b, c] = images;
    expect([...a!.snapshots.keys()]).to.deep.equal(['s1', 's2']);
    for (const other of [b!, c!]) {
      expect([...other.snapshots.keys()]).to.deep.equal(['s1', 's2']);
      expect(other.head.equals(a!.head), 'head bytes equal').to.equal(true);
      for (const [name, view] of a!.snapshots) expect(other.snapshots.get(name)!.equals(view), `snapshot ${name} equal`).to.equal(true);
    }
    // And the data is what was written: chunk 0 holds pattern 1 at head; s2 saw chunk 5 before its overwrite.
    expect(a!.head[0]).to.equal(patternOf(0));
    expect(a!.head[5 * chunk]).to.equal(99);
    expect(a!.snapshots.get('s2')![5 * chunk]).to.equal(patternOf(5));
    expect(a!.snapshots.get('s1')![0]).to.equal(0);
    target = await startTarget(targetDir);
    await until(allHealthy, 30_000, 'Healthy again');
  });

  it('a snapshot with fewer than CF healthy replicas fails with a clear message and leaves no snapshot on any replica', async () => {
    await pools[1]!.daemon.kill();
    await pools[2]!.daemon.kill();
    await until(async () => (await status()).replicaStatuses.filter((r) => r.mode === 'Healthy').length === 1, 20_000, 'one healthy replica');
    const res = await http(mgmt(), 'POST', `/v1/volumes/${volume}/snapshots`, { name: 's3' });
    expect(res.status).to.equal(409);
    expect(res.data).to.deep.equal({ error: 'snapshot s3 of vol1 refused: 1 of 3 replicas healthy, 2 needed' });
    expect((await status()).phase).to.equal('Offline');
    pools[1] = await startPool('pool1', pools[1]!.dir, pools[1]!.replicaAddress);
    pools[2] = await startPool('pool2', pools[2]!.dir, pools[2]!.replicaAddress);
    for (const p of pools) {
      const info = await http(p.daemon.addresses.mgmt!, 'GET', `/v1/replicas/${volume}`);
      expect((info.data.snapshots as { name: string }[]).map((x) => x.name), p.name).to.not.include('s3');
    }
    await until(allHealthy, 60_000, 'Healthy again');
    const listed = await http(mgmt(), 'GET', `/v1/volumes/${volume}/snapshots`);
    expect((listed.data.items as { name: string }[]).map((x) => x.name)).to.deep.equal(['s1', 's2']);
  });

  it('a SIGSTOPped pool holds neither IO nor a snapshot much longer than the replica timeout; resumed, it is rebuilt', async () => {
    const timeoutMs = 2000;
    await target.kill();
    target = await startTarget(targetDir, ['--replica-timeout', String(timeoutMs)]);
    await until(allHealthy, 30_000, 'Healthy with the short replica timeout');
    const stopped = pools[0]!;
    process.kill(stopped.daemon.pid, 'SIGSTOP');
    try {
      const run = qemuIo(portal(), volume, writes(300, 120));
      await run.waitLines(/^wrote /, 10, 60_000);
      const t0 = Date.now();
      const res = await http(mgmt(), 'POST', `/v1/volumes/${volume}/snapshots`, { name: 's4' });
      const took = Date.now() - t0;
      expect(res.status, JSON.stringify(res.data)).to.equal(201);
      // The timeout (plus its sweep) bounds it, or the quiesce bound (2 s) when writes to the stopped pool were in flight.
      expect(took, 'snapshot create with a stopped pool (ms)').to.be.lessThan(4 * timeoutMs);
      const { code, lines } = await run.done;
      expect(code, lines.slice(-10).join('\n')).to.equal(0);
      const st = await status();
      expect(st.replicaStatuses.find((r) => r.address === stopped.replicaAddress)!.mode).to.not.equal('Healthy');
    } finally {
      process.kill(stopped.daemon.pid, 'SIGCONT');
    }
    await until(allHealthy, 60_000, 'the resumed pool rebuilt and Healthy');
    await verify(300, 120);
    const listed = await http(mgmt(), 'GET', `/v1/volumes/${volume}/snapshots`);
    expect((listed.data.items as { name: string }[]).map((x) => x.name)).to.deep.equal(['s1', 's2', 's4']);
  });
});
