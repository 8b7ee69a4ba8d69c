// The replica timeout rule with keepalives, end to end: the real client against the real server
// over the in-memory fake store. A pool busy for longer than the timeout is alive (it sends
// keepalives); a silent peer (a stopped process) is dead within the timeout.
import { expect } from 'chai';
import net from 'node:net';
import { CstorError } from '../../lib/errors.ts';
import { formatAddress } from '../../lib/listen.ts';
import { silentLogger } from '../../lib/logger.ts';
import { connectReplica } from '../../lib/replica-protocol/client.ts';
import { FakePool, type FakeReplica } from '../../test/pool-protocol/fake-pool.ts';
import { ReplicaServer } from './replica-server.ts';

const MiB = 1 << 20;

describe('cstor-pool/server keepalives and the client timeout rule', function () {
  this.timeout(20_000);

  it('a request slower than the timeout on a live pool succeeds (keepalives); a silent peer fails within the timeout', async () => {
    const pool = new FakePool();
    await pool.createReplica({ volume: 'vol-a', size: 16 * MiB });
    const server = new ReplicaServer({ pool, logger: silentLogger() });
    const address = formatAddress(await server.listen('127.0.0.1', 0));
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const c = await connectReplica(address, { timeoutMs: 1500 });
      await c.open({ volume: 'vol-a', size: 16 * MiB, blockSize: 4096, replicationFactor: 1, targetId: 't' });
      (pool.replicas.get('vol-a') as FakeReplica).writeDelayMs = 3500;
      const t0 = Date.now();
      await c.write(0, Buffer.alloc(4096, 7), 1);
      expect(Date.now() - t0, 'the write took longer than the timeout').to.be.greaterThan(3000);
      expect((await c.read(0, 4096))[0]).to.equal(7);
      await c.close();

      const addr = silent.address() as net.AddressInfo;
      const d = await connectReplica(`127.0.0.1:${addr.port}`, { timeoutMs: 1500 });
      const t1 = Date.now();
      const err = await d.read(0, 4096).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(CstorError);
      expect((err as CstorError).code).to.equal('timeout');
      expect((err as CstorError).message).to.match(/nor any other frame/);
      expect(Date.now() - t1).to.be.within(1400, 3500);
      await d.close();
    } finally {
      silent.close();
      await server.close();
    }
  });
});
