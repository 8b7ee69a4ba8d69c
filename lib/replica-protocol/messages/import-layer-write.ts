// IMPORT_LAYER_WRITE (opcode 15): writes blocks into the layer being imported.
//   request:  header.offset = byte offset; payload: string name, then the data (rest of payload)
//   reply:    empty payload
import { Reader, Writer } from '../../binary.ts';
import { checkU64, expectEmpty, readString, stringBytes, writeString, type MessageBody } from '../codec.ts';
import type { Frame } from '../header.ts';
import { checkData } from './write.ts';

export interface ImportLayerWriteRequest {
  name: string;
  offset: number;
  data: Buffer;
}

export function encodeImportLayerWriteRequest(req: ImportLayerWriteRequest): MessageBody {
  checkData(req.data.length, 'IMPORT_LAYER_WRITE', 'invalid');
  const b = stringBytes(req.name, 'snapshot name');
  return { offset: checkU64(req.offset, 'offset'), payload: [writeString(new Writer(2 + b.length), b).buf, req.data] };
}

export function decodeImportLayerWriteRequest(frame: Frame): ImportLayerWriteRequest {
  const r = new Reader(frame.payload, 'IMPORT_LAYER_WRITE request');
  const name = readString(r, 'snapshot name');
  const data = r.rest();
  checkData(data.length, 'IMPORT_LAYER_WRITE', 'too_large');
  return { name, offset: frame.header.offset, data };
}

export function encodeImportLayerWriteReply(): MessageBody {
  return { payload: [] };
}

export function decodeImportLayerWriteReply(frame: Frame): void {
  expectEmpty(frame, 'IMPORT_LAYER_WRITE reply');
}
