// The layer between the REST API and the CAS engine: checks the request (names, capacity, clone
// fields) with messages naming the problem, picks the template (StorageClass annotation or
// default), serializes operations on one volume within this process, and runs the engine.
// Every method answers JSON (the CASVolume / CASSnapshot shapes of DESIGN.md §4) or throws a
// CstorError whose code the REST layer maps to the HTTP status.
import { CstorError, hasErrorCode } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { dns1123LabelProblems } from '../../lib/names.ts';
import type { CasEngine } from '../cas/engine.ts';
import { quantityBytes } from '../cas/functions.ts';
import { isJsonObject, type Json, type JsonObject, type KubeObject, type KubeObjects } from '../cas/ports.ts';
import { templateNameFor, type CasFlow } from '../cas/template-names.ts';
import type { ObjectReader } from '../cas/watched-objects.ts';
import { KeyedMutex } from './keyed-mutex.ts';

export interface CasFlowsOptions {
  engine: CasEngine;
  kube: KubeObjects;
  logger: Logger;
  /**
   * Reads of the StorageClass and PersistentVolume that pick a template (default: `kube`).
   * m-apiserver passes its WatchedObjects (../cas/watched-objects.ts).
   */
  reader?: ObjectReader;
}

export interface VolumeQuery {
  name: string;
  /** The claim's namespace (informational: CStorVolumes live in the openebs namespace). */
  namespace?: string;
  /** Picks the template by its annotations; absent: the default template. */
  storageClass?: string;
}

export interface SnapshotQuery {
  name: string;
  volume: string;
  namespace?: string;
  storageClass?: string;
}

const snapshotNamePattern = /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/;

function bad(message: string): CstorError {
  return new CstorError('invalid', message);
}

function field(obj: Json | undefined, ...keys: string[]): Json | undefined {
  let cur = obj;
  for (const k of keys) cur = isJsonObject(cur) ? cur[k] : undefined;
  return cur;
}

function requireObject(body: unknown, what: string): JsonObject {
  if (!isJsonObject(body as Json)) throw bad(`the request body must be a ${what} object`);
  return body as JsonObject;
}

/** A volume name becomes a label value and pool file names: a DNS-1123 label. */
export function checkVolumeName(name: unknown, what: string): string {
  if (typeof name !== 'string' || name === '') throw bad(`${what} is required`);
  const problems = dns1123LabelProblems(name);
  if (problems.length > 0) throw bad(`${what} "${name}" is not a valid name: ${problems.join('; ')}`);
  return name;
}

/** Snapshot ids (`<pv>_<snap>_<nanos>`) allow '_' and '.', never '/' or a leading dot. */
export function checkSnapshotName(name: unknown, what: string): string {
  if (typeof name !== 'string' || name === '') throw bad(`${what} is required`);
  if (name.length > 253 || !snapshotNamePattern.test(name)) {
    throw bad(`${what} "${name}" is not a valid snapshot name: letters, digits, '.', '_' and '-', starting and ending with a letter or digit, at most 253 characters`);
  }
  return name;
}

function checkCapacity(value: unknown, what: string): string {
  if (value === undefined || value === null || value === '') throw bad(`${what} is required`);
  if (typeof value !== 'string' && typeof value !== 'number') throw bad(`${what} must be a quantity like "5G"`);
  let bytes: number;
  try {
    bytes = quantityBytes(value);
  } catch {
    throw bad(`${what} "${String(value)}" is not a capacity (examples: 5G, 5Gi, 1073741824)`);
  }
  if (bytes <= 0) throw bad(`${what} must be more than 0`);
  if (!Number.isSafeInteger(bytes)) throw bad(`${what} "${String(value)}" is too large`);
  return String(value);
}

/** metadata.namespace, when given, is a string (it is templated into objects and answers). */
function checkNamespace(req: JsonObject): void {
  const namespace = field(req, 'metadata', 'namespace');
  if (namespace !== undefined && namespace !== null && typeof namespace !== 'string') throw bad('metadata.namespace must be a string');
}

/** metadata.labels, when given, maps names to strings (they become Kubernetes label values). */
function checkLabels(req: JsonObject): void {
  const labels = field(req, 'metadata', 'labels');
  if (labels === undefined || labels === null) return;
  if (!isJsonObject(labels)) throw bad('metadata.labels must be an object');
  for (const [k, v] of Object.entries(labels)) {
    if (typeof v !== 'string') throw bad(`metadata.labels["${k}"] must be a string`);
  }
}

/**
 * Whether the request asks for a clone. cloneSpec.isClone is true or false (or "true"/"false");
 * anything else, or a source named without isClone true, is refused: a clone request misread as
 * a plain create would hand out an empty volume where the snapshot's data was asked for.
 */
