// Adversarial interleavings of the pool server over the real layer store: requests held in the
// IoOrdering or in a paused connection's backlog when the connection or the pool goes away.
import { expect } from 'chai';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { formatAddress } from '../../lib/listen.ts';
import { silentLogger } from '../../lib/logger.ts';
import { encodeFrame } from '../../lib/replica-protocol/frame.ts';
import { FrameDecoder } from '../../lib/replica-protocol/frame-decoder.ts';
import type { Frame } from '../../lib/replica-protocol/header.ts';
import { opcodes } from '../../lib/replica-protocol/opcodes.ts';
import type { MessageBody } from '../../lib/replica-protocol/codec.ts';
import { encodeOpenRequest } from '../../lib/replica-protocol/messages/open.ts';
import { encodeReadRequest } from '../../lib/replica-protocol/messages/read.ts';
import { encodeRebuildStartRequest } from '../../lib/replica-protocol/messages/rebuild-start.ts';
import { encodeSyncRequest } from '../../lib/replica-protocol/messages/sync.ts';
import { encodeWriteRequest } from '../../lib/replica-protocol/messages/write.ts';
import { configureInlineIo } from '../store/inline-io.ts';
import { openPool } from '../store/pool.ts';
import type { Pool, Replica } from '../store/types.ts';
import { ReplicaServer } from './replica-server.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const size = 1 * MiB;

