// SNAPSHOT_LIST (opcode 10): the replica's snapshots, oldest first.
//   request:  empty payload
//   reply payload:
//     u32le count
//     count × { u64le ioSeq, u64le createdAt (unix ms), u64le usedBytes, string name }
import { Reader, Writer } from '../../binary.ts';
import { CstorError } from '../../errors.ts';
import { checkU64, expectEmpty, expectEnd, readString, stringBytes, writeString, type MessageBody } from '../codec.ts';
import type { Frame } from '../header.ts';
import type { SnapshotInfo } from '../types.ts';

/** More snapshots than this in one reply is refused (each costs >= 26 bytes). */
export const maxSnapshotsPerReply = 100_000;

export function encodeSnapshotListRequest(): MessageBody {
  return { payload: [] };
}

export function decodeSnapshotListRequest(frame: Frame): void {
  expectEmpty(frame, 'SNAPSHOT_LIST request');
}

export function encodeSnapshotListReply(snapshots: readonly SnapshotInfo[]): MessageBody {
  if (snapshots.length > maxSnapshotsPerReply) throw new CstorError('too_large', `${snapshots.length} snapshots exceed ${maxSnapshotsPerReply}`);
  const names = snapshots.map((s) => stringBytes(s.name, 'snapshot name'));
  const size = 4 + names.reduce((n, b) => n + 24 + 2 + b.length, 0);
  const w = new Writer(size).u32le(snapshots.length);
  snapshots.forEach((s, i) => {
    w.u64le(checkU64(s.ioSeq, 'ioSeq'))
      .u64le(checkU64(Math.floor(s.createdAt), 'createdAt'))
      .u64le(checkU64(s.usedBytes, 'usedBytes'));
    writeString(w, names[i]!);
  });
  return { payload: [w.buf] };
}

export function decodeSnapshotListReply(frame: Frame): SnapshotInfo[] {
  const r = new Reader(frame.payload, 'SNAPSHOT_LIST reply');
  const count = r.u32le();
  if (count > maxSnapshotsPerReply) throw new CstorError('protocol', `SNAPSHOT_LIST reply: count ${count} exceeds ${maxSnapshotsPerReply}`);
  const out: SnapshotInfo[] = [];
  for (let i = 0; i < count; i++) {
    const ioSeq = r.u64le();
    const createdAt = r.u64le();
    const usedBytes = r.u64le();
    const name = readString(r, 'snapshot name');
    out.push({ name, ioSeq, createdAt, usedBytes });
  }
  expectEnd(r, 'SNAPSHOT_LIST reply');
  return out;
}
