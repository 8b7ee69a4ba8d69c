// Error reply (any opcode): header.status != 0 names the CstorError code (status-codes.ts);
// the payload is the error message.
//   reply:  header.status = status code; payload: UTF-8 message (at most maxErrorMessageBytes)
import { CstorError } from '../../errors.ts';
import type { MessageBody } from '../codec.ts';
import type { Frame } from '../header.ts';
import { codeForStatus, statusFor } from '../status-codes.ts';

export const maxErrorMessageBytes = 4096;

export function encodeErrorReply(err: CstorError): MessageBody & { status: number } {
  let msg = Buffer.from(err.message, 'utf8');
  if (msg.length > maxErrorMessageBytes) msg = msg.subarray(0, maxErrorMessageBytes);
  return { status: statusFor(err), payload: [msg] };
}

/** The CstorError a non-zero status reply stands for, its message prefixed with `context`. */
export function decodeErrorReply(frame: Frame, context: string): CstorError {
  const code = codeForStatus(frame.header.status);
  const text = frame.payload.subarray(0, maxErrorMessageBytes).toString('utf8');
  const unknown = code === 'protocol' && frame.header.status !== 9 ? ` (unknown status ${frame.header.status})` : '';
  return new CstorError(code, `${context}: ${text}${unknown}`, { details: { status: frame.header.status } });
}
