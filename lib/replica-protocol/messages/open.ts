// OPEN (opcode 1): the handshake. Binds the connection to one volume's replica; it must be the
// first request on a connection and is refused when the volume, size or block size do not match
// the stored replica.
//   request payload:
//     u64le size               expected volume size in bytes
//     u32le blockSize
//     u8    replicationFactor
//     string volume            (u16le length + UTF-8)
//     string targetId
//   reply payload: ReplicaStatus (replica-status.ts)
import { Reader, Writer } from '../../binary.ts';
import { checkU32, checkU64, expectEnd, readString, stringBytes, writeString, type MessageBody } from '../codec.ts';
import type { Frame } from '../header.ts';
import type { OpenRequest, ReplicaStatus } from '../types.ts';
import { CstorError } from '../../errors.ts';
import { decodeReplicaStatus, encodeReplicaStatus } from './replica-status.ts';

export function encodeOpenRequest(req: OpenRequest): MessageBody {
  const volume = stringBytes(req.volume, 'volume');
  const targetId = stringBytes(req.targetId, 'targetId');
  if (!Number.isInteger(req.replicationFactor) || req.replicationFactor < 1 || req.replicationFactor > 255) {
    throw new CstorError('invalid', `replicationFactor ${req.replicationFactor} must be an integer in 1..255`);
  }
  const w = new Writer(8 + 4 + 1 + 2 + volume.length + 2 + targetId.length)
    .u64le(checkU64(req.size, 'size'))
    .u32le(checkU32(req.blockSize, 'blockSize'))
    .u8(req.replicationFactor);
  writeString(w, volume);
  writeString(w, targetId);
  return { payload: [w.buf] };
}

export function decodeOpenRequest(frame: Frame): OpenRequest {
  const r = new Reader(frame.payload, 'OPEN request');
  const size = r.u64le();
  const blockSize = r.u32le();
  const replicationFactor = r.u8();
  const volume = readString(r, 'OPEN volume');
  const targetId = readString(r, 'OPEN targetId');
  expectEnd(r, 'OPEN request');
  return { volume, size, blockSize, replicationFactor, targetId };
}

export function encodeOpenReply(s: ReplicaStatus): MessageBody {
  return { payload: [encodeReplicaStatus(s)] };
}

export function decodeOpenReply(frame: Frame): ReplicaStatus {
  return decodeReplicaStatus(frame.payload, 'OPEN reply');
}
