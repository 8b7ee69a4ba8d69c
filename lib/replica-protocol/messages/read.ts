// READ (opcode 2): reads a block-aligned range.
//   request:  header.offset = byte offset; payload: u32le length (<= maxIoBytes)
//   reply:    payload: exactly `length` bytes of data
import { Reader, Writer } from '../../binary.ts';
import { CstorError } from '../../errors.ts';
import { checkU64, expectEnd, type MessageBody } from '../codec.ts';
import { maxIoBytes, type Frame } from '../header.ts';

export interface ReadRequest {
  offset: number;
  length: number;
}

export function encodeReadRequest(req: ReadRequest): MessageBody {
  checkLength(req.length, 'invalid');
  return { offset: checkU64(req.offset, 'offset'), payload: [new Writer(4).u32le(req.length).buf] };
}

export function decodeReadRequest(frame: Frame): ReadRequest {
  const r = new Reader(frame.payload, 'READ request');
  const length = r.u32le();
  expectEnd(r, 'READ request');
  checkLength(length, 'too_large');
  return { offset: frame.header.offset, length };
}

export function encodeReadReply(data: Buffer): MessageBody {
  return { payload: [data] };
}

export function decodeReadReply(frame: Frame, expectedLength: number): Buffer {
  if (frame.payload.length !== expectedLength) {
    throw new CstorError('protocol', `READ reply: got ${frame.payload.length} bytes, asked for ${expectedLength}`);
  }
  return frame.payload;
}

function checkLength(length: number, code: 'invalid' | 'too_large'): void {
  if (!Number.isInteger(length) || length < 0 || length > maxIoBytes) {
    throw new CstorError(code, `READ length ${length} must be an integer in 0..${maxIoBytes}`);
  }
}
