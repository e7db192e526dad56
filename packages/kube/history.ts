/**
 * A workload's revisions and `kubectl rollout undo` (kubectl's history.go and rollback.go): a
 * Deployment's history is its ReplicaSets, a StatefulSet's and a DaemonSet's their
 * ControllerRevisions; undo puts the pod template of the chosen revision back.
 */
import { KubeApiError, type KubeClient } from './client.ts';
import {
  canonicalJson,
  collectionPathOf,
  deleteIfExists,
  isPodReady,
  labelQuery,
  pathOf,
} from './objects.ts';
import type { KubeObject } from './resources.ts';
import type { PodTemplate, StatefulSetObject, WorkloadKind, WorkloadObject } from './status-viewers.ts';

export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';

export interface Revision {
  revision: number;
  /** The ReplicaSet or ControllerRevision that holds it. */
  name: string;
  /** Its pod template, without the labels the controller adds to tell revisions apart. */
  template: PodTemplate;
  /** The label value the controller puts on this revision's pods. */
  podHash: string | undefined;
}

interface ReplicaSetObject extends KubeObject {
  spec?: { template?: PodTemplate };
}

interface ControllerRevisionObject extends KubeObject {
  revision?: number;
  data?: { spec?: { template?: PodTemplate & { $patch?: string } } };
}

/** The label that tells a pod's revision: pod-template-hash for Deployments, controller-revision-hash otherwise. */
export function podRevisionLabel(kind: WorkloadKind): string {
  return kind === 'Deployment' ? 'pod-template-hash' : 'controller-revision-hash';
}

const owned = (o: KubeObject, owner: KubeObject) =>
  o.metadata.ownerReferences?.some((r) => r.uid === owner.metadata.uid) ?? false;

/** Every revision of the workload still in the cluster, newest first. */
export async function workloadHistory(
  client: KubeClient,
  namespace: string,
  kind: WorkloadKind,
  workload: WorkloadObject,
): Promise<Revision[]> {
  const query = labelQuery(workload.spec?.selector?.matchLabels);
  const revisions: Revision[] = [];
  if (kind === 'Deployment') {
    const list = await client.json<{ items: ReplicaSetObject[] }>(
      'GET',
      `${collectionPathOf('ReplicaSet', namespace)}${query}`,
    );
    for (const rs of list.items.filter((r) => owned(r, workload))) {
      const template = structuredClone(rs.spec?.template ?? {});
      const hash = rs.metadata.labels?.['pod-template-hash'];
      if (template.metadata?.labels) delete template.metadata.labels['pod-template-hash'];
      revisions.push({
        revision: Number(rs.metadata.annotations?.[REVISION_ANNOTATION] ?? 0),
        name: rs.metadata.name!,
        template,
        podHash: hash,
      });
    }
  } else {
    const list = await client.json<{ items: ControllerRevisionObject[] }>(
      'GET',
      `${collectionPathOf('ControllerRevision', namespace)}${query}`,
    );
    for (const cr of list.items.filter((r) => owned(r, workload))) {
      const { $patch: _replace, ...template } = structuredClone(cr.data?.spec?.template ?? {});
      revisions.push({
        revision: cr.revision ?? 0,
        name: cr.metadata.name!,
        template,
        // StatefulSet pods carry the ControllerRevision's name, DaemonSet pods its hash label.
        podHash:
          kind === 'StatefulSet'
            ? cr.metadata.name!
            : (cr.metadata.labels?.['controller-revision-hash'] ?? cr.metadata.name!.split('-').pop()),
      });
    }
  }
  return revisions.filter((r) => r.revision > 0).sort((a, b) => b.revision - a.revision);
}

/** The revision the workload is rolling out now (for a StatefulSet, its updateRevision). */
export function currentRevision(
  kind: WorkloadKind,
  workload: WorkloadObject,
  history: Revision[],
): Revision | undefined {
  if (kind === 'Deployment') {
    const number = Number(workload.metadata.annotations?.[REVISION_ANNOTATION] ?? 0);
    return history.find((r) => r.revision === number);
  }
  if (kind === 'StatefulSet') {
    const update = (workload as StatefulSetObject).status?.updateRevision;
    const named = update ? history.find((r) => r.name === update) : undefined;
    if (named) return named;
  }
  return history[0];
}

/**
 * kubectl's choice for `rollout undo [--to-revision]`: the given revision, or else the highest
 * one below the current. Undefined when there is none (a first deploy, or history pruned).
 */
export function chooseRollbackRevision(
  history: Revision[],
  current: number,
  toRevision?: string,
): Revision | undefined {
  return history
    .filter((r) => (toRevision ? r.revision === Number(toRevision) : r.revision < current))
    .sort((a, b) => b.revision - a.revision)[0];
}

