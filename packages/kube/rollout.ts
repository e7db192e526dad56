import { type Clock, errorMessage, formatDuration, type Logger, systemClock } from '../core/index.ts';
import type { KubeClient } from './client.ts';
import {
  currentRevision,
  podRevisionLabel,
  REVISION_ANNOTATION,
  type Revision,
  workloadHistory,
} from './history.ts';
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

/** What the wait knows, folded from the watch events on the workload and its pods. */
export interface WaitState {
  workload?: WorkloadObject;
  pods: ReadonlyMap<string, PodObject>;
  /** When each stuck pod problem (pod/container/reason) was first seen. */
  stuckSince: ReadonlyMap<string, number>;
  /** The label value of the pods of the revision being rolled out, and that revision's number. */
  newHash?: string;
  revision?: string;
  /** What the revision was last read for, so the history is read again only when it moves. */
  historyKey?: string;
}

export type WaitEvent =
  | { type: 'workload'; object: WorkloadObject | undefined }
  | { type: 'pods'; pods: ReadonlyMap<string, PodObject> }
  | { type: 'revision'; key: string; current: Pick<Revision, 'podHash' | 'revision'> | undefined };

export interface WaitSubject {
  kind: WorkloadKind;
  name: string;
  stuckGraceMs: number;
}

/** How a wait ended, before the name, timeline and revision are added. */
export type Verdict = Omit<RolloutOutcome, 'name' | 'timeline' | 'problems' | 'revision'> & {
  problems?: PodProblem[];
};

export interface Judgement {
  stuckSince: ReadonlyMap<string, number>;
  /** Lines for the timeline, in order. */
  notes: string[];
  verdict?: Verdict;
}

export const initialWaitState = (workload?: WorkloadObject): WaitState => ({
  ...(workload ? { workload } : {}),
  pods: new Map(),
  stuckSince: new Map(),
});

/** Folds one watch event into the state. A deleted workload keeps the last one seen: its revision is reported. */
export function foldWaitEvent(state: WaitState, event: WaitEvent): WaitState {
  switch (event.type) {
    case 'workload':
      return event.object ? { ...state, workload: event.object } : state;
    case 'pods':
      return { ...state, pods: event.pods };
    case 'revision': {
      const { newHash: _h, revision: _r, historyKey: _k, ...rest } = state;
      const current = event.current;
      if (!current) return rest;
      return {
        ...rest,
        ...(current.podHash ? { newHash: current.podHash } : {}),
        revision: String(current.revision),
        historyKey: event.key,
      };
    }
  }
}

/** The revision moves with the Deployment's annotation, or a StatefulSet's or DaemonSet's generation. */
export function revisionKey(kind: WorkloadKind, workload: WorkloadObject): string | undefined {
  return kind === 'Deployment'
    ? workload.metadata.annotations?.[REVISION_ANNOTATION]
    : `${workload.status?.observedGeneration ?? 0}/${(workload as StatefulSetObject).status?.updateRevision ?? ''}`;
}

export function revisionOf(kind: WorkloadKind, state: WaitState): string | undefined {
  return kind === 'Deployment' ? state.workload?.metadata.annotations?.[REVISION_ANNOTATION] : state.revision;
}

/** Problems of the pods of the revision being rolled out; old pods failing is not this rollout's doing. */
export function newRevisionProblems(kind: WorkloadKind, state: WaitState): PodProblem[] {
  if (!state.newHash) return [];
  const label = podRevisionLabel(kind);
  return [...state.pods.values()]
    .filter((p) => p.metadata.labels?.[label] === state.newHash)
    .flatMap(podProblems);
}

/**
 * Judges the state at `now`: the kind's status viewer first (done, or past its progress
 * deadline), then the new revision's pods, failing for the first problem older than the grace.
 */
