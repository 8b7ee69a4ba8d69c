// Test helper: the rebuild steps a target runs to copy a healthy replica into a fresh one
// (DESIGN.md §6: snapshots oldest first, then the live head), over two ReplicaClients.
import type { ReplicaClient } from '../../lib/replica-protocol/types.ts';

export async function copyReplica(src: ReplicaClient, dst: ReplicaClient, pageBytes = 1 << 20): Promise<{ layers: number; bytes: number }> {
  let bytes = 0;
  await dst.rebuildStart(null);
  const snapshots = await src.snapshotList();
  for (const s of snapshots) {
    await dst.importLayerBegin(s.name, s.ioSeq);
    let cursor: number | null = 0;
    for (let pages = 0; cursor !== null && pages < 1_000_000; pages++) {
      const page = await src.readLayer(s.name, cursor, pageBytes);
      await Promise.all(page.runs.map((r) => dst.importLayerWrite(s.name, r.offset, r.data)));
      for (const r of page.runs) bytes += r.data.length;
      cursor = page.next;
    }
    await dst.importLayerEnd(s.name);
  }
  let cursor: number | null = 0;
  for (let pages = 0; cursor !== null && pages < 1_000_000; pages++) {
    const page = await src.readHeadSince(0, cursor, pageBytes);
    await Promise.all(page.runs.map((r) => dst.writeIfNewer(r.offset, r.data, r.ioSeq ?? 0)));
    for (const r of page.runs) bytes += r.data.length;
    cursor = page.next;
  }
  await dst.sync();
  await dst.rebuildDone();
  return { layers: snapshots.length, bytes };
}
