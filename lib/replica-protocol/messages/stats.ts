// STATS (opcode 7): IO counters of the replica since the pool opened it.
//   request:  empty payload
//   reply payload: u64le reads, u64le writes, u64le readBytes, u64le writeBytes, u64le usedBytes,
//                  u32le snapshots
import { Reader, Writer } from '../../binary.ts';
import { checkU32, checkU64, expectEmpty, expectEnd, type MessageBody } from '../codec.ts';
import type { Frame } from '../header.ts';
import type { ReplicaStats } from '../types.ts';

export function encodeStatsRequest(): MessageBody {
  return { payload: [] };
}

export function decodeStatsRequest(frame: Frame): void {
  expectEmpty(frame, 'STATS request');
}

export function encodeStatsReply(s: ReplicaStats): MessageBody {
  const w = new Writer(5 * 8 + 4)
    .u64le(checkU64(s.reads, 'reads'))
    .u64le(checkU64(s.writes, 'writes'))
    .u64le(checkU64(s.readBytes, 'readBytes'))
    .u64le(checkU64(s.writeBytes, 'writeBytes'))
    .u64le(checkU64(s.usedBytes, 'usedBytes'))
    .u32le(checkU32(s.snapshots, 'snapshots'));
  return { payload: [w.buf] };
}

export function decodeStatsReply(frame: Frame): ReplicaStats {
  const r = new Reader(frame.payload, 'STATS reply');
  const s = { reads: r.u64le(), writes: r.u64le(), readBytes: r.u64le(), writeBytes: r.u64le(), usedBytes: r.u64le(), snapshots: r.u32le() };
  expectEnd(r, 'STATS reply');
  return s;
}
