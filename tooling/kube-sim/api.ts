/** The REST verbs over the store: get, list, watch, create, update, patch, delete, and subresources. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import YAML from 'yaml';
import { FOREGROUND } from './controllers/gc.ts';
import type { Controllers } from './controllers/index.ts';
import { applyDefaults, validate } from './defaults.ts';
import { checkDecode, pruneUnknown } from './fields.ts';
import { serverSideApply, trackUpdate } from './managed-fields.ts';
import {
  applyJsonPatch,
  applyMergePatch,
  clone,
  deepEqual,
  isObject,
  pruneNulls,
  strategicMerge,
} from './patch.ts';
import { decodeProtobufObject } from './protobuf.ts';
import { apiVersionOf, qualifiedName, type ResourceInfo, resourceByKind } from './resources.ts';
import { parseFieldSelector, parseLabelSelector, selectorString } from './selectors.ts';
import {
  ApiError,
  badRequest,
  conflict,
  gone,
  invalid,
  namespaceNotFound,
  notFound,
  type StatusCause,
} from './status.ts';
import { rfc3339, type Store, type StoreEvent } from './store.ts';
import { toTable, wantsTable } from './table.ts';
import type { JsonObject, KubeObject } from './types.ts';

const NAMESPACES = resourceByKind('Namespace');
const SERVICE_ACCOUNTS = resourceByKind('ServiceAccount');
const PODS = resourceByKind('Pod');

export interface ResourceRequest {
  resource: ResourceInfo;
  namespace: string | undefined;
  name: string | undefined;
  subresource: string | undefined;
  verb: string;
  query: URLSearchParams;
  req: IncomingMessage;
  res: ServerResponse;
  body: string;
  raw: Buffer;
  userAgent: string;
  /** The subresource a write through /scale is recorded under in managedFields. */
  trackSubresource?: string;
}

export interface WatchHandle {
  res: ServerResponse;
  close(drop: boolean): void;
}

export interface ApiContext {
  store: Store;
  controllers: Controllers;
  now(): number;
  bookmarkIntervalMs: number;
  watches: Set<WatchHandle>;
  /** Watches opened since start (a resumed watch counts again). */
  watchesStarted: number;
  dropWatchesAfterMs(): number | undefined;
}

