// SNAPSHOT_DESTROY (opcode 9): removes a snapshot from the chain. Idempotent.
//   request:  payload: string name (u16le length + UTF-8)
//   reply:    empty payload
import { Reader, Writer } from '../../binary.ts';
import { expectEmpty, expectEnd, readString, stringBytes, writeString, type MessageBody } from '../codec.ts';
import type { Frame } from '../header.ts';

export function encodeSnapshotDestroyRequest(name: string): MessageBody {
  const b = stringBytes(name, 'snapshot name');
  return { payload: [writeString(new Writer(2 + b.length), b).buf] };
}

export function decodeSnapshotDestroyRequest(frame: Frame): { name: string } {
  const r = new Reader(frame.payload, 'SNAPSHOT_DESTROY request');
  const name = readString(r, 'snapshot name');
  expectEnd(r, 'SNAPSHOT_DESTROY request');
  return { name };
}

export function encodeSnapshotDestroyReply(): MessageBody {
  return { payload: [] };
}

export function decodeSnapshotDestroyReply(frame: Frame): void {
  expectEmpty(frame, 'SNAPSHOT_DESTROY reply');
}
