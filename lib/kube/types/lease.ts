// coordination.k8s.io/v1 Lease, used for leader election.
import type { KubeObject, ObjectMeta } from './meta.ts';

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number | null;
  /** MicroTime: RFC 3339 with microseconds, e.g. 2026-01-02T03:04:05.000000Z. */
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number | null;
}

export interface Lease extends KubeObject {
  metadata: ObjectMeta;
  spec?: LeaseSpec;
}
