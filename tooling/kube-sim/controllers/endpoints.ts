/** The Endpoints controller: a Service's Endpoints list the ready (and not-ready) pods its selector picks. */
import { clone, deepEqual, isObject } from '../patch.ts';
import { resourceByKind } from '../resources.ts';
import type { WorkQueue } from '../runtime.ts';
import type { Store } from '../store.ts';
import type { JsonObject, KubeObject } from '../types.ts';
import { isPodReady, NODE_NAME } from './kubelet.ts';
import { isActivePod } from './replicaset.ts';

const SERVICES = resourceByKind('Service');
const ENDPOINTS = resourceByKind('Endpoints');
const PODS = resourceByKind('Pod');

function selects(selector: Record<string, string>, pod: KubeObject): boolean {
  const labels = pod.metadata.labels ?? {};
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** A service port's target on a pod: a number, or a named container port looked up in the pod. */
function resolveTargetPort(port: JsonObject, pod: KubeObject | undefined): number | undefined {
  const target = port['targetPort'] ?? port['port'];
  if (typeof target === 'number') return target;
  if (/^\d+$/.test(String(target))) return Number(target);
  const containers = ((pod?.['spec'] ?? {}) as JsonObject)['containers'];
  for (const c of Array.isArray(containers) ? containers : []) {
    for (const p of (isObject(c) && Array.isArray(c['ports']) ? c['ports'] : []) as JsonObject[]) {
      if (p['name'] === target) return Number(p['containerPort']);
    }
  }
  return undefined;
}

function servicePods(store: Store, svc: KubeObject): KubeObject[] {
  const selector = ((svc['spec'] ?? {}) as JsonObject)['selector'];
  if (!isObject(selector) || Object.keys(selector).length === 0) return [];
  return store
    .list(PODS, svc.metadata.namespace)
    .filter(
      (p) =>
        isActivePod(p) &&
        selects(selector as Record<string, string>, p) &&
        ((p['status'] ?? {}) as JsonObject)['podIP'],
    );
}

export class EndpointsController {
  private readonly store: Store;
  private readonly queue: WorkQueue;

  constructor(store: Store, queue: WorkQueue) {
    this.store = store;
    this.queue = queue;
  }

  enqueue(namespace: string, name: string): void {
    this.queue.enqueue(`ep/${namespace}/${name}`, () => this.reconcile(namespace, name));
  }

  enqueueNamespace(namespace: string): void {
    for (const svc of this.store.list(SERVICES, namespace)) this.enqueue(namespace, svc.metadata.name!);
  }

  reconcile(namespace: string, name: string): void {
    const svc = this.store.get(SERVICES, namespace, name);
    const existing = this.store.get(ENDPOINTS, namespace, name);
    if (!svc) {
      if (existing && existing.metadata.labels?.['endpoints.kubernetes.io/managed-by'] !== undefined) {
        this.store.delete(ENDPOINTS, namespace, name);
      }
      return;
    }
    const spec = (svc['spec'] ?? {}) as JsonObject;
    if (!isObject(spec['selector'])) return;
    const pods = servicePods(this.store, svc).sort((a, b) =>
      String((a['status'] as JsonObject)['podIP']).localeCompare(
        String((b['status'] as JsonObject)['podIP']),
        'en',
        { numeric: true },
      ),
    );
    const address = (p: KubeObject) => ({
      ip: (p['status'] as JsonObject)['podIP'],
      nodeName: NODE_NAME,
      targetRef: { kind: 'Pod', namespace, name: p.metadata.name, uid: p.metadata.uid },
    });
    const ready = pods.filter(isPodReady).map(address);
    const notReady = pods.filter((p) => !isPodReady(p)).map(address);
    const ports = ((spec['ports'] ?? []) as JsonObject[]).map((p) => ({
      ...(p['name'] ? { name: p['name'] } : {}),
      port: resolveTargetPort(p, pods[0]) ?? p['port'],
      protocol: p['protocol'] ?? 'TCP',
    }));
    const subsets =
      ready.length + notReady.length > 0
        ? [
            {
              ...(ready.length ? { addresses: ready } : {}),
              ...(notReady.length ? { notReadyAddresses: notReady } : {}),
              ports,
            },
          ]
        : undefined;
    const desired: KubeObject = {
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: {
        name,
        namespace,
        labels: {
          ...(svc.metadata.labels ?? {}),
          'endpoints.kubernetes.io/managed-by': 'endpoint-controller',
        },
      },
      ...(subsets ? { subsets } : {}),
    };
    if (!existing) {
      this.store.create(ENDPOINTS, desired);
      return;
    }
    if (
      deepEqual(existing['subsets'], desired['subsets']) &&
      deepEqual(existing.metadata.labels, desired.metadata.labels)
    )
      return;
    const next = clone(existing);
    next.metadata.labels = desired.metadata.labels;
    if (subsets) next['subsets'] = subsets;
    else delete next['subsets'];
    this.store.update(ENDPOINTS, next);
  }
}
