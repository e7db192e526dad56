import { errorMessage, PipelineError } from '../core/index.ts';
import { KubeApiError, type KubeClient } from './client.ts';
import type { SourcedObject } from './manifests.ts';
import {
  collectionPath,
  type KubeObject,
  objectPath,
  type ResourceCatalog,
  type ResourceType,
} from './resources.ts';

export const FIELD_MANAGER = 'pipeline-deploy-env';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const LABEL_APP = 'pipeline.dev/app';
export const LABEL_ENVIRONMENT = 'pipeline.dev/environment';

export type ApplyAction = 'created' | 'configured' | 'unchanged' | 'pruned';

export interface AppliedObject {
  kind: string;
  name: string;
  namespace?: string;
  action: ApplyAction;
  source: string;
  /** For dry runs: what would change, as a unified-style diff of the fields we manage. */
  diff?: string;
  object?: KubeObject;
}

export interface ResolvedObject extends SourcedObject {
  type: ResourceType;
  namespace?: string;
}

/** kubectl's apply order, so that what others depend on exists first. */
const KIND_ORDER = [
  'Namespace',
  'NetworkPolicy',
  'ResourceQuota',
  'LimitRange',
  'ServiceAccount',
  'Secret',
  'ConfigMap',
  'StorageClass',
  'PersistentVolume',
  'PersistentVolumeClaim',
  'CustomResourceDefinition',
  'ClusterRole',
  'ClusterRoleBinding',
  'Role',
  'RoleBinding',
  'Service',
  'DaemonSet',
  'Pod',
  'ReplicaSet',
  'Deployment',
  'StatefulSet',
  'Job',
  'CronJob',
  'Ingress',
  'HTTPRoute',
];

function applyOrder(kind: string): number {
  const i = KIND_ORDER.indexOf(kind);
  return i < 0 ? KIND_ORDER.length : i;
}

/**
 * Checks every object against the server's discovery and fixes its namespace, before anything is
 * applied: an unknown kind fails the whole deploy with the file and document it came from.
 */
export async function resolveObjects(
  objects: SourcedObject[],
  catalog: ResourceCatalog,
  namespace: string,
): Promise<ResolvedObject[]> {
  const resolved: ResolvedObject[] = [];
  for (const item of objects) {
    const { object, source } = item;
    const type = await catalog.lookup(object.apiVersion, object.kind);
    if (!type) {
      const known = await catalog.kindsOf(object.apiVersion);
      throw new PipelineError(
        `${source}: the cluster does not serve kind ${object.kind} in ${object.apiVersion}${known.length ? ` (it serves ${known.join(', ')})` : ` (it does not serve ${object.apiVersion} at all)`}`,
      );
    }
    if (type.namespaced) {
      if (object.metadata.namespace && object.metadata.namespace !== namespace) {
        throw new PipelineError(
          `${source}: ${object.kind}/${object.metadata.name} is in namespace ${object.metadata.namespace}, but this deploy targets ${namespace}; remove metadata.namespace or deploy to ${object.metadata.namespace}`,
        );
      }
      object.metadata.namespace = namespace;
    } else {
      delete object.metadata.namespace;
    }
    resolved.push({ ...item, type, ...(type.namespaced ? { namespace } : {}) });
  }
  return resolved.sort((a, b) => applyOrder(a.object.kind) - applyOrder(b.object.kind));
}

export function labelForPrune(objects: SourcedObject[], app: string, environment: string): void {
  for (const { object } of objects) {
    object.metadata.labels = {
      ...object.metadata.labels,
      [LABEL_MANAGED_BY]: 'pipeline',
      [LABEL_APP]: app,
      [LABEL_ENVIRONMENT]: environment,
    };
  }
}

const VOLATILE_METADATA = [
  'managedFields',
  'resourceVersion',
  'generation',
  'uid',
  'creationTimestamp',
  'selfLink',
];

