import net from 'node:net';
import { expect } from 'chai';
import { hasErrorCode } from '../errors.ts';
import { connectReplica } from './client.ts';
import { decodeHeader, encodeHeader, frameFlags, headerSize } from './header.ts';
import { opcodes } from './opcodes.ts';

describe('TcpReplicaClient readInto', () => {
  let server: net.Server | undefined;
  afterEach(() => server?.close());

  it('never writes into the caller buffer once the request was rejected (a closing socket still reads)', async () => {
    const length = 256 * 1024;
    let peer: net.Socket | undefined;
    const gotRequest = new Promise<number>((resolve) => {
      server = net.createServer((s) => {
        peer = s;
        let buf = Buffer.alloc(0);
        s.on('data', (c: Buffer) => {
          buf = Buffer.concat([buf, c]);
          if (buf.length >= headerSize) resolve(decodeHeader(buf, 0).seq);
        });
        s.on('error', () => undefined);
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const client = await connectReplica(`127.0.0.1:${(server!.address() as net.AddressInfo).port}`, { timeoutMs: 10_000 });
    const into = Buffer.alloc(length, 0xaa);
    const read = client.readInto!(0, into).then(
      () => 'resolved',
      (err: unknown) => err,
    );
    const seq = await gotRequest;
    // The reply's header and the first half of its payload: the client reads it in place.
    const header = encodeHeader({ opcode: opcodes.read, status: 0, flags: frameFlags.reply, seq, ioSeq: 0, offset: 0, length });
    peer!.write(Buffer.concat([header, Buffer.alloc(length / 2, 0x11)]));
    for (let i = 0; i < 100 && into[length / 2 - 1] !== 0x11; i++) await new Promise((r) => setTimeout(r, 10));
    expect(into[0]).to.equal(0x11);
    // Closed mid-reply: the request fails, and the rest of the payload must not land in `into`.
    const closing = client.close();
    const err = await read;
    expect(hasErrorCode(err, 'aborted'), String(err)).to.equal(true);
    const snapshot = Buffer.from(into);
    peer!.end(Buffer.alloc(length / 2, 0x22));
    await closing;
    await new Promise((r) => setTimeout(r, 50));
    expect(into.equals(snapshot), 'bytes landed in the buffer after the rejection').to.equal(true);
    expect(into[length - 1]).to.equal(0xaa);
  });
});
