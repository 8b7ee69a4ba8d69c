// The fast data path end to end in one process (real client, real server, fake store): large
// payloads read in place and pooled, reads into the caller's Buffer, and the UNIX socket listener.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { CstorError } from '../../lib/errors.ts';
import { formatAddress } from '../../lib/listen.ts';
import { silentLogger } from '../../lib/logger.ts';
import { connectReplica } from '../../lib/replica-protocol/client.ts';
import type { ReplicaClient } from '../../lib/replica-protocol/types.ts';
import { FakePool } from '../../test/pool-protocol/fake-pool.ts';
import { adoptWithReadBuffers } from '../../lib/adopt-socket.ts';
import { ReplicaServer } from './replica-server.ts';

const MiB = 1 << 20;
const size = 64 * MiB;
const openReq = { volume: 'vol-a', size, blockSize: 4096, replicationFactor: 1, targetId: 'test' };
/** 1 MiB of data unique to block i. */
const blockData = (i: number): Buffer => {
  const b = Buffer.alloc(MiB);
  for (let o = 0; o < MiB; o += 4096) b.writeUInt32LE(i * 1_000_003 + o, o);
  return b;
};

describe('cstor-pool/server data path', () => {
  let pool: FakePool;
  let server: ReplicaServer;
  let tmp: string;
  const clients: ReplicaClient[] = [];

  beforeEach(async () => {
    pool = new FakePool();
    await pool.createReplica({ volume: 'vol-a', size });
    server = new ReplicaServer({ pool, logger: silentLogger() });
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cstor-data-path-'));
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await server.close();
    await fs.rm(tmp, { recursive: true, force: true });
  });

  const connect = async (address: string): Promise<ReplicaClient> => {
    const c = await connectReplica(address, { timeoutMs: 20_000 });
    clients.push(c);
    await c.open(openReq);
    return c;
  };

  for (const directReads of [true, false]) {
    it(`keeps pipelined 1 MiB and 4 KiB writes apart and reads them back (${directReads ? 'onread, pooled payloads' : "fallback: 'data' events"})`, async function () {
      this.timeout(60_000);
      const srv = directReads ? server : new ReplicaServer({ pool, logger: silentLogger(), directReads: false });
      try {
        const c = await connect(formatAddress(await srv.listen('127.0.0.1', 0)));
        for (let round = 0; round < 3; round++) {
          await Promise.all([
            ...Array.from({ length: 24 }, (_, i) => c.write(i * MiB, blockData(round * 100 + i), round * 100 + i + 1)),
            ...Array.from({ length: 64 }, (_, i) => c.write(40 * MiB + i * 4096, Buffer.alloc(4096, round * 64 + i), 1000 + round * 100 + i)),
          ]);
        }
        const reads = await Promise.all(Array.from({ length: 24 }, (_, i) => c.read(i * MiB, MiB)));
        reads.forEach((b, i) => expect(b.equals(blockData(200 + i)), `block ${i}`).to.equal(true));
        const small = await c.read(40 * MiB, 64 * 4096);
        for (let i = 0; i < 64; i++) expect(small.subarray(i * 4096, (i + 1) * 4096).equals(Buffer.alloc(4096, 128 + i)), `4 KiB block ${i}`).to.equal(true);
      } finally {
        if (srv !== server) {
          await Promise.all(clients.splice(0).map((c) => c.close()));
          await srv.close();
        }
      }
    });
  }

  it('reads into the caller\u2019s Buffer, large replies in place and small ones copied', async () => {
    const c = await connect(formatAddress(await server.listen('127.0.0.1', 0)));
    await c.write(0, blockData(7), 1);
    const big = Buffer.alloc(MiB);
    const small = Buffer.alloc(8192);
    await Promise.all([c.readInto!(0, big), c.readInto!(MiB - 8192, small)]);
    expect(big.equals(blockData(7))).to.equal(true);
    expect(small.equals(blockData(7).subarray(MiB - 8192))).to.equal(true);
    // An error reply leaves the caller's buffer alone and rejects.
    const untouched = Buffer.alloc(128 * 1024, 0xee);
    const err = await c.readInto!(size, untouched).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(CstorError);
    expect(untouched.equals(Buffer.alloc(128 * 1024, 0xee))).to.equal(true);
  });

  it('serves the same protocol on a UNIX socket (unix:PATH), replacing a stale socket file', async () => {
    const sock = path.join(tmp, 'replica.sock');
    // A stale socket file, as a killed daemon leaves it: a child listens there and is killed.
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => console.log('up'))`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect((await fs.lstat(sock)).isSocket()).to.equal(true);

    const address = await server.listenUnix(sock);
    expect(address).to.equal(`unix:${sock}`);
    const c = await connect(address);
    await Promise.all([c.write(0, blockData(1), 1), c.write(MiB, Buffer.alloc(4096, 9), 2)]);
    expect((await c.read(0, MiB)).equals(blockData(1))).to.equal(true);
    expect((await c.read(MiB, 4096)).equals(Buffer.alloc(4096, 9))).to.equal(true);
    expect(await c.sync()).to.equal(2);
  });

  it('leaves a socket without a reachable handle as it was (the fallback path takes it)', () => {
    const s = new net.Socket();
    expect(adoptWithReadBuffers(s, { buffer: () => Buffer.alloc(1), callback: () => true })).to.equal(null);
    expect(s.destroyed).to.equal(false);
    s.destroy();
  });

  it('refuses to replace a file that is not a socket, and a relative unix: address', async () => {
    const file = path.join(tmp, 'not-a-socket');
    await fs.writeFile(file, 'data');
    const err = await server.listenUnix(file).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(CstorError);
    expect((err as CstorError).message).to.match(/is not a socket; refusing to replace it/);
    expect(await fs.readFile(file, 'utf8')).to.equal('data');
    const bad = await connectReplica('unix:relative.sock').then(
      () => null,
      (e: unknown) => e,
    );
    expect((bad as CstorError).code).to.equal('invalid');
  });
});