export function sendJson(
  res: ServerResponse,
  code: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(code, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function sendError(res: ServerResponse, error: ApiError): void {
  sendJson(res, error.code, error.toStatus(), error.headers);
}

function parseBody(r: ResourceRequest): JsonObject {
  const type = r.req.headers['content-type'] ?? 'application/json';
  if (type.startsWith('application/vnd.kubernetes.protobuf')) return decodeProtobufObject(r.raw);
  if (!r.body.trim()) throw badRequest('the request body is empty');
  try {
    const parsed = /yaml/.test(type) ? YAML.parse(r.body) : JSON.parse(r.body);
    if (!isObject(parsed) && !Array.isArray(parsed)) throw new Error('not an object');
    return parsed as JsonObject;
  } catch (error) {
    throw badRequest(
      `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (${(error as Error).message})`,
    );
  }
}

function managerOf(r: ResourceRequest): string {
  const fm = r.query.get('fieldManager');
  if (fm) return fm;
  const ua = r.userAgent.split('/')[0] ?? 'unknown';
  return ua || 'unknown';
}

function dryRun(r: ResourceRequest): boolean {
  return r.query.getAll('dryRun').includes('All');
}

/** How the real server reads a boolean query parameter: present and not "0" or "false" (any case). */
export function queryBool(query: URLSearchParams, name: string): boolean {
  const v = query.getAll(name)[0];
  return v !== undefined && v !== '0' && v.toLowerCase() !== 'false';
}

type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

const OPTIONS_KIND: Record<string, string> = {
  create: 'CreateOptions',
  update: 'UpdateOptions',
  patch: 'PatchOptions',
  delete: 'DeleteOptions',
  deletecollection: 'DeleteOptions',
};

function optionsInvalid(kind: string, causes: StatusCause[]): ApiError {
  const text =
    causes.length === 1
      ? `${causes[0]!.field}: ${causes[0]!.message}`
      : `[${causes.map((c) => `${c.field}: ${c.message}`).join(', ')}]`;
  return new ApiError(422, 'Invalid', `${kind}.meta.k8s.io "" is invalid: ${text}`, {
    group: 'meta.k8s.io',
    kind,
    causes,
  });
}

/** The checks of ValidateCreateOptions / UpdateOptions / PatchOptions / DeleteOptions. */
function validateOptions(r: ResourceRequest, patchType?: string): FieldValidation {
  const kind = OPTIONS_KIND[r.verb];
  if (!kind) return 'Warn';
  const causes: StatusCause[] = [];
  if (patchType && patchType !== 'application/apply-patch+yaml' && r.query.has('force')) {
    causes.push({
      reason: 'FieldValueForbidden',
      message: 'Forbidden: may not be specified for non-apply patch',
      field: 'force',
    });
  }
  const dry = r.query.getAll('dryRun');
  if (dry.some((v) => v !== 'All')) {
    causes.push({
      reason: 'FieldValueNotSupported',
      message: `Unsupported value: ${JSON.stringify(dry)}: supported values: "All"`,
      field: 'dryRun',
    });
  }
  const fv = r.query.get('fieldValidation') ?? '';
  if (kind !== 'DeleteOptions' && !['', 'Ignore', 'Strict', 'Warn'].includes(fv)) {
    causes.push({
      reason: 'FieldValueNotSupported',
      message: `Unsupported value: ${JSON.stringify(fv)}: supported values: "", "Ignore", "Strict", "Warn"`,
      field: 'fieldValidation',
    });
  }
  if (causes.length > 0) throw optionsInvalid(kind, causes);
  return fv === '' ? 'Warn' : (fv as FieldValidation);
}

function cannotHandle(r: ResourceRequest, detail: string): ApiError {
  return badRequest(
    `${r.resource.kind} in version "${r.resource.version}" cannot be handled as a ${r.resource.kind}: ${detail}`,
  );
}

function addWarnings(r: ResourceRequest, warnings: string[]): void {
  if (warnings.length === 0) return;
  const existing = r.res.getHeader('Warning');
  const prior = Array.isArray(existing) ? existing : existing === undefined ? [] : [String(existing)];
  r.res.setHeader('Warning', [...prior, ...warnings.map((w) => `299 - ${JSON.stringify(w)}`)]);
}

/**
 * What the real decoder does with a body (create, update) or a patched object: type errors and
 * bad base64 are 400s always; unknown fields are a 400 under Strict, warnings under Warn.
 */
function checkBody(r: ResourceRequest, obj: JsonObject, mode: FieldValidation): void {
  const problems = checkDecode(apiVersionOf(r.resource), r.resource.kind, obj);
  if (problems.error) throw cannotHandle(r, problems.error);
  if (problems.unknown.length === 0 || mode === 'Ignore') return;
  const messages = problems.unknown.map((p) => `unknown field ${JSON.stringify(p)}`);
  if (mode === 'Strict') throw cannotHandle(r, `strict decoding error: ${messages.join(', ')}`);
  addWarnings(r, messages);
}

function hasStatus(resource: ResourceInfo): boolean {
  return resource.subresources.includes('status');
}

function requireNamespace(ctx: ApiContext, r: ResourceRequest, name = ''): void {
  if (!r.resource.namespaced || !r.namespace) return;
  const ns = ctx.store.get(NAMESPACES, undefined, r.namespace);
  if (!ns) throw namespaceNotFound(r.namespace);
  if (ns.metadata.deletionTimestamp) {
    const subject = name ? `${qualifiedName(r.resource)} "${name}"` : qualifiedName(r.resource);
    throw new ApiError(
      403,
      'Forbidden',
      `${subject} is forbidden: unable to create new content in namespace ${r.namespace} because it is being terminated`,
      {
        ...(name ? { name } : {}),
        group: r.resource.group,
        kind: r.resource.plural,
        causes: [
          {
            reason: 'NamespaceTerminating',
            message: `namespace ${r.namespace} is being terminated`,
            field: 'metadata.namespace',
          },
        ],
      },
    );
  }
}

function asObject(r: ResourceRequest, body: JsonObject): KubeObject {
  const obj = body as KubeObject;
  const expected = apiVersionOf(r.resource);
  if ((obj.kind && obj.kind !== r.resource.kind) || (obj.apiVersion && obj.apiVersion !== expected)) {
    throw badRequest(
      `the API version in the data (${obj.apiVersion}) does not match the expected API version (${expected})`,
    );
  }
  if (!isObject(obj.metadata)) obj.metadata = {};
  if (r.resource.namespaced) {
    if (obj.metadata.namespace && r.namespace && obj.metadata.namespace !== r.namespace) {
      throw badRequest(
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    }
    obj.metadata.namespace = r.namespace ?? obj.metadata.namespace ?? 'default';
  }
  return obj;
}

export function handleResource(ctx: ApiContext, r: ResourceRequest): void {
  switch (r.verb) {
    case 'get':
      return get(ctx, r);
    case 'list':
      return list(ctx, r);
    case 'watch':
      return watch(ctx, r);
    case 'create':
      return create(ctx, r);
    case 'update':
      return update(ctx, r);
    case 'patch':
      return patch(ctx, r);
    case 'delete':
      return remove(ctx, r);
    case 'deletecollection':
      return removeCollection(ctx, r);
  }
  throw new ApiError(
    405,
    'MethodNotAllowed',
    'the server does not allow this method on the requested resource',
  );
}

function respondObject(ctx: ApiContext, r: ResourceRequest, code: number, obj: unknown): void {
  if (wantsTable(r.req.headers.accept) && isObject(obj) && (obj as KubeObject).kind === r.resource.kind) {
    const o = obj as KubeObject;
    sendJson(r.res, code, toTable(r.resource, [o], o.metadata.resourceVersion ?? '', ctx.now()));
    return;
  }
  sendJson(r.res, code, obj);
}

function scaleOf(obj: KubeObject): JsonObject {
  const spec = (obj['spec'] ?? {}) as JsonObject;
  const status = (obj['status'] ?? {}) as JsonObject;
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: {
      name: obj.metadata.name,
      namespace: obj.metadata.namespace,
      uid: obj.metadata.uid,
      resourceVersion: obj.metadata.resourceVersion,
      creationTimestamp: obj.metadata.creationTimestamp,
    },
    spec: { replicas: spec['replicas'] ?? 0 },
    status: { replicas: status['replicas'] ?? 0, selector: selectorString(spec['selector'] as never) },
  };
}

function get(ctx: ApiContext, r: ResourceRequest): void {
  const obj = ctx.store.mustGet(r.resource, r.namespace, r.name!);
  if (r.subresource === 'scale') return sendJson(r.res, 200, scaleOf(obj));
  if (r.subresource === 'log') {
    const text = `kube-sim: pod ${obj.metadata.name} started\n`;
    r.res.writeHead(200, { 'Content-Type': 'text/plain' });
    r.res.end(text);
    return;
  }
  respondObject(ctx, r, 200, obj);
}

function filtered(ctx: ApiContext, r: ResourceRequest): KubeObject[] {
  const label = parseLabelSelector(r.query.get('labelSelector'));
  const field = parseFieldSelector(r.query.get('fieldSelector'));
  return ctx.store
    .list(r.resource, r.namespace)
    .filter((o) => label(o.metadata.labels) && field(o))
    .sort((a, b) =>
      `${a.metadata.namespace ?? ''}/${a.metadata.name}`.localeCompare(
        `${b.metadata.namespace ?? ''}/${b.metadata.name}`,
      ),
    );
}

function list(ctx: ApiContext, r: ResourceRequest): void {
  let items = filtered(ctx, r);
  const rv = String(ctx.store.resourceVersion);
  const listMeta: JsonObject = {};
  const cont = r.query.get('continue');
  if (cont) {
    let after: string;
    try {
      after = String(JSON.parse(Buffer.from(cont, 'base64').toString()).start);
    } catch {
      throw badRequest('continue key is not valid');
    }
    items = items.filter((o) => `${o.metadata.namespace ?? ''}/${o.metadata.name}` > after);
  }
  const limit = Number(r.query.get('limit') ?? 0);
  if (limit > 0 && items.length > limit) {
    const last = items[limit - 1]!;
    listMeta['continue'] = Buffer.from(
      JSON.stringify({ rv, start: `${last.metadata.namespace ?? ''}/${last.metadata.name}` }),
    ).toString('base64');
    listMeta['remainingItemCount'] = items.length - limit;
    items = items.slice(0, limit);
  }
  if (wantsTable(r.req.headers.accept)) {
    sendJson(r.res, 200, toTable(r.resource, items, rv, ctx.now(), listMeta));
    return;
  }
  sendJson(r.res, 200, {
    kind: `${r.resource.kind}List`,
    apiVersion: apiVersionOf(r.resource),
    metadata: { resourceVersion: rv, ...listMeta },
    items,
  });
}

function watch(ctx: ApiContext, r: ResourceRequest): void {
  const { store } = ctx;
  const label = parseLabelSelector(r.query.get('labelSelector'));
  const field = parseFieldSelector(r.query.get('fieldSelector'));
  const nameFilter = r.name;
  const matches = (o: KubeObject | undefined): boolean =>
    !!o &&
    (!r.resource.namespaced || r.namespace === undefined || o.metadata.namespace === r.namespace) &&
    (nameFilter === undefined || o.metadata.name === nameFilter) &&
    label(o.metadata.labels) &&
    field(o);
  const rvParam = r.query.get('resourceVersion') ?? '';
  const table = wantsTable(r.req.headers.accept);
  let backlog: StoreEvent[] | undefined = [];
  const sendInitial = queryBool(r.query, 'sendInitialEvents');
  const initial = rvParam === '' || rvParam === '0' || sendInitial;
  if (!initial) {
    const rv = Number(rvParam);
    if (!Number.isFinite(rv)) throw badRequest(`invalid resource version: ${rvParam}`);
    backlog = store.eventsSince(rv);
  }
  const res = r.res;
  res.writeHead(200, {
    'Content-Type': 'application/json',
    'Transfer-Encoding': 'chunked',
    'Cache-Control': 'no-cache',
  });
  res.flushHeaders();
  const write = (type: string, object: unknown) => {
    const payload =
      table && isObject(object) && (object as KubeObject).kind === r.resource.kind
        ? toTable(
            r.resource,
            [object as KubeObject],
            (object as KubeObject).metadata.resourceVersion ?? '',
            ctx.now(),
          )
        : object;
    res.write(`${JSON.stringify({ type, object: payload })}\n`);
  };
  if (backlog === undefined) {
    write('ERROR', gone(rvParam, store.resourceVersion).toStatus());
    res.end();
    return;
  }
  const bookmarks = queryBool(r.query, 'allowWatchBookmarks');
  const bookmark = (annotations?: Record<string, string>) =>
    write('BOOKMARK', {
      kind: r.resource.kind,
      apiVersion: apiVersionOf(r.resource),
      metadata: { resourceVersion: String(store.resourceVersion), ...(annotations ? { annotations } : {}) },
    });
  if (initial) {
    for (const o of filtered(ctx, r)) if (matches(o)) write('ADDED', o);
    if (sendInitial && bookmarks) bookmark({ 'k8s.io/initial-events-end': 'true' });
  }
  const deliver = (e: StoreEvent) => {
    if (e.resource !== r.resource) return;
    const now = matches(e.object);
    const before = matches(e.previous);
    if (e.type === 'ADDED' && now) write('ADDED', e.object);
    else if (e.type === 'MODIFIED') {
      if (now && before) write('MODIFIED', e.object);
      else if (now) write('ADDED', e.object);
      else if (before) write('DELETED', e.object);
    } else if (e.type === 'DELETED' && (before || now)) write('DELETED', e.object);
  };
  for (const e of backlog) deliver(e);
  const unsubscribe = store.subscribe(deliver);
  const timers: NodeJS.Timeout[] = [];
  let closed = false;
  const handle: WatchHandle = {
    res,
    close(drop: boolean) {
      if (closed) return;
      closed = true;
      unsubscribe();
      for (const t of timers) clearTimeout(t);
      ctx.watches.delete(handle);
      if (drop) res.socket?.destroy();
      else res.end();
    },
  };
  ctx.watches.add(handle);
  ctx.watchesStarted++;
  if (bookmarks) {
    const interval = setInterval(() => bookmark(), ctx.bookmarkIntervalMs);
    timers.push(interval);
  }
  const timeout = Number(r.query.get('timeoutSeconds') ?? 0);
  if (timeout > 0) timers.push(setTimeout(() => handle.close(false), timeout * 1000));
  const dropAfter = ctx.dropWatchesAfterMs();
  if (dropAfter !== undefined) timers.push(setTimeout(() => handle.close(true), dropAfter));
  r.req.on('close', () => handle.close(false));
  res.on('close', () => handle.close(false));
}

function finishWrite(r: ResourceRequest, next: KubeObject, current: KubeObject | undefined): KubeObject {
  pruneNulls(next);
  pruneUnknown(apiVersionOf(r.resource), r.resource.kind, next);
  applyDefaults(r.resource, next, current);
  const causes = validate(r.resource, next, current);
  if (causes.length > 0) throw invalid(r.resource, next.metadata.name ?? '', causes);
  return next;
}

function afterNamespaceCreated(ctx: ApiContext, ns: KubeObject): void {
  const name = ns.metadata.name!;
  if (!ctx.store.get(SERVICE_ACCOUNTS, name, 'default')) {
    ctx.store.create(SERVICE_ACCOUNTS, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'default', namespace: name },
    });
  }
}

