/**
 * ControllerRevisions as the StatefulSet and DaemonSet controllers keep them (controller_history.go):
 * one per distinct pod template, named <owner>-<hash>, holding `{spec: {template: ..., $patch: replace}}`,
 * numbered in order; a template equal to an older revision reuses it and gets the next number.
 */
import { clone, isObject } from '../patch.ts';
import { resourceByKind } from '../resources.ts';
import type { EventRecorder, SimTime, WorkQueue } from '../runtime.ts';
import { type Store, templateHash } from '../store.ts';
import type { JsonObject, KubeObject } from '../types.ts';
import { templateKey } from './deployment.ts';
import { isPodReady } from './kubelet.ts';
import { controllerRef, ownedBy, type ReplicaSetController } from './replicaset.ts';

const CR = resourceByKind('ControllerRevision');

export function templateOf(owner: KubeObject): JsonObject {
  const spec = (owner['spec'] ?? {}) as JsonObject;
  return (spec['template'] ?? {}) as JsonObject;
}

function revisionTemplate(cr: KubeObject): JsonObject {
  const data = (cr['data'] ?? {}) as JsonObject;
  const spec = (data['spec'] ?? {}) as JsonObject;
  const { $patch: _replace, ...template } = (spec['template'] ?? {}) as JsonObject;
  return template;
}

export function ownedRevisions(store: Store, owner: KubeObject): KubeObject[] {
  return store
    .list(CR, owner.metadata.namespace)
    .filter((cr) => ownedBy(cr, owner))
    .sort((a, b) => Number(a['revision'] ?? 0) - Number(b['revision'] ?? 0));
}

/**
 * The revision of the owner's current template, created or renumbered as the real controllers
 * do. `hashLabel` is the label that carries the hash on the revision (the StatefulSet controller
 * writes controller.kubernetes.io/hash, the DaemonSet controller controller-revision-hash).
 */
export function syncRevision(store: Store, owner: KubeObject, hashLabel: string): KubeObject {
  const revisions = ownedRevisions(store, owner);
  const key = templateKey(templateOf(owner));
  const next = Number(revisions.at(-1)?.['revision'] ?? 0) + 1;
  const equal = revisions.filter((cr) => templateKey(revisionTemplate(cr)) === key);
  const found = equal.at(-1);
  if (found) {
    if (found === revisions.at(-1)) return found;
    const bumped = clone(found);
    bumped['revision'] = next;
    return store.update(CR, bumped);
  }
  const hash = templateHash(key);
  const spec = (owner['spec'] ?? {}) as JsonObject;
  const selector = (isObject(spec['selector']) ? spec['selector']['matchLabels'] : undefined) as
    | Record<string, string>
    | undefined;
  return store.create(CR, {
    apiVersion: 'apps/v1',
    kind: 'ControllerRevision',
    metadata: {
      name: `${owner.metadata.name}-${hash}`,
      namespace: owner.metadata.namespace!,
      labels: { ...(selector ?? {}), [hashLabel]: hash },
      ownerReferences: [controllerRef(owner)],
    },
    data: { spec: { template: { ...clone(templateOf(owner)), $patch: 'replace' } } },
    revision: next,
  });
}

/** Old revisions beyond revisionHistoryLimit that no pod runs go, oldest first. */
export function truncateHistory(store: Store, owner: KubeObject, live: Set<string>): void {
  const limit = Number(((owner['spec'] ?? {}) as JsonObject)['revisionHistoryLimit'] ?? 10);
  const old = ownedRevisions(store, owner).filter((cr) => !live.has(cr.metadata.name!));
  for (const cr of old.slice(0, Math.max(0, old.length - limit)))
    store.delete(CR, cr.metadata.namespace, cr.metadata.name!);
}

export function hashOf(cr: KubeObject, hashLabel: string): string {
  return cr.metadata.labels?.[hashLabel] ?? cr.metadata.name!.split('-').pop()!;
}

/** The API server's defaults for StatefulSet and DaemonSet specs (apps/v1 SetDefaults_*). */
export function defaultWorkloadSet(kind: string, spec: JsonObject): void {
  spec['revisionHistoryLimit'] ??= 10;
  if (!isObject(spec['updateStrategy'])) spec['updateStrategy'] = {};
  const strategy = spec['updateStrategy'] as JsonObject;
  strategy['type'] ??= 'RollingUpdate';
  if (strategy['type'] === 'RollingUpdate' && !isObject(strategy['rollingUpdate']))
    strategy['rollingUpdate'] = {};
  const ru = strategy['rollingUpdate'] as JsonObject | undefined;
  if (kind === 'StatefulSet') {
    spec['replicas'] ??= 1;
    spec['podManagementPolicy'] ??= 'OrderedReady';
    spec['persistentVolumeClaimRetentionPolicy'] ??= { whenDeleted: 'Retain', whenScaled: 'Retain' };
    if (ru) ru['partition'] ??= 0;
  } else if (ru) {
    ru['maxUnavailable'] ??= 1;
    ru['maxSurge'] ??= 0;
  }
}

const PODS = resourceByKind('Pod');

/** What the StatefulSet and DaemonSet controllers share: their queue, pod counts, pod deletion. */
export abstract class RevisionedController {
  protected readonly store: Store;
  protected readonly time: SimTime;
  protected readonly events: EventRecorder;
  protected readonly queue: WorkQueue;
  /** Availability (minReadySeconds) is judged as the ReplicaSet controller judges it. */
  private readonly replicaSets: ReplicaSetController;
  protected abstract readonly key: string;
  protected abstract readonly source: { component: string };

  constructor(
    store: Store,
    time: SimTime,
    events: EventRecorder,
    queue: WorkQueue,
    replicaSets: ReplicaSetController,
  ) {
    this.store = store;
    this.time = time;
    this.events = events;
    this.queue = queue;
    this.replicaSets = replicaSets;
  }

  abstract reconcile(namespace: string, name: string): void;

  enqueue(namespace: string, name: string): void {
    this.queue.enqueue(`${this.key}/${namespace}/${name}`, () => this.reconcile(namespace, name));
  }

  protected isAvailable(pod: KubeObject, minReadySeconds: number): boolean {
    return this.replicaSets.isAvailable(pod, minReadySeconds).available;
  }

  /** Ready and available pods; a pod that becomes available later (minReadySeconds) brings a re-check. */
  protected countPods(
    owner: KubeObject,
    pods: KubeObject[],
    minReadySeconds: number,
  ): { ready: number; available: number } {
    let ready = 0;
    let available = 0;
    let recheck = Number.POSITIVE_INFINITY;
    for (const p of pods) {
      if (isPodReady(p)) ready++;
      const a = this.replicaSets.isAvailable(p, minReadySeconds);
      if (a.available) available++;
      else if (a.waitMs > 0) recheck = Math.min(recheck, a.waitMs);
    }
    if (Number.isFinite(recheck))
      this.time.after(recheck + 1, () => this.enqueue(owner.metadata.namespace!, owner.metadata.name!));
    return { ready, available };
  }

  protected deletePod(owner: KubeObject, pod: KubeObject, message: string): void {
    this.store.delete(PODS, pod.metadata.namespace, pod.metadata.name!);
    this.events.record(owner, 'Normal', 'SuccessfulDelete', message, this.source);
  }
}
