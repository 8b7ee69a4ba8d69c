// Kubernetes protobuf request bodies (Content-Type application/vnd.kubernetes.protobuf) → the JSON
// object the create/update path takes.
//
// Envelope (k8s.io/apimachinery/pkg/runtime/serializer/protobuf):
//   body    := "k8s\x00" Unknown
//   Unknown := typeMeta=1 TypeMeta {apiVersion=1, kind=2}, raw=2 bytes (the object's message),
//              contentEncoding=3 string (must be empty), contentType=4 string (empty or protobuf)
// The object's message is decoded with the field table of its kind (schema.ts) into JSON as Go's
// encoding/json would write the same Go struct: empty strings, zero numbers and false are omitted
// (omitempty) except for fields marked keepZero; nested messages present on the wire are kept
// (even empty, like Go's non-pointer structs); bytes become base64; Time becomes RFC 3339.
//
// Errors (all CstorErrors shaped for the API by status.ts):
//   400 BadRequest            malformed protobuf (truncated, bad varint, wrong wire type, bad UTF-8, …)
//   415 UnsupportedMediaType  a kind kube-lite does not decode, or a field number it does not know
//                             with a non-empty value (decoding would silently drop data)
import { CstorError, hasErrorCode } from '../../../lib/errors.ts';
import type { JsonObject } from '../../store/types.ts';
import { badRequest, unsupportedMediaType } from '../status.ts';
import { decodableKinds, messages, type FieldSpec, type MessageName } from './schema.ts';
import { ProtoReader, WireType, protocolError, wireTypeName, type WireField } from './wire.ts';

export const protobufMagic = Buffer.from([0x6b, 0x38, 0x73, 0x00]); // "k8s\0"
export const protobufContentType = 'application/vnd.kubernetes.protobuf';

const useJsonHint = 'send it as JSON or YAML instead (kubectl create -f FILE.yaml, or kubectl create … --dry-run=client -o yaml | kubectl create -f -)';

/** Nesting bound for probing unknown length-delimited fields (schema nesting is bounded by itself). */
const maxProbeDepth = 16;

