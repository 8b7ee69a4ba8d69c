// UNMAP (opcode 5): deallocates a block-aligned range (it then reads as zeros).
//   request:  header.offset = byte offset; header.io_seq; payload: u64le length
//   reply:    empty payload
import { Reader, Writer } from '../../binary.ts';
import { checkU64, expectEmpty, expectEnd, type MessageBody } from '../codec.ts';
import type { Frame } from '../header.ts';

export interface UnmapRequest {
  offset: number;
  length: number;
  ioSeq: number;
}

export function encodeUnmapRequest(req: UnmapRequest): MessageBody {
  return {
    offset: checkU64(req.offset, 'offset'),
    ioSeq: checkU64(req.ioSeq, 'ioSeq'),
    payload: [new Writer(8).u64le(checkU64(req.length, 'length')).buf],
  };
}

export function decodeUnmapRequest(frame: Frame): UnmapRequest {
  const r = new Reader(frame.payload, 'UNMAP request');
  const length = r.u64le();
  expectEnd(r, 'UNMAP request');
  return { offset: frame.header.offset, ioSeq: frame.header.ioSeq, length };
}

export function encodeUnmapReply(): MessageBody {
  return { payload: [] };
}

export function decodeUnmapReply(frame: Frame): void {
  expectEmpty(frame, 'UNMAP reply');
}
