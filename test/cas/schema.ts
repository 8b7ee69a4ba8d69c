// A small checker for CRD OpenAPI schemas: is a schema structural (every node typed, or explicitly
// int-or-string / preserve-unknown-fields), and does an object fit it (types, required, enums, and
// no field the API server would prune).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAll } from 'js-yaml';

type Schema = Record<string, unknown>;

const crdDir = fileURLToPath(new URL('../../deploy/crds/', import.meta.url));

/** The v1alpha1/v1 OpenAPI schema of `kind`, from deploy/crds. */
export function crdSchema(kind: string): Schema {
  for (const file of readdirSync(crdDir).filter((f) => f.endsWith('.yaml'))) {
    for (const doc of loadAll(readFileSync(path.join(crdDir, file), 'utf8'))) {
      const crd = doc as { spec?: { names?: { kind?: string }; versions?: Array<{ schema: { openAPIV3Schema: Schema } }> } };
      const version = crd.spec?.versions?.[0];
      if (crd.spec?.names?.kind === kind && version) return version.schema.openAPIV3Schema;
    }
  }
  throw new Error(`no CRD for ${kind} in deploy/crds`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function structuralProblems(schema: unknown, path = 'openAPIV3Schema'): string[] {
  if (!isRecord(schema)) return [`${path}: not an object`];
  const problems: string[] = [];
  const free = schema['x-kubernetes-preserve-unknown-fields'] === true;
  const intOrString = schema['x-kubernetes-int-or-string'] === true;
  const type = schema['type'];
  if (type === undefined && !free && !intOrString) problems.push(`${path}: has no type`);
  if (type !== undefined && !['object', 'array', 'string', 'integer', 'number', 'boolean'].includes(String(type))) {
    problems.push(`${path}: unknown type ${String(type)}`);
  }
  if (type === 'object' && schema['properties'] === undefined && schema['additionalProperties'] === undefined && !free && path !== 'openAPIV3Schema.properties.metadata') {
    problems.push(`${path}: an object with neither properties nor additionalProperties (mark it x-kubernetes-preserve-unknown-fields if it is free-form)`);
  }
  const props = schema['properties'];
  if (props !== undefined) {
    if (!isRecord(props)) problems.push(`${path}.properties: not an object`);
    else for (const [k, v] of Object.entries(props)) problems.push(...structuralProblems(v, `${path}.properties.${k}`));
    const required = schema['required'];
    if (Array.isArray(required) && isRecord(props)) {
      for (const r of required) if (!Object.hasOwn(props, String(r))) problems.push(`${path}: required field ${String(r)} is not a property`);
    }
  }
  if (type === 'array') {
    if (schema['items'] === undefined) problems.push(`${path}: an array without items`);
    else problems.push(...structuralProblems(schema['items'], `${path}.items`));
  }
  if (isRecord(schema['additionalProperties'])) problems.push(...structuralProblems(schema['additionalProperties'], `${path}.additionalProperties`));
  for (const banned of ['oneOf', 'anyOf', 'allOf', 'not']) {
    if (schema[banned] !== undefined) problems.push(`${path}: ${banned} is not allowed to carry structure here`);
  }
  return problems;
}

/** Problems of `value` against `schema` (nothing for metadata beyond its type). */
export function valueProblems(schema: Schema, value: unknown, path = ''): string[] {
  const problems: string[] = [];
  if (schema['x-kubernetes-preserve-unknown-fields'] === true && schema['type'] === undefined) return problems;
  if (schema['x-kubernetes-int-or-string'] === true) {
    if (typeof value !== 'string' && !(typeof value === 'number' && Number.isInteger(value))) problems.push(`${path}: must be an integer or a string`);
    return problems;
  }
  if (value === null && schema['nullable'] === true) return problems;
  switch (schema['type']) {
    case 'string':
      if (typeof value !== 'string') problems.push(`${path}: must be a string, got ${JSON.stringify(value)}`);
      break;
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) problems.push(`${path}: must be an integer, got ${JSON.stringify(value)}`);
      break;
    case 'number':
      if (typeof value !== 'number') problems.push(`${path}: must be a number, got ${JSON.stringify(value)}`);
      break;
    case 'boolean':
      if (typeof value !== 'boolean') problems.push(`${path}: must be a boolean`);
      break;
    case 'array':
      if (!Array.isArray(value)) problems.push(`${path}: must be a list`);
      else value.forEach((v, i) => problems.push(...valueProblems(schema['items'] as Schema, v, `${path}[${i}]`)));
      break;
    case 'object': {
      if (!isRecord(value)) {
        problems.push(`${path}: must be an object`);
        break;
      }
      const props = isRecord(schema['properties']) ? schema['properties'] : undefined;
      const extra = schema['additionalProperties'];
      for (const r of (schema['required'] as string[] | undefined) ?? []) if (!Object.hasOwn(value, r)) problems.push(`${path}.${r}: is required`);
      for (const [k, v] of Object.entries(value)) {
        if (path === '' && k === 'metadata') continue;
        const sub = props?.[k];
        if (isRecord(sub)) problems.push(...valueProblems(sub, v, `${path}.${k}`));
        else if (isRecord(extra)) problems.push(...valueProblems(extra, v, `${path}.${k}`));
        else if (schema['x-kubernetes-preserve-unknown-fields'] !== true) problems.push(`${path}.${k}: unknown field (the API server would prune it)`);
      }
      break;
    }
  }
  const allowed = schema['enum'];
  if (Array.isArray(allowed) && !allowed.includes(value)) problems.push(`${path}: must be one of ${allowed.join(', ')}`);
  return problems;
}