/** Decodes a Kubernetes protobuf body into its JSON object (apiVersion and kind included). */
export function decodeKubeProtobuf(body: Buffer): JsonObject {
  try {
    return decodeEnvelope(body);
  } catch (err) {
    if (hasErrorCode(err, 'protocol')) throw badRequest(`the protobuf request body is malformed: ${err.message}`);
    if (err instanceof CstorError) throw err;
    // Not expected (every read is bound-checked); still a typed 400, never a crash.
    throw new CstorError('invalid', `the protobuf request body could not be decoded: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
      details: { reason: 'BadRequest', httpStatus: 400 },
    });
  }
}

function decodeEnvelope(body: Buffer): JsonObject {
  if (body.length < protobufMagic.length || !body.subarray(0, protobufMagic.length).equals(protobufMagic)) {
    throw protocolError(`it does not start with the 4-byte magic "k8s\\0" (got ${body.subarray(0, 4).toString('hex') || 'nothing'})`);
  }
  const env = readEnvelope(body.subarray(protobufMagic.length));
  const { apiVersion, kind } = env;
  if (!kind) throw protocolError('the envelope names no kind (runtime.Unknown typeMeta.kind is empty)');
  if (env.contentEncoding !== '') {
    throw unsupportedMediaType(`kube-lite does not decode protobuf bodies with contentEncoding "${env.contentEncoding}"; ${useJsonHint}`);
  }
  if (env.contentType !== '' && env.contentType !== protobufContentType) {
    throw unsupportedMediaType(`kube-lite does not decode protobuf envelopes carrying ${env.contentType}; ${useJsonHint}`);
  }
  const message = decodableKinds[`${apiVersion}/${kind}`];
  if (!message) {
    const known = Object.keys(decodableKinds).map((k) => k.split('/').pop()).join(', ');
    throw unsupportedMediaType(`kube-lite does not decode protobuf bodies of kind ${kind} (${apiVersion || 'no apiVersion'}); it decodes ${known}. Use kubectl create -f with a YAML or JSON file for ${kind}: ${useJsonHint}`);
  }
  return { apiVersion, kind, ...decodeMessage(message, env.raw, kind) };
}

interface Envelope {
  apiVersion: string;
  kind: string;
  raw: Buffer;
  contentEncoding: string;
  contentType: string;
}

/** runtime.Unknown {typeMeta=1 {apiVersion=1, kind=2}, raw=2, contentEncoding=3, contentType=4}. */
function readEnvelope(buf: Buffer): Envelope {
  const env: Envelope = { apiVersion: '', kind: '', raw: Buffer.alloc(0), contentEncoding: '', contentType: '' };
  const r = new ProtoReader(buf, 'Unknown');
  for (let f = r.next(); f !== undefined; f = r.next()) {
    switch (f.number) {
      case 1: {
        const tm = new ProtoReader(expectLen(f, 'Unknown.typeMeta'), 'Unknown.typeMeta');
        for (let g = tm.next(); g !== undefined; g = tm.next()) {
          if (g.number === 1) env.apiVersion = utf8(expectLen(g, 'typeMeta.apiVersion'), 'typeMeta.apiVersion');
          else if (g.number === 2) env.kind = utf8(expectLen(g, 'typeMeta.kind'), 'typeMeta.kind');
          else if (!isEmptyValue(g, 0)) throw protocolError(`Unknown.typeMeta: unexpected field ${g.number}`);
        }
        break;
      }
      case 2:
        env.raw = expectLen(f, 'Unknown.raw');
        break;
      case 3:
        env.contentEncoding = utf8(expectLen(f, 'Unknown.contentEncoding'), 'Unknown.contentEncoding');
        break;
      case 4:
        env.contentType = utf8(expectLen(f, 'Unknown.contentType'), 'Unknown.contentType');
        break;
      default:
        if (!isEmptyValue(f, 0)) throw protocolError(`Unknown: unexpected field ${f.number}`);
    }
  }
  return env;
}

/** Decodes one message's bytes into `into` (repeated fields append, maps merge, scalars: last wins). */
function decodeMessage(name: MessageName, buf: Buffer, path: string, into: JsonObject = {}): JsonObject {
  const fields = messages[name];
  const r = new ProtoReader(buf, path);
  for (let f = r.next(); f !== undefined; f = r.next()) {
    const spec = fields[f.number];
    if (!spec) {
      if (!isEmptyValue(f, 0)) {
        throw unsupportedMediaType(`kube-lite cannot decode field ${f.number} (${wireTypeName(f.wireType)}) of protobuf message ${name} at ${path} (a field newer than kube-lite's decoder?), and leaving it out would drop data; ${useJsonHint}`);
      }
      continue;
    }
    const at = `${path}.${spec.json}`;
    if (spec.type === 'ignore') continue;
    if (spec.repeated) {
      const list = Array.isArray(into[spec.json]) ? (into[spec.json] as unknown[]) : [];
      list.push(...decodeRepeated(spec, f, `${at}[${list.length}]`));
      into[spec.json] = list;
      continue;
    }
    if (typeof spec.type === 'object' && 'map' in spec.type) {
      const map = (into[spec.json] ?? {}) as JsonObject;
      const [k, v] = decodeMapEntry(spec.type.map, expectLen(f, at), at);
      // An own property even for "__proto__", as JSON.parse makes it (plain assignment would not).
      Object.defineProperty(map, k, { value: v, enumerable: true, writable: true, configurable: true });
      into[spec.json] = map;
      continue;
    }
    if (typeof spec.type === 'object') {
      const prev = into[spec.json];
      into[spec.json] = decodeMessage(spec.type.message, expectLen(f, at), at, typeof prev === 'object' && prev !== null ? (prev as JsonObject) : {});
      continue;
    }
    const v = decodeScalar(spec, f, at);
    if (v === undefined || (!spec.keepZero && isZero(v))) delete into[spec.json];
    else into[spec.json] = v;
  }
  return into;
}