export function judgeWait(subject: WaitSubject, state: WaitState, now: number): Judgement {
  const { kind, name } = subject;
  if (!state.workload) return { stuckSince: state.stuckSince, notes: [] };
  const status = rolloutStatus(kind, state.workload);
  const notes = [status.message];
  if (status.done)
    return { stuckSince: state.stuckSince, notes, verdict: { ok: true, message: status.message } };
  const problems = newRevisionProblems(kind, state);
  if (status.failed)
    return {
      stuckSince: state.stuckSince,
      notes,
      verdict: { ok: false, failure: 'progress-deadline', message: status.message, problems },
    };
  const stuckSince = new Map<string, number>();
  for (const p of problems) {
    const key = `${p.pod}/${p.container ?? ''}/${p.reason}`;
    const where = `pod ${p.pod}${p.container ? ` container ${p.container}` : ''} is ${p.reason}`;
    const seen = stuckSince.get(key) ?? state.stuckSince.get(key);
    if (seen === undefined) notes.push(`${where}${p.message ? `: ${p.message}` : ''}`);
    const since = seen ?? now;
    stuckSince.set(key, since);
    if (now - since >= subject.stuckGraceMs) {
      const message = `${KIND_WORDS[kind]} "${name}" cannot finish: ${where}${p.message ? ` (${p.message})` : ''}`;
      return { stuckSince, notes, verdict: { ok: false, failure: 'stuck-pods', message, problems } };
    }
  }
  return { stuckSince, notes };
}

/** The wait ran out of time: says where it stood. */
export function timeoutVerdict(
  subject: WaitSubject,
  state: WaitState,
  waitedMs: number,
  lastNote: string | undefined,
): Verdict {
  return {
    ok: false,
    failure: 'timeout',
    message: `${KIND_WORDS[subject.kind]} "${subject.name}" did not finish rolling out within ${formatDuration(waitedMs)}: ${lastNote ?? ''}`,
    problems: newRevisionProblems(subject.kind, state),
  };
}

export function buildOutcome(
  name: string,
  timeline: RolloutEvent[],
  verdict: Verdict,
  revision: string | undefined,
): RolloutOutcome {
  return { name, timeline, problems: [], ...verdict, ...(revision ? { revision } : {}) };
}

/**
 * Waits for one workload the way `kubectl rollout status` does (its kind's status viewer),
 * driven by watch events on the workload and its pods, under one deadline. Better than kubectl:
 * pods of the new revision stuck in ImagePullBackOff, CrashLoopBackOff or Unschedulable for
 * longer than the grace period fail the wait at once, with their reasons.
 */
export function waitForWorkload(options: WaitOptions): Promise<RolloutOutcome> {
  return new WorkloadWait(options).run();
}

/** The wait's I/O: the two watches, the grace timer, cancellation and the timeline; the judging is above. */
class WorkloadWait {
  private readonly options: WaitOptions;
  private readonly subject: WaitSubject;
  private readonly words: string;
  private readonly clock: Clock;
  private readonly started: number;
  private readonly timeline: RolloutEvent[] = [];
  private readonly stop = new AbortController();
  private state: WaitState = initialWaitState();
  private outcome: RolloutOutcome | undefined;

  constructor(options: WaitOptions) {
    this.options = options;
    const kind = options.kind ?? 'Deployment';
    this.subject = { kind, name: options.name, stuckGraceMs: options.stuckGraceMs };
    this.words = KIND_WORDS[kind];
    this.clock = options.clock ?? systemClock;
    this.started = this.clock.now();
  }

  private get cancelled(): Verdict {
    return {
      ok: false,
      failure: 'cancelled',
      message: `waiting for ${this.words} "${this.options.name}" was cancelled`,
    };
  }

