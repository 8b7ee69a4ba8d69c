// TcpReplicaClient's callback forms (writeCb, readCb) against a scripted peer: replies go to the
// right callback, error replies and a lost connection fail them (never inside the call), and a
// callback that throws does not break the reply stream.
import net from 'node:net';
import { expect } from 'chai';
import { hasErrorCode } from '../errors.ts';
import { connectReplica, type CallbackReplicaClient } from './client.ts';
import { decodeHeader, encodeHeader, frameFlags, headerSize, type FrameHeader } from './header.ts';
import { opcodes } from './opcodes.ts';
import { statusFor } from './status-codes.ts';
import { CstorError } from '../errors.ts';
import type { ReplicaClient } from './types.ts';

/** A peer that answers WRITE with OK (or an error at offset 4096), READ with `length` bytes of (offset & 0xff). */
function startPeer(): Promise<{ server: net.Server; port: number; peers: net.Socket[] }> {
  const peers: net.Socket[] = [];
  const server = net.createServer((s) => {
    peers.push(s);
    let buf = Buffer.alloc(0);
    s.on('error', () => undefined);
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      for (;;) {
        if (buf.length < headerSize) return;
        const h = decodeHeader(buf, 0);
        if (buf.length < headerSize + h.length) return;
        const payload = buf.subarray(headerSize, headerSize + h.length);
        buf = buf.subarray(headerSize + h.length);
        const reply = (body: Buffer, status = 0): void => {
          const rh: FrameHeader = { opcode: h.opcode, status, flags: frameFlags.reply, seq: h.seq, ioSeq: 0, offset: 0, length: body.length };
          s.write(Buffer.concat([encodeHeader(rh), body]));
        };
        if (h.offset === 4096) reply(Buffer.from('injected failure'), statusFor(new CstorError('io', 'x')));
        else if (h.opcode === opcodes.write) reply(Buffer.alloc(0));
        else if (h.opcode === opcodes.read) reply(Buffer.alloc(payload.readUInt32LE(0), h.offset & 0xff));
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as net.AddressInfo).port, peers })));
}

describe('TcpReplicaClient callback forms', () => {
  let server: net.Server | undefined;
  afterEach(() => server?.close());

  it('deliver replies, error replies and a lost connection to the right callbacks, never inside the call', async () => {
    const peer = await startPeer();
    server = peer.server;
    const client = (await connectReplica(`127.0.0.1:${peer.port}`, { timeoutMs: 10_000 })) as ReplicaClient & CallbackReplicaClient;
    const call = <T>(start: (cb: (err: Error | null, v?: T) => void) => void): Promise<{ err: Error | null; v: T | undefined }> =>
      new Promise((resolve, reject) => {
        let returned = false;
        start((err, v) => (returned ? resolve({ err, v }) : reject(new Error('called back inside the call'))));
        returned = true;
      });
    const [w, r, bad] = await Promise.all([
      call<void>((cb) => client.writeCb(8192, Buffer.alloc(4096, 1), 7, cb)),
      call<Buffer>((cb) => client.readCb(512, 4096, cb)),
      call<void>((cb) => client.writeCb(4096, Buffer.alloc(4096, 2), 8, cb)),
    ]);
    expect(w.err).to.equal(null);
    expect(r.err).to.equal(null);
    expect(r.v!.length).to.equal(4096);
    expect(r.v!.every((b) => b === 0)).to.equal(true);
    expect(hasErrorCode(bad.err, 'io'), String(bad.err)).to.equal(true);
    expect(bad.err!.message).to.match(/injected failure/);
    // A callback that throws: logged and dropped; the next replies still arrive.
    const thrown = new Promise<void>((resolve) =>
      client.writeCb(0, Buffer.alloc(512), 9, () => {
        resolve();
        throw new Error('callback bug');
      }),
    );
    await thrown;
    const after = await call<Buffer>((cb) => client.readCb(1024, 512, cb));
    expect(after.err).to.equal(null);
    // Bad arguments: the promise path's exact errors.
    const neg = await call<void>((cb) => client.writeCb(-1, Buffer.alloc(512), 1, cb));
    expect(hasErrorCode(neg.err, 'invalid'), String(neg.err)).to.equal(true);
    // The connection drops with a request in flight: its callback fails.
    peer.server.close();
    const lost = call<Buffer>((cb) => client.readCb(2048, 512, cb));
    for (const s of peer.peers) s.destroy();
    const { err } = await lost;
    expect(hasErrorCode(err, 'unavailable'), String(err)).to.equal(true);
    const closed = await call<void>((cb) => client.writeCb(0, Buffer.alloc(512), 10, cb));
    expect(hasErrorCode(closed.err, 'unavailable'), String(closed.err)).to.equal(true);
    await client.close();
  });
});
