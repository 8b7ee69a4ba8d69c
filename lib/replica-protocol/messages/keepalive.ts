// KEEPALIVE (opcode 20, pool → target only; not a request, so it is not in the opcodes table).
//   frame:    REPLY flag set, seq 0, status 0, io_seq 0, offset 0, empty payload
// A pool sends one on a connection about once a second while it has requests of that connection
// in flight, so the target's timeout rule can be Longhorn's: a replica is dead when it sent no
// frame of any kind for the timeout while requests were outstanding. A slow fsync or snapshot
// (the pool's event loop is alive) is then never taken for a dead replica; a stopped or hung pool
// process (no event loop, no keepalives) is.
import { expectEmpty, type MessageBody } from '../codec.ts';
import { isReply, type Frame, type FrameHeader } from '../header.ts';

export const keepaliveOpcode = 20;

export function encodeKeepalive(): MessageBody {
  return { payload: [] };
}

/** True for a keepalive frame (checked before reply matching: seq 0 matches no request). */
export function isKeepalive(h: FrameHeader): boolean {
  return h.opcode === keepaliveOpcode && isReply(h) && h.seq === 0;
}

export function decodeKeepalive(frame: Frame): void {
  expectEmpty(frame, 'KEEPALIVE');
}
