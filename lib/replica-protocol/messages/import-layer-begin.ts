// IMPORT_LAYER_BEGIN (opcode 14): begins importing snapshot `name` (taken at io_seq) beneath the
// live head (rebuild, destination side).
//   request:  header.io_seq = the snapshot's io_seq; payload: string name
//   reply:    empty payload
import { Reader, Writer } from '../../binary.ts';
import { checkU64, expectEmpty, expectEnd, readString, stringBytes, writeString, type MessageBody } from '../codec.ts';
import type { Frame } from '../header.ts';

export interface ImportLayerBeginRequest {
  name: string;
  ioSeq: number;
}

export function encodeImportLayerBeginRequest(req: ImportLayerBeginRequest): MessageBody {
  const b = stringBytes(req.name, 'snapshot name');
  return { ioSeq: checkU64(req.ioSeq, 'ioSeq'), payload: [writeString(new Writer(2 + b.length), b).buf] };
}

export function decodeImportLayerBeginRequest(frame: Frame): ImportLayerBeginRequest {
  const r = new Reader(frame.payload, 'IMPORT_LAYER_BEGIN request');
  const name = readString(r, 'snapshot name');
  expectEnd(r, 'IMPORT_LAYER_BEGIN request');
  return { name, ioSeq: frame.header.ioSeq };
}

export function encodeImportLayerBeginReply(): MessageBody {
  return { payload: [] };
}

export function decodeImportLayerBeginReply(frame: Frame): void {
  expectEmpty(frame, 'IMPORT_LAYER_BEGIN reply');
}
