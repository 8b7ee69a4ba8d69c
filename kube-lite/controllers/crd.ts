// CRD controller. Invariants: a CRD gets NamesAccepted and Established conditions (status
// subresource) and its custom resources are served from then on; a deleted CRD is Terminating
// until every custom resource of it is gone, then it drops the
// customresourcecleanup.apiextensions.k8s.io finalizer and goes.
import type { Logger } from '../../lib/logger.ts';
import type { Operations } from '../api/operations.ts';
import { nowTimestamp } from '../api/operations.ts';
import type { PrinterColumn, ResourceInfo } from '../resources/registry.ts';
import { isJsonObject, type JsonObject, type KubeObject } from '../store/types.ts';
import { PassController } from './pass-runner.ts';

export const crdResKey = 'apiextensions.k8s.io/customresourcedefinitions';
const cleanupFinalizer = 'customresourcecleanup.apiextensions.k8s.io';

function conditions(o: KubeObject): JsonObject[] {
  const st = isJsonObject(o.status) ? o.status : {};
  return Array.isArray(st.conditions) ? st.conditions.filter(isJsonObject) : [];
}

export function isEstablished(o: KubeObject): boolean {
  return conditions(o).some((c) => c.type === 'Established' && c.status === 'True');
}

/** The ResourceInfo a CRD defines. */
export function infoFromCrd(o: KubeObject): ResourceInfo | undefined {
  const spec = isJsonObject(o.spec) ? o.spec : undefined;
  const names = spec && isJsonObject(spec.names) ? spec.names : undefined;
  if (!spec || !names || typeof spec.group !== 'string' || typeof names.plural !== 'string' || typeof names.kind !== 'string') return undefined;
  const versions = Array.isArray(spec.versions) ? spec.versions.filter(isJsonObject) : [];
  const served = versions.filter((v) => v.served === true && typeof v.name === 'string');
  if (served.length === 0) return undefined;
  const storage = served.find((v) => v.storage === true) ?? served[0]!;
  const ordered = [storage, ...served.filter((v) => v !== storage)];
  const printerColumns: Record<string, PrinterColumn[]> = {};
  for (const v of served) {
    const cols = Array.isArray(v.additionalPrinterColumns) ? v.additionalPrinterColumns.filter(isJsonObject) : [];
    printerColumns[String(v.name)] = cols
      .filter((c) => typeof c.name === 'string' && typeof c.jsonPath === 'string')
      .map((c) => ({
        name: String(c.name),
        type: typeof c.type === 'string' ? c.type : 'string',
        jsonPath: String(c.jsonPath),
        ...(typeof c.description === 'string' ? { description: c.description } : {}),
        ...(typeof c.priority === 'number' ? { priority: c.priority } : {}),
        ...(typeof c.format === 'string' ? { format: c.format } : {}),
      }));
  }
  const hasStatus = served.some((v) => isJsonObject(v.subresources) && isJsonObject(v.subresources.status));
  return {
    group: spec.group,
    versions: ordered.map((v) => String(v.name)),
    resource: names.plural,
    kind: names.kind,
    listKind: typeof names.listKind === 'string' ? names.listKind : `${names.kind}List`,
    singular: typeof names.singular === 'string' ? names.singular : names.kind.toLowerCase(),
    namespaced: spec.scope === 'Namespaced',
    shortNames: Array.isArray(names.shortNames) ? names.shortNames.map(String) : [],
    categories: Array.isArray(names.categories) ? names.categories.map(String) : [],
    hasStatus,
    resKey: `${spec.group}/${names.plural}`,
    fields: {},
    printerColumns,
    custom: true,
  };
}

function setCondition(list: JsonObject[], type: string, status: string, reason: string, message: string): JsonObject[] {
  const cur = list.find((c) => c.type === type);
  if (cur && cur.status === status && cur.reason === reason) return list;
  const next = { type, status, lastTransitionTime: nowTimestamp(), reason, message };
  return cur ? list.map((c) => (c === cur ? next : c)) : [...list, next];
}

export class CrdController extends PassController {

  constructor(
    private readonly ops: Operations,
    logger: Logger,
  ) {
    super('crd', logger);
    ops.store.hub.listen((ev) => {
      if (ev.resKey === crdResKey) this.trigger();
    });
  }

  /**
   * Registers the established CRDs' resources (call once before serving); with `andPending`,
   * also those of the CRDs this pass is about to mark Established, so that no client can see a
   * CRD Established before its resource is served.
   */
  syncRegistry(andPending = false): void {
    const infos: ResourceInfo[] = [];
    for (const crd of this.ops.store.list(crdResKey)) {
      if (!isEstablished(crd) && !(andPending && !crd.metadata.deletionTimestamp)) continue;
      const info = infoFromCrd(crd);
      if (info) infos.push(info);
    }
    this.ops.registry.setCustom(infos);
  }

  protected async pass(): Promise<number | void> {
    const crdInfo = this.ops.registry.byResKey(crdResKey)!;
    let again: number | undefined;
    this.syncRegistry(true);
    for (const crd of this.ops.store.list(crdResKey)) {
      const name = crd.metadata.name ?? '';
      if (crd.metadata.deletionTimestamp) {
        if (!(await this.cleanup(crd))) again = 500;
        continue;
      }
      const info = infoFromCrd(crd);
      await this.ops.mutate(crdInfo, undefined, name, (o) => {
        const st = isJsonObject(o.status) ? o.status : {};
        let conds = conditions(o);
        conds = setCondition(conds, 'NamesAccepted', 'True', 'NoConflicts', 'no conflicts found');
        conds = setCondition(conds, 'Established', 'True', 'InitialNamesAccepted', 'the initial names have been accepted');
        const spec = isJsonObject(o.spec) ? o.spec : {};
        const stored = Array.isArray(st.storedVersions) ? st.storedVersions.map(String) : [];
        if (info && !stored.includes(info.versions[0]!)) stored.push(info.versions[0]!);
        o.status = { ...st, conditions: conds, acceptedNames: spec.names ?? {}, storedVersions: stored };
      }, { subresource: 'status' });
    }
    this.syncRegistry();
    return again;
  }

  /** Deletes a terminating CRD's resources; true once it is gone. */
  private async cleanup(crd: KubeObject): Promise<boolean> {
    const crdInfo = this.ops.registry.byResKey(crdResKey)!;
    const name = crd.metadata.name ?? '';
    await this.ops.mutate(crdInfo, undefined, name, (o) => {
      o.status = { ...(isJsonObject(o.status) ? o.status : {}), conditions: setCondition(conditions(o), 'Terminating', 'True', 'InstanceDeletionInProgress', 'CustomResource deletion is in progress') };
    }, { subresource: 'status' });
    const info = infoFromCrd(crd);
    const remaining = info ? this.ops.store.list(info.resKey) : [];
    for (const o of remaining) {
      if (o.metadata.deletionTimestamp) continue;
      const served = this.ops.registry.byResKey(info!.resKey) ?? info!;
      await this.ops.delete(served, o.metadata.namespace, o.metadata.name ?? '').catch(() => undefined);
    }
    if (info && this.ops.store.list(info.resKey).length > 0) return false;
    await this.ops.mutate(crdInfo, undefined, name, (o) => {
      if (!o.metadata.finalizers?.includes(cleanupFinalizer)) return false;
      o.metadata.finalizers = o.metadata.finalizers.filter((f) => f !== cleanupFinalizer);
    });
    return true;
  }
}
