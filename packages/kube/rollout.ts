import { type Clock, errorMessage, formatDuration, type Logger, systemClock } from '../core/index.ts';
import type { KubeClient } from './client.ts';
import { currentRevision, podRevisionLabel, REVISION_ANNOTATION, workloadHistory } from './history.ts';
import { collectionPathOf, pathOf, selectorText } from './objects.ts';
import type { KubeObject } from './resources.ts';
import {
  type Condition,
  KIND_WORDS,
  rolloutStatus,
  type StatefulSetObject,
  type WorkloadKind,
  type WorkloadObject,
} from './status-viewers.ts';
import { watchUntil } from './watch.ts';

export { REVISION_ANNOTATION } from './history.ts';
export type { DeploymentObject } from './status-viewers.ts';

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

/** Pod states that will not fix themselves in time: better to say so than to wait for the deadline. */
const STUCK_REASONS = new Set([
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
  /** Default Deployment. */
  kind?: WorkloadKind;
  /** Absolute clock time the wait must end by. */
  deadline: number;
  /** How long a pod may stay in a stuck state before the rollout is failed for it. */
  stuckGraceMs: number;
  clock?: Clock;
  logger: Logger;
  signal?: AbortSignal;
}

export function waitForDeployment(options: Omit<WaitOptions, 'kind'>): Promise<RolloutOutcome> {
  return waitForWorkload({ ...options, kind: 'Deployment' });
}

/**
 * Waits for one workload the way `kubectl rollout status` does (its kind's status viewer),
 * driven by watch events on the workload and its pods, under one deadline. Better than kubectl:
 * pods of the new revision stuck in ImagePullBackOff, CrashLoopBackOff or Unschedulable for
 * longer than the grace period fail the wait at once, with their reasons.
 */
export async function waitForWorkload(options: WaitOptions): Promise<RolloutOutcome> {
  const { client, namespace, name, logger } = options;
  const kind = options.kind ?? 'Deployment';
  const words = KIND_WORDS[kind];
  const clock = options.clock ?? systemClock;
  const started = clock.now();
  const timeline: RolloutEvent[] = [];
  const note = (message: string) => {
    if (timeline.at(-1)?.message === message) return;
    timeline.push({ at: clock.now() - started, message });
    logger.info(`${name}: ${message}`);
  };
  const cancelled = `waiting for ${words} "${name}" was cancelled`;
  const ended = (
    o: Omit<RolloutOutcome, 'name' | 'timeline' | 'problems'> & { problems?: PodProblem[] },
  ) => ({
    name,
    timeline,
    problems: [],
    ...o,
  });
  if (options.signal?.aborted) return ended({ ok: false, failure: 'cancelled', message: cancelled });
  const stop = new AbortController();
  const onOuterAbort = () => finish({ ok: false, failure: 'cancelled', message: cancelled });
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });

  let workload: WorkloadObject | undefined;
  let pods: ReadonlyMap<string, PodObject> = new Map();
  const stuckSince = new Map<string, number>();
  // The label value of the pods of the revision being rolled out, and that revision's number.
  let newHash: string | undefined;
  let revision: string | undefined;
  let historyKey: string | undefined;
  let outcome: RolloutOutcome | undefined;
  const revisionOf = () =>
    kind === 'Deployment' ? workload?.metadata.annotations?.[REVISION_ANNOTATION] : revision;
  function finish(o: Omit<RolloutOutcome, 'name' | 'timeline' | 'problems'> & { problems?: PodProblem[] }) {
    const r = revisionOf();
    outcome ??= ended({ ...o, ...(r ? { revision: r } : {}) });
    stop.abort();
  }

  // The revision moves with the Deployment's annotation, or a StatefulSet's or DaemonSet's generation.
  const refreshRevision = async () => {
    if (!workload) return;
    const key =
      kind === 'Deployment'
        ? workload.metadata.annotations?.[REVISION_ANNOTATION]
        : `${workload.status?.observedGeneration ?? 0}/${(workload as StatefulSetObject).status?.updateRevision ?? ''}`;
    if (!key || key === historyKey) return;
    const history = await workloadHistory(client, namespace, kind, workload);
    const current = currentRevision(kind, workload, history);
    newHash = current?.podHash;
    revision = current ? String(current.revision) : undefined;
    historyKey = current ? key : undefined;
  };
  const refreshThenEvaluate = () =>
    refreshRevision().then(evaluate, (e) =>
      logger.debug(`reading the revisions of ${words} "${name}": ${errorMessage(e)}`),
    );

  function currentProblems(): PodProblem[] {
    if (!newHash) return [];
    const label = podRevisionLabel(kind);
    return [...pods.values()].filter((p) => p.metadata.labels?.[label] === newHash).flatMap(podProblems);
  }

  function evaluate() {
    if (outcome || !workload) return;
    const status = rolloutStatus(kind, workload);
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
      const where = `pod ${p.pod}${p.container ? ` container ${p.container}` : ''} is ${p.reason}`;
      seen.add(key);
      if (!stuckSince.has(key)) {
        stuckSince.set(key, now);
        note(`${where}${p.message ? `: ${p.message}` : ''}`);
      }
      if (now - stuckSince.get(key)! >= options.stuckGraceMs)
        return finish({
          ok: false,
          failure: 'stuck-pods',
          message: `${words} "${name}" cannot finish: ${where}${p.message ? ` (${p.message})` : ''}`,
          problems,
        });
    }
    for (const key of [...stuckSince.keys()]) if (!seen.has(key)) stuckSince.delete(key);
  }

  // Stuck pods may send no further event: look again when a grace period runs out.
  let regrace: ReturnType<typeof setInterval> | undefined;
  try {
    workload = await client.getJson<WorkloadObject>(pathOf(kind, namespace, name));
    if (!workload) return ended({ ok: false, failure: 'gone', message: `${words} "${name}" does not exist` });
    await refreshRevision();
    regrace = setInterval(() => evaluate(), Math.max(50, Math.min(options.stuckGraceMs, 5000)));
    const watchWorkload = watchUntil<WorkloadObject, true>({
      client,
      path: collectionPathOf(kind, namespace),
      fieldSelector: `metadata.name=${name}`,
      deadline: options.deadline,
      clock,
      logger,
      signal: stop.signal,
      condition: (objects) => {
        const now = objects.get(name);
        if (!now) {
          finish({ ok: false, failure: 'gone', message: `${words} "${name}" was deleted while rolling out` });
          return true;
        }
        workload = now;
        void refreshThenEvaluate();
        evaluate();
        return outcome ? true : undefined;
      },
    }).then((result) => {
      if (result.state === 'deadline')
        finish({
          ok: false,
          failure: 'timeout',
          message: `${words} "${name}" did not finish rolling out within ${formatDuration(options.deadline - started)}: ${timeline.at(-1)?.message ?? ''}`,
          problems: currentProblems(),
        });
    });
    const watchPods = watchUntil<PodObject, true>({
      client,
      path: collectionPathOf('Pod', namespace),
      labelSelector: selectorText(workload.spec?.selector?.matchLabels ?? {}),
      clock,
      logger,
      signal: stop.signal,
      condition: (objects) => {
        pods = objects;
        evaluate();
        return outcome ? true : undefined;
      },
    });
    await Promise.all([watchWorkload, watchPods]).catch((error: unknown) =>
      finish({
        ok: false,
        failure: 'timeout',
        message: `watching ${words} "${name}" failed: ${errorMessage(error)}`,
      }),
    );
    // A StatefulSet's or DaemonSet's revision is read from its history: report the one that finished.
    if (outcome?.ok && kind !== 'Deployment') {
      await refreshRevision().catch(() => {});
      if (revision) outcome.revision = revision;
    }
    return outcome ?? ended({ ok: false, failure: 'cancelled', message: cancelled });
  } finally {
    if (regrace) clearInterval(regrace);
    options.signal?.removeEventListener('abort', onOuterAbort);
    stop.abort();
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