function createObject(
  ctx: ApiContext,
  r: ResourceRequest,
  input: KubeObject,
  manager: string | undefined,
): KubeObject {
  requireNamespace(
    ctx,
    { ...r, namespace: input.metadata.namespace ?? r.namespace },
    input.metadata.name ?? '',
  );
  if (!input.metadata.name && !input.metadata.generateName) {
    throw invalid(r.resource, '', [
      {
        reason: 'FieldValueRequired',
        message: 'Required value: name or generateName is required',
        field: 'metadata.name',
      },
    ]);
  }
  const prepared = ctx.store.prepareCreate(r.resource, input);
  if (hasStatus(r.resource) && r.resource.kind !== 'Namespace') delete prepared['status'];
  finishWrite(r, prepared, undefined);
  if (manager) trackUpdate(undefined, prepared, manager, ctx.now());
  if (dryRun(r)) return prepared;
  const created = ctx.store.commitCreate(r.resource, prepared);
  if (r.resource === NAMESPACES) afterNamespaceCreated(ctx, created);
  return created;
}

function create(ctx: ApiContext, r: ResourceRequest): void {
  if (r.subresource)
    throw new ApiError(
      405,
      'MethodNotAllowed',
      'the server does not allow this method on the requested resource',
    );
  const mode = validateOptions(r);
  const body = parseBody(r);
  checkBody(r, body, mode);
  const obj = asObject(r, body);
  const created = createObject(ctx, r, obj, managerOf(r));
  respondObject(ctx, r, 201, created);
}

