// IMPORT_LAYER_END (opcode 16): seals the imported layer atomically.
//   request:  payload: string name
//   reply:    empty payload
import { Reader, Writer } from '../../binary.ts';
import { expectEmpty, expectEnd, readString, stringBytes, writeString, type MessageBody } from '../codec.ts';
import type { Frame } from '../header.ts';

export function encodeImportLayerEndRequest(name: string): MessageBody {
  const b = stringBytes(name, 'snapshot name');
  return { payload: [writeString(new Writer(2 + b.length), b).buf] };
}

export function decodeImportLayerEndRequest(frame: Frame): { name: string } {
  const r = new Reader(frame.payload, 'IMPORT_LAYER_END request');
  const name = readString(r, 'snapshot name');
  expectEnd(r, 'IMPORT_LAYER_END request');
  return { name };
}

export function encodeImportLayerEndReply(): MessageBody {
  return { payload: [] };
}

export function decodeImportLayerEndReply(frame: Frame): void {
  expectEmpty(frame, 'IMPORT_LAYER_END reply');
}