  async run(): Promise<RolloutOutcome> {
    const { client, namespace, name, signal } = this.options;
    const { kind } = this.subject;
    if (signal?.aborted) return this.ended(this.cancelled);
    const onOuterAbort = () => this.finish(this.cancelled);
    signal?.addEventListener('abort', onOuterAbort, { once: true });
    // Stuck pods may send no further event: look again when a grace period runs out.
    let regrace: ReturnType<typeof setInterval> | undefined;
    try {
      const workload = await client.getJson<WorkloadObject>(pathOf(kind, namespace, name));
      if (!workload)
        return this.ended({ ok: false, failure: 'gone', message: `${this.words} "${name}" does not exist` });
      this.state = initialWaitState(workload);
      await this.refreshRevision();
      const graceMs = this.options.stuckGraceMs;
      regrace = setInterval(() => this.evaluate(), Math.max(50, Math.min(graceMs, 5000)));
      await Promise.all([this.watchWorkload(), this.watchPods(workload)]).catch((error: unknown) =>
        this.finish({
          ok: false,
          failure: 'timeout',
          message: `watching ${this.words} "${name}" failed: ${errorMessage(error)}`,
        }),
      );
      // A StatefulSet's or DaemonSet's revision is read from its history: report the one that finished.
      if (this.outcome?.ok && kind !== 'Deployment') {
        await this.refreshRevision().catch(() => {});
        if (this.state.revision) this.outcome.revision = this.state.revision;
      }
      return this.outcome ?? this.ended(this.cancelled);
    } finally {
      if (regrace) clearInterval(regrace);
      signal?.removeEventListener('abort', onOuterAbort);
      this.stop.abort();
    }
  }

  private watchWorkload(): Promise<void> {
    const { client, namespace, name, deadline, logger } = this.options;
    return watchUntil<WorkloadObject, true>({
      client,
      path: collectionPathOf(this.subject.kind, namespace),
      fieldSelector: `metadata.name=${name}`,
      deadline,
      clock: this.clock,
      logger,
      signal: this.stop.signal,
      condition: (objects) => {
        const object = objects.get(name);
        if (!object) {
          this.finish({
            ok: false,
            failure: 'gone',
            message: `${this.words} "${name}" was deleted while rolling out`,
          });
          return true;
        }
        this.state = foldWaitEvent(this.state, { type: 'workload', object });
        void this.refreshThenEvaluate();
        this.evaluate();
        return this.outcome ? true : undefined;
      },
    }).then((result) => {
      if (result.state !== 'deadline') return;
      const waited = deadline - this.started;
      this.finish(timeoutVerdict(this.subject, this.state, waited, this.timeline.at(-1)?.message));
    });
  }

  private watchPods(workload: WorkloadObject): Promise<unknown> {
    const { client, namespace, logger } = this.options;
    return watchUntil<PodObject, true>({
      client,
      path: collectionPathOf('Pod', namespace),
      labelSelector: selectorText(workload.spec?.selector?.matchLabels ?? {}),
      clock: this.clock,
      logger,
      signal: this.stop.signal,
      condition: (pods) => {
        this.state = foldWaitEvent(this.state, { type: 'pods', pods });
        this.evaluate();
        return this.outcome ? true : undefined;
      },
    });
  }

  private async refreshRevision(): Promise<void> {
    const { client, namespace } = this.options;
    const { kind } = this.subject;
    const workload = this.state.workload;
    if (!workload) return;
    const key = revisionKey(kind, workload);
    if (!key || key === this.state.historyKey) return;
    const history = await workloadHistory(client, namespace, kind, workload);
    const current = currentRevision(kind, workload, history);
    this.state = foldWaitEvent(this.state, { type: 'revision', key, current });
  }

  private refreshThenEvaluate(): Promise<void> {
    return this.refreshRevision().then(
      () => this.evaluate(),
      (e) =>
        this.options.logger.debug(
          `reading the revisions of ${this.words} "${this.options.name}": ${errorMessage(e)}`,
        ),
    );
  }

  private evaluate(): void {
    if (this.outcome || !this.state.workload) return;
    const judgement = judgeWait(this.subject, this.state, this.clock.now());
    this.state = { ...this.state, stuckSince: judgement.stuckSince };
    for (const message of judgement.notes) this.note(message);
    if (judgement.verdict) this.finish(judgement.verdict);
  }

  private note(message: string): void {
    if (this.timeline.at(-1)?.message === message) return;
    this.timeline.push({ at: this.clock.now() - this.started, message });
    this.options.logger.info(`${this.options.name}: ${message}`);
  }

  private finish(verdict: Verdict): void {
    this.outcome ??= buildOutcome(
      this.options.name,
      this.timeline,
      verdict,
      revisionOf(this.subject.kind, this.state),
    );
    this.stop.abort();
  }

  private ended(verdict: Verdict): RolloutOutcome {
    return buildOutcome(this.options.name, this.timeline, verdict, undefined);
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
