/** The ReplicaSet controller: keeps spec.replicas pods alive and reports how many are ready and available. */
import { clone } from '../patch.ts';
import { resourceByKind } from '../resources.ts';
import type { EventRecorder, SimTime, WorkQueue } from '../runtime.ts';
import type { Store } from '../store.ts';
import type { JsonObject, KubeObject } from '../types.ts';
import { isPodReady, type Kubelet, podPhase } from './kubelet.ts';

const RS = resourceByKind('ReplicaSet');
const PODS = resourceByKind('Pod');
const SOURCE = { component: 'replicaset-controller' };

/** Go's omitempty on integer status fields: zeros are not sent. */
export function omitZero(fields: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(fields)) if (v !== 0) out[k] = v;
  return out;
}

export function ownedBy(obj: KubeObject, owner: KubeObject): boolean {
  return (obj.metadata.ownerReferences ?? []).some((r) => r.controller && r.uid === owner.metadata.uid);
}

export function isActivePod(pod: KubeObject): boolean {
  const phase = podPhase(pod);
  return !pod.metadata.deletionTimestamp && phase !== 'Succeeded' && phase !== 'Failed';
}

/** The ownerReference a controller puts on what it creates. */
export function controllerRef(owner: KubeObject) {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name!,
    uid: owner.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function podFromTemplate(owner: KubeObject, template: JsonObject, generateName: string): KubeObject {
  const meta = (template['metadata'] ?? {}) as JsonObject;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName,
      namespace: owner.metadata.namespace!,
      labels: clone((meta['labels'] ?? {}) as Record<string, string>),
      ...(meta['annotations'] ? { annotations: clone(meta['annotations'] as Record<string, string>) } : {}),
      ownerReferences: [controllerRef(owner)],
    },
    spec: clone(template['spec'] ?? {}),
  };
}

/** Which pod goes first on scale-down: unscheduled, pending, not ready, then the youngest. */
function deletionRank(pod: KubeObject): number[] {
  const spec = (pod['spec'] ?? {}) as JsonObject;
  return [
    spec['nodeName'] ? 1 : 0,
    podPhase(pod) === 'Pending' ? 0 : 1,
    isPodReady(pod) ? 1 : 0,
    -Date.parse(pod.metadata.creationTimestamp ?? '0'),
  ];
}

export class ReplicaSetController {
  private readonly store: Store;
  private readonly time: SimTime;
  private readonly events: EventRecorder;
  private readonly kubelet: Kubelet;
  private readonly queue: WorkQueue;

  constructor(store: Store, time: SimTime, events: EventRecorder, kubelet: Kubelet, queue: WorkQueue) {
    this.store = store;
    this.time = time;
    this.events = events;
    this.kubelet = kubelet;
    this.queue = queue;
  }

  enqueue(namespace: string, name: string): void {
    this.queue.enqueue(`rs/${namespace}/${name}`, () => this.reconcile(namespace, name));
  }

  /** Ready for at least minReadySeconds (simulated). */
  isAvailable(pod: KubeObject, minReadySeconds: number): { available: boolean; waitMs: number } {
    if (!isPodReady(pod)) return { available: false, waitMs: 0 };
    if (minReadySeconds <= 0) return { available: true, waitMs: 0 };
    const since = this.kubelet.readySince(pod.metadata.uid) ?? this.time.now();
    const left = minReadySeconds * 1000 - this.time.simSince(since);
    return left <= 0 ? { available: true, waitMs: 0 } : { available: false, waitMs: left };
  }

  reconcile(namespace: string, name: string): void {
    const rs = this.store.get(RS, namespace, name);
    if (!rs || rs.metadata.deletionTimestamp) return;
    const spec = (rs['spec'] ?? {}) as JsonObject;
    const want = Number(spec['replicas'] ?? 1);
    const minReady = Number(spec['minReadySeconds'] ?? 0);
    let pods = this.store.list(PODS, namespace).filter((p) => ownedBy(p, rs) && isActivePod(p));
    if (pods.length < want) {
      const template = (spec['template'] ?? {}) as JsonObject;
      for (let i = pods.length; i < want; i++) {
        const pod = this.store.create(PODS, podFromTemplate(rs, template, `${name}-`));
        this.events.record(rs, 'Normal', 'SuccessfulCreate', `Created pod: ${pod.metadata.name}`, SOURCE);
      }
    } else if (pods.length > want) {
      const doomed = [...pods]
        .sort((a, b) => {
          const ra = deletionRank(a);
          const rb = deletionRank(b);
          for (let i = 0; i < ra.length; i++) if (ra[i] !== rb[i]) return ra[i]! - rb[i]!;
          return 0;
        })
        .slice(0, pods.length - want);
      for (const pod of doomed) {
        this.store.delete(PODS, namespace, pod.metadata.name!);
        this.events.record(rs, 'Normal', 'SuccessfulDelete', `Deleted pod: ${pod.metadata.name}`, SOURCE);
      }
    }
    pods = this.store.list(PODS, namespace).filter((p) => ownedBy(p, rs) && isActivePod(p));
    let ready = 0;
    let available = 0;
    let nextCheck = Number.POSITIVE_INFINITY;
    for (const p of pods) {
      if (isPodReady(p)) ready++;
      const a = this.isAvailable(p, minReady);
      if (a.available) available++;
      else if (a.waitMs > 0) nextCheck = Math.min(nextCheck, a.waitMs);
    }
    if (Number.isFinite(nextCheck)) this.time.after(nextCheck + 1, () => this.enqueue(namespace, name));
    const current = this.store.get(RS, namespace, name);
    if (!current) return;
    const next = clone(current);
    const oldStatus = (current['status'] ?? {}) as JsonObject;
    next['status'] = {
      replicas: pods.length,
      ...omitZero({
        fullyLabeledReplicas: pods.length,
        readyReplicas: ready,
        availableReplicas: available,
        observedGeneration: current.metadata.generation ?? 1,
      }),
      // Pods on their way out (DeploymentReplicaSetTerminatingReplicas, on by default since 1.35).
      terminatingReplicas: this.store
        .list(PODS, namespace)
        .filter(
          (p) =>
            ownedBy(p, rs) && p.metadata.deletionTimestamp && !['Succeeded', 'Failed'].includes(podPhase(p)),
        ).length,
      ...(oldStatus['conditions'] ? { conditions: oldStatus['conditions'] } : {}),
    };
    this.store.update(RS, next);
  }
}