function isCloneRequest(req: JsonObject): boolean {
  const clone = field(req, 'cloneSpec');
  if (clone === undefined || clone === null) return false;
  if (!isJsonObject(clone)) throw bad('cloneSpec must be an object');
  const flag = clone['isClone'];
  if (flag === true || flag === 'true') return true;
  if (flag !== undefined && flag !== null && flag !== false && flag !== 'false') throw bad(`cloneSpec.isClone must be true or false, not ${JSON.stringify(flag)}`);
  const named = ['sourceVolume', 'snapshotName'].filter((k) => clone[k] !== undefined && clone[k] !== null && clone[k] !== '');
  if (named.length > 0) throw bad(`cloneSpec.${named.join(' and cloneSpec.')} given but cloneSpec.isClone is not true: set isClone: true for a clone, or leave cloneSpec out`);
  return false;
}

export class CasFlows {
  private readonly engine: CasEngine;
  private readonly kube: KubeObjects;
  private readonly reader: ObjectReader;
  private readonly logger: Logger;
  private readonly locks = new KeyedMutex();

  constructor(options: CasFlowsOptions) {
    this.engine = options.engine;
    this.kube = options.kube;
    this.reader = options.reader ?? options.kube;
    this.logger = options.logger;
  }

  private async storageClass(name: string | undefined): Promise<KubeObject | null> {
    if (name === undefined || name === '') return null;
    try {
      return await this.reader.get({ apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', name });
    } catch (err) {
      if (hasErrorCode(err, 'not_found')) return null;
      throw err;
    }
  }

  /** The class of a volume's PV, for template choice; null when there is no PV (a REST-made volume). */
  private async classOfVolume(volume: string, explicit: string | undefined): Promise<KubeObject | null> {
    if (explicit) return this.storageClass(explicit);
    try {
      const pv = await this.reader.get({ apiVersion: 'v1', kind: 'PersistentVolume', name: volume });
      const cls = field(pv, 'spec', 'storageClassName');
      return typeof cls === 'string' ? this.storageClass(cls) : null;
    } catch (err) {
      if (hasErrorCode(err, 'not_found')) return null;
      throw err;
    }
  }

  /**
   * Runs the flow's template: the StorageClass's choice, else the default. The default template is
   * read while the class is being looked up (one round trip less), and used when it is the choice.
   */
  private async run(flow: CasFlow, storageClass: Promise<KubeObject | null>, request: Json, logContext: Record<string, string>): Promise<Json> {
    const defaultTemplate = templateNameFor(flow, null);
    const early = this.engine.load(defaultTemplate);
    early.catch(() => undefined); // observed by the run when it is the choice
    const template = templateNameFor(flow, await storageClass);
    this.logger.debug('cas flow', { flow, template, ...logContext });
    return this.engine.run(template, { request, logContext: { flow, ...logContext }, ...(template === defaultTemplate ? { loaded: early } : {}) });
  }

  async createVolume(body: unknown): Promise<Json> {
    const req = requireObject(body, 'CASVolume');
    const name = checkVolumeName(field(req, 'metadata', 'name'), 'metadata.name (the volume name)');
    checkCapacity(field(req, 'spec', 'capacity'), 'spec.capacity');
    checkNamespace(req);
    checkLabels(req);
    const isClone = isCloneRequest(req);
    const clone = field(req, 'cloneSpec') as JsonObject;
    if (isClone) {
      checkVolumeName(clone['sourceVolume'], 'cloneSpec.sourceVolume');
      checkSnapshotName(clone['snapshotName'], 'cloneSpec.snapshotName');
      if (clone['sourceVolume'] === name) throw bad(`a volume cannot be cloned from itself (${name})`);
    }
    const className = field(req, 'metadata', 'labels', 'openebs.io/storageclass');
    return this.locks.run(name, async () => {
      if (isClone) await this.checkExistingClone(name, String(clone['sourceVolume']), String(clone['snapshotName']));
      return this.run(isClone ? 'clone-volume' : 'create-volume', this.storageClass(typeof className === 'string' ? className : undefined), req, { volume: name });
    });
  }

  /**
   * A clone create of a name that exists answers the existing volume (idempotent retries): only
   * when it is that same clone. A volume of that name made from another snapshot, another source,
   * or not a clone at all is refused (409), never handed out as the requested clone's data.
   */
  private async checkExistingClone(name: string, sourceVolume: string, snapshotName: string): Promise<void> {
    const namespace = this.engine.openebsNamespace;
    const existing: Array<{ object: KubeObject; source: Json | undefined }> = [];
    try {
      const cv = await this.kube.get({ apiVersion: 'openebs.io/v1alpha1', kind: 'CStorVolume', namespace, name });
      existing.push({ object: cv, source: field(cv, 'metadata', 'labels', 'openebs.io/source-volume') });
    } catch (err) {
      if (!hasErrorCode(err, 'not_found')) throw err;
    }
    // Replicas left by a create cut short (no CStorVolume yet) would be adopted by the retry.
    const cvrs = await this.kube.list({ apiVersion: 'openebs.io/v1alpha1', kind: 'CStorVolumeReplica', namespace, labelSelector: `openebs.io/persistent-volume=${name}` });
    for (const cvr of cvrs) existing.push({ object: cvr, source: field(cvr, 'metadata', 'annotations', 'openebs.io/source-volume') });
    for (const { object, source } of existing) {
      const snapshot = field(object, 'metadata', 'annotations', 'openebs.io/snapshot');
      if (source === sourceVolume && snapshot === snapshotName) continue;
      const what = typeof source === 'string' && source !== '' ? `a clone of snapshot ${typeof snapshot === 'string' ? snapshot : '(unknown)'} of volume ${source}` : 'a volume that is not a clone';
      throw new CstorError(
        'conflict',
        `volume ${name} exists already (${object.kind} ${String(object.metadata.name)}) as ${what}: it is not a clone of snapshot ${snapshotName} of volume ${sourceVolume}; delete it first or use another name`,
        { retryable: false },
      );
    }
  }

  async readVolume(query: VolumeQuery): Promise<Json> {
    const name = checkVolumeName(query.name, 'the volume name');
    return this.run('read-volume', this.storageClass(query.storageClass), { metadata: { name, namespace: query.namespace ?? '' } }, { volume: name });
  }

  async listVolumes(query: Omit<VolumeQuery, 'name'>): Promise<Json> {
    return this.run('list-volume', this.storageClass(query.storageClass), { metadata: { namespace: query.namespace ?? '' } }, {});
  }

  async deleteVolume(query: VolumeQuery): Promise<Json> {
    const name = checkVolumeName(query.name, 'the volume name');
    return this.locks.run(name, async () => {
      return this.run('delete-volume', this.storageClass(query.storageClass), { metadata: { name, namespace: query.namespace ?? '' } }, { volume: name });
    });
  }

  async createSnapshot(body: unknown): Promise<Json> {
    const req = requireObject(body, 'CASSnapshot');
    const name = checkSnapshotName(field(req, 'metadata', 'name'), 'metadata.name (the snapshot name)');
    const volume = checkVolumeName(field(req, 'spec', 'volumeName'), 'spec.volumeName');
    checkNamespace(req);
    const casType = field(req, 'spec', 'casType');
    if (casType !== undefined && casType !== null && casType !== '' && casType !== 'cstor') {
      throw bad(`spec.casType "${String(casType)}" is not supported: only cstor`);
    }
    return this.locks.run(volume, async () => {
      return this.run('create-snapshot', this.classOfVolume(volume, undefined), req, { volume, snapshot: name });
    });
  }

  private snapshotRequest(query: SnapshotQuery | Omit<SnapshotQuery, 'name'>, name: string | undefined): Json {
    const metadata: JsonObject = { namespace: query.namespace ?? '' };
    if (name !== undefined) metadata['name'] = name;
    return { metadata, spec: { casType: 'cstor', volumeName: query.volume } };
  }

  async readSnapshot(query: SnapshotQuery): Promise<Json> {
    const name = checkSnapshotName(query.name, 'the snapshot name');
    const volume = checkVolumeName(query.volume, 'the volume (query parameter volume)');
    return this.run('read-snapshot', this.classOfVolume(volume, query.storageClass), this.snapshotRequest(query, name), { volume, snapshot: name });
  }

  async listSnapshots(query: Omit<SnapshotQuery, 'name'>): Promise<Json> {
    const volume = checkVolumeName(query.volume, 'the volume (query parameter volume)');
    return this.run('list-snapshot', this.classOfVolume(volume, query.storageClass), this.snapshotRequest(query, undefined), { volume });
  }

  async deleteSnapshot(query: SnapshotQuery): Promise<Json> {
    const name = checkSnapshotName(query.name, 'the snapshot name');
    const volume = checkVolumeName(query.volume, 'the volume (query parameter volume)');
    return this.locks.run(volume, async () => {
      return this.run('delete-snapshot', this.classOfVolume(volume, query.storageClass), this.snapshotRequest(query, name), { volume, snapshot: name });
    });
  }
}
