// WRITE (opcode 3): writes block-aligned data carrying the target's io_seq.
//   request:  header.offset = byte offset; header.io_seq; payload: the data (<= maxIoBytes)
//   reply:    empty payload
import { CstorError } from '../../errors.ts';
import { checkU64, type MessageBody } from '../codec.ts';
import { maxIoBytes, type Frame } from '../header.ts';
import { expectEmpty } from '../codec.ts';

export interface WriteRequest {
  offset: number;
  data: Buffer;
  ioSeq: number;
}

export function encodeWriteRequest(req: WriteRequest): MessageBody {
  checkData(req.data.length, 'WRITE', 'invalid');
  return { offset: checkU64(req.offset, 'offset'), ioSeq: checkU64(req.ioSeq, 'ioSeq'), payload: [req.data] };
}

export function decodeWriteRequest(frame: Frame): WriteRequest {
  checkData(frame.payload.length, 'WRITE', 'too_large');
  return { offset: frame.header.offset, ioSeq: frame.header.ioSeq, data: frame.payload };
}

export function encodeWriteReply(): MessageBody {
  return { payload: [] };
}

export function decodeWriteReply(frame: Frame): void {
  expectEmpty(frame, 'WRITE reply');
}

/** Data payloads are at most maxIoBytes (shared with WRITE_IF_NEWER and IMPORT_LAYER_WRITE). */
export function checkData(length: number, what: string, code: 'invalid' | 'too_large'): void {
  if (length > maxIoBytes) throw new CstorError(code, `${what}: ${length} data bytes exceed the limit of ${maxIoBytes}`);
}