/** The common tail of update and patch: subresource rules, defaults, validation, ownership, store. */
function commitUpdate(
  ctx: ApiContext,
  r: ResourceRequest,
  current: KubeObject,
  proposed: KubeObject,
  trackManager: boolean,
): KubeObject {
  let next: KubeObject;
  if (r.subresource === 'status') {
    next = clone(current);
    next['status'] = proposed['status'];
    if (proposed.metadata?.resourceVersion) next.metadata.resourceVersion = proposed.metadata.resourceVersion;
  } else {
    next = clone(proposed);
    if (!isObject(next.metadata)) next.metadata = {};
    if (hasStatus(r.resource) && r.resource.kind !== 'Namespace') {
      if (current['status'] === undefined) delete next['status'];
      else next['status'] = clone(current['status']);
    }
  }
  // A write that sets managedFields replaces them (the real server's way to fix or reset
  // ownership: [{}] clears them); an empty list or none leaves them as they were.
  const given = proposed.metadata?.managedFields;
  const replaced =
    Array.isArray(given) && given.length > 0 && !deepEqual(given, current.metadata.managedFields)
      ? given
      : undefined;
  if (!replaced) {
    if (current.metadata.managedFields) next.metadata.managedFields = clone(current.metadata.managedFields);
    else delete next.metadata.managedFields;
  }
  if (next.metadata.name && next.metadata.name !== current.metadata.name) {
    throw badRequest(
      `the name of the object (${next.metadata.name}) does not match the name on the URL (${current.metadata.name})`,
    );
  }
  next.metadata.name = current.metadata.name!;
  if (r.resource.namespaced) next.metadata.namespace = current.metadata.namespace!;
  if (next.metadata.resourceVersion && next.metadata.resourceVersion !== current.metadata.resourceVersion) {
    throw conflict(
      r.resource,
      current.metadata.name!,
      'the object has been modified; please apply your changes to the latest version and try again',
    );
  }
  if (!next.metadata.resourceVersion) next.metadata.resourceVersion = current.metadata.resourceVersion!;
  finishWrite(r, next, current);
  if (trackManager)
    trackUpdate(current, next, managerOf(r), ctx.now(), r.trackSubresource ?? r.subresource, replaced);
  else if (replaced) next.metadata.managedFields = replaced.filter((e) => e.manager);
  const prepared = ctx.store.prepareUpdate(r.resource, next).next;
  if (dryRun(r)) return prepared;
  return ctx.store.update(r.resource, next);
}

