// SYNC (opcode 4): makes every acknowledged write durable.
//   request:  empty payload
//   reply:    header.io_seq = the checkpointed io_seq after the sync; empty payload
import { expectEmpty, type MessageBody } from '../codec.ts';
import type { Frame } from '../header.ts';

export function encodeSyncRequest(): MessageBody {
  return { payload: [] };
}

export function decodeSyncRequest(frame: Frame): void {
  expectEmpty(frame, 'SYNC request');
}

export function encodeSyncReply(checkpointedIoSeq: number): MessageBody {
  return { ioSeq: checkpointedIoSeq, payload: [] };
}

export function decodeSyncReply(frame: Frame): number {
  expectEmpty(frame, 'SYNC reply');
  return frame.header.ioSeq;
}
