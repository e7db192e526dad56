import { FIELD_MANAGER } from './apply.ts';
import type { KubeObject } from './resources.ts';

/**
 * What a server-side apply of `desired` would change in `live`, found without writing: a dry run
 * needs write permission, so this compares the fields we send with the live object's values, and
 * finds the fields we would drop through the live object's managedFields (the fields our field
 * manager owns there and the new manifest no longer sets: SSA removes exactly those). Defaults and
 * fields others own are never compared, so server-managed noise stays out.
 */

export interface FieldChange {
  path: string;
  before?: string;
  after?: string;
}

type Json = unknown;

/** Leaf paths of a value, lists by index: `spec.template.spec.containers.0.image`. */
function flattenFields(value: Json, prefix = '', out = new Map<string, string>()): Map<string, string> {
  if (value !== null && typeof value === 'object') {
    const entries = Array.isArray(value)
      ? value.map((v, i) => [String(i), v] as const)
      : Object.entries(value as Record<string, Json>);
    if (entries.length === 0 && prefix) out.set(prefix, Array.isArray(value) ? '[]' : '{}');
    for (const [k, v] of entries) flattenFields(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out.set(prefix, JSON.stringify(value));
  }
  return out;
}

/** Metadata the server writes or that tooling keeps; never part of a change. */
const SERVER_METADATA = new Set([
  'managedFields',
  'resourceVersion',
  'generation',
  'uid',
  'creationTimestamp',
  'selfLink',
  'namespace',
]);
const SERVER_ANNOTATIONS = new Set([
  'deployment.kubernetes.io/revision',
  'kubectl.kubernetes.io/last-applied-configuration',
]);

function isNoise(path: string): boolean {
  if (path.startsWith('status.') || path === 'status') return true;
  const m = /^metadata\.([^.]+)(?:\.(.+))?$/.exec(path);
  if (!m) return false;
  if (SERVER_METADATA.has(m[1]!)) return true;
  return m[1] === 'annotations' && m[2] !== undefined && SERVER_ANNOTATIONS.has(m[2]);
}

/** A Secret's stringData is written to data base64-encoded: compare what the server will store. */
export function normaliseSecret(obj: KubeObject): KubeObject {
  if (obj.kind !== 'Secret') return obj;
  const { stringData, ...rest } = obj as KubeObject & { stringData?: Record<string, string> };
  if (!stringData) return obj;
  const data = { ...((rest as { data?: Record<string, string> }).data ?? {}) };
  for (const [k, v] of Object.entries(stringData)) data[k] = Buffer.from(v).toString('base64');
  return { ...rest, data } as KubeObject;
}

/**
 * Concrete paths (list items by index in `live`) of the leaves our manager owns, from FieldsV1:
 * `f:name` is a map key, `k:{"name":"shop"}` a list item by its merge key, `v:"x"` a set item.
 */
function ownedPaths(live: KubeObject, manager = FIELD_MANAGER): Set<string> {
  const out = new Set<string>();
  const entries = (live.metadata.managedFields ?? []) as {
    manager?: string;
    operation?: string;
    fieldsV1?: Json;
  }[];
  const walk = (fields: Json, value: Json, prefix: string) => {
    if (!fields || typeof fields !== 'object') return;
    const keys = Object.keys(fields as Record<string, Json>).filter((k) => k !== '.');
    if (keys.length === 0) {
      if (prefix) out.add(prefix);
      return;
    }
    for (const key of keys) {
      const sub = (fields as Record<string, Json>)[key];
      if (key.startsWith('f:')) {
        const name = key.slice(2);
        const child = value && typeof value === 'object' ? (value as Record<string, Json>)[name] : undefined;
        walk(sub, child, prefix ? `${prefix}.${name}` : name);
      } else if ((key.startsWith('k:') || key.startsWith('v:')) && Array.isArray(value)) {
        let match: (item: Json) => boolean;
        try {
          const wanted = JSON.parse(key.slice(2)) as Json;
          match = key.startsWith('k:')
            ? (item) =>
                Object.entries(wanted as Record<string, Json>).every(
                  ([k, v]) => item && typeof item === 'object' && (item as Record<string, Json>)[k] === v,
                )
            : (item) => JSON.stringify(item) === JSON.stringify(wanted);
        } catch {
          continue;
        }
        const index = value.findIndex(match);
        if (index >= 0) walk(sub, value[index], `${prefix}.${index}`);
      }
    }
  };
  for (const e of entries)
    if (e.manager === manager && (e.operation ?? 'Apply') === 'Apply') walk(e.fieldsV1, live, '');
  return out;
}

/**
 * The field changes applying `desired` would make to `live`: every field we send that differs, and
 * every field we owned that the manifest no longer sends. Values of Secrets are never returned,
 * only that they change.
 */
export function readOnlyDiff(
  live: KubeObject | undefined,
  desired: KubeObject,
  manager = FIELD_MANAGER,
): FieldChange[] {
  const secret = desired.kind === 'Secret';
  const want = flattenFields(normaliseSecret(desired));
  const have = live ? flattenFields(live) : new Map<string, string>();
  const hide = (path: string, value: string | undefined) =>
    value === undefined ? undefined : secret && /^(data|stringData)\./.test(path) ? '(secret value)' : value;
  const changes: FieldChange[] = [];
  for (const [path, value] of want) {
    if (isNoise(path)) continue;
    const before = have.get(path);
    if (before === value) continue;
    // A list we send that the live object has with more items is compared item by item below.
    if (secret && before !== undefined && /^data\./.test(path))
      changes.push({ path, before: '(secret value)', after: '(secret value, changed)' });
    else
      changes.push({
        path,
        ...(before !== undefined ? { before: hide(path, before) } : {}),
        after: hide(path, value),
      });
  }
  if (live) {
    const sent = [...want.keys()];
    for (const path of ownedPaths(live, manager)) {
      if (isNoise(path) || want.has(path) || sent.some((p) => p.startsWith(`${path}.`))) continue;
      for (const [leaf, value] of have)
        if ((leaf === path || leaf.startsWith(`${path}.`)) && !isNoise(leaf))
          changes.push({ path: leaf, before: hide(leaf, value) });
    }
  }
  const seen = new Set<string>();
  return changes
    .filter((c) => !seen.has(c.path) && seen.add(c.path))
    .sort((a, b) => a.path.localeCompare(b.path, 'en', { numeric: true }));
}
