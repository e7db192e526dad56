/**
 * The Kubernetes primitives every engine uses, written once: where an object lives in the API,
 * how a label selector is written and matched, the one merge patch, pod readiness.
 */
import { KubeApiError, type KubeClient } from './client.ts';

/** The kinds the engines address by name, with their API group/version and plural. */
const KINDS = {
  Pod: { prefix: '/api/v1', plural: 'pods' },
  Service: { prefix: '/api/v1', plural: 'services' },
  Event: { prefix: '/api/v1', plural: 'events' },
  Deployment: { prefix: '/apis/apps/v1', plural: 'deployments' },
  ReplicaSet: { prefix: '/apis/apps/v1', plural: 'replicasets' },
  StatefulSet: { prefix: '/apis/apps/v1', plural: 'statefulsets' },
  DaemonSet: { prefix: '/apis/apps/v1', plural: 'daemonsets' },
  ControllerRevision: { prefix: '/apis/apps/v1', plural: 'controllerrevisions' },
  Lease: { prefix: '/apis/coordination.k8s.io/v1', plural: 'leases' },
} as const;

export type NamedKind = keyof typeof KINDS;

export const ns = (namespace: string) => encodeURIComponent(namespace);

/** The collection of a kind in a namespace: `/apis/apps/v1/namespaces/shop/deployments`. */
export function collectionPathOf(kind: NamedKind, namespace: string): string {
  const k = KINDS[kind];
  return `${k.prefix}/namespaces/${ns(namespace)}/${k.plural}`;
}

/** One object: `/apis/apps/v1/namespaces/shop/deployments/web`. */
export function pathOf(kind: NamedKind, namespace: string, name: string): string {
  return `${collectionPathOf(kind, namespace)}/${encodeURIComponent(name)}`;
}

export const deploymentPath = (namespace: string, name: string) => pathOf('Deployment', namespace, name);
export const servicePath = (namespace: string, name: string) => pathOf('Service', namespace, name);

/** `app=shop,track=stable`: the labelSelector of a set of labels that must all match. */
export function selectorText(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** Whether a selector (all of its pairs) matches a set of labels. */
export function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  const pairs = Object.entries(selector);
  return pairs.length > 0 && pairs.every(([k, v]) => labels[k] === v);
}

/** `?labelSelector=...` for a workload's spec.selector.matchLabels (empty labels: no query). */
export function labelQuery(labels: Record<string, string> | undefined): string {
  const text = selectorText(labels ?? {});
  return text ? `?labelSelector=${encodeURIComponent(text)}` : '';
}

export async function mergePatch<T = unknown>(
  client: KubeClient,
  path: string,
  patch: unknown,
  fieldManager = 'pipeline-rollout',
): Promise<T> {
  return client.json<T>('PATCH', `${path}?fieldManager=${encodeURIComponent(fieldManager)}`, {
    body: JSON.stringify(patch),
    contentType: 'application/merge-patch+json',
    // A merge patch sets absolute values: repeating it after a 5xx does no harm.
    idempotent: true,
  });
}

/**
 * Read, change and write back one object with its resourceVersion; a conflicting write (409: someone
 * else wrote in between) reads again and retries, up to `attempts` times. `change` returns the
 * body to write, or undefined when the object is gone.
 */
export async function updateObject<T extends { metadata?: { resourceVersion?: string } }>(
  client: KubeClient,
  path: string,
  change: (current: T | undefined) => T | undefined,
  attempts = 5,
): Promise<T | undefined> {
  for (let attempt = 1; ; attempt++) {
    const body = change(await client.getJson<T>(path));
    if (!body) return undefined;
    try {
      return await client.json<T>('PUT', path, { body });
    } catch (error) {
      if (!(error instanceof KubeApiError && error.status === 409) || attempt >= attempts) throw error;
    }
  }
}

export async function scaleDeployment(
  client: KubeClient,
  namespace: string,
  name: string,
  replicas: number,
): Promise<void> {
  await mergePatch(client, deploymentPath(namespace, name), { spec: { replicas } });
}

export async function deleteIfExists(client: KubeClient, path: string): Promise<boolean> {
  try {
    await client.request('DELETE', path, {
      body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background' },
    });
    return true;
  } catch (error) {
    if (error instanceof KubeApiError && error.status === 404) return false;
    throw error;
  }
}

export function isPodReady(pod: { status?: { conditions?: { type: string; status: string }[] } }): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** JSON with sorted keys, to compare two pod templates regardless of key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}
