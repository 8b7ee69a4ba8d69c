// TcpReplicaClient against a scripted, hostile peer: replies that match no request, the wrong
// opcode, the wrong length, an oversized length, a close() with requests in flight, and wall-clock
// steps under the timeout rule. Every request settles exactly once, with the error that says why.
import net from 'node:net';
import { expect } from 'chai';
import { hasErrorCode } from '../errors.ts';
import { silentLogger, type Logger } from '../logger.ts';
import { connectReplica, TcpReplicaClient, type CallbackReplicaClient } from './client.ts';
import { DirectFrameDecoder } from './direct-frame-decoder.ts';
import { decodeHeader, encodeHeader, frameFlags, headerSize, maxPayload, type FrameHeader } from './header.ts';
import { opcodes } from './opcodes.ts';
import type { ReplicaClient } from './types.ts';

interface Peer {
  port: number;
  /** Request headers received, in order. */
  requests: FrameHeader[];
  socket(): net.Socket;
  /** Resolves once `n` requests have arrived. */
  waitFor(n: number): Promise<void>;
  close(): Promise<void>;
}

/** A peer that records requests and answers only what the test writes. */
async function startPeer(): Promise<Peer> {
  const requests: FrameHeader[] = [];
  let sock: net.Socket | undefined;
  let waiters: { n: number; resolve: () => void }[] = [];
  const server = net.createServer((s) => {
    sock = s;
    let buf = Buffer.alloc(0);
    s.on('error', () => undefined);
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= headerSize) {
        const h = decodeHeader(buf, 0);
        if (buf.length < headerSize + h.length) break;
        buf = buf.subarray(headerSize + h.length);
        requests.push(h);
      }
      waiters = waiters.filter((w) => (requests.length >= w.n ? (w.resolve(), false) : true));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    requests,
    socket: () => sock!,
    waitFor: (n) => (requests.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
    close: async () => {
      sock?.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function reply(h: FrameHeader, payload: Buffer = Buffer.alloc(0), patch: Partial<FrameHeader> = {}): Buffer {
  return Buffer.concat([encodeHeader({ opcode: h.opcode, status: 0, flags: frameFlags.reply, seq: h.seq, ioSeq: 0, offset: 0, length: payload.length, ...patch }), payload]);
}

/** Settles to the value or the error, counting how often it settled (must be once). */
function settled<T>(p: Promise<T>): Promise<{ ok: boolean; v: T | undefined; err: unknown }> {
  return p.then(
    (v) => ({ ok: true, v, err: undefined }),
    (err: unknown) => ({ ok: false, v: undefined, err }),
  );
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('TcpReplicaClient against a hostile peer', () => {
  let peer: Peer | undefined;
  let client: (ReplicaClient & CallbackReplicaClient & TcpReplicaClient) | undefined;
  const realNow = Date.now;
  afterEach(async () => {
    Date.now = realNow;
    await client?.close();
    await peer?.close();
    client = undefined;
    peer = undefined;
  });

  async function connect(timeoutMs = 10_000, logger?: Logger): Promise<ReplicaClient & CallbackReplicaClient & TcpReplicaClient> {
    peer = await startPeer();
    client = (await connectReplica(`127.0.0.1:${peer.port}`, { timeoutMs, logger })) as ReplicaClient & CallbackReplicaClient & TcpReplicaClient;
    return client;
  }

  it('matches replies by seq whatever order they come in, and a reply to an unknown seq fails every request once', async () => {
    const c = await connect();
    const closes: (Error | undefined)[] = [];
    c.onClose((err) => closes.push(err));
    const a = settled(c.read(0, 512));
    const b = settled(c.read(4096, 512));
    const cbResults: (Error | null)[] = [];
    c.writeCb(8192, Buffer.alloc(512, 3), 1, (err) => cbResults.push(err));
    await peer!.waitFor(3);
    const [ha, hb] = peer!.requests;
    // b answered first, then a: each gets its own bytes.
    peer!.socket().write(Buffer.concat([reply(hb!, Buffer.alloc(512, 0xbb)), reply(ha!, Buffer.alloc(512, 0xaa))]));
    const [ra, rb] = await Promise.all([a, b]);
    expect(ra.v!.every((x) => x === 0xaa)).to.equal(true);
    expect(rb.v!.every((x) => x === 0xbb)).to.equal(true);
    // A reply to a seq never sent: the stream cannot be trusted; the write in flight fails.
    peer!.socket().write(reply({ ...ha!, seq: 999 }));
    for (let i = 0; i < 200 && cbResults.length === 0; i++) await sleep(5);
    expect(cbResults).to.have.length(1);
    expect(hasErrorCode(cbResults[0], 'protocol'), String(cbResults[0])).to.equal(true);
    expect(cbResults[0]!.message).to.match(/unknown seq 999/);
    expect(closes).to.have.length(1);
    expect(hasErrorCode(closes[0], 'protocol')).to.equal(true);
    const later = await settled(c.status());
    expect(hasErrorCode(later.err, 'unavailable'), String(later.err)).to.equal(true);
    await sleep(20);
    expect(cbResults, 'settled once').to.have.length(1);
    expect(closes, 'onClose once').to.have.length(1);
  });

  it('fails the connection on a reply with the wrong opcode for its seq, and on a request frame from the peer', async () => {
    const c = await connect();
    const s = settled(c.sync());
    await peer!.waitFor(1);
    peer!.socket().write(reply(peer!.requests[0]!, Buffer.alloc(0), { opcode: opcodes.write }));
    const r = await s;
    expect(hasErrorCode(r.err, 'protocol'), String(r.err)).to.equal(true);
    expect((r.err as Error).message).to.match(/opcode 3 for a request of opcode 4/);
    await c.close();
    await peer!.close();

    const c2 = await connect();
    const s2 = settled(c2.sync());
    await peer!.waitFor(1);
    peer!.socket().write(reply(peer!.requests[0]!, Buffer.alloc(0), { flags: 0 }));
    const r2 = await s2;
    expect(hasErrorCode(r2.err, 'protocol'), String(r2.err)).to.equal(true);
    expect((r2.err as Error).message).to.match(/a request where a reply was due/);
  });

  it('refuses a read reply longer or shorter than asked, leaving the caller buffer untouched', async () => {
    const c = await connect();
    const big = 128 * 1024;
    const into = Buffer.alloc(big, 0x55);
    const long = settled(c.readInto!(0, into));
    const short = settled(c.read(0, big));
    await peer!.waitFor(2);
    const [h1, h2] = peer!.requests;
    peer!.socket().write(Buffer.concat([reply(h1!, Buffer.alloc(big + 4096, 0x11)), reply(h2!, Buffer.alloc(big - 1, 0x22))]));
    const [r1, r2] = await Promise.all([long, short]);
    expect(hasErrorCode(r1.err, 'protocol'), String(r1.err)).to.equal(true);
    expect((r1.err as Error).message).to.match(/got 135168 bytes, asked for 131072/);
    expect(into.every((x) => x === 0x55), 'no byte of the wrong-sized reply landed in the caller buffer').to.equal(true);
    expect(hasErrorCode(r2.err, 'protocol'), String(r2.err)).to.equal(true);
    // A malformed reply fails its request only: the connection carries on.
    const ok = settled(c.readInto!(4096, into));
    await peer!.waitFor(3);
    peer!.socket().write(reply(peer!.requests[2]!, Buffer.alloc(big, 0x33)));
    expect((await ok).ok).to.equal(true);
    expect(into.every((x) => x === 0x33)).to.equal(true);
  });

  it('fails every request on a reply header with an oversized length, without waiting for its payload', async () => {
    const c = await connect();
    const a = settled(c.read(0, 4096));
    const b = settled(c.sync());
    await peer!.waitFor(2);
    const h = Buffer.from(reply(peer!.requests[0]!));
    h.writeUInt32LE(maxPayload + 1, 12);
    peer!.socket().write(h);
    const [ra, rb] = await Promise.all([a, b]);
    for (const r of [ra, rb]) {
      expect(hasErrorCode(r.err, 'protocol'), String(r.err)).to.equal(true);
      expect((r.err as Error).message).to.match(/exceeds the limit/);
    }
  });

  it('close() with promise and callback requests in flight settles each once with aborted, then fires onClose once', async () => {
    const c = await connect();
    const closes: (Error | undefined)[] = [];
    c.onClose((err) => closes.push(err));
    const ps = [settled(c.read(0, 4096)), settled(c.sync()), settled(c.snapshotList())];
    const cbs: (Error | null)[] = [];
    c.readCb(0, 4096, (err) => cbs.push(err));
    c.writeCb(0, Buffer.alloc(4096), 5, (err) => cbs.push(err));
    await peer!.waitFor(5);
    const requests = [...peer!.requests];
    await c.close();
    const rs = await Promise.all(ps);
    for (const r of rs) expect(hasErrorCode(r.err, 'aborted'), String(r.err)).to.equal(true);
    await sleep(5);
    expect(cbs).to.have.length(2);
    for (const e of cbs) expect(hasErrorCode(e, 'aborted'), String(e)).to.equal(true);
    // Late replies after close are ignored; nothing settles twice.
    peer!.socket().write(Buffer.concat(requests.map((h) => reply(h))));
    await sleep(20);
    expect(cbs).to.have.length(2);
    expect(closes).to.deep.equal([undefined]);
    const after = await settled(c.write(0, Buffer.alloc(512), 9));
    expect(hasErrorCode(after.err, 'unavailable'), String(after.err)).to.equal(true);
  });

  it('a wall clock jumping forward does not time out a live replica', async () => {
    const c = await connect(1000);
    const s = settled(c.sync());
    await peer!.waitFor(1);
    Date.now = () => realNow() + 3_600_000;
    await sleep(700); // longer than the sweep interval (250 ms)
    Date.now = realNow;
    expect(c.closed, 'the connection survived the clock step').to.equal(false);
    expect(c.inFlight).to.equal(1);
    peer!.socket().write(reply(peer!.requests[0]!, Buffer.alloc(0), { ioSeq: 42 }));
    const r = await s;
    expect(r.ok, String(r.err)).to.equal(true);
    expect(r.v).to.equal(42);
  });

  it('a wall clock jumping back does not keep a dead replica alive', async function () {
    this.timeout(10_000);
    const c = await connect(300);
    const s = settled(c.sync());
    await peer!.waitFor(1);
    Date.now = () => realNow() - 3_600_000;
    const r = await s;
    Date.now = realNow;
    expect(hasErrorCode(r.err, 'timeout'), String(r.err)).to.equal(true);
  });

  it('bytes of a large reply still arriving count as a live peer', async () => {
    const c = await connect(1000);
    const length = 1 << 20;
    const s = settled(c.read(0, length));
    await peer!.waitFor(1);
    const bytes = reply(peer!.requests[0]!, Buffer.alloc(length, 7));
    // Dribble the reply over about 3 timeouts, with no complete frame meanwhile.
    const step = Math.ceil(bytes.length / 30);
    for (let at = 0; at < bytes.length; at += step) {
      peer!.socket().write(bytes.subarray(at, at + step));
      await sleep(100);
    }
    const r = await s;
    expect(r.ok, String(r.err)).to.equal(true);
    expect(r.v!.length).to.equal(length);
  });

  it('a callback that throws on an error path is logged, never an uncaught exception (mocha fails on one)', async () => {
    const logger = silentLogger();
    const logged: string[] = [];
    logger.error = ((msg: string) => {
      logged.push(msg);
      return logger;
    }) as typeof logger.error;
    const c = await connect(10_000, logger);
    let calls = 0;
    const thrower = (): void => {
      calls++;
      throw new Error('callback bug');
    };
    // An error reply, then a lost connection with a request in flight, then calls on the closed client.
    c.writeCb(0, Buffer.alloc(512), 1, thrower);
    await peer!.waitFor(1);
    peer!.socket().write(reply(peer!.requests[0]!, Buffer.from('disk on fire'), { status: 10 }));
    for (let i = 0; i < 200 && calls < 1; i++) await sleep(5);
    c.readCb(0, 512, thrower);
    await peer!.waitFor(2);
    peer!.socket().destroy();
    for (let i = 0; i < 200 && calls < 2; i++) await sleep(5);
    c.writeCb(0, Buffer.alloc(512), 2, thrower);
    c.readCb(0, 512, thrower);
    for (let i = 0; i < 200 && calls < 4; i++) await sleep(5);
    await sleep(20);
    expect(calls).to.equal(4);
    expect(logged.filter((m) => /callback threw/.test(m))).to.have.length(4);
  });

  it('refuses a timeout that would fail every request at once, or never', async () => {
    for (const timeoutMs of [0, -5, Number.NaN, Infinity]) {
      const err = await connectReplica('127.0.0.1:1', { timeoutMs }).catch((e: unknown) => e);
      expect(hasErrorCode(err, 'invalid'), String(err)).to.equal(true);
      expect((err as Error).message).to.match(/timeoutMs must be a positive number/);
    }
  });

  it('reports a refused connection as unavailable, naming the address', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const err = await connectReplica(`127.0.0.1:${port}`, { timeoutMs: 5_000 }).catch((e: unknown) => e);
    expect(hasErrorCode(err, 'unavailable'), String(err)).to.equal(true);
    expect((err as Error).message).to.contain(`127.0.0.1:${port}: cannot connect`);
  });

  it('a duplicated reply in the same read never lands in the caller buffer of the request it repeats', async () => {
    // Bytes are fed by hand (as the socket's onread would), so both replies are in one commit.
    peer = await startPeer();
    const sock = net.connect({ host: '127.0.0.1', port: peer.port });
    await new Promise((r) => sock.once('connect', r));
    const ref: { c?: TcpReplicaClient } = {};
    const decoder = new DirectFrameDecoder({
      allocPayload: (h) => {
        const into = ref.c!.replyBuffer(h);
        return into !== null && into.length === h.length ? into : Buffer.allocUnsafe(h.length);
      },
    });
    const c = (ref.c = new TcpReplicaClient('hand-fed', sock, decoder, 10_000));
    const length = 70 * 1024; // above the 64 KiB in-place threshold
    const into = Buffer.alloc(length, 0);
    const read = settled(c.readInto(0, into));
    await peer.waitFor(1);
    const h = peer.requests[0]!;
    const stream = Buffer.concat([reply(h, Buffer.alloc(length, 0x11)), reply(h, Buffer.alloc(length, 0x22))]);
    for (let pos = 0; pos < stream.length; ) {
      const target = decoder.nextBuffer();
      const n = Math.min(target.length, stream.length - pos);
      stream.copy(target, 0, pos, pos + n);
      pos += n;
      c.onBytes(n);
    }
    const r = await read;
    expect(r.ok, String(r.err)).to.equal(true);
    expect(into.every((x) => x === 0x11), 'the first reply intact, no byte of the duplicate').to.equal(true);
    expect(c.closed, 'the duplicate (a reply to no request in flight) failed the connection').to.equal(true);
    await c.close();
  });
});
