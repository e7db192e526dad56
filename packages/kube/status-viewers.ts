/**
 * One status viewer per workload kind, with kubectl's rules and words (kubectl's
 * rollout_status.go: DeploymentStatusViewer, StatefulSetStatusViewer, DaemonSetStatusViewer).
 * Where kubectl refuses (OnDelete has no rollout to follow), the viewer says what it can instead.
 */
import type { KubeObject } from './resources.ts';

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
}

export interface DeploymentObject extends KubeObject {
  spec?: {
    replicas?: number;
    paused?: boolean;
    selector?: { matchLabels?: Record<string, string> };
    template?: PodTemplate;
  };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    unavailableReplicas?: number;
    conditions?: Condition[];
  };
}

export interface StatefulSetObject extends KubeObject {
  spec?: {
    replicas?: number;
    selector?: { matchLabels?: Record<string, string> };
    template?: PodTemplate;
    updateStrategy?: {
      type?: string;
      rollingUpdate?: { partition?: number; maxUnavailable?: number | string };
    };
  };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    readyReplicas?: number;
    currentReplicas?: number;
    updatedReplicas?: number;
    availableReplicas?: number;
    currentRevision?: string;
    updateRevision?: string;
  };
}

export interface DaemonSetObject extends KubeObject {
  spec?: {
    selector?: { matchLabels?: Record<string, string> };
    template?: PodTemplate;
    updateStrategy?: {
      type?: string;
      rollingUpdate?: { maxUnavailable?: number | string; maxSurge?: number | string };
    };
  };
  status?: {
    observedGeneration?: number;
    desiredNumberScheduled?: number;
    currentNumberScheduled?: number;
    updatedNumberScheduled?: number;
    numberReady?: number;
    numberAvailable?: number;
    numberUnavailable?: number;
    numberMisscheduled?: number;
  };
}

export type WorkloadKind = 'Deployment' | 'StatefulSet' | 'DaemonSet';
export type WorkloadObject = DeploymentObject | StatefulSetObject | DaemonSetObject;

const WAITED_KINDS: readonly WorkloadKind[] = ['Deployment', 'StatefulSet', 'DaemonSet'];

export function isWaitedKind(kind: string): kind is WorkloadKind {
  return (WAITED_KINDS as readonly string[]).includes(kind);
}

export interface RolloutStatus {
  done: boolean;
  /** The rollout cannot finish by itself (a Deployment past its progress deadline). */
  failed: boolean;
  message: string;
}

/** How kubectl names the kind in its messages. */
export const KIND_WORDS: Record<WorkloadKind, string> = {
  Deployment: 'deployment',
  StatefulSet: 'statefulset',
  DaemonSet: 'daemon set',
};

const waiting = (message: string): RolloutStatus => ({ done: false, failed: false, message });

/** kubectl's verdict on a Deployment rollout (DeploymentStatusViewer), word for word. */
export function deploymentRolloutStatus(d: DeploymentObject): RolloutStatus {
  const name = d.metadata.name;
  const generation = d.metadata.generation ?? 0;
  const st = d.status ?? {};
  if (generation > (st.observedGeneration ?? 0))
    return waiting('Waiting for deployment spec update to be observed...');
  const progressing = st.conditions?.find((c) => c.type === 'Progressing');
  if (progressing?.reason === 'ProgressDeadlineExceeded')
    return { done: false, failed: true, message: `deployment "${name}" exceeded its progress deadline` };
  const replicas = d.spec?.replicas ?? 1;
  const updated = st.updatedReplicas ?? 0;
  if (updated < replicas)
    return waiting(
      `Waiting for deployment "${name}" rollout to finish: ${updated} out of ${replicas} new replicas have been updated...`,
    );
  if ((st.replicas ?? 0) > updated)
    return waiting(
      `Waiting for deployment "${name}" rollout to finish: ${(st.replicas ?? 0) - updated} old replicas are pending termination...`,
    );
  if ((st.availableReplicas ?? 0) < updated)
    return waiting(
      `Waiting for deployment "${name}" rollout to finish: ${st.availableReplicas ?? 0} of ${updated} updated replicas are available...`,
    );
  return { done: true, failed: false, message: `deployment "${name}" successfully rolled out` };
}

