import { expect } from 'chai';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import axios from 'axios';
import { Registry } from 'prom-client';
import type { BlockDevice } from '../../lib/block-device.ts';
import { closeServer, listen } from '../../lib/listen.ts';
import { silentLogger } from '../../lib/logger.ts';
import { FakeCluster } from '../replication/fake-replica.ts';
import type { WriteCacheStore } from '../scsi/disk.ts';
import { createMgmtApp } from './app.ts';
import { VolumeManager, type TargetPortal } from './volume-manager.ts';

const MiB = 1 << 20;
const replicas = ['127.0.0.1:3001', '127.0.0.1:3002', '127.0.0.1:3003'];

class FakePortal implements TargetPortal {
  readonly targets = new Map<string, BlockDevice>();
  readonly writeCaches = new Map<string, WriteCacheStore>();
  addTarget(opts: { volume: string; device: BlockDevice; writeCache?: WriteCacheStore }): void {
    this.targets.set(opts.volume, opts.device);
    if (opts.writeCache) this.writeCaches.set(opts.volume, opts.writeCache);
  }
  async removeTarget(volume: string): Promise<void> {
    this.targets.delete(volume);
  }
  hasTarget(volume: string): boolean {
    return this.targets.has(volume);
  }
}

describe('target mgmt API', () => {
  let dir: string;
  let cluster: FakeCluster;
  let manager: VolumeManager;
  let portal: FakePortal;
  let server: http.Server;
  let base: string;

  const req = (method: string, url: string, data?: unknown, headers?: Record<string, string>) =>
    axios.request({ baseURL: base, method, url, data, headers, validateStatus: () => true });

  async function startApi(): Promise<void> {
    portal = new FakePortal();
    manager = new VolumeManager({ connect: cluster.connect, portal, stateFile: path.join(dir, 'volumes.json'), logger: silentLogger(), targetId: 't1' });
    await manager.load();
    server = http.createServer(createMgmtApp({ manager, logger: silentLogger(), registry: new Registry(), iscsiStats: (v) => ({ volume: v }) }));
    const addr: AddressInfo = await listen(server, '127.0.0.1', 0);
    base = `http://127.0.0.1:${addr.port}`;
  }

  async function stopApi(): Promise<void> {
    await closeServer(server);
    await manager.close();
  }

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'target-mgmt-'));
    cluster = new FakeCluster('vol1', 8 * MiB, replicas);
    await startApi();
  });

  afterEach(async () => {
    await stopApi();
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function serveVol1(): Promise<void> {
    const res = await req('PUT', '/v1/volumes/vol1', { capacity: 8 * MiB, replicationFactor: 3, replicas });
    expect(res.status, JSON.stringify(res.data)).to.equal(201);
    await manager.get('vol1').waitFor((v) => v.phase === 'Healthy', 5000);
  }

  it('refuses bad serve requests, naming every problem', async () => {
    const table: { name: string; body: unknown; status: number; error: RegExp }[] = [
      { name: 'vol1', body: 'nope', status: 400, error: /must be a JSON object/ },
      { name: 'vol1', body: { capacity: -1, replicationFactor: 3, replicas }, status: 400, error: /capacity must be a positive integer/ },
      { name: 'vol1', body: { capacity: 1000, replicationFactor: 3, replicas }, status: 400, error: /not a multiple of the block size 512/ },
      { name: 'vol1', body: { capacity: MiB, replicationFactor: 2, replicas }, status: 400, error: /3 replicas given for replicationFactor 2/ },
      { name: 'vol1', body: { capacity: MiB, replicationFactor: 1, replicas: ['nohost'] }, status: 400, error: /"nohost" is not HOST:PORT/ },
      { name: 'vol1', body: { capacity: MiB, replicationFactor: 3, replicas, color: 'red' }, status: 400, error: /unknown field "color"/ },
      { name: 'vol1', body: { capacity: MiB, replicationFactor: 3, replicas, blockSize: 1024 }, status: 400, error: /blockSize must be 512 or 4096/ },
      { name: 'Bad_Name', body: { capacity: MiB, replicationFactor: 3, replicas }, status: 400, error: /volume name "Bad_Name" is invalid/ },
    ];
    for (const t of table) {
      const res = await req('PUT', `/v1/volumes/${t.name}`, t.body, typeof t.body === 'string' ? { 'content-type': 'text/plain' } : undefined);
      expect(res.status, JSON.stringify(t.body)).to.equal(t.status);
      expect(res.data.error, JSON.stringify(t.body)).to.match(t.error);
    }
    const both = await req('PUT', '/v1/volumes/vol1', { capacity: 0, replicationFactor: 0, replicas: 'x' });
    expect(both.data.error).to.match(/capacity.*replicationFactor.*replicas/);
    const badJson = await req('PUT', '/v1/volumes/vol1', '{"capacity": ', { 'content-type': 'application/json' });
    expect(badJson.status).to.equal(400);
    expect(badJson.data.error).to.match(/malformed JSON body/);
  });

  it('serves a volume (idempotent), reports status shaped like CStorVolume.status, and stops it', async () => {
    await serveVol1();
    expect(portal.hasTarget('vol1')).to.equal(true);
    const again = await req('PUT', '/v1/volumes/vol1', { capacity: 8 * MiB, replicationFactor: 3, replicas });
    expect(again.status).to.equal(200);
    const other = await req('PUT', '/v1/volumes/vol1', { capacity: 4 * MiB, replicationFactor: 3, replicas });
    expect(other.status).to.equal(409);
    expect(other.data.error).to.match(/already served with another spec/);

    const st = await req('GET', '/v1/volumes/vol1');
    expect(st.status).to.equal(200);
    expect(st.data.phase).to.equal('Healthy');
    expect(st.data.replicationFactor).to.equal(3);
    expect(st.data.consistencyFactor).to.equal(2);
    expect(st.data.replicaStatuses).to.have.length(3);
    expect(st.data.replicaStatuses[0]).to.include({ replicaId: replicas[0], mode: 'Healthy', quorum: '1', inflightRead: '0', inflightWrite: '0' });
    expect(st.data.replicaStatuses[0]).to.have.property('checkpointedIOSeq').that.is.a('string');
    expect(st.data.replicaStatuses[0]).to.have.property('upTime').that.is.a('number');
    const list = await req('GET', '/v1/volumes');
    expect(list.data.items.map((v: { name: string }) => v.name)).to.deep.equal(['vol1']);

    const missing = await req('GET', '/v1/volumes/nope');
    expect(missing.status).to.equal(404);
    expect(missing.data).to.deep.equal({ error: 'volume nope is not served by this target' });

    expect((await req('DELETE', '/v1/volumes/vol1')).status).to.equal(204);
    expect((await req('DELETE', '/v1/volumes/vol1')).status).to.equal(204);
    expect(portal.hasTarget('vol1')).to.equal(false);
    expect((await req('GET', '/v1/volumes/vol1')).status).to.equal(404);
    for (const a of replicas) expect(cluster.store(a).clients.size).to.equal(0);
  });

  it('creates, lists and destroys snapshots; refuses bad names and below-quorum snapshots', async () => {
    await serveVol1();
    const dev = portal.targets.get('vol1')!;
    await dev.writeAt(0, Buffer.alloc(4096, 7));
    const created = await req('POST', '/v1/volumes/vol1/snapshots', { name: 'snap-1' });
    expect(created.status).to.equal(201);
    expect(created.data.name).to.equal('snap-1');
    expect((await req('POST', '/v1/volumes/vol1/snapshots', { name: 'snap-1' })).status, 'idempotent').to.equal(201);
    const list = await req('GET', '/v1/volumes/vol1/snapshots');
    expect(list.data.items.map((s: { name: string }) => s.name)).to.deep.equal(['snap-1']);
    expect((await req('POST', '/v1/volumes/vol1/snapshots', {})).status).to.equal(400);
    expect((await req('POST', '/v1/volumes/vol1/snapshots', { name: 'rebuild-1' })).data.error).to.match(/reserved/);
    expect((await req('DELETE', '/v1/volumes/vol1/snapshots/snap-1')).status).to.equal(204);
    expect((await req('GET', '/v1/volumes/vol1/snapshots')).data.items).to.deep.equal([]);

    cluster.store(replicas[1]!).crash();
    cluster.store(replicas[2]!).crash();
    await manager.get('vol1').waitFor((v) => v.count('healthy') === 1, 5000);
    const refused = await req('POST', '/v1/volumes/vol1/snapshots', { name: 'snap-2' });
    expect(refused.status).to.equal(409);
    expect(refused.data).to.deep.equal({ error: 'snapshot snap-2 of vol1 refused: 1 of 3 replicas healthy, 2 needed' });
    expect(cluster.store(replicas[0]!).snapshotList()).to.deep.equal([]);
  });

  it('exposes IO stats, metrics and health', async () => {
    await serveVol1();
    const dev = portal.targets.get('vol1')!;
    await dev.writeAt(0, Buffer.alloc(8192, 1));
    await dev.readAt(0, 4096);
    const stats = await req('GET', '/v1/volumes/vol1/stats');
    expect(stats.data.engine).to.include({ writes: 1, reads: 1, writeBytes: 8192, readBytes: 4096 });
    expect(stats.data.iscsi).to.deep.equal({ volume: 'vol1' });
    await req('POST', '/v1/volumes/vol1/snapshots', { name: 's' });
    const metrics = await req('GET', '/metrics');
    expect(metrics.data).to.match(/cstor_target_operation_total_seconds_count\{operation_name="snapshot_create",operation_status="success"\} 1/);
    expect(metrics.data).to.match(/cstor_target_volume_phase\{volume="vol1",phase="Healthy"\} 1/);
    expect(metrics.data).to.match(/cstor_target_replica_inflight_io\{volume="vol1",replica="127.0.0.1:3001",kind="write"\} 0/);
    expect((await req('GET', '/healthz')).data).to.deep.equal({ status: 'ok' });
    expect((await req('GET', '/v1/nothing')).status).to.equal(404);
  });

  it('remembers served volumes in the state file across a restart', async () => {
    await serveVol1();
    await portal.targets.get('vol1')!.writeAt(0, Buffer.alloc(4096, 9));
    await stopApi();
    await startApi();
    const vol = manager.get('vol1');
    await vol.waitFor((v) => v.phase === 'Healthy', 5000);
    expect(portal.hasTarget('vol1')).to.equal(true);
    expect((await vol.readAt(0, 4096)).equals(Buffer.alloc(4096, 9))).to.equal(true);
    const saved = JSON.parse(await fs.readFile(path.join(dir, 'volumes.json'), 'utf8')) as { volumes: { name: string }[] };
    expect(saved.volumes.map((v) => v.name)).to.deep.equal(['vol1']);
  });

  it('keeps suspect marks across a stop and serve: a replica that missed a write is rebuilt, not trusted', async () => {
    await serveVol1();
    const vol = manager.get('vol1');
    await vol.writeAt(0, Buffer.alloc(4096, 1));
    // pool3 answers a write with an I/O error, then takes the next one: it misses a write.
    cluster.client(replicas[2]!).faults.push({ op: 'write', kind: 'error' });
    await vol.writeAt(0, Buffer.alloc(4096, 2));
    await vol.waitFor((v) => v.count('healthy') === 3 && v.status().rebuilding === null, 10_000);
    cluster.client(replicas[2]!).faults.push({ op: 'write', kind: 'error' });
    await vol.writeAt(4096, Buffer.alloc(4096, 3));
    const stateFile = path.join(dir, 'volumes.json');
    const suspectsOf = async (): Promise<string[] | undefined> => (JSON.parse(await fs.readFile(stateFile, 'utf8')) as { suspects: Record<string, string[]> }).suspects.vol1;
    expect(await suspectsOf()).to.deep.equal([replicas[2]]);
    expect((await req('DELETE', '/v1/volumes/vol1')).status).to.be.oneOf([200, 204]);
    expect(await suspectsOf(), 'kept while the volume is not served').to.deep.equal([replicas[2]]);
    await serveVol1();
    const again = manager.get('vol1');
    await again.waitFor((v) => v.count('healthy') === 3 && v.status().rebuilding === null, 10_000);
    expect(cluster.client(replicas[2]!).calls.filter((c) => c.op === 'rebuildStart').length, 'rebuilt after the serve').to.be.greaterThan(0);
    expect((await again.readAt(0, 8192)).equals(Buffer.concat([Buffer.alloc(4096, 2), Buffer.alloc(4096, 3)]))).to.equal(true);
    for (let i = 0; i < 100 && (await suspectsOf()) !== undefined; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await suspectsOf(), 'cleared by the rebuild').to.equal(undefined);
  });

  it('keeps a write cache turned off in the state file: a restarted target serves the volume with it off', async () => {
    await serveVol1();
    expect(portal.writeCaches.get('vol1')!.enabled).to.equal(true);
    await portal.writeCaches.get('vol1')!.save(false);
    const saved = JSON.parse(await fs.readFile(path.join(dir, 'volumes.json'), 'utf8')) as { writeCacheOff: string[] };
    expect(saved.writeCacheOff).to.deep.equal(['vol1']);
    await stopApi();
    await startApi();
    expect(portal.writeCaches.get('vol1')!.enabled).to.equal(false);
    await portal.writeCaches.get('vol1')!.save(true);
    await stopApi();
    await startApi();
    expect(portal.writeCaches.get('vol1')!.enabled).to.equal(true);
  });

  it('keeps an io_seq reservation in the state file: a restarted target writes above it, whatever the checkpoints', async () => {
    await serveVol1();
    const vol = portal.targets.get('vol1')!;
    await vol.writeAt(0, Buffer.alloc(4096, 1));
    const seqs = (): number[] => cluster.client(replicas[0]!).calls.filter((c) => c.op === 'write').map((c) => c.args[2] as number);
    const first = seqs()[0]!;
    const stateFile = path.join(dir, 'volumes.json');
    const reserved = (JSON.parse(await fs.readFile(stateFile, 'utf8')) as { ioSeqReserved: Record<string, number> }).ioSeqReserved.vol1!;
    expect(reserved, 'the reservation covers the write sent').to.be.at.least(first);
    await stopApi();
    // As if the old target had sent writes up to its reservation that no replica checkpointed.
    await startApi();
    const again = manager.get('vol1');
    await again.waitFor((v) => v.phase === 'Healthy', 5000);
    await again.writeAt(4096, Buffer.alloc(4096, 2));
    expect(seqs().at(-1)!, 'io_seq after the restart').to.be.greaterThan(reserved);
    const after = (JSON.parse(await fs.readFile(stateFile, 'utf8')) as { ioSeqReserved: Record<string, number> }).ioSeqReserved.vol1!;
    expect(after).to.be.at.least(seqs().at(-1)!);
    expect((await again.readAt(0, 8192)).equals(Buffer.concat([Buffer.alloc(4096, 1), Buffer.alloc(4096, 2)]))).to.equal(true);
  });
});
