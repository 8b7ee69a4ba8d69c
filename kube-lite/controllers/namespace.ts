// Namespace controller. Invariants: a deleted namespace is Terminating (deletionTimestamp set by
// the API); this controller deletes every object in it, then drops the "kubernetes" spec
// finalizer; the namespace goes once metadata.finalizers is empty too. `default`, `kube-system`
// and `kube-public` exist from the start.
import type { Logger } from '../../lib/logger.ts';
import { hasErrorCode } from '../../lib/errors.ts';
import type { Operations } from '../api/operations.ts';
import { protectedNamespaces } from '../api/operations.ts';
import { isJsonObject } from '../store/types.ts';
import { PassController } from './pass-runner.ts';

export class NamespaceController extends PassController {

  constructor(
    private readonly ops: Operations,
    private readonly logger: Logger,
  ) {
    super('namespace', logger);
    ops.store.hub.listen((ev) => {
      if (ev.resKey === '/namespaces' && ev.obj.metadata.deletionTimestamp) this.trigger();
    });
  }

  async ensureInitial(): Promise<void> {
    const info = this.ops.registry.byResKey('/namespaces')!;
    for (const name of protectedNamespaces) {
      if (!this.ops.store.get('/namespaces', undefined, name)) await this.ops.create(info, undefined, { metadata: { name } });
    }
  }

  protected async pass(): Promise<number | void> {
    const nsInfo = this.ops.registry.byResKey('/namespaces')!;
    let again: number | undefined;
    for (const ns of this.ops.store.list('/namespaces')) {
      if (!ns.metadata.deletionTimestamp) continue;
      const name = ns.metadata.name ?? '';
      let left = 0;
      for (const info of this.ops.registry.all()) {
        if (!info.namespaced) continue;
        for (const o of this.ops.store.list(info.resKey, name)) {
          left++;
          if (o.metadata.deletionTimestamp) continue;
          await this.ops.delete(info, name, o.metadata.name ?? '').catch((err: unknown) => {
            if (!hasErrorCode(err, 'not_found')) throw err;
          });
        }
      }
      if (left > 0 && this.countIn(name) > 0) {
        again = 500;
        continue;
      }
      this.logger.info('namespace emptied', { namespace: name });
      // Dropping the last spec finalizer removes the namespace (unless metadata finalizers remain).
      const after = await this.ops.mutate(nsInfo, undefined, name, (o) => {
        const spec = isJsonObject(o.spec) ? o.spec : {};
        const fins = Array.isArray(spec.finalizers) ? spec.finalizers : [];
        if (fins.length === 0) return false;
        o.spec = { ...spec, finalizers: [] };
      });
      const still = this.ops.store.getLatest('/namespaces', undefined, name);
      if (after && still && still.metadata.uid === ns.metadata.uid && !still.metadata.finalizers?.length) {
        try {
          await this.ops.store.remove('/namespaces', undefined, name, still.metadata.resourceVersion);
        } catch (err) {
          this.logger.warn('removing the emptied namespace failed; retrying on the next pass', { namespace: name, error: (err as Error).message });
        }
      }
    }
    return again;
  }

  private countIn(ns: string): number {
    let n = 0;
    for (const info of this.ops.registry.all()) if (info.namespaced) n += this.ops.store.list(info.resKey, ns).length;
    return n;
  }
}
