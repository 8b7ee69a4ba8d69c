// Paging a replica's blocks as runs, for the rebuild source side (readLayer, readHeadSince).
import { CstorError } from '../../lib/errors.ts';
import type { BlockRun, RunPage } from '../../lib/replica-protocol/types.ts';
import { getBit } from './bitset.ts';
import type { LayerBits, LayerFile } from './layer-file.ts';

/** A layer to page, with its bitsets. */
export interface Source {
  layer: LayerFile;
  bits: LayerBits;
  /** io_seq of block b in this source (head runs only). */
  seq?: (b: number) => number;
}

export interface PageRunsOptions {
  /** Topmost first: a block comes from the first source that holds it (data or zero marker). */
  sources: Source[];
  /** First block to look at. */
  cursor: number;
  /** Page budget in bytes (at least one block is returned when there is one). */
  maxBytes: number;
  blocks: number;
  blockSize: number;
  /** Keeps a block whose topmost source gives it this io_seq (default: every block). */
  accept?: (seq: number) => boolean;
}

/**
 * Runs of consecutive blocks from `cursor` on, up to `maxBytes`; zero markers come as zeros. Each
 * run carries the highest io_seq in it when the sources have io_seqs. `next` is the block to
 * continue from, or null at the end of the replica.
 */
export async function pageRuns(options: PageRunsOptions): Promise<RunPage> {
  const { sources, cursor, maxBytes, blocks, blockSize } = options;
  const accept = options.accept ?? (() => true);
  if (!Number.isSafeInteger(cursor) || cursor < 0) throw new CstorError('invalid', `cursor ${cursor} is invalid`);
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new CstorError('invalid', `maxBytes ${maxBytes} is invalid`);
  const bs = blockSize;
  const budget = Math.max(bs, maxBytes - (maxBytes % bs));
  const runs: BlockRun[] = [];
  let bytes = 0;
  const pick = (b: number): { src: Source; zero: boolean; seq: number } | null => {
    for (const src of sources) {
      if (b >= src.layer.blocks) continue;
      const a = getBit(src.bits.alloc, b);
      if (a || getBit(src.bits.zero, b)) {
        const seq = src.seq ? src.seq(b) : 0;
        return accept(seq) ? { src, zero: !a, seq } : null;
      }
    }
    return null;
  };
  let b = cursor;
  while (b < blocks && bytes < budget) {
    if ((b & 31) === 0) {
      let any = 0;
      const w = b >>> 5;
      for (const s of sources) any |= (s.bits.alloc[w] ?? 0) | (s.bits.zero[w] ?? 0);
      if (any === 0) {
        b += 32;
        continue;
      }
    }
    const first = pick(b);
    if (!first) {
      b++;
      continue;
    }
    const start = b;
    const pieces = [first];
    b++;
    while (b < blocks && bytes + (pieces.length + 1) * bs <= budget) {
      const p = pick(b);
      if (!p) break;
      pieces.push(p);
      b++;
    }
    const data = Buffer.alloc(pieces.length * bs);
    const reads: Promise<void>[] = [];
    let seq = 0;
    let i = 0;
    while (i < pieces.length) {
      const p = pieces[i]!;
      seq = Math.max(seq, p.seq);
      let j = i + 1;
      while (j < pieces.length && pieces[j]!.src === p.src && pieces[j]!.zero === p.zero) {
        seq = Math.max(seq, pieces[j]!.seq);
        j++;
      }
      if (!p.zero) reads.push(p.src.layer.read(data, i * bs, (j - i) * bs, (start + i) * bs));
      i = j;
    }
    await Promise.all(reads);
    const run: BlockRun = { offset: start * bs, data };
    if (sources.some((s) => s.seq)) run.ioSeq = seq;
    runs.push(run);
    bytes += data.length;
  }
  return { runs, next: b < blocks ? b : null };
}
