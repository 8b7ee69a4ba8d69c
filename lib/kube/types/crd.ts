// apiextensions.k8s.io/v1 CustomResourceDefinition: the pieces a controller needs to install its
// CRDs at start and to wait for them to be Established.
import type { Condition, KubeObject, ObjectMeta } from './meta.ts';

export interface CrdVersion {
  name: string;
  served: boolean;
  storage: boolean;
  schema?: { openAPIV3Schema: Record<string, unknown> };
  subresources?: { status?: Record<string, never> };
  additionalPrinterColumns?: { name: string; type: string; jsonPath: string; description?: string }[];
}

export interface CustomResourceDefinition extends KubeObject {
  metadata: ObjectMeta;
  spec: {
    group: string;
    names: { plural: string; singular?: string; kind: string; listKind?: string; shortNames?: string[]; categories?: string[] };
    scope: 'Namespaced' | 'Cluster';
    versions: CrdVersion[];
  };
  status?: { conditions?: Condition[]; acceptedNames?: { plural?: string; kind?: string } };
}

/** True when the CRD's Established condition is True (its resources are served). */
export function isCrdEstablished(crd: CustomResourceDefinition): boolean {
  return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;
}
