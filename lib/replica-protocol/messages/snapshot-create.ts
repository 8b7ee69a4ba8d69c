// SNAPSHOT_CREATE (opcode 8): seals the head as a snapshot holding every write with io_seq < io_seq.
// Idempotent by name.
//   request:  header.io_seq; payload: string name (u16le length + UTF-8)
//   reply:    empty payload
import { Reader, Writer } from '../../binary.ts';
import { checkU64, expectEmpty, expectEnd, readString, stringBytes, writeString, type MessageBody } from '../codec.ts';
import type { Frame } from '../header.ts';

export interface SnapshotCreateRequest {
  name: string;
  ioSeq: number;
}

export function encodeSnapshotCreateRequest(req: SnapshotCreateRequest): MessageBody {
  const name = stringBytes(req.name, 'snapshot name');
  return { ioSeq: checkU64(req.ioSeq, 'ioSeq'), payload: [writeString(new Writer(2 + name.length), name).buf] };
}

export function decodeSnapshotCreateRequest(frame: Frame): SnapshotCreateRequest {
  const r = new Reader(frame.payload, 'SNAPSHOT_CREATE request');
  const name = readString(r, 'snapshot name');
  expectEnd(r, 'SNAPSHOT_CREATE request');
  return { name, ioSeq: frame.header.ioSeq };
}

export function encodeSnapshotCreateReply(): MessageBody {
  return { payload: [] };
}

export function decodeSnapshotCreateReply(frame: Frame): void {
  expectEmpty(frame, 'SNAPSHOT_CREATE reply');
}
