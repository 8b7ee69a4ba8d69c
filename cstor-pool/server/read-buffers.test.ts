// READ replies from pooled Buffers: the store reads into a Buffer the server reuses, and the
// Buffer goes back to the pool only once the socket has written the reply (FrameWriter's
// `released`). Checked end to end against a real layer store: many pipelined reads of different
// data, 1 MiB and 4 KiB, with writes elsewhere churning the pool, each reply compared with a model.
import { expect } from 'chai';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { formatAddress } from '../../lib/listen.ts';
import { silentLogger } from '../../lib/logger.ts';
import { connectReplica } from '../../lib/replica-protocol/client.ts';
import { FrameWriter } from '../../lib/replica-protocol/frame-writer.ts';
import { frameFlags } from '../../lib/replica-protocol/header.ts';
import type { ReplicaClient } from '../../lib/replica-protocol/types.ts';
import { configureInlineIo, defaultInlineIo } from '../store/inline-io.ts';
import { openPool } from '../store/pool.ts';
import type { Pool } from '../store/types.ts';
import { readSizeClass } from './connection.ts';
import { ReplicaServer } from './replica-server.ts';
import { seededRandom as rng } from '../../lib/seeded-random.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

/** `len` bytes unique to (version, offset) at every 4 KiB. */
function dataOf(version: number, offset: number, len: number): Buffer {
  const b = Buffer.alloc(len, (version % 251) + 1);
  for (let o = 0; o < len; o += 4 * KiB) {
    b.writeUInt32LE(version, o);
    b.writeUInt32LE(offset + o, o + 4);
  }
  return b;
}

describe('cstor-pool/server READ from pooled buffers', () => {
  let tmp: string;
  let pool: Pool;
  let server: ReplicaServer;
  let client: ReplicaClient;
  const size = 64 * MiB;

  beforeEach(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cstor-read-buffers-'));
    pool = await openPool({ dir: path.join(tmp, 'pool'), name: 'pool-a' });
    await pool.createReplica({ volume: 'vol-a', size });
    server = new ReplicaServer({ pool, logger: silentLogger() });
    client = await connectReplica(formatAddress(await server.listen('127.0.0.1', 0)), { timeoutMs: 60_000 });
    await client.open({ volume: 'vol-a', size, blockSize: 4096, replicationFactor: 1, targetId: 'test' });
  });
  afterEach(async () => {
    configureInlineIo(defaultInlineIo);
    await client.close();
    await server.close();
    await pool.close();
    await fs.rm(tmp, { recursive: true, force: true });
  });

  // Once with the store's file IO on the event loop (the default), once on the thread pool.
  for (const inlineMax of [defaultInlineIo.maxBytes, 0]) {
    it(`never changes a reply once queued: pipelined reads of different data match the model (${inlineMax > 0 ? 'inline IO' : 'thread-pool IO'})`, async function () {
      this.timeout(120_000);
      configureInlineIo({ maxBytes: inlineMax });
      const model = Buffer.alloc(size);
      let seq = 1;
      // Regions 0..47 MiB: read; 48..63 MiB: written while the reads run (disjoint, so the model
      // for the reads is fixed), then read back.
      await Promise.all(
        Array.from({ length: 48 }, (_, i) => {
          const d = dataOf(seq, i * MiB, MiB);
          d.copy(model, i * MiB);
          return client.write(i * MiB, d, seq++);
        }),
      );
      // A few 4 KiB overwrites so 1 MiB reads span two layers' runs (a snapshot beneath the head).
      await client.snapshotCreate('s1', seq++);
      const rand = rng(17);
      await Promise.all(
        Array.from({ length: 64 }, () => {
          const off = Math.floor(rand() * (48 * 256)) * 4 * KiB;
          const d = dataOf(seq, off, 4 * KiB);
          d.copy(model, off);
          return client.write(off, d, seq++);
        }),
      );
      for (let round = 0; round < 3; round++) {
        const checks: Promise<void>[] = [];
        for (let k = 0; k < 80; k++) {
          const off = Math.floor(rand() * 48) * MiB;
          const want = model.subarray(off, off + MiB);
          if (k % 2 === 0) checks.push(client.read(off, MiB).then((got) => void expect(got.equals(want), `round ${round} 1 MiB read at ${off}`).to.equal(true)));
          else {
            const into = Buffer.alloc(MiB, 0xee);
            checks.push(client.readInto!(off, into).then(() => void expect(into.equals(want), `round ${round} 1 MiB readInto at ${off}`).to.equal(true)));
          }
          for (let s = 0; s < 4; s++) {
            const o4 = Math.floor(rand() * (48 * 256)) * 4 * KiB;
            const len = (1 + Math.floor(rand() * 8)) * 4 * KiB;
            const w = model.subarray(o4, o4 + len);
            if (o4 + len <= 48 * MiB) checks.push(client.read(o4, len).then((got) => void expect(got.equals(w), `round ${round} ${len} B read at ${o4}`).to.equal(true)));
          }
          if (k % 4 === 0) {
            const woff = (48 + Math.floor(rand() * 16)) * MiB;
            const d = dataOf(seq, woff, MiB);
            d.copy(model, woff);
            checks.push(client.write(woff, d, seq++));
          }
        }
        await Promise.all(checks);
      }
      const tail = await Promise.all(Array.from({ length: 16 }, (_, i) => client.read((48 + i) * MiB, MiB)));
      tail.forEach((got, i) => expect(got.equals(model.subarray((48 + i) * MiB, (49 + i) * MiB)), `written region ${48 + i}`).to.equal(true));
      // Errors give the Buffer back too and the connection carries on.
      const err = await client.read(size, 4 * KiB).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(Error);
      expect((await client.read(0, MiB)).equals(model.subarray(0, MiB))).to.equal(true);
    });
  }
});

