// The provisioning finalizer on a claim: added before the backend volume is asked for, removed
// once the PV exists (from then on the PV's reclaim policy owns the volume) or once the backend
// volume of a claim deleted before its PV was written is deleted. It closes the one window in
// which a backend volume could lose every reference: a claim deleted while the provisioner is
// down after the backend create and before the PV write (docs/decisions.md).
//
// Writes are merge patches of metadata.finalizers carrying the resourceVersion they were computed
// from (a merge patch replaces the whole list, so a stale read must get 409, never drop another
// controller's finalizer); a conflict re-reads the claim and tries again, a few times.
import { CstorError, hasErrorCode } from '../errors.ts';
import type { ResourceClient } from '../kube/resource-client.ts';
import type { PersistentVolumeClaim } from '../kube/types/core.ts';

/** Held by the provisioner named in the claim's storage-provisioner annotation. */
export const provisioningFinalizer = 'cstor.openebs.io/provisioning-protection';

export type ClaimApi = Pick<ResourceClient<PersistentVolumeClaim>, 'get' | 'mergePatch'>;

export function hasProvisioningFinalizer(claim: PersistentVolumeClaim): boolean {
  return claim.metadata.finalizers?.includes(provisioningFinalizer) ?? false;
}

const maxTries = 5;

/**
 * Sets or clears the finalizer on the live claim `ref` whose uid is `uid` (a claim deleted and
 * made again under the same name is another claim: never touched). Returns the claim as written
 * (or as found when nothing had to change), or undefined when that claim is gone.
 */
export async function setProvisioningFinalizer(api: ClaimApi, ref: { namespace: string; name: string; uid: string }, present: boolean): Promise<PersistentVolumeClaim | undefined> {
  for (let attempt = 1; ; attempt++) {
    let claim: PersistentVolumeClaim;
    try {
      claim = await api.get({ namespace: ref.namespace, name: ref.name });
    } catch (err) {
      if (hasErrorCode(err, 'not_found')) return undefined;
      throw err;
    }
    if (claim.metadata.uid !== ref.uid) return undefined;
    const current = claim.metadata.finalizers ?? [];
    if (current.includes(provisioningFinalizer) === present) return claim;
    if (present && claim.metadata.deletionTimestamp) {
      throw new CstorError('conflict', `claim ${ref.namespace}/${ref.name} is being deleted: it cannot get the finalizer ${provisioningFinalizer}`);
    }
    const finalizers = present ? [...current, provisioningFinalizer] : current.filter((f) => f !== provisioningFinalizer);
    try {
      return await api.mergePatch({ namespace: ref.namespace, name: ref.name }, { metadata: { resourceVersion: claim.metadata.resourceVersion, finalizers: finalizers.length > 0 ? finalizers : null } });
    } catch (err) {
      if (hasErrorCode(err, 'not_found')) return undefined;
      if (!hasErrorCode(err, 'conflict') || attempt >= maxTries) throw err;
    }
  }
}
