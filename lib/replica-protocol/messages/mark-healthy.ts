// MARK_HEALTHY (opcode 19): marks a New replica Healthy (a fresh volume's replicas need no rebuild).
//   request:  empty payload
//   reply:    empty payload
import { expectEmpty, type MessageBody } from '../codec.ts';
import type { Frame } from '../header.ts';

export function encodeMarkHealthyRequest(): MessageBody {
  return { payload: [] };
}

export function decodeMarkHealthyRequest(frame: Frame): void {
  expectEmpty(frame, 'MARK_HEALTHY request');
}

export function encodeMarkHealthyReply(): MessageBody {
  return { payload: [] };
}

export function decodeMarkHealthyReply(frame: Frame): void {
  expectEmpty(frame, 'MARK_HEALTHY reply');
}
