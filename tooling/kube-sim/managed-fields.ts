/**
 * Field ownership for server-side apply, kept where the real server keeps it: in
 * metadata.managedFields (FieldsV1). A field set is a set of paths; a path is FieldsV1 keys
 * (`f:spec`, `k:{"name":"app"}`) joined by newlines. Associative lists are those with a merge key;
 * every other list is atomic and owned as a whole.
 */
import { resolve, type Schema, schemaOf } from './fields.ts';
import { clone, deepEqual, isObject, mergeKeyFor } from './patch.ts';
import { ApiError } from './status.ts';
import type { FieldsV1, JsonObject, KubeObject, ManagedFieldsEntry } from './types.ts';

const SEP = '\n';
const SKIP_META = new Set([
  'name',
  'namespace',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'managedFields',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'selfLink',
  'generateName',
]);

export type FieldSet = Set<string>;

/**
 * The keys of an associative list, as the real schemas' x-kubernetes-list-map-keys give them:
 * container ports are keyed by containerPort and protocol, Service ports by port and protocol.
 */
function listKeys(field: string, items: unknown[]): string[] | undefined {
  const key = mergeKeyFor(field, items);
  if (!key) return undefined;
  if (field === 'ports')
    return key === 'containerPort' ? ['containerPort', 'protocol'] : ['port', 'protocol'];
  return [key];
}

/** Key fields the server defaults before keying (a port's protocol). */
const KEY_DEFAULTS: Record<string, unknown> = { protocol: 'TCP' };

function itemKey(item: JsonObject, keys: string[]): JsonObject | undefined {
  const out: JsonObject = {};
  for (const k of [...keys].sort()) {
    const v = item[k] ?? KEY_DEFAULTS[k];
    if (v === undefined) return undefined;
    out[k] = v;
  }
  return out;
}

function matchesKey(item: unknown, key: JsonObject): boolean {
  if (!isObject(item)) return false;
  return Object.entries(key).every(([k, v]) => deepEqual(item[k] ?? KEY_DEFAULTS[k], v));
}

type Node = Schema | undefined;

function childOf(s: Node, key: string): Node {
  const r = resolve(s).schema;
  return r?.properties?.[key] ?? r?.additionalProperties;
}

function isAtomicMap(s: Node): boolean {
  return resolve(s).schema?.['x-kubernetes-map-type'] === 'atomic';
}

/**
 * The keys of a list from its schema (x-kubernetes-list-map-keys, or the patch merge key of
 * lists the schema leaves untyped), 'atomic' for lists owned whole, or by field name when there
 * is no schema (kinds served without one).
 */
function keysOf(s: Node, field: string, items: unknown[]): string[] | 'atomic' {
  if (!s) return listKeys(field, items) ?? 'atomic';
  const r = resolve(s).schema;
  const type = r?.['x-kubernetes-list-type'];
  if (type === 'map') return r?.['x-kubernetes-list-map-keys'] ?? 'atomic';
  if (type === 'atomic' || type === 'set') return 'atomic';
  const merge = r?.['x-kubernetes-patch-merge-key'];
  return merge ? [merge] : 'atomic';
}

function rootSchema(obj: JsonObject): Node {
  const top = schemaOf(String(obj['apiVersion'] ?? ''), String(obj['kind'] ?? ''));
  return top ? { $ref: top.name } : undefined;
}

