// REBUILD_START (opcode 13): starts a rebuild into this replica (mode becomes Rebuilding; layers
// above `keepThrough` and the head are discarded).
//   request:  payload: u8 hasKeepThrough, then string keepThrough when hasKeepThrough is 1
//   reply:    empty payload
import { Reader, Writer } from '../../binary.ts';
import { CstorError } from '../../errors.ts';
import { expectEmpty, expectEnd, readString, stringBytes, writeString, type MessageBody } from '../codec.ts';
import type { Frame } from '../header.ts';

export function encodeRebuildStartRequest(keepThrough: string | null): MessageBody {
  if (keepThrough === null) return { payload: [Buffer.from([0])] };
  const b = stringBytes(keepThrough, 'keepThrough');
  return { payload: [writeString(new Writer(1 + 2 + b.length).u8(1), b).buf] };
}

export function decodeRebuildStartRequest(frame: Frame): { keepThrough: string | null } {
  const r = new Reader(frame.payload, 'REBUILD_START request');
  const has = r.u8();
  if (has > 1) throw new CstorError('protocol', `REBUILD_START request: hasKeepThrough must be 0 or 1, got ${has}`);
  const keepThrough = has === 1 ? readString(r, 'keepThrough') : null;
  expectEnd(r, 'REBUILD_START request');
  return { keepThrough };
}

export function encodeRebuildStartReply(): MessageBody {
  return { payload: [] };
}

export function decodeRebuildStartReply(frame: Frame): void {
  expectEmpty(frame, 'REBUILD_START reply');
}
