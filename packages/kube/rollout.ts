import { type Clock, errorMessage, formatDuration, type Logger, systemClock } from '../core/index.ts';
import { KubeApiError, type KubeClient } from './client.ts';
import type { KubeObject } from './resources.ts';

export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface DeploymentObject extends KubeObject {
  spec?: {
    replicas?: number;
    paused?: boolean;
    selector?: { matchLabels?: Record<string, string> };
    template?: {
      metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
      spec?: Record<string, unknown>;
    };
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

interface ContainerStatus {
  name: string;
  restartCount?: number;
  ready?: boolean;
  state?: {
    waiting?: { reason?: string; message?: string };
    terminated?: { reason?: string; exitCode?: number };
  };
  lastState?: { terminated?: { reason?: string; exitCode?: number; message?: string } };
}

export interface PodObject extends KubeObject {
  status?: {
    phase?: string;
    conditions?: Condition[];
    containerStatuses?: ContainerStatus[];
    initContainerStatuses?: ContainerStatus[];
  };
}

/** kubectl's verdict on a Deployment rollout (rollout_status.go), word for word where it can be. */
export function deploymentRolloutStatus(d: DeploymentObject): {
  done: boolean;
  failed: boolean;
  message: string;
} {
  const name = d.metadata.name;
  const generation = d.metadata.generation ?? 0;
  const st = d.status ?? {};
  if (generation > (st.observedGeneration ?? 0))
    return { done: false, failed: false, message: 'Waiting for deployment spec update to be observed...' };
  const progressing = st.conditions?.find((c) => c.type === 'Progressing');
  if (progressing?.reason === 'ProgressDeadlineExceeded')
    return { done: false, failed: true, message: `deployment "${name}" exceeded its progress deadline` };
  const replicas = d.spec?.replicas ?? 1;
  const updated = st.updatedReplicas ?? 0;
  if (updated < replicas)
    return {
      done: false,
      failed: false,
      message: `Waiting for deployment "${name}" rollout to finish: ${updated} out of ${replicas} new replicas have been updated...`,
    };
  if ((st.replicas ?? 0) > updated) {
    return {
      done: false,
      failed: false,
      message: `Waiting for deployment "${name}" rollout to finish: ${(st.replicas ?? 0) - updated} old replicas are pending termination...`,
    };
  }
  if ((st.availableReplicas ?? 0) < updated) {
    return {
      done: false,
      failed: false,
      message: `Waiting for deployment "${name}" rollout to finish: ${st.availableReplicas ?? 0} of ${updated} updated replicas are available...`,
    };
  }
  return { done: true, failed: false, message: `deployment "${name}" successfully rolled out` };
}

/** Pod states that will not fix themselves in time: better to say so than to wait for the deadline. */
export const STUCK_REASONS = new Set([
  'ImagePullBackOff',
  'ErrImagePull',
  'CrashLoopBackOff',
  'CreateContainerConfigError',
  'InvalidImageName',
  'CreateContainerError',
  'RunContainerError',
]);

export interface PodProblem {
  pod: string;
  container?: string;
  reason: string;
  message: string;
  restarts: number;
}

export function podProblems(pod: PodObject): PodProblem[] {
  const out: PodProblem[] = [];
  const name = pod.metadata.name!;
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
    out.push({
      pod: name,
      reason: 'Unschedulable',
      message: scheduled.message ?? 'no node fits the pod',
      restarts: 0,
    });
  }
  for (const cs of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const waiting = cs.state?.waiting;
    if (waiting?.reason && STUCK_REASONS.has(waiting.reason)) {
      const last = cs.lastState?.terminated;
      const detail =
        waiting.message ??
        (last ? `last exit code ${last.exitCode}${last.reason ? ` (${last.reason})` : ''}` : '');
      out.push({
        pod: name,
        container: cs.name,
        reason: waiting.reason,
        message: detail,
        restarts: cs.restartCount ?? 0,
      });
    }
  }
  return out;
}

export interface RolloutEvent {
  at: number;
  message: string;
}

export interface RolloutOutcome {
  name: string;
  ok: boolean;
  /** progress-deadline, stuck-pods, timeout, cancelled, gone */
  failure?: 'progress-deadline' | 'stuck-pods' | 'timeout' | 'cancelled' | 'gone';
  message: string;
  revision?: string;
  timeline: RolloutEvent[];
  problems: PodProblem[];
}

export interface WaitOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  /** Absolute clock time the wait must end by. */
  deadline: number;
  /** How long a pod may stay in a stuck state before the rollout is failed for it. */
  stuckGraceMs: number;
  clock?: Clock;
  logger: Logger;
  signal?: AbortSignal;
}

