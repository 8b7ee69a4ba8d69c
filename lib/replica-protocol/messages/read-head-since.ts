// READ_HEAD_SINCE (opcode 12): one page of the head's blocks whose newest write has
// io_seq > sinceIoSeq (rebuild, source side).
//   request:  header.io_seq = sinceIoSeq; header.offset = cursor (0 starts); payload: u32le maxBytes
//   reply:    payload: a run page (run-page.ts), each run with its ioSeq
import { Reader, Writer } from '../../binary.ts';
import { checkU32, checkU64, expectEnd, type MessageBody } from '../codec.ts';
import type { Frame } from '../header.ts';
import type { RunPage } from '../types.ts';
import { decodeRunPage, encodeRunPage } from './run-page.ts';

export interface ReadHeadSinceRequest {
  sinceIoSeq: number;
  cursor: number;
  maxBytes: number;
}

export function encodeReadHeadSinceRequest(req: ReadHeadSinceRequest): MessageBody {
  return {
    ioSeq: checkU64(req.sinceIoSeq, 'sinceIoSeq'),
    offset: checkU64(req.cursor, 'cursor'),
    payload: [new Writer(4).u32le(checkU32(req.maxBytes, 'maxBytes')).buf],
  };
}

export function decodeReadHeadSinceRequest(frame: Frame): ReadHeadSinceRequest {
  const r = new Reader(frame.payload, 'READ_HEAD_SINCE request');
  const maxBytes = r.u32le();
  expectEnd(r, 'READ_HEAD_SINCE request');
  return { sinceIoSeq: frame.header.ioSeq, cursor: frame.header.offset, maxBytes };
}

export function encodeReadHeadSinceReply(page: RunPage): MessageBody {
  return { payload: encodeRunPage(page) };
}

export function decodeReadHeadSinceReply(frame: Frame): RunPage {
  return decodeRunPage(frame.payload, 'READ_HEAD_SINCE reply');
}