function update(ctx: ApiContext, r: ResourceRequest): void {
  const mode = validateOptions(r);
  const body = parseBody(r);
  const current = ctx.store.mustGet(r.resource, r.namespace, r.name!);
  if (r.subresource === 'scale') {
    const replicas = Number(((body['spec'] ?? {}) as JsonObject)['replicas'] ?? 0);
    const proposed = clone(current);
    (proposed['spec'] as JsonObject)['replicas'] = replicas;
    const rv = ((body['metadata'] ?? {}) as JsonObject)['resourceVersion'];
    proposed.metadata.resourceVersion = typeof rv === 'string' && rv ? rv : current.metadata.resourceVersion!;
    const stored = commitUpdate(
      ctx,
      { ...r, subresource: undefined, trackSubresource: 'scale' },
      current,
      proposed,
      true,
    );
    return sendJson(r.res, 200, scaleOf(stored));
  }
  if (r.subresource && r.subresource !== 'status')
    throw new ApiError(
      405,
      'MethodNotAllowed',
      'the server does not allow this method on the requested resource',
    );
  checkBody(r, body, mode);
  const proposed = asObject(r, body);
  respondObject(ctx, r, 200, commitUpdate(ctx, r, current, proposed, true));
}

const PATCH_TYPES = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
  'application/apply-patch+yaml',
];

