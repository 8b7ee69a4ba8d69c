// The replica protocol end to end in one process: the real TCP client against the real server
// over an in-memory fake store (test/pool-protocol/fake-pool.ts).
import { expect } from 'chai';
import net from 'node:net';
import { CstorError } from '../../lib/errors.ts';
import { formatAddress } from '../../lib/listen.ts';
import { silentLogger } from '../../lib/logger.ts';
import { connectReplica } from '../../lib/replica-protocol/client.ts';
import { encodeFrame } from '../../lib/replica-protocol/frame.ts';
import { FrameDecoder } from '../../lib/replica-protocol/frame-decoder.ts';
import { maxPayload, type Frame } from '../../lib/replica-protocol/header.ts';
import { encodeOpenRequest } from '../../lib/replica-protocol/messages/open.ts';
import type { ReplicaClient } from '../../lib/replica-protocol/types.ts';
import { FakePool, type FakeReplica } from '../../test/pool-protocol/fake-pool.ts';
import { randomPipelinedOps } from '../../test/pool-protocol/random-ops.ts';
import { copyReplica } from '../../test/pool-protocol/rebuild-copy.ts';
import { ReplicaServer } from './replica-server.ts';
import { rejection } from '../../test/support/rejection.ts';

const MiB = 1 << 20;
const openReq = (volume: string, size = 16 * MiB) => ({ volume, size, blockSize: 4096, replicationFactor: 3, targetId: 'test-target' });

/** A raw socket speaking frames: for garbage and edge cases the client never sends. */
async function rawConnect(address: string): Promise<{ socket: net.Socket; frames: Frame[]; closed: Promise<void> }> {
  const [host, port] = address.split(':');
  const socket = net.connect({ host: host!, port: Number(port) });
  await new Promise((r) => socket.once('connect', r));
  const frames: Frame[] = [];
  const d = new FrameDecoder();
  socket.on('data', (c: Buffer) => frames.push(...d.push(c)));
  socket.on('error', () => {});
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  return { socket, frames, closed };
}