async function until(pred: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

interface Raw {
  socket: net.Socket;
  frames: Frame[];
  send(opcode: number, seq: number, body: MessageBody): void;
  /** Several frames in one socket write (so the server decodes them in one read). */
  sendBatch(items: [number, number, MessageBody][]): void;
}

async function rawConnect(address: string): Promise<Raw> {
  const [host, port] = address.split(':');
  const socket = net.connect({ host: host!, port: Number(port) });
  await new Promise((r) => socket.once('connect', r));
  const frames: Frame[] = [];
  const d = new FrameDecoder();
  socket.on('data', (c: Buffer) => frames.push(...d.push(c)));
  socket.on('error', () => {});
  const sendBatch = (items: [number, number, MessageBody][]): void => {
    socket.write(Buffer.concat(items.flatMap(([opcode, seq, body]) => encodeFrame({ opcode, seq, reply: false }, body))));
  };
  return { socket, frames, send: (opcode, seq, body) => sendBatch([[opcode, seq, body]]), sendBatch };
}

const openBody = (): MessageBody => encodeOpenRequest({ volume: 'v', size, blockSize: 4096, replicationFactor: 3, targetId: 't' });

describe('cstor-pool/server adversarial interleavings (real store)', () => {
  let root: string;
  let dir: string;
  let pool: Pool;
  const servers: ReplicaServer[] = [];
  const sockets: net.Socket[] = [];
  let address = '';

  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'pool-server-adv-'));
    dir = path.join(root, 'pool');
    pool = await openPool({ dir, name: 'pool-a' });
    await pool.createReplica({ volume: 'v', size });
  });
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    for (const s of servers.splice(0)) await s.close();
    await pool.close();
    await fs.rm(root, { recursive: true, force: true });
  });

  async function start(options: { maxInFlight?: number } = {}): Promise<Raw> {
    const server = new ReplicaServer({ pool, logger: silentLogger(), ...options });
    servers.push(server);
    address = formatAddress(await server.listen('127.0.0.1', 0));
    const raw = await rawConnect(address);
    sockets.push(raw.socket);
    raw.send(opcodes.open, 1, openBody());
    await until(() => raw.frames.length === 1, 'OPEN reply');
    expect(raw.frames[0]!.header.status).to.equal(0);
    return raw;
  }

  it('never checkpoints past a write still waiting in the ordering (held behind an overlapping read)', async () => {
    const raw = await start();
    // The same Replica the server serves (the pool hands out one per volume).
    const r: Replica = await pool.openReplica('v');
    const gate = deferred();
    const readInto = r.readInto.bind(r);
    // A read of block 0 that stays in flight (a cold read waiting for the disk).
    r.readInto = async (offset: number, buf: Buffer) => {
      await gate.promise;
      return readInto(offset, buf);
    };
    raw.sendBatch([
      [opcodes.read, 2, encodeReadRequest({ offset: 0, length: 4 * KiB })],
      [opcodes.write, 3, encodeWriteRequest({ offset: 0, data: Buffer.alloc(4 * KiB, 9), ioSeq: 9 })],
      [opcodes.write, 4, encodeWriteRequest({ offset: 64 * KiB, data: Buffer.alloc(4 * KiB, 10), ioSeq: 10 })],
    ]);
    await until(() => raw.frames.some((f) => f.header.seq === 4), 'the reply to the write of io_seq 10');
    // A SYNC now waits for the write of io_seq 9; the daemon shutting down does not: it closes the
    // server and the pool (which syncs every replica and persists the checkpoint).
    expect(raw.frames.some((f) => f.header.seq === 3), 'io_seq 9 is still held').to.equal(false);
    for (const s of servers.splice(0)) await s.close();
    await pool.close();
    gate.resolve();
    pool = await openPool({ dir, name: 'pool-a' });
    const info = (await pool.getReplica('v'))!;
    const back = await pool.openReplica('v');
    const block0 = await back.readAt(0, 4 * KiB);
    await back.close();
    // Whatever happened to io_seq 9, the checkpoint must not claim it unless block 0 holds it.
    if (block0[0] !== 9) expect(info.checkpointedIoSeq, 'checkpoint claims a write the replica lacks').to.be.below(9);
  });

  it('never checkpoints past a write held in the ordering when a SYNC ahead of it runs (one socket batch)', async () => {
    const raw = await start();
    const r: Replica = await pool.openReplica('v');
    // (A first write opens the head's data file: later small writes may then go inline.)
    await r.write(128 * KiB, Buffer.alloc(4 * KiB, 1), 1);
    const gate = deferred();
    const readInto = r.readInto.bind(r);
    r.readInto = async (offset: number, buf: Buffer) => {
      await gate.promise;
      return readInto(offset, buf);
    };
    configureInlineIo({}); // (clears any fallback to the thread pool a slow call caused)
    raw.sendBatch([
      [opcodes.read, 2, encodeReadRequest({ offset: 0, length: 4 * KiB })],
      [opcodes.sync, 3, encodeSyncRequest()],
      [opcodes.write, 4, encodeWriteRequest({ offset: 0, data: Buffer.alloc(4 * KiB, 9), ioSeq: 9 })],
      [opcodes.write, 5, encodeWriteRequest({ offset: 64 * KiB, data: Buffer.alloc(4 * KiB, 10), ioSeq: 10 })],
    ]);
    await until(() => raw.frames.some((f) => f.header.seq === 3) && raw.frames.some((f) => f.header.seq === 5), 'the SYNC reply');
    const syncReply = raw.frames.find((f) => f.header.seq === 3)!;
    expect(syncReply.header.status).to.equal(0);
    // The SYNC was ahead of io_seq 9 (which has not run: its read is still in flight).
    expect(syncReply.header.ioSeq, 'the checkpoint a SYNC reports').to.be.below(9);
    expect(r.checkpointedIoSeq).to.be.below(9);
    gate.resolve();
    await until(() => raw.frames.length === 5, 'every reply');
    await r.close();
  });

  it('drops the backlog of a paused connection once its peer has gone: no request of it runs afterwards', async () => {
    const raw = await start({ maxInFlight: 1 });
    const r: Replica = await pool.openReplica('v');
    await r.write(0, Buffer.alloc(4 * KiB, 1), 1);
    const gate = deferred();
    const sync = r.sync.bind(r);
    r.sync = async () => {
      await gate.promise;
      return sync();
    };
    // SYNC stays in flight (1 = the limit: the connection stops reading); the WRITE waits in the
    // backlog, decoded but not dispatched.
    raw.sendBatch([
      [opcodes.sync, 2, encodeSyncRequest()],
      [opcodes.write, 3, encodeWriteRequest({ offset: 0, data: Buffer.alloc(4 * KiB, 2), ioSeq: 2 })],
    ]);
    await new Promise((res) => setTimeout(res, 50));
    expect((await r.readAt(0, 4 * KiB))[0], 'the write is held in the backlog').to.equal(1);
    // The target gives up on the connection (a timeout) and goes on without it (e.g. rebuilds).
    raw.socket.destroy();
    await until(() => servers[0]!.connectionCount === 0, 'the server to see the close');
    await r.write(0, Buffer.alloc(4 * KiB, 3), 3);
    gate.resolve();
    await new Promise((res) => setTimeout(res, 100));
    expect((await r.readAt(0, 4 * KiB))[0], 'a request of a closed connection overwrote newer data').to.equal(3);
    await r.close();
  });
  it('REBUILD_START closes the other connections to the volume: a backlog they still hold never lands in the new head', async () => {
    const old = await start({ maxInFlight: 1 });
    const r: Replica = await pool.openReplica('v');
    await r.write(0, Buffer.alloc(4 * KiB, 1), 1);
    const gate = deferred();
    const sync = r.sync.bind(r);
    r.sync = async () => {
      await gate.promise;
      return sync();
    };
    old.sendBatch([
      [opcodes.sync, 2, encodeSyncRequest()],
      [opcodes.write, 3, encodeWriteRequest({ offset: 0, data: Buffer.alloc(4 * KiB, 2), ioSeq: 2 })],
    ]);
    await new Promise((res) => setTimeout(res, 50));
    // The target evicts the replica: it drops the old connection (the paused server does not see
    // that yet) and starts a rebuild over a new one.
    old.socket.destroy();
    const fresh = await rawConnect(address);
    sockets.push(fresh.socket);
    fresh.send(opcodes.open, 1, openBody());
    await until(() => fresh.frames.length === 1, 'OPEN reply');
    fresh.send(opcodes.rebuildStart, 2, encodeRebuildStartRequest(null));
    await new Promise((res) => setTimeout(res, 20));
    gate.resolve(); // the old connection's SYNC finishes: before the fix its backlog ran now
    await until(() => fresh.frames.length === 2, 'REBUILD_START reply');
    expect(fresh.frames[1]!.header.status).to.equal(0);
    await new Promise((res) => setTimeout(res, 100));
    expect(r.mode).to.equal('Rebuilding');
    expect((await r.readAt(0, 4 * KiB))[0], 'a stale write of the old connection landed after REBUILD_START').to.equal(0);
    await r.close();
  });
});