function walk(value: unknown, prefix: string[], out: FieldSet, field: string, schema: Node): void {
  if (isObject(value)) {
    const keys = Object.keys(value).filter((k) => value[k] !== undefined);
    if (keys.length === 0 || isAtomicMap(schema)) {
      out.add(prefix.join(SEP));
      return;
    }
    for (const k of keys) walk(value[k], [...prefix, `f:${k}`], out, k, childOf(schema, k));
    return;
  }
  if (Array.isArray(value)) {
    const keys = keysOf(schema, field, value);
    if (keys !== 'atomic') {
      // An associative list is owned item by item; an empty one sets nothing.
      if (!value.every((i) => isObject(i) && itemKey(i, keys))) {
        out.add(prefix.join(SEP));
        return;
      }
      const itemSchema = resolve(schema).schema?.items;
      for (const item of value as JsonObject[]) {
        const itemPath = [...prefix, `k:${JSON.stringify(itemKey(item, keys))}`];
        out.add(itemPath.join(SEP));
        for (const [k, v] of Object.entries(item))
          if (v !== undefined) walk(v, [...itemPath, `f:${k}`], out, k, childOf(itemSchema, k));
      }
      return;
    }
  }
  out.add(prefix.join(SEP));
}

/** The paths an object (or an apply configuration) sets, leaving out identity, status and bookkeeping. */
export function fieldSetOf(obj: JsonObject): FieldSet {
  const out: FieldSet = new Set();
  const root = rootSchema(obj);
  for (const [key, value] of Object.entries(obj)) {
    if (key === 'apiVersion' || key === 'kind' || key === 'status' || value === undefined) continue;
    if (key === 'metadata' && isObject(value)) {
      const meta = childOf(root, 'metadata');
      for (const [mk, mv] of Object.entries(value)) {
        if (SKIP_META.has(mk) || mv === undefined) continue;
        walk(mv, ['f:metadata', `f:${mk}`], out, mk, childOf(meta, mk));
      }
      continue;
    }
    walk(value, [`f:${key}`], out, key, childOf(root, key));
  }
  return out;
}

type Found = { found: true; value: unknown } | { found: false };

function valueAt(obj: unknown, path: string): Found {
  let current: unknown = obj;
  for (const seg of path.split(SEP)) {
    if (seg.startsWith('f:')) {
      if (!isObject(current) || !Object.hasOwn(current, seg.slice(2))) return { found: false };
      current = current[seg.slice(2)];
    } else if (seg.startsWith('k:')) {
      const key = JSON.parse(seg.slice(2)) as JsonObject;
      if (!Array.isArray(current)) return { found: false };
      const item = current.find((i) => matchesKey(i, key));
      if (item === undefined) return { found: false };
      current = item;
    } else return { found: false };
  }
  return { found: true, value: current };
}

function isItemPath(path: string): boolean {
  const last = path.slice(path.lastIndexOf(SEP) + 1);
  return last.startsWith('k:');
}

/** Removes the field (or list item) at path; leaves parents that become empty alone. */
function removePath(obj: unknown, path: string): void {
  const segs = path.split(SEP);
  const parent = valueAt(obj, segs.slice(0, -1).join(SEP));
  const parentValue = segs.length === 1 ? obj : parent.found ? parent.value : undefined;
  const last = segs[segs.length - 1]!;
  if (last.startsWith('f:') && isObject(parentValue)) delete parentValue[last.slice(2)];
  else if (last.startsWith('k:') && Array.isArray(parentValue)) {
    const key = JSON.parse(last.slice(2)) as JsonObject;
    const i = parentValue.findIndex((item) => matchesKey(item, key));
    if (i >= 0) parentValue.splice(i, 1);
  }
}

function displayPath(path: string): string {
  return path
    .split(SEP)
    .map((seg) => {
      if (seg.startsWith('f:')) return `.${seg.slice(2)}`;
      const key = Object.entries(JSON.parse(seg.slice(2)) as JsonObject);
      return `[${key.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}]`;
    })
    .join('');
}

// ---- FieldsV1 encoding ------------------------------------------------------------------------

export function encodeFields(set: FieldSet): FieldsV1 {
  const root: FieldsV1 = {};
  for (const path of [...set].sort()) {
    let node = root;
    for (const seg of path.split(SEP)) {
      node[seg] ??= {};
      node = node[seg]!;
    }
    if (isItemPath(path)) node['.'] = {};
  }
  return root;
}