function decodeRepeated(spec: FieldSpec, f: WireField, at: string): unknown[] {
  if (typeof spec.type === 'object' && 'message' in spec.type) return [decodeMessage(spec.type.message, expectLen(f, at), at)];
  // Packed repeated varints (proto3 style) arrive as one LEN field.
  if ((spec.type === 'int32' || spec.type === 'int64' || spec.type === 'bool') && f.wireType === WireType.len) {
    const r = new ProtoReader(f.bytes!, at);
    const out: unknown[] = [];
    while (!r.done) out.push(decodeScalar(spec, { number: f.number, wireType: WireType.varint, varint: r.varint(), offset: r.offset }, at));
    return out;
  }
  const v = decodeScalar(spec, f, at);
  return v === undefined ? [] : [v];
}

function decodeMapEntry(valueType: 'string' | 'bytes', buf: Buffer, at: string): [string, string] {
  const r = new ProtoReader(buf, `${at} entry`);
  let key = '';
  let value = '';
  for (let f = r.next(); f !== undefined; f = r.next()) {
    if (f.number === 1) key = utf8(expectLen(f, `${at} key`), `${at} key`);
    else if (f.number === 2) value = valueType === 'bytes' ? expectLen(f, `${at}[${key}]`).toString('base64') : utf8(expectLen(f, `${at}[${key}]`), `${at}[${key}]`);
    else if (!isEmptyValue(f, 0)) throw protocolError(`${at}: map entry has an unexpected field ${f.number}`);
  }
  return [key, value];
}

function decodeScalar(spec: FieldSpec, f: WireField, at: string): unknown {
  switch (spec.type) {
    case 'string':
      return utf8(expectLen(f, at), at);
    case 'bytes':
      return expectLen(f, at).toString('base64');
    case 'bool':
      return expectVarint(f, at) !== 0n;
    case 'int32': {
      const v = BigInt.asIntN(64, expectVarint(f, at));
      if (v < -(2n ** 31n) || v >= 2n ** 31n) throw protocolError(`${at}: ${v} does not fit a 32-bit integer`);
      return Number(v);
    }
    case 'int64': {
      const v = BigInt.asIntN(64, expectVarint(f, at));
      if (v < BigInt(Number.MIN_SAFE_INTEGER) || v > BigInt(Number.MAX_SAFE_INTEGER)) throw protocolError(`${at}: ${v} is beyond what JSON numbers hold exactly`);
      return Number(v);
    }
    case 'time':
      return decodeTime(expectLen(f, at), at);
    case 'intOrString':
      return decodeIntOrString(expectLen(f, at), at);
    case 'fieldsV1':
      return decodeFieldsV1(expectLen(f, at), at);
    default:
      // Messages and maps are handled by the caller; reaching here is a schema bug.
      throw protocolError(`${at}: field type ${JSON.stringify(spec.type)} is not a scalar`);
  }
}

/** meta/v1 Time: empty = the zero time (JSON null, omitted); else seconds/nanos since the epoch. */
function decodeTime(buf: Buffer, at: string): string | undefined {
  if (buf.length === 0) return undefined;
  const r = new ProtoReader(buf, at);
  let seconds = 0n;
  for (let f = r.next(); f !== undefined; f = r.next()) {
    if (f.number === 1) seconds = BigInt.asIntN(64, expectVarint(f, `${at}.seconds`));
    else if (f.number === 2) expectVarint(f, `${at}.nanos`); // Time is second precision in JSON
    else if (!isEmptyValue(f, 0)) throw protocolError(`${at}: Time has an unexpected field ${f.number}`);
  }
  // 0001-01-01T00:00:00Z … 9999-12-31T23:59:59Z, as Kubernetes allows.
  if (seconds < -62135596800n || seconds > 253402300799n) throw protocolError(`${at}: ${seconds} seconds is outside years 1 to 9999`);
  const d = new Date(Number(seconds) * 1000);
  const iso = d.toISOString(); // years 1–9999 print as YYYY-…
  return iso.replace(/\.\d{3}Z$/, 'Z');
}

