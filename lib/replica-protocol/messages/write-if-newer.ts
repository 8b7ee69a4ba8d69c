// WRITE_IF_NEWER (opcode 17): writes into the head only the blocks whose current io_seq is below
// io_seq (live writes win over rebuild data).
//   request:  header.offset = byte offset; header.io_seq; payload: the data (<= maxIoBytes)
//   reply:    empty payload
import { checkU64, expectEmpty, type MessageBody } from '../codec.ts';
import type { Frame } from '../header.ts';
import { checkData, type WriteRequest } from './write.ts';

export function encodeWriteIfNewerRequest(req: WriteRequest): MessageBody {
  checkData(req.data.length, 'WRITE_IF_NEWER', 'invalid');
  return { offset: checkU64(req.offset, 'offset'), ioSeq: checkU64(req.ioSeq, 'ioSeq'), payload: [req.data] };
}

export function decodeWriteIfNewerRequest(frame: Frame): WriteRequest {
  checkData(frame.payload.length, 'WRITE_IF_NEWER', 'too_large');
  return { offset: frame.header.offset, ioSeq: frame.header.ioSeq, data: frame.payload };
}

export function encodeWriteIfNewerReply(): MessageBody {
  return { payload: [] };
}

export function decodeWriteIfNewerReply(frame: Frame): void {
  expectEmpty(frame, 'WRITE_IF_NEWER reply');
}
