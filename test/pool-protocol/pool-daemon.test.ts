// The replica protocol and the mgmt API against real `cstor pool` processes on loopback.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connectReplica } from '../../lib/replica-protocol/client.ts';
import { encodeFrame } from '../../lib/replica-protocol/frame.ts';
import { FrameDecoder } from '../../lib/replica-protocol/frame-decoder.ts';
import { headerSize, maxPayload, type Frame } from '../../lib/replica-protocol/header.ts';
import { encodeOpenRequest } from '../../lib/replica-protocol/messages/open.ts';
import type { ReplicaClient } from '../../lib/replica-protocol/types.ts';
import { spawnSync } from 'node:child_process';
import { cstorBin, startDaemon, stopAll, type Daemon } from '../support/daemon.ts';
import { mgmt } from './mgmt-client.ts';
import { randomPipelinedOps } from './random-ops.ts';
import { copyReplica } from './rebuild-copy.ts';
import { rejection } from '../support/rejection.ts';

const MiB = 1 << 20;
const bs = 4096;

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true })) out.push(path.relative(dir, path.join(e.parentPath, e.name)));
  return out.sort();
}

function startPool(name: string, dir: string): Promise<Daemon> {
  // Each pool also serves its UNIX socket (--listen-unix), next to its data directory.
  return startDaemon(['pool', '--name', name, '--data-dir', dir, '--listen', '127.0.0.1:0', '--listen-unix', `${dir}.sock`, '--mgmt', '127.0.0.1:0'], {
    listeners: ['replica', 'replica-unix', 'mgmt'],
  });
}