function patch(ctx: ApiContext, r: ResourceRequest): void {
  const type = (r.req.headers['content-type'] ?? '').split(';')[0]!.trim();
  if (!PATCH_TYPES.includes(type)) {
    throw new ApiError(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: ${PATCH_TYPES.join(', ')}`,
    );
  }
  if (type === 'application/strategic-merge-patch+json' && r.resource.group === 'gateway.networking.k8s.io') {
    throw new ApiError(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`,
    );
  }
  const mode = validateOptions(r, type);
  const body = type === 'application/apply-patch+yaml' ? parseApply(r) : parseBody(r);
  const current = ctx.store.get(r.resource, r.namespace, r.name!);
  if (type === 'application/apply-patch+yaml') return applyPatch(ctx, r, current, body as KubeObject);
  if (!current) throw notFound(r.resource, r.name!);
  const base: JsonObject = r.subresource === 'scale' ? scaleOf(current) : clone(current);
  let patched: JsonObject;
  if (type === 'application/json-patch+json') patched = applyJsonPatch(base, body);
  else if (type === 'application/merge-patch+json') patched = applyMergePatch(base, body) as JsonObject;
  else patched = strategicMerge(base, body) as JsonObject;
  if (r.subresource === 'scale') {
    const proposed = clone(current);
    (proposed['spec'] as JsonObject)['replicas'] = Number(
      ((patched['spec'] ?? {}) as JsonObject)['replicas'] ?? 0,
    );
    const rv = ((patched['metadata'] ?? {}) as JsonObject)['resourceVersion'];
    proposed.metadata.resourceVersion = String(rv ?? current.metadata.resourceVersion);
    const stored = commitUpdate(
      ctx,
      { ...r, subresource: undefined, trackSubresource: 'scale' },
      current,
      proposed,
      true,
    );
    return sendJson(r.res, 200, scaleOf(stored));
  }
  checkBody(r, patched, mode);
  const proposed = patched as KubeObject;
  respondObject(ctx, r, 200, commitUpdate(ctx, r, current, proposed, true));
}

function parseApply(r: ResourceRequest): JsonObject {
  if (!r.body.trim()) throw badRequest('the request body is empty');
  let parsed: unknown;
  try {
    parsed = YAML.parse(r.body);
  } catch (error) {
    throw badRequest(`error decoding YAML: ${(error as Error).message}`);
  }
  if (!isObject(parsed)) throw badRequest('apply patch must be an object');
  return parsed;
}

