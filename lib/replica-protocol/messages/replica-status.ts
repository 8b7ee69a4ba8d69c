// STATUS (opcode 6): the replica's own view of itself (also OPEN's reply).
//   request payload: empty
//   reply payload (ReplicaStatus):
//     u8    mode              0 New, 1 Healthy, 2 Rebuilding
//     u64le checkpointedIoSeq
//     u64le size
//     u32le blockSize
//     u32le inflightRead      requests in flight on this connection
//     u32le inflightWrite
//     u32le upTime            seconds since this connection was opened
//     string volume           (u16le length + UTF-8)
import { Reader, Writer } from '../../binary.ts';
import { CstorError } from '../../errors.ts';
import { checkU32, checkU64, expectEmpty, expectEnd, readString, stringBytes, writeString, type MessageBody } from '../codec.ts';
import type { Frame } from '../header.ts';
import { replicaModes, type ReplicaStatus } from '../types.ts';

export function encodeStatusRequest(): MessageBody {
  return { payload: [] };
}

export function decodeStatusRequest(frame: Frame): void {
  expectEmpty(frame, 'STATUS request');
}

export function encodeReplicaStatus(s: ReplicaStatus): Buffer {
  const volume = stringBytes(s.volume, 'volume');
  const mode = replicaModes.indexOf(s.mode);
  if (mode < 0) throw new CstorError('invalid', `replica status: unknown mode ${s.mode}`);
  const w = new Writer(1 + 8 + 8 + 4 + 4 + 4 + 4 + 2 + volume.length)
    .u8(mode)
    .u64le(checkU64(s.checkpointedIoSeq, 'checkpointedIoSeq'))
    .u64le(checkU64(s.size, 'size'))
    .u32le(checkU32(s.blockSize, 'blockSize'))
    .u32le(checkU32(s.inflightRead, 'inflightRead'))
    .u32le(checkU32(s.inflightWrite, 'inflightWrite'))
    .u32le(checkU32(Math.floor(s.upTime), 'upTime'));
  return writeString(w, volume).buf;
}

export function decodeReplicaStatus(payload: Buffer, what: string): ReplicaStatus {
  const r = new Reader(payload, what);
  const modeIndex = r.u8();
  const mode = replicaModes[modeIndex];
  if (mode === undefined) throw new CstorError('protocol', `${what}: unknown replica mode ${modeIndex}`);
  const checkpointedIoSeq = r.u64le();
  const size = r.u64le();
  const blockSize = r.u32le();
  const inflightRead = r.u32le();
  const inflightWrite = r.u32le();
  const upTime = r.u32le();
  const volume = readString(r, `${what} volume`);
  expectEnd(r, what);
  return { volume, mode, checkpointedIoSeq, size, blockSize, inflightRead, inflightWrite, upTime };
}

export function encodeStatusReply(s: ReplicaStatus): MessageBody {
  return { payload: [encodeReplicaStatus(s)] };
}

export function decodeStatusReply(frame: Frame): ReplicaStatus {
  return decodeReplicaStatus(frame.payload, 'STATUS reply');
}