/**
 * Waits for one Deployment the way `kubectl rollout status` does, driven by watch events on the
 * Deployment and its pods, under one deadline. Better than kubectl: pods of the new ReplicaSet
 * stuck in ImagePullBackOff, CrashLoopBackOff or Unschedulable for longer than the grace period
 * fail the wait at once, with their reasons.
 */
export async function waitForDeployment(options: WaitOptions): Promise<RolloutOutcome> {
  const { client, namespace, name, logger } = options;
  const clock = options.clock ?? systemClock;
  const started = clock.now();
  const timeline: RolloutEvent[] = [];
  const note = (message: string) => {
    if (timeline.at(-1)?.message === message) return;
    timeline.push({ at: clock.now() - started, message });
    logger.info(`${name}: ${message}`);
  };
  const base = `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}`;
  if (options.signal?.aborted) {
    return {
      name,
      ok: false,
      failure: 'cancelled',
      message: `waiting for deployment "${name}" was cancelled`,
      timeline,
      problems: [],
    };
  }
  const abort = new AbortController();
  const onOuterAbort = () => abort.abort();
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });

  let deployment: DeploymentObject | undefined;
  const pods = new Map<string, PodObject>();
  const stuckSince = new Map<string, number>();
  let newHash: string | undefined;
  let newHashForRevision: string | undefined;
  let outcome: RolloutOutcome | undefined;
  let wake: (() => void) | undefined;
  const finish = (
    o: Omit<RolloutOutcome, 'name' | 'timeline' | 'problems'> & { problems?: PodProblem[] },
  ) => {
    outcome ??= {
      name,
      timeline,
      problems: [],
      ...o,
      ...(deployment?.metadata.annotations?.[REVISION_ANNOTATION]
        ? { revision: deployment.metadata.annotations[REVISION_ANNOTATION] }
        : {}),
    };
    abort.abort();
    wake?.();
  };

  const refreshNewReplicaSet = async () => {
    const revision = deployment?.metadata.annotations?.[REVISION_ANNOTATION];
    if (!deployment || !revision || revision === newHashForRevision) return;
    const selector = Object.entries(deployment.spec?.selector?.matchLabels ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const list = await client.getJson<{ items?: KubeObject[] }>(
      `${base}/replicasets?labelSelector=${encodeURIComponent(selector)}`,
    );
    const mine = (list?.items ?? []).filter((rs) =>
      rs.metadata.ownerReferences?.some((o) => o.uid === deployment!.metadata.uid),
    );
    const current = mine.find((rs) => rs.metadata.annotations?.[REVISION_ANNOTATION] === revision);
    newHash = current?.metadata.labels?.['pod-template-hash'];
    newHashForRevision = newHash ? revision : undefined;
  };

  const evaluate = () => {
    if (outcome || !deployment) return;
    const status = deploymentRolloutStatus(deployment);
    note(status.message);
    if (status.done) return finish({ ok: true, message: status.message });
    if (status.failed)
      return finish({
        ok: false,
        failure: 'progress-deadline',
        message: status.message,
        problems: currentProblems(),
      });
    const now = clock.now();
    const problems = currentProblems();
    const seen = new Set<string>();
    for (const p of problems) {
      const key = `${p.pod}/${p.container ?? ''}/${p.reason}`;
      seen.add(key);
      if (!stuckSince.has(key)) {
        stuckSince.set(key, now);
        note(
          `pod ${p.pod}${p.container ? ` container ${p.container}` : ''} is ${p.reason}${p.message ? `: ${p.message}` : ''}`,
        );
      }
      if (now - stuckSince.get(key)! >= options.stuckGraceMs) {
        return finish({
          ok: false,
          failure: 'stuck-pods',
          message: `deployment "${name}" cannot finish: pod ${p.pod}${p.container ? ` container ${p.container}` : ''} is ${p.reason}${p.message ? ` (${p.message})` : ''}`,
          problems,
        });
      }
    }
    for (const key of [...stuckSince.keys()]) if (!seen.has(key)) stuckSince.delete(key);
  };

  function currentProblems(): PodProblem[] {
    const out: PodProblem[] = [];
    for (const pod of pods.values()) {
      if (newHash && pod.metadata.labels?.['pod-template-hash'] !== newHash) continue;
      if (!newHash) continue;
      out.push(...podProblems(pod));
    }
    return out;
  }

  try {
    deployment = await client.getJson<DeploymentObject>(`${base}/deployments/${encodeURIComponent(name)}`);
    if (!deployment)
      return {
        name,
        ok: false,
        failure: 'gone',
        message: `deployment "${name}" does not exist`,
        timeline,
        problems: [],
      };
    await refreshNewReplicaSet();
    const selector = Object.entries(deployment.spec?.selector?.matchLabels ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const podList = await client.json<{ items: PodObject[]; metadata: { resourceVersion: string } }>(
      'GET',
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods?labelSelector=${encodeURIComponent(selector)}`,
    );
    for (const p of podList.items) pods.set(p.metadata.name!, p);
    evaluate();
    if (outcome) return outcome;

    // The deadline sleeps on the injected clock, so a sped-up clock (the rehearsal) shortens it too.
    clock
      .sleep(Math.max(0, options.deadline - clock.now()), abort.signal)
      .then(() =>
        finish({
          ok: false,
          failure: 'timeout',
          message: `deployment "${name}" did not finish rolling out within ${formatDuration(options.deadline - started)}: ${timeline.at(-1)?.message ?? ''}`,
          problems: currentProblems(),
        }),
      )
      .catch(() => {});
    // Stuck pods may send no further event: look again when a grace period runs out.
    const regrace = setInterval(() => evaluate(), Math.max(50, Math.min(options.stuckGraceMs, 5000)));
    options.signal?.addEventListener(
      'abort',
      () =>
        finish({
          ok: false,
          failure: 'cancelled',
          message: `waiting for deployment "${name}" was cancelled`,
        }),
      { once: true },
    );

    const watchDeployment = async () => {
      let rv = deployment!.metadata.resourceVersion!;
      for (;;) {
        const result = await client.watch(`${base}/deployments`, {
          resourceVersion: rv,
          fieldSelector: `metadata.name=${name}`,
          signal: abort.signal,
          onEvent: (type, object) => {
            if (type === 'DELETED') {
              finish({
                ok: false,
                failure: 'gone',
                message: `deployment "${name}" was deleted while rolling out`,
              });
              return true;
            }
            deployment = object as DeploymentObject;
            refreshNewReplicaSet().then(evaluate, (e) =>
              logger.debug(`reading ReplicaSets: ${errorMessage(e)}`),
            );
            evaluate();
            return outcome !== undefined;
          },
        });
        if (result !== 'gone') return;
        // The watch fell too far behind: list again and resume from there.
        deployment =
          (await client.getJson<DeploymentObject>(`${base}/deployments/${encodeURIComponent(name)}`)) ??
          deployment;
        rv = deployment!.metadata.resourceVersion!;
        evaluate();
      }
    };
    const watchPods = async () => {
      let rv = podList.metadata.resourceVersion;
      for (;;) {
        const result = await client.watch(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`, {
          resourceVersion: rv,
          labelSelector: selector,
          signal: abort.signal,
          onEvent: (type, object) => {
            const pod = object as PodObject;
            if (type === 'DELETED') pods.delete(pod.metadata.name!);
            else pods.set(pod.metadata.name!, pod);
            evaluate();
            return outcome !== undefined;
          },
        });
        if (result !== 'gone') return;
        const again = await client.json<{ items: PodObject[]; metadata: { resourceVersion: string } }>(
          'GET',
          `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods?labelSelector=${encodeURIComponent(selector)}`,
        );
        pods.clear();
        for (const p of again.items) pods.set(p.metadata.name!, p);
        rv = again.metadata.resourceVersion;
        evaluate();
      }
    };
    const watches = Promise.all([watchDeployment(), watchPods()]).catch((error: unknown) => {
      if (!outcome)
        finish({
          ok: false,
          failure: 'timeout',
          message: `watching deployment "${name}" failed: ${errorMessage(error)}`,
        });
    });
    await new Promise<void>((resolve) => {
      wake = resolve;
      if (outcome) resolve();
    });
    clearInterval(regrace);
    await watches;
    return outcome!;
  } finally {
    options.signal?.removeEventListener('abort', onOuterAbort);
    abort.abort();
  }
}

