// Which CASTemplate runs a flow: the StorageClass annotation
// `cas.openebs.io/<operation>-<resource>-template` when present, else the default below.
// `clone-volume` is our addition (cStor folded clones into create-volume).
import { isJsonObject, type KubeObject } from './ports.ts';

export const casFlows = [
  'create-volume',
  'clone-volume',
  'read-volume',
  'list-volume',
  'delete-volume',
  'create-snapshot',
  'read-snapshot',
  'list-snapshot',
  'delete-snapshot',
] as const;
export type CasFlow = (typeof casFlows)[number];

export const defaultTemplateNames: Readonly<Record<CasFlow, string>> = {
  'create-volume': 'cstor-volume-create-default',
  'clone-volume': 'cstor-volume-clone-default',
  'read-volume': 'cstor-volume-read-default',
  'list-volume': 'cstor-volume-list-default',
  'delete-volume': 'cstor-volume-delete-default',
  'create-snapshot': 'cstor-snapshot-create-default',
  'read-snapshot': 'cstor-snapshot-read-default',
  'list-snapshot': 'cstor-snapshot-list-default',
  'delete-snapshot': 'cstor-snapshot-delete-default',
};

export function templateAnnotation(flow: CasFlow): string {
  return `cas.openebs.io/${flow}-template`;
}

/** The template for `flow`: the class's annotation if it has a non-empty one, else the default. */
export function templateNameFor(flow: CasFlow, storageClass: KubeObject | null | undefined): string {
  const annotations = storageClass?.metadata.annotations;
  const chosen = isJsonObject(annotations) ? annotations[templateAnnotation(flow)] : undefined;
  return typeof chosen === 'string' && chosen.trim() !== '' ? chosen.trim() : defaultTemplateNames[flow];
}