describe('cstor pool daemon (real processes)', function () {
  this.timeout(120_000);
  let tmp: string;
  let p1: Daemon;
  let p2: Daemon;
  const clients: ReplicaClient[] = [];

  const open = async (d: Daemon, volume: string, size: number): Promise<ReplicaClient> => {
    const c = await connectReplica(d.addresses.replica!, { timeoutMs: 20_000 });
    clients.push(c);
    await c.open({ volume, size, blockSize: bs, replicationFactor: 3, targetId: 'test' });
    return c;
  };
  const create = async (d: Daemon, body: Record<string, unknown>): Promise<void> => {
    const r = await mgmt(d.addresses.mgmt!, 'POST', '/v1/replicas', body);
    expect(r.status, r.text).to.equal(201);
  };

  before(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'pool-daemon-'));
    [p1, p2] = await Promise.all([startPool('p1', path.join(tmp, 'p1')), startPool('p2', path.join(tmp, 'p2'))]);
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  after(async () => {
    await stopAll();
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it('pipelines hundreds of random writes and reads; data survives a restart after sync', async () => {
    await create(p1, { volume: 'pipe', size: 64 * MiB });
    const c = await open(p1, 'pipe', 64 * MiB);
    await c.markHealthy();
    const n = 500;
    const offsets = Array.from({ length: n }, (_, i) => ((i * 7919) % (64 * MiB / bs)) * bs);
    const data = offsets.map(() => randomBytes(bs));
    await Promise.all(offsets.map((o, i) => c.write(o, data[i]!, i + 1)));
    const reads = await Promise.all(offsets.map((o) => c.read(o, bs)));
    reads.forEach((b, i) => expect(b.equals(data[i]!), `block ${i}`).to.equal(true));
    const big = randomBytes(4 * MiB);
    await c.write(32 * MiB, big, n + 1);
    expect((await c.read(32 * MiB, 4 * MiB)).equals(big)).to.equal(true);
    expect(await c.sync()).to.equal(n + 1);
    const st = await c.status();
    expect(st).to.include({ volume: 'pipe', mode: 'Healthy', checkpointedIoSeq: n + 1, inflightRead: 0, inflightWrite: 0 });
    const stats = await c.stats();
    expect(stats.writes).to.be.at.least(n + 1);
    await c.close();

    expect(await p1.stop()).to.equal(0);
    p1 = await startPool('p1', path.join(tmp, 'p1'));
    const c2 = await open(p1, 'pipe', 64 * MiB);
    expect((await c2.status()).checkpointedIoSeq).to.equal(n + 1);
    expect((await c2.read(offsets[3]!, bs)).equals(data[3]!)).to.equal(true);
    expect((await c2.read(32 * MiB, 4 * MiB)).equals(big)).to.equal(true);
    // The same replica through the pool's UNIX socket, which came back with the restart.
    expect(p1.addresses['replica-unix']).to.equal(`unix:${path.join(tmp, 'p1')}.sock`);
    const u = await connectReplica(p1.addresses['replica-unix']!, { timeoutMs: 20_000 });
    clients.push(u);
    await u.open({ volume: 'pipe', size: 64 * MiB, blockSize: bs, replicationFactor: 3, targetId: 'test-unix' });
    const into = Buffer.alloc(4 * MiB);
    await u.readInto!(32 * MiB, into);
    expect(into.equals(big)).to.equal(true);
    await u.write(offsets[5]!, data[4]!, n + 2);
    expect((await c2.read(offsets[5]!, bs)).equals(data[4]!)).to.equal(true);
  });

  it('keeps thousands of pipelined random overlapping IOs in arrival order (model check)', async () => {
    await create(p2, { volume: 'model', size: 64 * bs });
    const c = await open(p2, 'model', 64 * bs);
    const r = await randomPipelinedOps(c, { blocks: 64, blockSize: bs, ops: 3000, batch: 200, seed: 42 });
    expect(r.reads).to.be.above(1000);
    expect((await c.read(0, 64 * bs)).equals(r.model)).to.equal(true);
  });

  it('creates, lists and destroys snapshots; a mgmt clone reads the snapshot data', async () => {
    await create(p1, { volume: 'snapvol', size: 8 * MiB });
    const c = await open(p1, 'snapvol', 8 * MiB);
    await c.write(0, Buffer.alloc(2 * bs, 1), 1);
    await c.snapshotCreate('snap-a', 2);
    await c.write(bs, Buffer.alloc(bs, 2), 2);
    await c.snapshotCreate('snap-b', 3);
    await c.write(0, Buffer.alloc(bs, 3), 3);
    await c.snapshotCreate('snap-a', 4); // idempotent
    const list = await c.snapshotList();
    expect(list.map((s) => [s.name, s.ioSeq])).to.deep.equal([
      ['snap-a', 2],
      ['snap-b', 3],
    ]);
    expect(list[0]!.usedBytes).to.equal(2 * bs);

    const cl = await mgmt(p1.addresses.mgmt!, 'POST', '/v1/replicas', { volume: 'clone-a', size: 8 * MiB, cloneOf: 'snapvol@snap-a' });
    expect(cl.status, cl.text).to.equal(201);
    expect(cl.body).to.include({ volume: 'clone-a', cloneOf: 'snapvol@snap-a' });
    const again = await mgmt(p1.addresses.mgmt!, 'POST', '/v1/replicas', { volume: 'clone-a', size: 8 * MiB, cloneOf: 'snapvol@snap-a' });
    expect(again.status, again.text).to.equal(200);
    const cc = await open(p1, 'clone-a', 8 * MiB);
    expect((await cc.read(0, 2 * bs)).equals(Buffer.alloc(2 * bs, 1))).to.equal(true);

    // The source's view lists the clone; the list shows snapshots and clones.
    const src = await mgmt(p1.addresses.mgmt!, 'GET', '/v1/replicas/snapvol');
    expect(src.body).to.deep.include({ clones: ['clone-a'] });
    const all = (await mgmt(p1.addresses.mgmt!, 'GET', '/v1/replicas')).body as { items: { volume: string; snapshots: { name: string }[] }[] };
    expect(all.items.find((i) => i.volume === 'snapvol')!.snapshots.map((s) => s.name)).to.deep.equal(['snap-a', 'snap-b']);

    await c.snapshotDestroy('snap-a');
    await c.snapshotDestroy('snap-a');
    expect((await c.snapshotList()).map((s) => s.name)).to.deep.equal(['snap-b']);
    expect((await cc.read(0, 2 * bs)).equals(Buffer.alloc(2 * bs, 1)), 'clone intact after snapshot delete').to.equal(true);
    expect(Buffer.concat([await c.read(0, bs), await c.read(bs, bs)]).equals(Buffer.concat([Buffer.alloc(bs, 3), Buffer.alloc(bs, 2)]))).to.equal(true);

    const missing = await mgmt(p1.addresses.mgmt!, 'POST', '/v1/replicas', { volume: 'clone-x', size: 8 * MiB, cloneOf: 'snapvol@nope' });
    expect(missing.status).to.equal(404);
    expect((missing.body as { error: string }).error).to.match(/nope/);
  });

  it('streams a replica with snapshots into a second pool that then reads equal', async () => {
    const size = 16 * MiB;
    await create(p1, { volume: 'rb', size });
    await create(p2, { volume: 'rb', size });
    const src = await open(p1, 'rb', size);
    await src.markHealthy();
    let seq = 1;
    const snaps = ['rb-s1', 'rb-s2', 'rb-s3'];
    for (const s of snaps) {
      await Promise.all(Array.from({ length: 40 }, (_, i) => src.write(((i * 37 + seq * 11) % (size / bs - 4)) * bs, randomBytes(bs * (1 + (i % 3))), seq++)));
      await src.snapshotCreate(s, seq);
    }
    await Promise.all(Array.from({ length: 30 }, (_, i) => src.write(((i * 53) % (size / bs - 1)) * bs, randomBytes(bs), seq++)));
    await src.unmap(0, 8 * bs, seq++);
    await src.sync();

    const dst = await open(p2, 'rb', size);
    const copied = await copyReplica(src, dst, 256 * 1024);
    expect(copied.layers).to.equal(3);
    expect((await dst.status()).mode).to.equal('Healthy');
    expect((await dst.snapshotList()).map((s) => [s.name, s.ioSeq])).to.deep.equal((await src.snapshotList()).map((s) => [s.name, s.ioSeq]));
    expect((await dst.read(0, size)).equals(await src.read(0, size)), 'head').to.equal(true);
    for (const s of snaps) {
      for (const d of [p1, p2]) await create(d, { volume: `rbc-${s}`, size, cloneOf: `rb@${s}` });
      const a = await open(p1, `rbc-${s}`, size);
      const b = await open(p2, `rbc-${s}`, size);
      expect((await b.read(0, size)).equals(await a.read(0, size)), `snapshot ${s}`).to.equal(true);
    }
  });

  it('answers mgmt errors clearly and keeps pool info and metrics', async () => {
    const m = p1.addresses.mgmt!;
    const cases: [string, string, unknown, string | undefined, number, RegExp][] = [
      ['POST', '/v1/replicas', undefined, '{"volume": ', 400, /malformed JSON body/],
      ['POST', '/v1/replicas', { volume: '../x', size: MiB }, undefined, 400, /volume name "..\/x" is invalid/],
      ['POST', '/v1/replicas', { volume: 'a/b', size: MiB }, undefined, 400, /volume name "a\/b" is invalid/],
      ['POST', '/v1/replicas', { volume: 'ok', size: -1, extra: 1 }, undefined, 400, /unknown field "extra".*size must be a positive integer/],
      ['POST', '/v1/replicas', { volume: 'ok', size: 1000 }, undefined, 400, /multiple of the block size/],
      ['POST', '/v1/replicas', { volume: 'ok', size: MiB, cloneOf: 'nosnap' }, undefined, 400, /cloneOf must be "<volume>@<snapshot>"/],
      ['POST', '/v1/replicas', [1, 2], undefined, 400, /must be a JSON object/],
      ['GET', '/v1/replicas/..%2Fx', undefined, undefined, 400, /is invalid/],
      ['GET', '/v1/replicas/nope', undefined, undefined, 404, /nope has no replica in pool p1/],
      ['DELETE', '/v1/replicas/a%2Fb', undefined, undefined, 400, /is invalid/],
      ['GET', '/v1/nothing', undefined, undefined, 404, /no route GET \/v1\/nothing/],
    ];
    for (const [method, p, body, raw, status, re] of cases) {
      const r = await mgmt(m, method, p, body, raw);
      expect(r.status, `${method} ${p}: ${r.text}`).to.equal(status);
      expect((r.body as { error: string }).error, `${method} ${p}`).to.match(re);
    }
    await create(p1, { volume: 'gone', size: MiB });
    expect((await mgmt(m, 'DELETE', '/v1/replicas/gone')).status).to.equal(204);
    expect((await mgmt(m, 'DELETE', '/v1/replicas/gone')).status).to.equal(204);
    const info = (await mgmt(m, 'GET', '/v1/pool')).body as Record<string, number | string>;
    expect(info.name).to.equal('p1');
    expect(info.capacityBytes).to.be.above(0);
    expect(info.freeBytes).to.be.above(0);
    expect(info.usedBytes).to.be.at.least(0);
    expect((await mgmt(m, 'GET', '/healthz')).body).to.deep.equal({ status: 'ok' });
    const metrics = (await mgmt(m, 'GET', '/metrics')).text;
    expect(metrics).to.match(/cstor_pool_operation_total_seconds_count\{component="cstor-pool",operation_name="write",operation_status="success"\} [1-9]/);
    expect(metrics).to.include('cstor_pool_operations_in_flight');
    expect(metrics).to.match(/cstor_pool_write_bytes_total\{component="cstor-pool"\} [1-9]/);
  });

  it('refuses bad flags listing every problem, and prints --help', () => {
    const bad = spawnSync(process.execPath, [cstorBin, 'pool', '--name', 'Bad_Name', '--listen', 'nope'], { encoding: 'utf8' });
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.match(/--data-dir is required/);
    const bad2 = spawnSync(process.execPath, [cstorBin, 'pool', '--name', 'Bad_Name', '--data-dir', tmp, '--listen', 'nope'], { encoding: 'utf8' });
    expect(bad2.status).to.equal(2);
    expect(bad2.stderr).to.match(/--name "Bad_Name" is invalid.*--listen: "nope" is not HOST:PORT/);
    const help = spawnSync(process.execPath, [cstorBin, 'pool', '--help'], { encoding: 'utf8' });
    expect(help.status).to.equal(0);
    expect(help.stdout).to.match(/Usage: cstor pool/).and.match(/--mgmt HOST:PORT/);
  });

  it('survives garbage on the replica port and never writes outside its directory', async () => {
    const addr = p2.addresses.replica!;
    const [host, port] = addr.split(':');
    const before = await listTree(tmp);
    const send = async (bytes: Buffer[], wait = true): Promise<Frame[]> => {
      const s = net.connect({ host: host!, port: Number(port) });
      s.on('error', () => {});
      const frames: Frame[] = [];
      const d = new FrameDecoder();
      s.on('data', (c: Buffer) => {
        try {
          frames.push(...d.push(c));
        } catch {
          s.destroy();
        }
      });
      await new Promise((r) => s.once('connect', r));
      for (const b of bytes) s.write(b);
      const closed = new Promise((r) => s.once('close', r));
      if (wait) await Promise.race([closed, new Promise((r) => setTimeout(r, 300))]);
      s.destroy();
      await closed;
      return frames;
    };
    const frame = (opcode: number, seq: number, payload: Buffer): Buffer => Buffer.concat(encodeFrame({ opcode, seq, reply: false }, { payload: [payload] }));
    const openFrame = (volume: string): Buffer => Buffer.concat(encodeFrame({ opcode: 1, seq: 1, reply: false }, encodeOpenRequest({ volume, size: MiB, blockSize: bs, replicationFactor: 1, targetId: 'evil' })));

    for (let i = 0; i < 30; i++) await send([randomBytes(1 + ((i * 97) % 2000))], false);
    for (let i = 0; i < 10; i++) {
      const f = frame(2, i, Buffer.from([0, 16, 0, 0]));
      await send([f.subarray(0, 1 + ((i * 7) % (f.length - 1)))], false);
    }
    const big = frame(3, 77, Buffer.alloc(0));
    big.writeUInt32LE(maxPayload + 1, 12);
    const tooLarge = await send([big]);
    expect(tooLarge.map((f) => [f.header.seq, f.header.status])).to.deep.equal([[77, 8]]);
    const huge = frame(3, 78, Buffer.alloc(0));
    huge.writeUInt32LE(0xffffffff, 12);
    expect((await send([huge]))[0]!.payload.toString()).to.match(/exceeds the limit/);
    const unknown = await send([frame(99, 5, randomBytes(10)), frame(0, 6, Buffer.alloc(0))]);
    expect(unknown.map((f) => [f.header.seq, f.header.status, f.payload.toString()])).to.deep.equal([
      [5, 1, 'unknown opcode 99'],
      [6, 1, 'unknown opcode 0'],
    ]);
    for (const name of ['../x', 'a/b', '..', '/etc/passwd', 'x/../../y', 'A', 'a'.repeat(300), 'é']) {
      const [reply] = await send([openFrame(name)]);
      expect(reply, name).to.not.equal(undefined);
      expect(reply!.header.status, name).to.equal(1);
      expect(reply!.payload.toString(), name).to.match(/is invalid/);
    }
    // A lying string length inside an OPEN payload, and a READ before OPEN.
    const lying = openFrame('v');
    lying.writeUInt16LE(0xffff, headerSize + 13);
    expect((await send([lying]))[0]!.header.status).to.equal(9);
    expect((await send([frame(2, 3, Buffer.from([0, 16, 0, 0]))]))[0]!.payload.toString()).to.match(/send OPEN first/);

    // Still serving, and nothing appeared outside the pool directories.
    expect((await mgmt(p2.addresses.mgmt!, 'GET', '/healthz')).status).to.equal(200);
    await create(p2, { volume: 'after-garbage', size: MiB });
    const c = await open(p2, 'after-garbage', MiB);
    await c.write(0, Buffer.alloc(bs, 9), 1);
    expect((await c.read(0, bs)).equals(Buffer.alloc(bs, 9))).to.equal(true);
    const after = await listTree(tmp);
    const outside = after.filter((f) => !f.startsWith('p1') && !f.startsWith('p2'));
    expect(outside).to.deep.equal(before.filter((f) => !f.startsWith('p1') && !f.startsWith('p2')));
    expect(after.some((f) => /(^|\/)(x|y|passwd)(\.|$)/.test(f))).to.equal(false);
    expect(p2.proc.exitCode).to.equal(null);
    expect((await rejection(open(p2, 'nope', MiB))).code).to.equal('not_found');
  });
});
