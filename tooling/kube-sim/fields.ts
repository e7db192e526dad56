/**
 * Decoding checks against the real server's OpenAPI v3 schemas (schemas/openapi.json, made by
 * schemas/generate.ts): the type errors its JSON decoder (sigs.k8s.io/json) raises, with the same
 * Go struct and field names, and the unknown fields that fieldValidation=Strict rejects and Warn
 * reports. Schemas also give server-side apply its list types and keys.
 */
import { readFileSync } from 'node:fs';
import { isObject } from './patch.ts';
import type { JsonObject } from './types.ts';

export interface Schema {
  type?: string;
  format?: string;
  $ref?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema;
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: string;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-patch-merge-key'?: string;
}

interface SchemaFile {
  source: string;
  kinds: Record<string, string>;
  definitions: Record<string, Schema>;
}

const file = JSON.parse(
  readFileSync(new URL('./schemas/openapi.json', import.meta.url), 'utf8'),
) as SchemaFile;

/** The schema of a kind, e.g. ('apps/v1', 'Deployment'); undefined for kinds without one (CRDs). */
export function schemaOf(apiVersion: string, kind: string): { name: string; schema: Schema } | undefined {
  const name = file.kinds[`${apiVersion}/${kind}`];
  const schema = name ? file.definitions[name] : undefined;
  return name && schema ? { name, schema } : undefined;
}

/** Follows $ref; the name is the definition's (its last segment is the Go type name). */
export function resolve(s: Schema | undefined): { schema: Schema | undefined; name: string | undefined } {
  if (s?.$ref) return { schema: { ...file.definitions[s.$ref], ...withoutRef(s) }, name: s.$ref };
  return { schema: s, name: undefined };
}

function withoutRef(s: Schema): Schema {
  const { $ref: _ref, ...rest } = s;
  return rest;
}

/** How Go prints the type a schema decodes into: int32, []v1.Container, map[string]string. */
function goType(s: Schema | undefined): string {
  if (!s) return 'interface {}';
  if (s.$ref) {
    const parts = s.$ref.split('.');
    return `${parts[parts.length - 2]}.${parts[parts.length - 1]}`;
  }
  switch (s.type) {
    case 'integer':
      return s.format === 'int64' ? 'int64' : 'int32';
    case 'number':
      return 'float64';
    case 'boolean':
      return 'bool';
    case 'string':
      return s.format === 'byte' ? '[]uint8' : 'string';
    case 'array':
      return `[]${goType(s.items)}`;
    case 'object':
      return s.additionalProperties ? `map[string]${goType(s.additionalProperties)}` : 'interface {}';
  }
  return 'interface {}';
}

function jsonKind(v: unknown): string {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return 'number';
  if (typeof v === 'boolean') return 'bool';
  if (Array.isArray(v)) return 'array';
  return 'object';
}

/** Go's base64.StdEncoding: the offset of the first byte it cannot decode, or -1. */
function base64ErrorOffset(text: string): number {
  const s = text.replace(/[\r\n]/g, '');
  const m = /[^A-Za-z0-9+/=]/.exec(s);
  if (m) return m.index;
  const pad = s.indexOf('=');
  if (pad >= 0 && (pad % 4 < 2 || /[^=]/.test(s.slice(pad)))) return pad;
  if (s.length % 4 !== 0) return s.length - (s.length % 4);
  return -1;
}

export interface DecodeProblems {
  /** The decoder's error (a 400 whatever fieldValidation says), e.g. "json: cannot unmarshal ...". */
  error?: string;
  /** Paths as the strict decoder prints them: spec.template.spec.containers[0].imagee */
  unknown: string[];
}

/** What the real server's decoder says of this JSON body of the given kind. */
export function checkDecode(apiVersion: string, kind: string, obj: JsonObject): DecodeProblems {
  const top = schemaOf(apiVersion, kind);
  const out: DecodeProblems = { unknown: [] };
  if (!top) return out;
  const structName = (name: string | undefined) => name?.split('.').pop() ?? '';
  const walk = (
    value: unknown,
    s: Schema | undefined,
    strictPath: string,
    fieldStack: string[],
    struct: string,
  ) => {
    if (out.error || value === null || value === undefined) return;
    const { schema, name } = resolve(s);
    if (!schema) return;
    if (schema.format === 'int-or-string' || name?.endsWith('.Quantity')) {
      if (typeof value !== 'string' && typeof value !== 'number') {
        out.error = `json: cannot unmarshal ${jsonKind(value)} into Go struct field ${struct}.${fieldStack.join('.')} of type ${name?.endsWith('.Quantity') ? 'resource.Quantity' : 'intstr.IntOrString'}`;
      }
      return;
    }
    const typeError = () => {
      const v =
        typeof value === 'number' && schema.type === 'integer' && !Number.isInteger(value)
          ? `number ${value}`
          : jsonKind(value);
      out.error = `json: cannot unmarshal ${v} into Go struct field ${struct}.${fieldStack.join('.')} of type ${goType(s)}`;
    };
    switch (schema.type ?? (schema.properties ? 'object' : undefined)) {
      case 'string':
        if (typeof value !== 'string') return typeError();
        if (schema.format === 'byte') {
          const at = base64ErrorOffset(value);
          if (at >= 0) out.error = `illegal base64 data at input byte ${at}`;
        }
        return;
      case 'integer':
        if (typeof value !== 'number' || !Number.isInteger(value)) return typeError();
        return;
      case 'number':
        if (typeof value !== 'number') return typeError();
        return;
      case 'boolean':
        if (typeof value !== 'boolean') return typeError();
        return;
      case 'array':
        if (!Array.isArray(value)) return typeError();
        value.forEach((item, i) => {
          walk(item, schema.items, `${strictPath}[${i}]`, fieldStack, struct);
        });
        return;
      case 'object': {
        if (!isObject(value)) return typeError();
        if (schema.properties) {
          const here = structName(name) || struct;
          for (const [k, v] of Object.entries(value)) {
            const path = strictPath ? `${strictPath}.${k}` : k;
            const prop = schema.properties[k];
            if (!prop) {
              if (!schema['x-kubernetes-preserve-unknown-fields']) out.unknown.push(path);
              continue;
            }
            walk(v, prop, path, [...fieldStack, k], here);
          }
        } else if (schema.additionalProperties) {
          for (const [k, v] of Object.entries(value)) {
            walk(v, schema.additionalProperties, strictPath ? `${strictPath}.${k}` : k, fieldStack, struct);
          }
        }
        return;
      }
    }
  };
  walk(obj, { $ref: top.name }, '', [], structName(top.name));
  return out;
}

/** Drops what the typed decoder would drop: fields the schema does not declare. */
export function pruneUnknown(apiVersion: string, kind: string, obj: JsonObject): void {
  const top = schemaOf(apiVersion, kind);
  if (!top) return;
  const walk = (value: unknown, s: Schema | undefined) => {
    const { schema } = resolve(s);
    if (!schema || value === null || value === undefined) return;
    if (Array.isArray(value)) {
      if (schema.items) for (const item of value) walk(item, schema.items);
      return;
    }
    if (!isObject(value)) return;
    if (schema.properties) {
      for (const [k, v] of Object.entries(value)) {
        const prop = schema.properties[k];
        if (!prop) {
          if (!schema['x-kubernetes-preserve-unknown-fields']) delete value[k];
        } else walk(v, prop);
      }
    } else if (schema.additionalProperties) {
      for (const v of Object.values(value)) walk(v, schema.additionalProperties);
    }
  };
  walk(obj, { $ref: top.name });
}