/**
 * kubectl's StatefulSetStatusViewer. A partitioned rolling update is done when the pods at and
 * above the partition run the new revision. kubectl refuses OnDelete ("rollout status is only
 * available for RollingUpdate strategy type"); pods of an OnDelete StatefulSet change only when
 * someone deletes them, so the wait ends once the spec is observed and the pods are ready, and says so.
 */
export function statefulSetRolloutStatus(s: StatefulSetObject): RolloutStatus {
  const name = s.metadata.name;
  const st = s.status ?? {};
  const strategy = s.spec?.updateStrategy?.type ?? 'RollingUpdate';
  if (!st.observedGeneration || (s.metadata.generation ?? 0) > st.observedGeneration)
    return waiting('Waiting for statefulset spec update to be observed...');
  const replicas = s.spec?.replicas ?? 1;
  if ((st.readyReplicas ?? 0) < replicas)
    return waiting(`Waiting for ${replicas - (st.readyReplicas ?? 0)} pods to be ready...`);
  if (strategy === 'OnDelete')
    return {
      done: true,
      failed: false,
      message: `statefulset "${name}" uses the OnDelete update strategy: ${st.updatedReplicas ?? 0} of ${replicas} pods run revision ${st.updateRevision ?? '?'}, the others take it when deleted`,
    };
  const partition = s.spec?.updateStrategy?.rollingUpdate?.partition;
  if (s.spec?.updateStrategy?.rollingUpdate && partition !== undefined) {
    if ((st.updatedReplicas ?? 0) < replicas - partition)
      return waiting(
        `Waiting for partitioned roll out to finish: ${st.updatedReplicas ?? 0} out of ${replicas - partition} new pods have been updated...`,
      );
    return {
      done: true,
      failed: false,
      message: `partitioned roll out complete: ${st.updatedReplicas ?? 0} new pods have been updated...`,
    };
  }
  if (st.updateRevision !== st.currentRevision)
    return waiting(
      `waiting for statefulset rolling update to complete ${st.updatedReplicas ?? 0} pods at revision ${st.updateRevision}...`,
    );
  return {
    done: true,
    failed: false,
    message: `statefulset rolling update complete ${st.currentReplicas ?? 0} pods at revision ${st.currentRevision}...`,
  };
}

/**
 * kubectl's DaemonSetStatusViewer. As for StatefulSets, kubectl refuses OnDelete; the wait
 * then ends once the spec is observed and every scheduled pod is available.
 */
export function daemonSetRolloutStatus(d: DaemonSetObject): RolloutStatus {
  const name = d.metadata.name;
  const st = d.status ?? {};
  if ((d.metadata.generation ?? 0) > (st.observedGeneration ?? 0))
    return waiting('Waiting for daemon set spec update to be observed...');
  const desired = st.desiredNumberScheduled ?? 0;
  if (d.spec?.updateStrategy?.type === 'OnDelete') {
    if ((st.numberAvailable ?? 0) < desired)
      return waiting(
        `Waiting for daemon set "${name}": ${st.numberAvailable ?? 0} of ${desired} pods are available...`,
      );
    return {
      done: true,
      failed: false,
      message: `daemon set "${name}" uses the OnDelete update strategy: ${st.updatedNumberScheduled ?? 0} of ${desired} pods are updated, the others take the new template when deleted`,
    };
  }
  if ((st.updatedNumberScheduled ?? 0) < desired)
    return waiting(
      `Waiting for daemon set "${name}" rollout to finish: ${st.updatedNumberScheduled ?? 0} out of ${desired} new pods have been updated...`,
    );
  if ((st.numberAvailable ?? 0) < desired)
    return waiting(
      `Waiting for daemon set "${name}" rollout to finish: ${st.numberAvailable ?? 0} of ${desired} updated pods are available...`,
    );
  return { done: true, failed: false, message: `daemon set "${name}" successfully rolled out` };
}

export function rolloutStatus(kind: WorkloadKind, object: WorkloadObject): RolloutStatus {
  switch (kind) {
    case 'Deployment':
      return deploymentRolloutStatus(object as DeploymentObject);
    case 'StatefulSet':
      return statefulSetRolloutStatus(object as StatefulSetObject);
    case 'DaemonSet':
      return daemonSetRolloutStatus(object as DaemonSetObject);
  }
}