/** Recent events and the last log lines of failing pods, for the summary. */
export async function podDiagnostics(
  client: KubeClient,
  namespace: string,
  problems: PodProblem[],
  tailLines = 20,
): Promise<{ pod: string; events: string[]; logs: string }[]> {
  const out: { pod: string; events: string[]; logs: string }[] = [];
  const ns = encodeURIComponent(namespace);
  for (const pod of [...new Set(problems.map((p) => p.pod))].slice(0, 3)) {
    let events: string[] = [];
    let logs = '';
    try {
      const list = await client.getJson<{
        items?: {
          type?: string;
          reason?: string;
          message?: string;
          count?: number;
          lastTimestamp?: string;
          eventTime?: string;
        }[];
      }>(`/api/v1/namespaces/${ns}/events?fieldSelector=${encodeURIComponent(`involvedObject.name=${pod}`)}`);
      events = (list?.items ?? [])
        .slice(-8)
        .map(
          (e) =>
            `${e.type ?? 'Normal'} ${e.reason ?? ''}: ${e.message ?? ''}${e.count && e.count > 1 ? ` (x${e.count})` : ''}`,
        );
    } catch (error) {
      events = [`(events unavailable: ${errorMessage(error)})`];
    }
    const problem = problems.find((p) => p.pod === pod);
    if (problem?.container) {
      const previous = problem.reason === 'CrashLoopBackOff' ? '&previous=true' : '';
      try {
        const r = await client.once(
          'GET',
          `/api/v1/namespaces/${ns}/pods/${encodeURIComponent(pod)}/log?container=${encodeURIComponent(problem.container)}&tailLines=${tailLines}${previous}`,
          { accept: '*/*' },
        );
        logs = r.status === 200 ? r.body : '';
      } catch {
        logs = '';
      }
    }
    out.push({ pod, events, logs });
  }
  return out;
}