function applyPatch(
  ctx: ApiContext,
  r: ResourceRequest,
  current: KubeObject | undefined,
  body: KubeObject,
): void {
  const manager = r.query.get('fieldManager');
  if (!manager) {
    throw new ApiError(
      422,
      'Invalid',
      'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
      {
        group: 'meta.k8s.io',
        kind: 'PatchOptions',
        causes: [
          {
            reason: 'FieldValueRequired',
            message: 'Required value: is required for apply patch',
            field: 'fieldManager',
          },
        ],
      },
    );
  }
  const config = asObject(r, clone(body));
  if (config.metadata.managedFields !== undefined) throw badRequest('metadata.managedFields must be nil');
  if (!config.apiVersion || !config.kind)
    throw badRequest('apiVersion and kind must be set in an apply configuration');
  if (config.metadata.name && config.metadata.name !== r.name) {
    throw badRequest(
      `the name of the object (${config.metadata.name}) does not match the name on the URL (${r.name})`,
    );
  }
  config.metadata.name = r.name!;
  const force = queryBool(r.query, 'force');
  const typed = checkDecode(apiVersionOf(r.resource), r.resource.kind, config);
  const notDeclared = typed.unknown.map((p) => `.${p.replace(/\[\d+\]/g, '')}: field not declared in schema`);
  if (typed.error || notDeclared.length > 0) {
    // The structured-merge-diff conversion error: not an API status, so a 500 with no reason.
    const given = isObject(body.metadata) ? body.metadata.namespace : undefined;
    const where = `${given ?? ''}/${r.name}; ${apiVersionOf(r.resource)}, Kind=${r.resource.kind}`;
    const what = typed.error ? typed.error : notDeclared.join('\n');
    throw new ApiError(500, '', `failed to create typed patch object (${where}): ${what}`);
  }
  if (r.subresource === 'status') {
    if (!current) throw notFound(r.resource, r.name!);
    const merged = serverSideApply(current, config, { manager, force, now: ctx.now() });
    return respondObject(ctx, r, 200, commitUpdate(ctx, r, current, merged, false));
  }
  if (!current) {
    const merged = serverSideApply(undefined, config, { manager, force, now: ctx.now() });
    const created = createObject(ctx, r, merged, undefined);
    return respondObject(ctx, r, 201, created);
  }
  const live = clone(current);
  const merged = serverSideApply(live, config, { manager, force, now: ctx.now() });
  merged.metadata.resourceVersion = current.metadata.resourceVersion!;
  respondObject(ctx, r, 200, commitUpdate(ctx, r, current, merged, false));
}

interface DeleteOptions {
  gracePeriodSeconds?: number;
  propagationPolicy?: string;
  orphanDependents?: boolean;
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: string[];
}

function deleteOptions(r: ResourceRequest): DeleteOptions {
  let opts: DeleteOptions = {};
  if (r.body.trim()) {
    try {
      opts = JSON.parse(r.body) as DeleteOptions;
    } catch {
      throw badRequest('invalid DeleteOptions');
    }
  }
  const policy = r.query.get('propagationPolicy');
  if (policy) opts.propagationPolicy = policy;
  const grace = r.query.get('gracePeriodSeconds');
  if (grace !== null && grace !== '') opts.gracePeriodSeconds = Number(grace);
  if (opts.orphanDependents === true && !opts.propagationPolicy) opts.propagationPolicy = 'Orphan';
  if (opts.dryRun?.includes('All')) r.query.append('dryRun', 'All');
  return opts;
}