export function decodeFields(
  tree: FieldsV1 | undefined,
  prefix: string[] = [],
  out: FieldSet = new Set(),
): FieldSet {
  if (!tree) return out;
  for (const [seg, child] of Object.entries(tree)) {
    if (seg === '.') {
      out.add(prefix.join(SEP));
      continue;
    }
    const path = [...prefix, seg];
    if (Object.keys(child).length === 0) out.add(path.join(SEP));
    else decodeFields(child, path, out);
  }
  return out;
}

// ---- ownership ------------------------------------------------------------------------------

interface Owner {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  subresource?: string;
  fields: FieldSet;
}

function ownersOf(obj: KubeObject): Owner[] {
  return (obj.metadata.managedFields ?? []).map((e) => ({
    manager: e.manager,
    operation: e.operation,
    apiVersion: e.apiVersion,
    time: e.time,
    ...(e.subresource ? { subresource: e.subresource } : {}),
    fields: decodeFields(e.fieldsV1),
  }));
}

function writeOwners(obj: KubeObject, owners: Owner[]): void {
  const entries: ManagedFieldsEntry[] = owners
    .filter((o) => o.fields.size > 0)
    .map((o) => ({
      manager: o.manager,
      operation: o.operation,
      apiVersion: o.apiVersion,
      time: o.time,
      fieldsType: 'FieldsV1',
      fieldsV1: encodeFields(o.fields),
      ...(o.subresource ? { subresource: o.subresource } : {}),
    }));
  if (entries.length > 0) obj.metadata.managedFields = entries;
  else delete obj.metadata.managedFields;
}