/** JSON with sorted keys, to compare two pod templates regardless of key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}

export interface RollbackResult {
  rolledBack: boolean;
  fromRevision?: string;
  toRevision?: string;
  message: string;
}

/**
 * `kubectl rollout undo`: the Deployment takes the pod template of the ReplicaSet with the
 * highest revision below the current one. A first deploy has nothing to go back to, and says so.
 */
export async function rollbackDeployment(
  client: KubeClient,
  namespace: string,
  name: string,
  /** The revision to go back to (the one running before this deploy); default: the one below the current. */
  toRevision?: string,
  attempt = 1,
  /** A PATCH was sent before and its answer lost: a template already equal to the target is ours. */
  sent = false,
): Promise<RollbackResult> {
  const base = `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}`;
  const deployment = await client.getJson<DeploymentObject>(
    `${base}/deployments/${encodeURIComponent(name)}`,
  );
  if (!deployment) return { rolledBack: false, message: `deployment "${name}" no longer exists` };
  const current = Number(deployment.metadata.annotations?.[REVISION_ANNOTATION] ?? 0);
  const selector = Object.entries(deployment.spec?.selector?.matchLabels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const list = await client.json<{
    items: (KubeObject & {
      spec?: {
        template?: DeploymentObject['spec'] extends infer S
          ? S extends { template?: infer T }
            ? T
            : never
          : never;
      };
    })[];
  }>('GET', `${base}/replicasets?labelSelector=${encodeURIComponent(selector)}`);
  const candidates = list.items
    .filter((rs) => rs.metadata.ownerReferences?.some((o) => o.uid === deployment.metadata.uid))
    .map((rs) => ({ rs, revision: Number(rs.metadata.annotations?.[REVISION_ANNOTATION] ?? 0) }))
    .filter((c) => c.revision > 0 && (toRevision ? c.revision === Number(toRevision) : c.revision < current))
    .sort((a, b) => b.revision - a.revision);
  const previous = candidates[0];
  if (!previous)
    return {
      rolledBack: false,
      fromRevision: String(current),
      message: toRevision
        ? `deployment "${name}" has no ReplicaSet of revision ${toRevision} left to roll back to`
        : `deployment "${name}" has no previous revision to roll back to (first deploy)`,
    };
  const template = structuredClone(previous.rs.spec!.template!) as {
    metadata?: { labels?: Record<string, string> };
  };
  if (template.metadata?.labels) delete template.metadata.labels['pod-template-hash'];
  // A deploy that changed only metadata or replicas left the template as it was: nothing to undo.
  if (canonical(template) === canonical(deployment.spec?.template)) {
    if (sent)
      return {
        rolledBack: true,
        fromRevision: String(current),
        toRevision: String(previous.revision),
        message: `rolled back deployment "${name}" to the template of revision ${previous.revision}`,
      };
    return {
      rolledBack: false,
      fromRevision: String(current),
      toRevision: String(previous.revision),
      message: `deployment "${name}" still has the pod template of revision ${previous.revision}; nothing to roll back`,
    };
  }
  try {
    await client.request(
      'PATCH',
      `${base}/deployments/${encodeURIComponent(name)}?fieldManager=pipeline-rollback`,
      {
        body: JSON.stringify([
          { op: 'test', path: '/metadata/resourceVersion', value: deployment.metadata.resourceVersion },
          { op: 'replace', path: '/spec/template', value: template },
        ]),
        contentType: 'application/json-patch+json',
        // The test of resourceVersion makes a repeat harmless: a PATCH that landed before its
        // answer was lost fails the test (422), and the fresh read below finds the template ours.
        idempotent: true,
      },
    );
  } catch (error) {
    if (error instanceof KubeApiError && (error.status === 409 || error.status === 422) && attempt < 5) {
      // Changed under us (the controller bumped it, or our own earlier attempt landed): again with a fresh read.
      return rollbackDeployment(client, namespace, name, toRevision, attempt + 1, true);
    }
    throw error;
  }
  return {
    rolledBack: true,
    fromRevision: String(current),
    toRevision: String(previous.revision),
    message: `rolled back deployment "${name}" from revision ${current} to the template of revision ${previous.revision}`,
  };
}