function deleteOne(
  ctx: ApiContext,
  r: ResourceRequest,
  name: string,
  opts: DeleteOptions,
): { object: KubeObject; deleted: boolean } {
  const current = ctx.store.mustGet(r.resource, r.namespace, name);
  const pre = opts.preconditions;
  if (pre?.uid && pre.uid !== current.metadata.uid) {
    throw conflict(
      r.resource,
      name,
      `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${current.metadata.uid}`,
    );
  }
  if (pre?.resourceVersion && pre.resourceVersion !== current.metadata.resourceVersion) {
    throw conflict(
      r.resource,
      name,
      `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion}`,
    );
  }
  if (dryRun(r)) return { object: current, deleted: true };
  const policy = opts.propagationPolicy ?? 'Background';
  if (!['Background', 'Foreground', 'Orphan'].includes(policy)) {
    throw badRequest(
      `DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "${policy}"`,
    );
  }
  const uid = current.metadata.uid!;
  if (r.resource === PODS) {
    const graceful = gracefulPodDelete(ctx, current, opts);
    if (graceful) return { object: graceful, deleted: false };
  }
  if (r.resource === NAMESPACES) return { object: terminateNamespace(ctx, current), deleted: false };
  if (policy === 'Orphan') ctx.controllers.gc.orphan(uid);
  if (policy === 'Foreground' && ctx.controllers.gc.dependentsOf(uid).length > 0) {
    const next = clone(current);
    next.metadata.finalizers = [...new Set([...(next.metadata.finalizers ?? []), FOREGROUND])];
    ctx.store.update(r.resource, next);
  }
  return ctx.store.delete(r.resource, r.namespace, name);
}

/**
 * A bound pod is deleted gracefully: deletionTimestamp is now plus the grace period (the
 * request's, else the pod's terminationGracePeriodSeconds) and the kubelet finishes the job.
 * Unbound pods and a grace period of 0 go at once; a shorter grace shortens a pending one.
 */
function gracefulPodDelete(ctx: ApiContext, pod: KubeObject, opts: DeleteOptions): KubeObject | undefined {
  const spec = (pod['spec'] ?? {}) as JsonObject;
  const fromPod =
    typeof spec['terminationGracePeriodSeconds'] === 'number' ? spec['terminationGracePeriodSeconds'] : 30;
  let grace = opts.gracePeriodSeconds ?? fromPod;
  if (!spec['nodeName']) grace = 0;
  const phase = String(((pod['status'] ?? {}) as JsonObject)['phase'] ?? '');
  if (phase === 'Succeeded' || phase === 'Failed') grace = 0;
  const pending = pod.metadata.deletionGracePeriodSeconds;
  if (pod.metadata.deletionTimestamp && pending !== undefined && pending <= grace) return pod;
  if (grace <= 0) return undefined;
  const next = clone(pod);
  next.metadata.deletionTimestamp = rfc3339(ctx.now() + grace * 1000);
  next.metadata.deletionGracePeriodSeconds = grace;
  return ctx.store.update(PODS, next, true);
}

/** A namespace turns Terminating; the namespace controller empties it, then it goes. */
function terminateNamespace(ctx: ApiContext, ns: KubeObject): KubeObject {
  if (ns.metadata.deletionTimestamp) return ns;
  const next = clone(ns);
  next.metadata.deletionTimestamp = rfc3339(ctx.now());
  next.metadata.deletionGracePeriodSeconds = 0;
  next['status'] = { phase: 'Terminating' };
  return ctx.store.update(NAMESPACES, next, true);
}

function remove(ctx: ApiContext, r: ResourceRequest): void {
  if (r.subresource)
    throw new ApiError(
      405,
      'MethodNotAllowed',
      'the server does not allow this method on the requested resource',
    );
  validateOptions(r);
  const opts = deleteOptions(r);
  const { object, deleted } = deleteOne(ctx, r, r.name!, opts);
  // 202 only when the client asked for cascading deletion with orphanDependents=false, as the real one.
  if (!deleted || r.resource === PODS || r.resource === NAMESPACES) {
    return respondObject(ctx, r, !deleted && opts.orphanDependents === false ? 202 : 200, object);
  }
  sendJson(r.res, 200, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Success',
    details: {
      name: object.metadata.name,
      group: r.resource.group,
      kind: r.resource.plural,
      uid: object.metadata.uid,
    },
  });
}

function removeCollection(ctx: ApiContext, r: ResourceRequest): void {
  validateOptions(r);
  const opts = deleteOptions(r);
  const items = filtered(ctx, r);
  for (const o of items) {
    if (!ctx.store.get(r.resource, o.metadata.namespace, o.metadata.name!)) continue;
    deleteOne(ctx, { ...r, namespace: o.metadata.namespace }, o.metadata.name!, opts);
  }
  sendJson(r.res, 200, {
    kind: `${r.resource.kind}List`,
    apiVersion: apiVersionOf(r.resource),
    metadata: { resourceVersion: String(ctx.store.resourceVersion) },
    items,
  });
}

export { qualifiedName };
