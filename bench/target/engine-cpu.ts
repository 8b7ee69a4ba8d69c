// CPU per IO of the SCSI disk layer and the replication engine alone (not part of the tests):
//   node --import tsx bench/target/engine-cpu.ts [--ops 200000] [--qd 16] [--rounds 5] [--promise]
//
// ScsiDisk.execute → ReplicatedVolume over RF "null" replica clients that answer at once (no
// socket, no store), so what is measured is the target's own per-IO work in cstor-target/scsi and
// cstor-target/replication: CDB parsing, the quorum bookkeeping, the promise chain, the stats and
// the garbage it leaves. 4 KiB WRITE(16)/READ(16) and 1 MiB WRITE(16)/READ(16), RF 1 and 3, QD
// commands in flight; best of `rounds` (CPU µs per IO from process.cpuUsage, GC included).
// The end-to-end figures (sockets, pools, the iSCSI layer) are bench/target-iscsi.
import { hasFlag, positiveArg } from '../args.ts';
import { ReplicatedVolume } from '../../cstor-target/replication/replicated-volume.ts';
import { ScsiDisk, type ScsiRequest, type ScsiResult } from '../../cstor-target/scsi/disk.ts';
import { CstorError } from '../../lib/errors.ts';
import type { OpenRequest, ReplicaClient, ReplicaMode, ReplicaStatus } from '../../lib/replica-protocol/types.ts';

const ops4k = positiveArg('ops', 200_000);
const qd = positiveArg('qd', 16);
const rounds = positiveArg('rounds', 5);
const promisePath = hasFlag('promise');
const SIZE = 1 << 30;
const BLOCK = 4096;

const notHere = (): Promise<never> => Promise.reject(new CstorError('internal', 'not used by this bench'));
const done = Promise.resolve();

/** A replica that holds nothing and answers every read and write at once. */
function nullReplica(address: string): ReplicaClient {
  let mode: ReplicaMode = 'New';
  const big = Buffer.alloc(1 << 20);
  const status = (req?: OpenRequest): ReplicaStatus => ({ volume: req?.volume ?? 'v', mode, checkpointedIoSeq: 0, size: SIZE, blockSize: BLOCK, inflightRead: 0, inflightWrite: 0, upTime: 0 });
  return {
    address,
    open: (req) => Promise.resolve(status(req)),
    read: (_offset, length) => Promise.resolve(length <= big.length ? big.subarray(0, length) : Buffer.alloc(length)),
    write: () => done,
    unmap: () => done,
    sync: () => Promise.resolve(0),
    status: () => Promise.resolve(status()),
    stats: notHere,
    snapshotCreate: notHere,
    snapshotDestroy: notHere,
    snapshotList: () => Promise.resolve([]),
    readLayer: notHere,
    readHeadSince: notHere,
    rebuildStart: notHere,
    importLayerBegin: notHere,
    importLayerWrite: notHere,
    importLayerEnd: notHere,
    writeIfNewer: notHere,
    rebuildDone: notHere,
    markHealthy: () => {
      mode = 'Healthy';
      return done;
    },
    close: () => done,
    onClose: () => undefined,
    // The callback forms (CallbackReplicaClient), answered in a microtask as a socket reply would
    // come later (in its own I/O callback).
    writeCb: (_offset: number, _data: Buffer, _ioSeq: number, cb: (err: Error | null) => void) => queueMicrotask(() => cb(null)),
    readCb: (_offset: number, length: number, cb: (err: Error | null, data: Buffer | undefined) => void) =>
      queueMicrotask(() => cb(null, length <= big.length ? big.subarray(0, length) : Buffer.alloc(length))),
  } as ReplicaClient;
}

function cdb16(op: number, lba: number, blocks: number): Buffer {
  const c = Buffer.alloc(16);
  c[0] = op;
  c.writeUInt32BE(Math.floor(lba / 2 ** 32), 2);
  c.writeUInt32BE(lba % 2 ** 32, 6);
  c.writeUInt32BE(blocks, 10);
  return c;
}

/** Runs `ops` commands with `qd` in flight; resolves with CPU µs per command. */
async function run(disk: ScsiDisk, write: boolean, bytes: number, ops: number): Promise<number> {
  const blocks = bytes / BLOCK;
  const span = SIZE / BLOCK - blocks;
  const data = write ? Buffer.alloc(bytes, 0x5a) : undefined;
  let issued = 0;
  const t0 = process.cpuUsage();
  const worker = async (): Promise<void> => {
    while (issued < ops) {
      const lba = ((issued++ * 257) * blocks) % span;
      const req: ScsiRequest = { lun: 0, cdb: cdb16(write ? 0x8a : 0x88, lba, blocks), dataOut: data, nexus: 'bench' };
      // --promise: ScsiDisk.execute (the promise path); else executeCb, as the iSCSI connection calls it.
      const r = promisePath ? await disk.execute(req) : await new Promise<ScsiResult>((resolve) => disk.executeCb(req, resolve));
      if (r.status !== 0) throw new Error(`status ${r.status}`);
    }
  };
  await Promise.all(Array.from({ length: qd }, worker));
  const used = process.cpuUsage(t0);
  return (used.user + used.system) / ops;
}

const results: string[] = [];
for (const rf of [1, 3]) {
  const vol = new ReplicatedVolume({
    volume: 'bench',
    size: SIZE,
    blockSize: BLOCK,
    replicationFactor: rf,
    replicas: Array.from({ length: rf }, (_, i) => `null${i}:1`),
    connect: (address) => Promise.resolve(nullReplica(address)),
  });
  vol.start();
  await vol.waitFor((v) => v.phase === 'Healthy', 5000, 'Healthy');
  const disk = new ScsiDisk({ device: vol, identity: { serial: 'bench', vendor: 'OPENEBS', product: 'CSTOR', revision: '1' } });
  for (const [name, write, bytes, ops] of [
    ['4 KiB write', true, 4096, ops4k],
    ['4 KiB read', false, 4096, ops4k],
    ['1 MiB write', true, 1 << 20, Math.max(1, Math.floor(ops4k / 20))],
    ['1 MiB read', false, 1 << 20, Math.max(1, Math.floor(ops4k / 20))],
  ] as const) {
    let best = Infinity;
    for (let i = 0; i < rounds; i++) best = Math.min(best, await run(disk, write, bytes, ops));
    results.push(`RF=${rf} ${name.padEnd(12)} ${best.toFixed(2).padStart(7)} µs CPU per IO`);
  }
  await vol.stop();
}
console.log(`engine + SCSI disk over null replicas, QD ${qd}, best of ${rounds} rounds (${ops4k} 4 KiB / ${Math.floor(ops4k / 20)} 1 MiB IOs each):`);
for (const r of results) console.log(r);
