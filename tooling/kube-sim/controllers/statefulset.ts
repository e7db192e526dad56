/**
 * The StatefulSet controller (stateful_set_control.go), for what deploy tools watch: pods
 * <name>-<ordinal> created in order and each waited for (OrderedReady) or all at once (Parallel),
 * a RollingUpdate that replaces the highest ordinal not at the update revision first, down to the
 * partition, OnDelete that replaces nothing, and the status the real controller writes. Like the
 * real one under OrderedReady, a pod that is not running and ready blocks all progress, so a
 * rollback must delete the broken pods itself (Kubernetes' documented "forced rollback").
 */
import { clone } from '../patch.ts';
import { resourceByKind } from '../resources.ts';
import type { JsonObject, KubeObject } from '../types.ts';
import { isPodReady, podPhase } from './kubelet.ts';
import { omitZero, ownedBy, podFromTemplate } from './replicaset.ts';
import {
  ownedRevisions,
  RevisionedController,
  syncRevision,
  templateOf,
  truncateHistory,
} from './revisions.ts';

const STS = resourceByKind('StatefulSet');
const PODS = resourceByKind('Pod');
const SOURCE = { component: 'statefulset-controller' };
const REVISION_LABEL = 'controller-revision-hash';

export class StatefulSetController extends RevisionedController {
  protected readonly key = 'sts';
  protected readonly source = SOURCE;

  reconcile(namespace: string, name: string): void {
    const set = this.store.get(STS, namespace, name);
    if (!set || set.metadata.deletionTimestamp) return;
    const spec = (set['spec'] ?? {}) as JsonObject;
    const replicas = Number(spec['replicas'] ?? 1);
    const strategy = (spec['updateStrategy'] ?? {}) as JsonObject;
    const rolling = (strategy['type'] ?? 'RollingUpdate') === 'RollingUpdate';
    const partition = Number(((strategy['rollingUpdate'] ?? {}) as JsonObject)['partition'] ?? 0);
    const monotonic = (spec['podManagementPolicy'] ?? 'OrderedReady') === 'OrderedReady';
    const update = syncRevision(this.store, set, 'controller.kubernetes.io/hash');
    const oldStatus = (set['status'] ?? {}) as JsonObject;
    const currentName = (oldStatus['currentRevision'] as string | undefined) ?? update.metadata.name!;
    const current = ownedRevisions(this.store, set).find((cr) => cr.metadata.name === currentName) ?? update;

    const pods = new Map<number, KubeObject>();
    for (const pod of this.store.list(PODS, namespace).filter((p) => ownedBy(p, set))) {
      const m = new RegExp(`^${name}-(\\d+)$`).exec(pod.metadata.name!);
      if (m) pods.set(Number(m[1]), pod);
    }
    const runningAndReady = (p: KubeObject) => podPhase(p) === 'Running' && isPodReady(p);
    const terminating = (p: KubeObject) => Boolean(p.metadata.deletionTimestamp);
    const revisionOf = (p: KubeObject) => p.metadata.labels?.[REVISION_LABEL];
    const deleted = (p: KubeObject) => `delete Pod ${p.metadata.name} in StatefulSet ${name} successful`;

    const step = () => {
      // Failed pods are replaced; missing ones created, in ordinal order under OrderedReady.
      for (let i = 0; i < replicas; i++) {
        const pod = pods.get(i);
        if (pod && podPhase(pod) === 'Failed' && !terminating(pod)) {
          this.deletePod(set, pod, deleted(pod));
          return;
        }
        if (!pod) {
          // Below the partition a new pod keeps the current revision, as the real controller does.
          const revision = rolling && i < partition ? current : update;
          this.createPod(set, i, revision);
          if (monotonic) return;
          continue;
        }
        if (monotonic && (terminating(pod) || !runningAndReady(pod))) return;
      }
      // Scale down from the highest ordinal, one at a time under OrderedReady.
      const extra = [...pods.keys()].filter((i) => i >= replicas).sort((a, b) => b - a);
      for (const i of extra) {
        const pod = pods.get(i)!;
        if (terminating(pod)) {
          if (monotonic) return;
          continue;
        }
        this.deletePod(set, pod, deleted(pod));
        if (monotonic) return;
      }
      if (!rolling) return;
      // The highest ordinal at or above the partition that is not at the update revision goes next.
      for (let i = replicas - 1; i >= partition; i--) {
        const pod = pods.get(i);
        if (!pod) return;
        if (revisionOf(pod) !== update.metadata.name && !terminating(pod)) {
          this.deletePod(set, pod, deleted(pod));
          return;
        }
        if (!runningAndReady(pod)) return;
      }
    };
    step();
    this.writeStatus(namespace, name, update, current);
  }

