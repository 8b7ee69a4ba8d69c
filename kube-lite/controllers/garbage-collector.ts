// Garbage collector (background propagation). Invariant: an object whose every ownerReference
// names a uid that no longer exists is deleted; one with some owners left loses the dangling
// references. Foreground deletion: an owner holding the foregroundDeletion finalizer has its
// dependents deleted, then loses the finalizer (and goes). Runs after each deletion, on objects
// created with owners, and once at start.
import type { Logger } from '../../lib/logger.ts';
import { describeError, hasErrorCode } from '../../lib/errors.ts';
import { foregroundFinalizer, type Operations } from '../api/operations.ts';
import type { KubeObject } from '../store/types.ts';
import { PassController } from './pass-runner.ts';

/** When an object could not be collected, the next pass runs after this long. */
const retryFailedMs = 5_000;

export class GarbageCollector extends PassController {

  constructor(
    private readonly ops: Operations,
    private readonly logger: Logger,
  ) {
    super('garbage-collector', logger);
    ops.store.hub.listen((ev) => {
      if (ev.type === 'DELETED' || (ev.obj.metadata.ownerReferences?.length ?? 0) > 0 || ev.obj.metadata.finalizers?.includes(foregroundFinalizer)) this.trigger();
    });
  }

  private ownerExists(uid: string): boolean {
    return this.ops.store.byUidLookup(uid) !== undefined;
  }

  protected async pass(): Promise<number | void> {
    const waiting = await this.foreground();
    let failed = false;
    for (const resKey of this.ops.store.resourceKeys()) {
      const info = this.ops.registry.byResKey(resKey);
      if (!info) continue;
      const orphans: KubeObject[] = [];
      for (const o of this.ops.store.list(resKey)) {
        const refs = o.metadata.ownerReferences;
        if (!refs?.length || o.metadata.deletionTimestamp) continue;
        if (refs.some((r) => !this.ownerExists(r.uid))) orphans.push(o);
      }
      for (const o of orphans) {
        const refs = o.metadata.ownerReferences ?? [];
        const alive = refs.filter((r) => this.ownerExists(r.uid));
        const name = o.metadata.name ?? '';
        try {
          if (alive.length === 0) {
            this.logger.info('deleting an object whose owners are gone', { resource: info.resource, namespace: o.metadata.namespace, name });
            await this.ops.delete(info, o.metadata.namespace, name, { preconditions: { uid: o.metadata.uid ?? '' } });
          } else {
            await this.ops.mutate(info, o.metadata.namespace, name, (c) => {
              c.metadata.ownerReferences = (c.metadata.ownerReferences ?? []).filter((r) => this.ownerExists(r.uid));
            });
          }
        } catch (err) {
          if (hasErrorCode(err, 'not_found', 'conflict')) continue;
          // One object that cannot be fixed (e.g. stored before a stricter validation rule) must
          // not keep the rest from being collected: log it, go on, and try it again later.
          failed = true;
          this.logger.warn('garbage collection of an object failed; retrying later', { resource: info.resource, namespace: o.metadata.namespace, name, error: describeError(err) });
        }
      }
    }
    return failed ? retryFailedMs : waiting ? 500 : undefined;
  }

  /** Foreground deletions: delete dependents, then release the owner. True while some wait. */
  private async foreground(): Promise<boolean> {
    let waiting = false;
    for (const resKey of this.ops.store.resourceKeys()) {
      const info = this.ops.registry.byResKey(resKey);
      if (!info) continue;
      for (const owner of this.ops.store.list(resKey)) {
        if (!owner.metadata.deletionTimestamp || !owner.metadata.finalizers?.includes(foregroundFinalizer)) continue;
        const deps = this.ops.dependentsOf(owner.metadata.uid ?? '');
        for (const d of deps) {
          const dInfo = this.ops.registry.byResKey(d.resKey);
          if (!dInfo || d.obj.metadata.deletionTimestamp) continue;
          await this.ops.delete(dInfo, d.obj.metadata.namespace, d.obj.metadata.name ?? '', { propagationPolicy: 'Foreground' }).catch((err: unknown) => {
            if (!hasErrorCode(err, 'not_found', 'conflict')) throw err;
          });
        }
        if (this.ops.dependentsOf(owner.metadata.uid ?? '').length > 0) {
          waiting = true;
          continue;
        }
        await this.ops.mutate(info, owner.metadata.namespace, owner.metadata.name ?? '', (o) => {
          if (!o.metadata.finalizers?.includes(foregroundFinalizer)) return false;
          o.metadata.finalizers = o.metadata.finalizers.filter((f) => f !== foregroundFinalizer);
        });
      }
    }
    return waiting;
  }
}