describe('READ buffer size classes', () => {
  it('pools reads by powers of two from 4 KiB', () => {
    expect([0, 512, 4096, 4097, 12 * KiB, 16 * KiB, 20 * KiB, MiB - 4096, MiB, MiB + 4096, 16 * MiB].map(readSizeClass)).to.deep.equal([
      4096, 4096, 4096, 8192, 16 * KiB, 16 * KiB, 32 * KiB, MiB, MiB, 2 * MiB, 16 * MiB,
    ]);
  });
});

describe('FrameWriter released callback', () => {
  let server: net.Server;
  let accepted: net.Socket;
  let socket: net.Socket;

  beforeEach(async () => {
    server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    const got = once(server, 'connection');
    socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    [accepted] = (await got) as [net.Socket];
    accepted.pause();
  });
  afterEach(async () => {
    socket.destroy();
    accepted.destroy();
    await new Promise((r) => server.close(r));
  });

  const header = (seq: number) => ({ opcode: 2, seq, flags: frameFlags.reply, status: 0, ioSeq: 0, offset: 0, length: 0 });

  it('releases a copied (small) payload at once, a large one only after the socket has written it', async () => {
    const w = new FrameWriter(socket);
    let small = 0;
    w.send(header(1), [Buffer.alloc(4 * KiB)], () => small++);
    expect(small, 'small payload copied: released before send returns').to.equal(1);
    // 32 MiB of large payloads to a peer that is not reading: the kernel cannot take them all.
    const released: number[] = [];
    for (let i = 0; i < 32; i++) w.send(header(2 + i), [Buffer.alloc(MiB, i)], () => released.push(i));
    expect(released.length, 'nothing released before the flush').to.equal(0);
    await new Promise((r) => setTimeout(r, 200));
    expect(released.length, 'not all released while the peer does not read').to.be.below(32);
    // The peer reads: every payload is written, and released in order.
    accepted.resume();
    const deadline = Date.now() + 20_000;
    while (released.length < 32 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(released).to.deep.equal(Array.from({ length: 32 }, (_, i) => i));
  });

  it('releases payloads dropped because the socket closed, queued or in the socket', async () => {
    const w = new FrameWriter(socket);
    const released: number[] = [];
    for (let i = 0; i < 16; i++) w.send(header(1 + i), [Buffer.alloc(MiB, i)], () => released.push(i));
    w.flush(); // in the socket now, the peer not reading
    for (let i = 16; i < 20; i++) w.send(header(1 + i), [Buffer.alloc(MiB, i)], () => released.push(i));
    socket.destroy(); // 16..19 are still queued in the writer
    w.flush();
    const deadline = Date.now() + 10_000;
    while (released.length < 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect([...released].sort((a, b) => a - b)).to.deep.equal(Array.from({ length: 20 }, (_, i) => i));
  });
});