function comparable(obj: KubeObject | undefined): unknown {
  if (!obj) return undefined;
  const { status: _status, ...rest } = obj as KubeObject & { status?: unknown };
  const metadata = { ...obj.metadata };
  for (const key of VOLATILE_METADATA) delete metadata[key];
  if (metadata.annotations) {
    const {
      'deployment.kubernetes.io/revision': _r,
      'kubectl.kubernetes.io/last-applied-configuration': _l,
      ...annotations
    } = metadata.annotations;
    metadata.annotations = annotations;
    if (Object.keys(annotations).length === 0) delete metadata.annotations;
  }
  return { ...rest, metadata };
}

function flatten(value: unknown, prefix: string, out: Map<string, string>): void {
  if (value !== null && typeof value === 'object') {
    const entries = Array.isArray(value)
      ? value.map((v, i) => [String(i), v] as const)
      : Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) out.set(prefix, Array.isArray(value) ? '[]' : '{}');
    for (const [k, v] of entries) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.set(prefix, JSON.stringify(value));
  }
}

/** A field-by-field diff of two objects (kind-aware noise removed), `-` for old and `+` for new. */
function diffObjects(before: KubeObject | undefined, after: KubeObject, redact = false): string {
  const a = new Map<string, string>();
  const b = new Map<string, string>();
  flatten(comparable(before), '', a);
  flatten(comparable(after), '', b);
  const lines: string[] = [];
  const show = (path: string, value: string) =>
    redact && /^(data|stringData)\./.test(path) ? '(secret value)' : value;
  for (const key of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(key);
    const y = b.get(key);
    if (x === y) continue;
    if (x !== undefined && before) lines.push(`- ${key}: ${show(key, x)}`);
    if (y !== undefined) lines.push(`+ ${key}: ${show(key, y)}`);
  }
  return lines.join('\n');
}

export interface ApplyOptions {
  client: KubeClient;
  objects: ResolvedObject[];
  dryRun: boolean;
  forceConflicts: boolean;
  onApplied?: (applied: AppliedObject) => void;
}

/**
 * Server-side apply of every object with our field manager. Created, configured or unchanged is
 * read from what the server did (a new object, a new resourceVersion, or neither).
 */
export async function applyObjects(options: ApplyOptions): Promise<AppliedObject[]> {
  const { client } = options;
  const results: AppliedObject[] = [];
  for (const { object, type, namespace, source } of options.objects) {
    const name = object.metadata.name!;
    const path = objectPath(type, namespace, name);
    const before = await client.getJson<KubeObject>(path);
    const query = new URLSearchParams({ fieldManager: FIELD_MANAGER, force: String(options.forceConflicts) });
    if (options.dryRun) query.set('dryRun', 'All');
    let after: KubeObject;
    try {
      after = await client.json<KubeObject>('PATCH', `${path}?${query}`, {
        body: JSON.stringify(object),
        contentType: 'application/apply-patch+yaml',
        idempotent: true,
      });
    } catch (error) {
      // What was applied before this object travels with the error, so the caller can undo it.
      let failure: PipelineError;
      if (error instanceof KubeApiError) {
        const causes = error.causes.map((c) => `${c.field ?? ''} ${c.message ?? ''}`.trim()).join('; ');
        const hint =
          error.status === 409
            ? ' (another field manager owns these fields; set force-conflicts: true to take them over)'
            : '';
        failure = new PipelineError(
          `${source}: ${options.dryRun ? 'validating' : 'applying'} ${object.kind}/${name} failed: HTTP ${error.status} ${error.reason}${causes ? `: ${causes}` : `: ${error.message}`}${hint}`,
          { cause: error },
        );
      } else {
        failure = new PipelineError(
          `${source}: ${options.dryRun ? 'validating' : 'applying'} ${object.kind}/${name} failed: ${errorMessage(error)}`,
          { cause: error },
        );
      }
      throw Object.assign(failure, { applied: results });
    }
    // Judged by content, not resourceVersion: a dry run never bumps it, and some servers bump it on no-op applies.
    const changes = before ? diffObjects(before, after, object.kind === 'Secret') : '';
    const action: ApplyAction = !before ? 'created' : changes ? 'configured' : 'unchanged';
    const applied: AppliedObject = {
      kind: object.kind,
      name,
      ...(namespace ? { namespace } : {}),
      action,
      source,
      object: after,
      ...(options.dryRun && action !== 'unchanged'
        ? { diff: before ? changes : diffObjects(undefined, after, object.kind === 'Secret') }
        : {}),
    };
    results.push(applied);
    options.onApplied?.(applied);
  }
  return results;
}