function nowTime(now: number): string {
  return new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Records an ordinary write (create, update, patch): the manager takes every field it changed. */
export function trackUpdate(
  oldObj: KubeObject | undefined,
  newObj: KubeObject,
  manager: string,
  now: number,
  subresource?: string,
  ownersFrom?: ManagedFieldsEntry[],
): void {
  const owners = ownersFrom
    ? ownersOf({ ...newObj, metadata: { managedFields: ownersFrom.filter((e) => e.manager) } })
    : oldObj
      ? ownersOf(oldObj)
      : [];
  const before = oldObj ? fieldSetOf(oldObj) : new Set<string>();
  const after = fieldSetOf(newObj);
  const changed = new Set<string>();
  for (const p of after) {
    if (!before.has(p)) changed.add(p);
    else if (!isItemPath(p)) {
      const a = valueAt(oldObj, p);
      const b = valueAt(newObj, p);
      if (!a.found || !b.found || !deepEqual(a.value, b.value)) changed.add(p);
    }
  }
  for (const o of owners) {
    for (const p of [...o.fields])
      if (!after.has(p) || (changed.has(p) && o.manager !== manager)) o.fields.delete(p);
  }
  if (changed.size > 0) {
    let mine = owners.find(
      (o) => o.manager === manager && o.operation === 'Update' && o.subresource === subresource,
    );
    if (!mine) {
      mine = { manager, operation: 'Update', apiVersion: newObj.apiVersion, time: '', fields: new Set() };
      if (subresource) mine.subresource = subresource;
      owners.push(mine);
    }
    for (const p of changed) mine.fields.add(p);
    mine.time = nowTime(now);
  }
  writeOwners(newObj, owners);
}

/** Deep merge the way apply does: maps by key, associative lists by merge key, the rest replaced. */
function applyMerge(live: unknown, config: unknown, field: string, schema: Node): unknown {
  if (isObject(config)) {
    if (isAtomicMap(schema)) return clone(config);
    const out: JsonObject = isObject(live) ? { ...live } : {};
    for (const [k, v] of Object.entries(config)) {
      if (v === null || v === undefined) continue;
      out[k] = applyMerge(out[k], v, k, childOf(schema, k));
    }
    return out;
  }
  if (Array.isArray(config) && Array.isArray(live)) {
    const keys = keysOf(schema, field, [...live, ...config]);
    if (keys !== 'atomic' && config.every((i) => isObject(i) && itemKey(i, keys))) {
      const itemSchema = resolve(schema).schema?.items;
      const out = live.map((x) => clone(x));
      for (const item of config as JsonObject[]) {
        const key = itemKey(item, keys)!;
        const i = out.findIndex((o) => matchesKey(o, key));
        if (i >= 0) out[i] = applyMerge(out[i], item, '', itemSchema);
        else out.push(clone(item));
      }
      return out;
    }
  }
  return clone(config);
}

export interface ApplyOptions {
  manager: string;
  force: boolean;
  now: number;
}

/**
 * Server-side apply of `config` onto `live` (undefined when creating). Throws 409 with one cause
 * per conflicting field unless forced; returns the merged object with managedFields updated.
 */
export function serverSideApply(
  live: KubeObject | undefined,
  config: KubeObject,
  opts: ApplyOptions,
): KubeObject {
  const applied = fieldSetOf(config);
  const owners = live ? ownersOf(live) : [];
  const conflicts: { path: string; manager: string; owner: Owner }[] = [];
  for (const p of applied) {
    if (isItemPath(p)) continue;
    const want = valueAt(config, p);
    const have = valueAt(live, p);
    if (have.found && want.found && deepEqual(have.value, want.value)) continue;
    for (const o of owners) {
      if (o.manager === opts.manager && o.operation === 'Apply') continue;
      if (o.fields.has(p)) conflicts.push({ path: p, manager: o.manager, owner: o });
    }
  }
  if (conflicts.length > 0 && !opts.force) {
    const causes = conflicts.map((c) => ({
      reason: 'FieldManagerConflict',
      // Appliers are named alone; Update managers with their subresource and API version.
      message:
        c.owner.operation === 'Apply'
          ? `conflict with "${c.manager}"`
          : `conflict with "${c.manager}"${c.owner.subresource ? ` with subresource "${c.owner.subresource}"` : ''} using ${c.owner.apiVersion}`,
      field: displayPath(c.path),
    }));
    const lines = causes.map((c) => `- ${c.message}: ${c.field}`).join('\n');
    throw new ApiError(
      409,
      'Conflict',
      `Apply failed with ${conflicts.length} conflict${conflicts.length === 1 ? '' : 's'}: ${
        conflicts.length === 1 ? `${causes[0]!.message}: ${causes[0]!.field}` : `\n${lines}`
      }`,
      { causes },
    );
  }
  for (const c of conflicts) for (const o of owners) if (o.manager === c.manager) o.fields.delete(c.path);

  const merged = applyMerge(live ?? {}, config, '', rootSchema(config)) as KubeObject;
  merged.metadata = { ...(live?.metadata ?? {}), ...(merged.metadata ?? {}) };
  let mine = owners.find((o) => o.manager === opts.manager && o.operation === 'Apply');
  const previous = mine?.fields ?? new Set<string>();
  const ownedByOthers = (p: string) =>
    owners.some((o) => o !== mine && [...o.fields].some((f) => f === p || f.startsWith(`${p}${SEP}`)));
  const dropped = [...previous].filter((p) => !applied.has(p) && !ownedByOthers(p));
  // A dropped list item goes whole; its own fields are not removed one by one (that would leave
  // a keyless husk like {"protocol":"TCP"} that no key matches any more).
  const droppedItems = dropped.filter(isItemPath);
  for (const p of dropped.sort().reverse()) {
    if (droppedItems.some((item) => item !== p && p.startsWith(`${item}${SEP}`))) continue;
    removePath(merged, p);
  }
  if (!mine) {
    mine = {
      manager: opts.manager,
      operation: 'Apply',
      apiVersion: config.apiVersion,
      time: '',
      fields: applied,
    };
    owners.push(mine);
  }
  mine.fields = applied;
  mine.time = nowTime(opts.now);
  writeOwners(merged, owners);
  return merged;
}
