// A page of block runs: the reply of READ_LAYER and READ_HEAD_SINCE.
//   u8    hasNext            1 when another page follows
//   u64le next               the cursor for the next page (0 when hasNext is 0)
//   u32le count
//   count × {
//     u64le offset
//     u8    hasIoSeq         1 for head runs
//     u64le ioSeq            newest write in the run (0 when hasIoSeq is 0)
//     u32le length
//     length bytes of data
//   }
import { Reader, Writer } from '../../binary.ts';
import { CstorError } from '../../errors.ts';
import { checkU64, expectEnd } from '../codec.ts';
import { maxIoBytes } from '../header.ts';
import type { RunPage } from '../types.ts';

const runHeaderSize = 8 + 1 + 8 + 4;

/** Encodes a page as parts (run data is not copied). */
export function encodeRunPage(page: RunPage): Buffer[] {
  let total = 0;
  const parts: Buffer[] = [new Writer(13).u8(page.next === null ? 0 : 1).u64le(page.next === null ? 0 : checkU64(page.next, 'next')).u32le(page.runs.length).buf];
  for (const run of page.runs) {
    total += run.data.length;
    if (total > maxIoBytes) throw new CstorError('too_large', `run page: ${total} data bytes exceed ${maxIoBytes}`);
    parts.push(
      new Writer(runHeaderSize)
        .u64le(checkU64(run.offset, 'run offset'))
        .u8(run.ioSeq === undefined ? 0 : 1)
        .u64le(run.ioSeq === undefined ? 0 : checkU64(run.ioSeq, 'run ioSeq'))
        .u32le(run.data.length).buf,
      run.data,
    );
  }
  return parts;
}

/** Decodes a page; run data are views into `payload`. */
export function decodeRunPage(payload: Buffer, what: string): RunPage {
  const r = new Reader(payload, what);
  const hasNext = r.u8();
  const next = r.u64le();
  const count = r.u32le();
  if (count > payload.length / runHeaderSize) throw new CstorError('protocol', `${what}: run count ${count} cannot fit ${payload.length} bytes`);
  const runs: RunPage['runs'] = [];
  for (let i = 0; i < count; i++) {
    const offset = r.u64le();
    const hasIoSeq = r.u8();
    const ioSeq = r.u64le();
    const length = r.u32le();
    const data = r.bytes(length);
    runs.push(hasIoSeq === 1 ? { offset, data, ioSeq } : { offset, data });
  }
  expectEnd(r, what);
  return { runs, next: hasNext === 1 ? next : null };
}