/** Kinds pruning looks at: what deploys usually hold. Anything else is never deleted by us. */
export const PRUNABLE: { apiVersion: string; kind: string }[] = [
  { apiVersion: 'v1', kind: 'ConfigMap' },
  { apiVersion: 'v1', kind: 'Secret' },
  { apiVersion: 'v1', kind: 'Service' },
  { apiVersion: 'v1', kind: 'ServiceAccount' },
  { apiVersion: 'apps/v1', kind: 'Deployment' },
  { apiVersion: 'apps/v1', kind: 'StatefulSet' },
  { apiVersion: 'apps/v1', kind: 'DaemonSet' },
  { apiVersion: 'batch/v1', kind: 'Job' },
  { apiVersion: 'batch/v1', kind: 'CronJob' },
  { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress' },
  { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute' },
];

/**
 * Deletes objects this action applied earlier for the same app and environment (found by our
 * labels) that are no longer in the manifests. Objects without all three labels are never touched.
 */
export async function pruneObjects(options: {
  client: KubeClient;
  catalog: ResourceCatalog;
  namespace: string;
  app: string;
  environment: string;
  keep: Pick<ResolvedObject, 'object'>[];
  dryRun: boolean;
  /** Kinds not looked at because the deployer may not list them (and the manifests hold none). */
  onSkipped?: (kinds: string[]) => void;
  /** Only these of the PRUNABLE kinds, and of their objects only those `candidate` accepts. */
  kinds?: string[];
  candidate?: (kind: string, object: KubeObject) => boolean;
  /** Why they go, for the result: by default, they are no longer in the manifests. */
  source?: string;
}): Promise<AppliedObject[]> {
  const keep = new Set(options.keep.map((o) => `${o.object.kind}/${o.object.metadata.name}`));
  const selector = `${LABEL_MANAGED_BY}=pipeline,${LABEL_APP}=${options.app},${LABEL_ENVIRONMENT}=${options.environment}`;
  const pruned: AppliedObject[] = [];
  const skipped: string[] = [];
  for (const { apiVersion, kind } of PRUNABLE) {
    if (options.kinds && !options.kinds.includes(kind)) continue;
    const type = await options.catalog.lookup(apiVersion, kind);
    if (!type?.verbs.includes('list')) continue;
    let list: { items?: KubeObject[] } | undefined;
    try {
      list = await options.client.getJson<{ items?: KubeObject[] }>(
        `${collectionPath(type, options.namespace)}?labelSelector=${encodeURIComponent(selector)}`,
      );
    } catch (error) {
      // A deployer whose Role does not grant a kind cannot have applied objects of it, so there is
      // nothing of ours to prune there; a kind these manifests hold must be listable, though.
      const inManifests = options.keep.some((o) => o.object.kind === kind);
      if (error instanceof KubeApiError && error.status === 403 && !inManifests) {
        skipped.push(kind);
        continue;
      }
      throw error;
    }
    for (const item of list?.items ?? []) {
      const name = item.metadata.name!;
      if (keep.has(`${kind}/${name}`)) continue;
      if (options.candidate && !options.candidate(kind, item)) continue;
      // Objects owned by another (a ReplicaSet's pods, a CronJob's Jobs) go with their owner.
      if (item.metadata.ownerReferences?.some((r) => r.controller)) continue;
      const query = new URLSearchParams({ propagationPolicy: 'Foreground' });
      if (options.dryRun) query.set('dryRun', 'All');
      try {
        await options.client.request('DELETE', `${objectPath(type, options.namespace, name)}?${query}`);
      } catch (error) {
        if (!(error instanceof KubeApiError && error.status === 404)) throw error;
      }
      pruned.push({
        kind,
        name,
        namespace: options.namespace,
        action: 'pruned',
        source: options.source ?? 'cluster (no longer in the manifests)',
      });
    }
  }
  if (skipped.length) options.onSkipped?.(skipped);
  return pruned;
}
