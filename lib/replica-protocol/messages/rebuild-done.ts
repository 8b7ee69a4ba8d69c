// REBUILD_DONE (opcode 18): ends a rebuild; the replica's mode becomes Healthy (persisted).
//   request:  empty payload
//   reply:    empty payload
import { expectEmpty, type MessageBody } from '../codec.ts';
import type { Frame } from '../header.ts';

export function encodeRebuildDoneRequest(): MessageBody {
  return { payload: [] };
}

export function decodeRebuildDoneRequest(frame: Frame): void {
  expectEmpty(frame, 'REBUILD_DONE request');
}

export function encodeRebuildDoneReply(): MessageBody {
  return { payload: [] };
}

export function decodeRebuildDoneReply(frame: Frame): void {
  expectEmpty(frame, 'REBUILD_DONE reply');
}