/** util/intstr IntOrString {type=1 (0 int, 1 string), intVal=2, strVal=3} → a number or a string. */
function decodeIntOrString(buf: Buffer, at: string): number | string {
  const r = new ProtoReader(buf, at);
  let type = 0n;
  let intVal = 0;
  let strVal = '';
  for (let f = r.next(); f !== undefined; f = r.next()) {
    if (f.number === 1) type = expectVarint(f, `${at}.type`);
    else if (f.number === 2) intVal = decodeScalar({ json: 'intVal', type: 'int32' }, f, `${at}.intVal`) as number;
    else if (f.number === 3) strVal = utf8(expectLen(f, `${at}.strVal`), `${at}.strVal`);
    else if (!isEmptyValue(f, 0)) throw protocolError(`${at}: IntOrString has an unexpected field ${f.number}`);
  }
  if (type === 0n) return intVal;
  if (type === 1n) return strVal;
  throw protocolError(`${at}: IntOrString type ${type} is neither 0 (int) nor 1 (string)`);
}

/** meta/v1 FieldsV1 {raw=1}: raw JSON text, which JSON shows as the value itself. */
function decodeFieldsV1(buf: Buffer, at: string): unknown {
  const r = new ProtoReader(buf, at);
  let raw = '';
  for (let f = r.next(); f !== undefined; f = r.next()) {
    if (f.number === 1) raw = utf8(expectLen(f, at), at);
    else if (!isEmptyValue(f, 0)) throw protocolError(`${at}: FieldsV1 has an unexpected field ${f.number}`);
  }
  if (raw === '') return undefined;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw protocolError(`${at}: FieldsV1 raw is not valid JSON`);
  }
}

function expectLen(f: WireField, at: string): Buffer {
  if (f.wireType !== WireType.len) throw protocolError(`${at}: expected a length-delimited value, got ${wireTypeName(f.wireType)} (field ${f.number} at offset ${f.offset})`);
  return f.bytes!;
}

function expectVarint(f: WireField, at: string): bigint {
  if (f.wireType !== WireType.varint) throw protocolError(`${at}: expected a varint, got ${wireTypeName(f.wireType)} (field ${f.number} at offset ${f.offset})`);
  return f.varint!;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function utf8(b: Buffer, at: string): string {
  try {
    return strictUtf8.decode(b);
  } catch {
    throw protocolError(`${at}: string is not valid UTF-8`);
  }
}

function isZero(v: unknown): boolean {
  return v === '' || v === 0 || v === false;
}

/**
 * True when an unknown field carries nothing: a zero varint or fixed value, or a length-delimited
 * value that is empty or parses as a message whose fields are all empty (Go's generated code writes
 * empty non-pointer structs and strings, so a newer kubectl sends such fields for every object).
 */
function isEmptyValue(f: WireField, depth: number): boolean {
  if (f.wireType === WireType.varint) return f.varint === 0n;
  if (f.wireType !== WireType.len) return f.bytes!.every((b) => b === 0);
  const b = f.bytes!;
  if (b.length === 0) return true;
  if (depth >= maxProbeDepth) return false;
  try {
    const r = new ProtoReader(b, 'probe');
    for (let g = r.next(); g !== undefined; g = r.next()) if (!isEmptyValue(g, depth + 1)) return false;
    return true;
  } catch {
    return false; // not a message: real data (a string, bytes)
  }
}