async function until(pred: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('cstor-pool/server over a fake store', () => {
  let pool: FakePool;
  let server: ReplicaServer;
  let address: string;
  const clients: ReplicaClient[] = [];
  const connect = async (): Promise<ReplicaClient> => {
    const c = await connectReplica(address, { timeoutMs: 5000 });
    clients.push(c);
    return c;
  };

  beforeEach(async () => {
    pool = new FakePool();
    await pool.createReplica({ volume: 'vol-a', size: 16 * MiB });
    server = new ReplicaServer({ pool, logger: silentLogger() });
    address = formatAddress(await server.listen('127.0.0.1', 0));
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await server.close();
  });

  it('opens a volume and answers status with its mode and size', async () => {
    const c = await connect();
    const st = await c.open(openReq('vol-a'));
    expect(st).to.include({ volume: 'vol-a', mode: 'New', size: 16 * MiB, blockSize: 4096, checkpointedIoSeq: 0 });
    await c.markHealthy();
    expect((await c.status()).mode).to.equal('Healthy');
  });

  it('pipelines hundreds of writes and reads with matching results', async () => {
    const c = await connect();
    await c.open(openReq('vol-a'));
    const blocks = 400;
    const data = (i: number): Buffer => Buffer.alloc(4096, (i * 7) % 251);
    await Promise.all(Array.from({ length: blocks }, (_, i) => c.write(i * 4096, data(i), i + 1)));
    const reads = await Promise.all(Array.from({ length: blocks }, (_, i) => c.read(i * 4096, 4096)));
    reads.forEach((b, i) => expect(b.equals(data(i)), `block ${i}`).to.equal(true));
    expect(await c.sync()).to.equal(blocks);
    const stats = await c.stats();
    expect(stats).to.include({ writes: blocks, reads: blocks, writeBytes: blocks * 4096, readBytes: blocks * 4096 });
  });

  it('applies overlapping pipelined writes in arrival order', async () => {
    const c = await connect();
    await c.open(openReq('vol-a'));
    (pool.replicas.get('vol-a') as FakeReplica).writeDelayMs = 1;
    const writes = Array.from({ length: 50 }, (_, i) => c.write(0, Buffer.alloc(8192, i + 1), i + 1));
    const read = c.read(0, 8192);
    await Promise.all(writes);
    expect((await read).equals(Buffer.alloc(8192, 50))).to.equal(true);
  });

  it('keeps pipelined random overlapping IO in arrival order (model check)', async () => {
    const c = await connect();
    await c.open(openReq('vol-a'));
    (pool.replicas.get('vol-a') as FakeReplica).writeDelayMs = 1;
    const r = await randomPipelinedOps(c, { blocks: 32, blockSize: 4096, ops: 1500, batch: 100, seed: 7 });
    expect(r.reads).to.be.above(500);
    expect((await c.read(0, 32 * 4096)).equals(r.model)).to.equal(true);
  });

  it('stops reading while too many requests or bytes are in flight, then carries on', async () => {
    for (const limits of [{ maxInFlight: 4 }, { maxInFlightBytes: 64 * 1024 }]) {
      const small = new ReplicaServer({ pool, logger: silentLogger(), ...limits });
      const addr = formatAddress(await small.listen('127.0.0.1', 0));
      const c = await connectReplica(addr, { timeoutMs: 10_000 });
      clients.push(c);
      await c.open(openReq('vol-a'));
      const r = pool.replicas.get('vol-a') as FakeReplica;
      r.writeDelayMs = 10;
      r.maxWritesRunning = 0;
      await Promise.all(Array.from({ length: 40 }, (_, i) => c.write(i * 16384, Buffer.alloc(16384, i), i + 1)));
      expect(r.maxWritesRunning, JSON.stringify(limits)).to.be.within(1, 8);
      expect((await c.read(39 * 16384, 16384)).equals(Buffer.alloc(16384, 39))).to.equal(true);
      await c.close();
      await small.close();
    }
  });

  it('counts reads and writes in flight in status', async () => {
    const c = await connect();
    await c.open(openReq('vol-a'));
    (pool.replicas.get('vol-a') as FakeReplica).writeDelayMs = 200;
    const writes = Array.from({ length: 5 }, (_, i) => c.write(i * 4096, Buffer.alloc(4096, 1), i + 1));
    const st = await c.status();
    expect(st.inflightWrite).to.equal(5);
    await Promise.all(writes);
    expect((await c.status()).inflightWrite).to.equal(0);
  });

  it('refuses unknown volumes, bad names, size mismatches and requests before OPEN', async () => {
    const c = await connect();
    expect((await rejection(c.read(0, 4096))).message).to.match(/send OPEN first/);
    const nf = await rejection(c.open(openReq('nope')));
    expect(nf.code).to.equal('not_found');
    expect(nf.message).to.match(/volume nope has no replica in pool fake/);
    for (const bad of ['../x', 'a/b', '', 'UPPER', '.', 'x\0y']) {
      const e = await rejection(c.open(openReq(bad)));
      expect(e.code, bad).to.equal('invalid');
      expect(e.message).to.match(/is invalid/);
    }
    const sz = await rejection(c.open(openReq('vol-a', 8 * MiB)));
    expect(sz.message).to.match(/vol-a is 16777216 bytes in pool fake, not 8388608/);
    const bs = await rejection(c.open({ ...openReq('vol-a'), blockSize: 512 }));
    expect(bs.message).to.match(/block size 4096 in pool fake, not 512/);
    await c.open(openReq('vol-a'));
    expect((await rejection(c.open(openReq('vol-a')))).code).to.equal('conflict');
    const range = await rejection(c.read(3, 4096));
    expect(range.code).to.equal('invalid');
    expect(range.message).to.match(/not block-aligned/);
    expect(await c.read(0, 4096)).to.deep.equal(Buffer.alloc(4096));
  });

  it('takes, lists and destroys snapshots; rebuild steps copy a replica with its snapshots', async () => {
    await pool.createReplica({ volume: 'vol-b', size: 16 * MiB });
    const src = await connect();
    const dst = await connect();
    await src.open(openReq('vol-a'));
    await dst.open(openReq('vol-b'));
    let seq = 1;
    const states: Buffer[] = [];
    for (let s = 0; s < 3; s++) {
      for (let i = 0; i < 20; i++) await src.write(((s * 13 + i * 5) % 64) * 4096, Buffer.alloc(4096 * 2, s * 20 + i + 1), seq++);
      states.push(await src.read(0, 80 * 4096));
      await src.snapshotCreate(`vol-a_s${s}_${1000 + s}`, seq);
    }
    await src.write(0, Buffer.alloc(4096, 0xee), seq++);
    await src.snapshotCreate('vol-a_s0_1000', seq); // idempotent by name
    const list = await src.snapshotList();
    expect(list.map((s) => s.name)).to.deep.equal(['vol-a_s0_1000', 'vol-a_s1_1001', 'vol-a_s2_1002']);
    expect(list.map((s) => s.ioSeq)).to.deep.equal([21, 41, 61]);

    const r = await copyReplica(src, dst, 16 * 4096);
    expect(r.layers).to.equal(3);
    expect((await dst.status()).mode).to.equal('Healthy');
    expect((await dst.snapshotList()).map((s) => s.name)).to.deep.equal(list.map((s) => s.name));
    expect((await dst.read(0, 80 * 4096)).equals(await src.read(0, 80 * 4096))).to.equal(true);
    // Each snapshot of the copy holds what the source held then: clone it and read.
    for (const [i, s] of list.entries()) {
      await pool.createReplica({ volume: `clone-${i}`, size: 16 * MiB, cloneOf: { volume: 'vol-b', snapshot: s.name } });
      const cl = await connect();
      await cl.open(openReq(`clone-${i}`));
      expect((await cl.read(0, 80 * 4096)).equals(states[i]!), `snapshot ${s.name}`).to.equal(true);
    }
    await src.snapshotDestroy('vol-a_s1_1001');
    await src.snapshotDestroy('vol-a_s1_1001');
    expect((await src.snapshotList()).map((s) => s.name)).to.deep.equal(['vol-a_s0_1000', 'vol-a_s2_1002']);
    expect((await rejection(src.snapshotCreate('../evil', seq))).message).to.match(/snapshot name "..\/evil" is invalid/);
  });

  it('fails every request in flight on a timeout, closes, and fires onClose once', async () => {
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const addr = silent.address() as net.AddressInfo;
    const c = await connectReplica(`127.0.0.1:${addr.port}`, { timeoutMs: 200 });
    const closes: (Error | undefined)[] = [];
    c.onClose((e) => closes.push(e));
    const reqs = Array.from({ length: 10 }, (_, i) => rejection(c.read(i * 4096, 4096)));
    const errs = await Promise.all(reqs);
    expect(errs.every((e) => e.code === 'timeout')).to.equal(true);
    expect(errs[0]!.message).to.match(/got no reply within 200 ms; failing all 10 requests in flight/);
    await until(() => closes.length > 0, 'onClose');
    expect((await rejection(c.status())).code).to.equal('unavailable');
    await c.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(closes).to.have.length(1);
    expect(closes[0]).to.be.instanceOf(CstorError);
    silent.close();
  });

  it('fails requests in flight when the server goes away', async () => {
    const c = await connect();
    await c.open(openReq('vol-a'));
    (pool.replicas.get('vol-a') as FakeReplica).writeDelayMs = 300;
    let closed = 0;
    c.onClose(() => closed++);
    const w = rejection(c.write(0, Buffer.alloc(4096), 1));
    await new Promise((r) => setTimeout(r, 50));
    server.dropVolume('vol-a');
    expect((await w).code).to.equal('unavailable');
    await until(() => closed === 1, 'onClose');
  });

  describe('bad input', () => {
    it('answers an unknown opcode with an error and keeps serving', async () => {
      const { socket, frames } = await rawConnect(address);
      for (const p of encodeFrame({ opcode: 200, seq: 5, reply: false }, { payload: [Buffer.from('junk')] })) socket.write(p);
      for (const p of encodeFrame({ opcode: 1, seq: 6, reply: false }, encodeOpenRequest(openReq('vol-a')))) socket.write(p);
      await until(() => frames.length === 2, 'two replies');
      expect(frames[0]!.header).to.include({ seq: 5, opcode: 200, status: 1 });
      expect(frames[0]!.payload.toString()).to.equal('unknown opcode 200');
      expect(frames[1]!.header).to.include({ seq: 6, status: 0 });
      socket.destroy();
    });

    it('answers an oversized length with too_large and closes', async () => {
      const { socket, frames, closed } = await rawConnect(address);
      const [h] = encodeFrame({ opcode: 3, seq: 42, reply: false }, { payload: [] });
      h!.writeUInt32LE(maxPayload + 1, 12);
      socket.write(h!);
      await closed;
      expect(frames).to.have.length(1);
      expect(frames[0]!.header).to.include({ seq: 42, status: 8 });
      expect(frames[0]!.payload.toString()).to.match(/exceeds the limit of 16842752 bytes/);
    });

    it('closes on garbage and on a malformed payload answers an error, never crashing', async () => {
      for (let i = 0; i < 20; i++) {
        const { socket, closed } = await rawConnect(address);
        socket.write(Buffer.from(Array.from({ length: 1 + ((i * 37) % 300) }, (_, j) => (i * 31 + j * 17) & 0xff)));
        socket.end();
        await closed;
      }
      const { socket, frames } = await rawConnect(address);
      for (const p of encodeFrame({ opcode: 1, seq: 1, reply: false }, { payload: [Buffer.from([1, 2, 3])] })) socket.write(p);
      // a truncated frame: header promises 100 bytes, 10 arrive, then the peer goes away
      const [h] = encodeFrame({ opcode: 3, seq: 2, reply: false }, { payload: [Buffer.alloc(100)] });
      socket.write(h!);
      socket.write(Buffer.alloc(10));
      await until(() => frames.length === 1, 'the error reply');
      expect(frames[0]!.header).to.include({ seq: 1, status: 9 });
      expect(frames[0]!.payload.toString()).to.match(/OPEN request truncated/);
      socket.destroy();
      const c = await connect();
      expect((await c.open(openReq('vol-a'))).volume).to.equal('vol-a');
      await until(() => server.connectionCount === 1, 'bad connections to close');
    });
  });
});
