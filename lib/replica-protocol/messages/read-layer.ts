// READ_LAYER (opcode 11): one page of the allocated blocks of snapshot `name`'s own layer
// (rebuild, source side).
//   request:  header.offset = cursor (0 starts); payload: u32le maxBytes, string name
//   reply:    payload: a run page (run-page.ts)
import { Reader, Writer } from '../../binary.ts';
import { checkU32, checkU64, expectEnd, readString, stringBytes, writeString, type MessageBody } from '../codec.ts';
import type { Frame } from '../header.ts';
import type { RunPage } from '../types.ts';
import { decodeRunPage, encodeRunPage } from './run-page.ts';

export interface ReadLayerRequest {
  name: string;
  cursor: number;
  maxBytes: number;
}

export function encodeReadLayerRequest(req: ReadLayerRequest): MessageBody {
  const name = stringBytes(req.name, 'snapshot name');
  const w = new Writer(4 + 2 + name.length).u32le(checkU32(req.maxBytes, 'maxBytes'));
  return { offset: checkU64(req.cursor, 'cursor'), payload: [writeString(w, name).buf] };
}

export function decodeReadLayerRequest(frame: Frame): ReadLayerRequest {
  const r = new Reader(frame.payload, 'READ_LAYER request');
  const maxBytes = r.u32le();
  const name = readString(r, 'snapshot name');
  expectEnd(r, 'READ_LAYER request');
  return { name, cursor: frame.header.offset, maxBytes };
}

export function encodeReadLayerReply(page: RunPage): MessageBody {
  return { payload: encodeRunPage(page) };
}

export function decodeReadLayerReply(frame: Frame): RunPage {
  return decodeRunPage(frame.payload, 'READ_LAYER reply');
}
