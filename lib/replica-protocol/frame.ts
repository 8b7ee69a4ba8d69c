// Frame assembly: a message body plus the sender's header fields, as buffers to write
// (header first, payload parts after it, never copied together).
import { CstorError } from '../errors.ts';
import { payloadLength, type MessageBody } from './codec.ts';
import { encodeHeader, frameFlags, maxPayload } from './header.ts';

export interface FrameMeta {
  opcode: number;
  seq: number;
  reply: boolean;
  status?: number;
}

export function encodeFrame(meta: FrameMeta, body: MessageBody): Buffer[] {
  const length = payloadLength(body);
  if (length > maxPayload) throw new CstorError('too_large', `replica frame: payload of ${length} bytes exceeds the limit of ${maxPayload}`);
  const header = encodeHeader({
    opcode: meta.opcode,
    status: meta.status ?? 0,
    flags: meta.reply ? frameFlags.reply : 0,
    seq: meta.seq,
    ioSeq: body.ioSeq ?? 0,
    offset: body.offset ?? 0,
    length,
  });
  return [header, ...body.payload.filter((p) => p.length > 0)];
}
