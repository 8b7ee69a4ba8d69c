// Field numbers of the Kubernetes protobuf messages kube-lite decodes, copied from the generated
// .proto files of kubernetes/kubernetes:
//   staging/src/k8s.io/apimachinery/pkg/runtime/generated.proto        (Unknown, TypeMeta: decode.ts)
//   staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto   (ObjectMeta, OwnerReference,
//                                                                       ManagedFieldsEntry, Condition, Time)
//   staging/src/k8s.io/apimachinery/pkg/util/intstr/generated.proto    (IntOrString)
//   staging/src/k8s.io/api/core/v1/generated.proto                     (the core kinds below)
// Only the kinds that kubectl's generators send as protobuf to the resources kube-lite serves are
// here (`kubectl create namespace|configmap|secret|serviceaccount|service`); any other kind is
// refused with 415 by decode.ts. Field names are the JSON names.

/** How a field's value is turned into JSON. */
export type FieldType =
  | 'string'
  | 'bytes' // base64 in JSON
  | 'bool'
  | 'int32'
  | 'int64'
  | 'time' // meta/v1 Time {seconds=1, nanos=2} → RFC 3339, second precision; empty → omitted
  | 'intOrString' // util/intstr IntOrString {type=1, intVal=2, strVal=3}
  | 'fieldsV1' // meta/v1 FieldsV1 {raw=1}: raw JSON → the JSON value
  | 'ignore' // a field removed from Kubernetes and ignored by it (ObjectMeta.clusterName)
  | { message: MessageName }
  | { map: 'string' | 'bytes' }; // map<string, V>: repeated entries {key=1, value=2}

export interface FieldSpec {
  json: string;
  type: FieldType;
  repeated?: true;
  /** Emit zero values too (Go pointer fields, and fields without omitempty). Default: omit them. */
  keepZero?: true;
}

type Fields = Readonly<Record<number, FieldSpec>>;

export type MessageName =
  | 'ObjectMeta'
  | 'OwnerReference'
  | 'ManagedFieldsEntry'
  | 'Condition'
  | 'ObjectReference'
  | 'LocalObjectReference'
  | 'Namespace'
  | 'NamespaceSpec'
  | 'NamespaceStatus'
  | 'NamespaceCondition'
  | 'ConfigMap'
  | 'Secret'
  | 'ServiceAccount'
  | 'Service'
  | 'ServiceSpec'
  | 'ServicePort'
  | 'SessionAffinityConfig'
  | 'ClientIPConfig'
  | 'ServiceStatus'
  | 'LoadBalancerStatus'
  | 'LoadBalancerIngress'
  | 'PortStatus';

const str = (json: string): FieldSpec => ({ json, type: 'string' });
const strs = (json: string): FieldSpec => ({ json, type: 'string', repeated: true });
const msg = (json: string, message: MessageName): FieldSpec => ({ json, type: { message } });
const msgs = (json: string, message: MessageName): FieldSpec => ({ json, type: { message }, repeated: true });
const time = (json: string): FieldSpec => ({ json, type: 'time' });
const stringMap = (json: string): FieldSpec => ({ json, type: { map: 'string' } });
const bytesMap = (json: string): FieldSpec => ({ json, type: { map: 'bytes' } });
/** A *bool: present means set, even when false. */
const optBool = (json: string): FieldSpec => ({ json, type: 'bool', keepZero: true });