  private createPod(set: KubeObject, ordinal: number, revision: KubeObject): void {
    const name = `${set.metadata.name}-${ordinal}`;
    const template = clone(templateOf(revisionTemplateOwner(set, revision)));
    const pod = podFromTemplate(set, template, '');
    delete (pod.metadata as { generateName?: string }).generateName;
    pod.metadata.name = name;
    pod.metadata.labels = {
      ...(pod.metadata.labels ?? {}),
      [REVISION_LABEL]: revision.metadata.name!,
      'statefulset.kubernetes.io/pod-name': name,
      'apps.kubernetes.io/pod-index': String(ordinal),
    };
    const spec = pod['spec'] as JsonObject;
    spec['hostname'] = name;
    const serviceName = ((set['spec'] ?? {}) as JsonObject)['serviceName'];
    if (serviceName) spec['subdomain'] = serviceName;
    this.store.create(PODS, pod);
    this.events.record(
      set,
      'Normal',
      'SuccessfulCreate',
      `create Pod ${name} in StatefulSet ${set.metadata.name} successful`,
      SOURCE,
    );
  }

  private writeStatus(namespace: string, name: string, update: KubeObject, current: KubeObject): void {
    const set = this.store.get(STS, namespace, name);
    if (!set) return;
    const spec = (set['spec'] ?? {}) as JsonObject;
    const minReady = Number(spec['minReadySeconds'] ?? 0);
    const pods = this.store
      .list(PODS, namespace)
      .filter((p) => ownedBy(p, set) && !p.metadata.deletionTimestamp);
    const { ready, available } = this.countPods(set, pods, minReady);
    const at = (revision: KubeObject) =>
      pods.filter((p) => p.metadata.labels?.[REVISION_LABEL] === revision.metadata.name).length;
    let atCurrent = at(current);
    const atUpdate = at(update);
    let currentRevision = current.metadata.name!;
    // A finished rolling update makes the update revision the current one (completeRollingUpdate).
    const rolling = ((spec['updateStrategy'] ?? {}) as JsonObject)['type'] !== 'OnDelete';
    if (rolling && atUpdate === pods.length && ready === pods.length) {
      currentRevision = update.metadata.name!;
      atCurrent = atUpdate;
    }
    truncateHistory(
      this.store,
      set,
      new Set([
        currentRevision,
        update.metadata.name!,
        ...pods.map((p) => p.metadata.labels?.[REVISION_LABEL] ?? ''),
      ]),
    );
    const next = clone(set);
    next['status'] = {
      observedGeneration: set.metadata.generation ?? 1,
      replicas: pods.length,
      ...omitZero({ readyReplicas: ready, currentReplicas: atCurrent, updatedReplicas: atUpdate }),
      availableReplicas: available,
      currentRevision,
      updateRevision: update.metadata.name!,
      collisionCount: 0,
    };
    this.store.update(STS, next);
  }
}

/** The template a revision holds, as if its owner still had it. */
function revisionTemplateOwner(set: KubeObject, revision: KubeObject): KubeObject {
  const data = (revision['data'] ?? {}) as JsonObject;
  const spec = (data['spec'] ?? {}) as JsonObject;
  const { $patch: _replace, ...template } = (spec['template'] ?? {}) as JsonObject;
  return { ...set, spec: { ...((set['spec'] ?? {}) as JsonObject), template } };
}