export interface RollbackResult {
  rolledBack: boolean;
  fromRevision?: string;
  toRevision?: string;
  message: string;
}

/**
 * `kubectl rollout undo` for a Deployment, StatefulSet or DaemonSet: the workload takes the pod
 * template of the revision to go back to. A first deploy has nothing to go back to, and says so.
 */
export async function rollbackWorkload(
  client: KubeClient,
  namespace: string,
  kind: WorkloadKind,
  name: string,
  /** The revision to go back to (the one running before this deploy); default: the one below the current. */
  toRevision?: string,
  attempt = 1,
  /** A PATCH was sent before and its answer lost: a template already equal to the target is ours. */
  sent = false,
): Promise<RollbackResult> {
  const path = pathOf(kind, namespace, name);
  const words = kind.toLowerCase();
  const workload = await client.getJson<WorkloadObject>(path);
  if (!workload) return { rolledBack: false, message: `${words} "${name}" no longer exists` };
  const history = await workloadHistory(client, namespace, kind, workload);
  const current =
    kind === 'Deployment'
      ? Number(workload.metadata.annotations?.[REVISION_ANNOTATION] ?? 0)
      : (currentRevision(kind, workload, history)?.revision ?? 0);
  const previous = chooseRollbackRevision(history, current, toRevision);
  if (!previous)
    return {
      rolledBack: false,
      fromRevision: String(current),
      message: toRevision
        ? `${words} "${name}" has no ${kind === 'Deployment' ? 'ReplicaSet' : 'ControllerRevision'} of revision ${toRevision} left to roll back to`
        : `${words} "${name}" has no previous revision to roll back to (first deploy)`,
    };
  const done = {
    rolledBack: true,
    fromRevision: String(current),
    toRevision: String(previous.revision),
  };
  // A deploy that changed only metadata or replicas left the template as it was: nothing to undo.
  if (canonicalJson(previous.template) === canonicalJson(workload.spec?.template)) {
    if (sent)
      return {
        ...done,
        message: `rolled back ${words} "${name}" to the template of revision ${previous.revision}`,
      };
    return {
      ...done,
      rolledBack: false,
      message: `${words} "${name}" still has the pod template of revision ${previous.revision}; nothing to roll back`,
    };
  }
  try {
    await client.request('PATCH', `${path}?fieldManager=pipeline-rollback`, {
      body: JSON.stringify([
        { op: 'test', path: '/metadata/resourceVersion', value: workload.metadata.resourceVersion },
        { op: 'replace', path: '/spec/template', value: previous.template },
      ]),
      contentType: 'application/json-patch+json',
      // The test of resourceVersion makes a repeat harmless: a PATCH that landed before its
      // answer was lost fails the test (422), and the fresh read below finds the template ours.
      idempotent: true,
    });
  } catch (error) {
    if (error instanceof KubeApiError && (error.status === 409 || error.status === 422) && attempt < 5) {
      // Changed under us (the controller bumped it, or our own earlier attempt landed): again with a fresh read.
      return rollbackWorkload(client, namespace, kind, name, toRevision, attempt + 1, true);
    }
    throw error;
  }
  const from = kind === 'StatefulSet' ? currentRevision(kind, workload, history) : undefined;
  const replaced = from ? await deleteBrokenPods(client, namespace, workload, from) : [];
  return {
    ...done,
    message: `rolled back ${words} "${name}" from revision ${current} to the template of revision ${previous.revision}${replaced.length > 0 ? ` (deleted the broken pods ${replaced.join(', ')} so they are recreated from it)` : ''}`,
  };
}

/**
 * A StatefulSet under OrderedReady makes no progress past a pod that is not running and ready,
 * so after its template goes back the pods of the failed revision would stay broken for ever
 * (Kubernetes' documented "forced rollback"): those pods are deleted, and the controller
 * recreates them from the restored template. Pods that are ready are left to the rolling update.
 */
async function deleteBrokenPods(
  client: KubeClient,
  namespace: string,
  workload: WorkloadObject,
  failed: Revision,
): Promise<string[]> {
  const list = await client.json<{
    items: (KubeObject & { status?: { conditions?: { type: string; status: string }[] } })[];
  }>('GET', `${collectionPathOf('Pod', namespace)}${labelQuery(workload.spec?.selector?.matchLabels)}`);
  const broken = list.items.filter(
    (p) =>
      owned(p, workload) &&
      !p.metadata.deletionTimestamp &&
      p.metadata.labels?.['controller-revision-hash'] === failed.podHash &&
      !isPodReady(p),
  );
  for (const pod of broken) await deleteIfExists(client, pathOf('Pod', namespace, pod.metadata.name!));
  return broken.map((p) => p.metadata.name!);
}