export const messages: Readonly<Record<MessageName, Fields>> = {
  // meta/v1
  ObjectMeta: {
    1: str('name'),
    2: str('generateName'),
    3: str('namespace'),
    4: str('selfLink'),
    5: str('uid'),
    6: str('resourceVersion'),
    7: { json: 'generation', type: 'int64' },
    8: time('creationTimestamp'),
    9: time('deletionTimestamp'),
    10: { json: 'deletionGracePeriodSeconds', type: 'int64', keepZero: true },
    11: stringMap('labels'),
    12: stringMap('annotations'),
    13: msgs('ownerReferences', 'OwnerReference'),
    14: strs('finalizers'),
    15: { json: 'clusterName', type: 'ignore' },
    17: msgs('managedFields', 'ManagedFieldsEntry'),
  },
  OwnerReference: { 1: str('kind'), 3: str('name'), 4: str('uid'), 5: str('apiVersion'), 6: optBool('controller'), 7: optBool('blockOwnerDeletion') },
  ManagedFieldsEntry: { 1: str('manager'), 2: str('operation'), 3: str('apiVersion'), 4: time('time'), 6: str('fieldsType'), 7: { json: 'fieldsV1', type: 'fieldsV1' }, 8: str('subresource') },
  Condition: { 1: str('type'), 2: str('status'), 3: { json: 'observedGeneration', type: 'int64' }, 4: time('lastTransitionTime'), 5: str('reason'), 6: str('message') },
  // core/v1
  ObjectReference: { 1: str('kind'), 2: str('namespace'), 3: str('name'), 4: str('uid'), 5: str('apiVersion'), 6: str('resourceVersion'), 7: str('fieldPath') },
  LocalObjectReference: { 1: str('name') },
  Namespace: { 1: msg('metadata', 'ObjectMeta'), 2: msg('spec', 'NamespaceSpec'), 3: msg('status', 'NamespaceStatus') },
  NamespaceSpec: { 1: strs('finalizers') },
  NamespaceStatus: { 1: str('phase'), 2: msgs('conditions', 'NamespaceCondition') },
  NamespaceCondition: { 1: str('type'), 2: str('status'), 4: time('lastTransitionTime'), 5: str('reason'), 6: str('message') },
  ConfigMap: { 1: msg('metadata', 'ObjectMeta'), 2: stringMap('data'), 3: bytesMap('binaryData'), 4: optBool('immutable') },
  Secret: { 1: msg('metadata', 'ObjectMeta'), 2: bytesMap('data'), 3: str('type'), 4: stringMap('stringData'), 5: optBool('immutable') },
  ServiceAccount: { 1: msg('metadata', 'ObjectMeta'), 2: msgs('secrets', 'ObjectReference'), 3: msgs('imagePullSecrets', 'LocalObjectReference'), 4: optBool('automountServiceAccountToken') },
  Service: { 1: msg('metadata', 'ObjectMeta'), 2: msg('spec', 'ServiceSpec'), 3: msg('status', 'ServiceStatus') },
  ServiceSpec: {
    1: msgs('ports', 'ServicePort'),
    2: stringMap('selector'),
    3: str('clusterIP'),
    4: str('type'),
    5: strs('externalIPs'),
    7: str('sessionAffinity'),
    8: str('loadBalancerIP'),
    9: strs('loadBalancerSourceRanges'),
    10: str('externalName'),
    11: str('externalTrafficPolicy'),
    12: { json: 'healthCheckNodePort', type: 'int32' },
    13: { json: 'publishNotReadyAddresses', type: 'bool' },
    14: msg('sessionAffinityConfig', 'SessionAffinityConfig'),
    15: str('ipFamily'), // alpha field of 1.16–1.19, replaced by ipFamilies
    16: strs('topologyKeys'), // alpha field of 1.17–1.21
    17: str('ipFamilyPolicy'),
    18: strs('clusterIPs'),
    19: strs('ipFamilies'),
    20: optBool('allocateLoadBalancerNodePorts'),
    21: str('loadBalancerClass'),
    22: str('internalTrafficPolicy'),
    23: str('trafficDistribution'),
  },
  // `port` has no omitempty in Go: kept even when 0, so validation sees it.
  ServicePort: { 1: str('name'), 2: str('protocol'), 3: { json: 'port', type: 'int32', keepZero: true }, 4: { json: 'targetPort', type: 'intOrString' }, 5: { json: 'nodePort', type: 'int32' }, 6: str('appProtocol') },
  SessionAffinityConfig: { 1: msg('clientIP', 'ClientIPConfig') },
  ClientIPConfig: { 1: { json: 'timeoutSeconds', type: 'int32', keepZero: true } },
  ServiceStatus: { 1: msg('loadBalancer', 'LoadBalancerStatus'), 2: msgs('conditions', 'Condition') },
  LoadBalancerStatus: { 1: msgs('ingress', 'LoadBalancerIngress') },
  LoadBalancerIngress: { 1: str('ip'), 2: str('hostname'), 3: str('ipMode'), 4: msgs('ports', 'PortStatus') },
  PortStatus: { 1: { json: 'port', type: 'int32', keepZero: true }, 2: str('protocol'), 3: str('error') },
};

/** The top-level kinds decoded, by "apiVersion/kind", with their message. */
export const decodableKinds: Readonly<Record<string, MessageName>> = {
  'v1/Namespace': 'Namespace',
  'v1/ConfigMap': 'ConfigMap',
  'v1/Secret': 'Secret',
  'v1/ServiceAccount': 'ServiceAccount',
  'v1/Service': 'Service',
};
