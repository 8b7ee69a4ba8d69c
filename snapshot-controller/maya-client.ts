// The snapshot-controller's port to m-apiserver: the four snapshot calls it needs, keyed by the
// snapshot id it persists on the VolumeSnapshot. The HTTP client, its error codes and the address
// lookup (MAPI_ADDR or the Service, looked up again after a failure) are lib/maya-client's.
import type { MayaClient as LibMayaClient } from '../lib/maya-client/client.ts';
import type { CasSnapshot } from '../lib/maya-client/types.ts';

export type { CasSnapshot } from '../lib/maya-client/types.ts';

/** One backend snapshot: its id, the volume (PV name) and the namespace it was created in. */
export interface SnapshotRef {
  snapshotId: string;
  volumeName: string;
  namespace: string;
}

export interface MayaClient {
  /** Creates the snapshot; creating one that exists returns it (idempotent by id). */
  createSnapshot(ref: SnapshotRef): Promise<CasSnapshot>;
  /** Throws a `not_found` CstorError when it does not exist. */
  getSnapshot(ref: SnapshotRef): Promise<CasSnapshot>;
  listSnapshots(volume: { volumeName: string; namespace: string }): Promise<CasSnapshot[]>;
  /** Deletes the snapshot; deleting one that is gone succeeds. */
  deleteSnapshot(ref: SnapshotRef): Promise<void>;
}

/** The port over lib/maya-client's REST client. */
export class MayaSnapshots implements MayaClient {
  constructor(private readonly client: LibMayaClient) {}

  createSnapshot(ref: SnapshotRef): Promise<CasSnapshot> {
    return this.client.createSnapshot(toLib(ref));
  }
  getSnapshot(ref: SnapshotRef): Promise<CasSnapshot> {
    return this.client.getSnapshot(toLib(ref));
  }
  listSnapshots(volume: { volumeName: string; namespace: string }): Promise<CasSnapshot[]> {
    return this.client.listSnapshots(volume);
  }
  deleteSnapshot(ref: SnapshotRef): Promise<void> {
    return this.client.deleteSnapshot(toLib(ref));
  }
}

function toLib(ref: SnapshotRef): { snapshotName: string; volumeName: string; namespace: string } {
  return { snapshotName: ref.snapshotId, volumeName: ref.volumeName, namespace: ref.namespace };
}
