/**
 * The judging half of waitForWorkload, without a cluster: a sequence of workload, pod and
 * revision events folded into the wait's state and judged at each step's time, down to the outcome
 * the wait would return.
 */
import { describe, expect, test } from '@jest/globals';
import {
  buildOutcome,
  foldWaitEvent,
  initialWaitState,
  judgeWait,
  type PodObject,
  type RolloutOutcome,
  revisionOf,
  timeoutVerdict,
  type WaitEvent,
  type WaitState,
  type WaitSubject,
} from '../../packages/kube/rollout.ts';
import type { WorkloadKind, WorkloadObject } from '../../packages/kube/status-viewers.ts';

const GRACE = 30_000;
const subject = (kind: WorkloadKind): WaitSubject => ({ kind, name: 'web', stuckGraceMs: GRACE });

/** `tick` is the grace timer looking again with no new event. */
type Step = [at: number, event: WaitEvent | 'tick'];

interface Replay {
  outcome: RolloutOutcome | undefined;
  notes: string[];
  state: WaitState;
}

function replay(kind: WorkloadKind, steps: Step[]): Replay {
  let state = initialWaitState();
  const notes: string[] = [];
  for (const [at, event] of steps) {
    if (event !== 'tick') state = foldWaitEvent(state, event);
    const judgement = judgeWait(subject(kind), state, at);
    state = { ...state, stuckSince: judgement.stuckSince };
    notes.push(...judgement.notes);
    if (judgement.verdict) {
      const timeline = notes.map((message) => ({ at, message }));
      return {
        outcome: buildOutcome('web', timeline, judgement.verdict, revisionOf(kind, state)),
        notes,
        state,
      };
    }
  }
  return { outcome: undefined, notes, state };
}

const deployment = (status: object, revision = '2'): WaitEvent => ({
  type: 'workload',
  object: {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', generation: 2, annotations: { 'deployment.kubernetes.io/revision': revision } },
    spec: { replicas: 3, selector: { matchLabels: { app: 'web' } } },
    status: { observedGeneration: 2, ...status },
  } as WorkloadObject,
});

const statefulSet = (status: object): WaitEvent => ({
  type: 'workload',
  object: {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'web', generation: 4 },
    spec: { replicas: 2, selector: { matchLabels: { app: 'web' } } },
    status: { observedGeneration: 4, currentRevision: 'web-6d5f', updateRevision: 'web-7c9b', ...status },
  },
});

const daemonSet = (status: object): WaitEvent => ({
  type: 'workload',
  object: {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: 'web', generation: 3 },
    spec: { selector: { matchLabels: { app: 'web' } } },
    status: { observedGeneration: 3, desiredNumberScheduled: 2, ...status },
  },
});

const revision = (podHash: string, number: number, key = String(number)): WaitEvent => ({
  type: 'revision',
  key,
  current: { podHash, revision: number },
});

type Waiting = { reason: string; message?: string };
const pod = (name: string, label: string, hash: string, waiting?: Waiting): PodObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, labels: { app: 'web', [label]: hash } },
  status: {
    phase: waiting ? 'Pending' : 'Running',
    containerStatuses: [
      {
        name: 'app',
        restartCount: waiting?.reason === 'CrashLoopBackOff' ? 5 : 0,
        ready: !waiting,
        state: waiting ? { waiting } : {},
        lastState:
          waiting?.reason === 'CrashLoopBackOff' ? { terminated: { exitCode: 1, reason: 'Error' } } : {},
      },
    ],
  },
});
const pods = (...list: PodObject[]): WaitEvent => ({
  type: 'pods',
  pods: new Map(list.map((p) => [p.metadata.name!, p])),
});
const RS = 'pod-template-hash';
const CR = 'controller-revision-hash';

describe('a Deployment', () => {
  test('finishes when its status viewer says so, with the revision from its annotation', () => {
    const { outcome, notes } = replay('Deployment', [
      [0, deployment({ replicas: 3, updatedReplicas: 1, availableReplicas: 0 })],
      [10, revision('7f9c', 2)],
      [20, pods(pod('web-7f9c-a', RS, '7f9c'), pod('web-5b1d-a', RS, '5b1d'))],
      [900, deployment({ replicas: 3, updatedReplicas: 3, availableReplicas: 3 })],
    ]);
    expect(outcome).toEqual({
      name: 'web',
      ok: true,
      message: 'deployment "web" successfully rolled out',
      revision: '2',
      problems: [],
      timeline: expect.any(Array),
    });
    expect(notes[0]).toBe(
      'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...',
    );
  });

  test('a new pod in CrashLoopBackOff fails the wait once the grace has passed, not before', () => {
    const crashing = pod('web-7f9c-a', RS, '7f9c', { reason: 'CrashLoopBackOff' });
    const steps: Step[] = [
      [0, deployment({ replicas: 4, updatedReplicas: 1 })],
      [0, revision('7f9c', 2)],
      [1_000, pods(crashing)],
      [GRACE, 'tick'],
    ];
    expect(replay('Deployment', steps).outcome).toBeUndefined();
    const { outcome, notes } = replay('Deployment', [...steps, [GRACE + 1_000, 'tick']]);
    expect(notes).toContain('pod web-7f9c-a container app is CrashLoopBackOff: last exit code 1 (Error)');
    expect(outcome).toMatchObject({
      ok: false,
      failure: 'stuck-pods',
      message:
        'deployment "web" cannot finish: pod web-7f9c-a container app is CrashLoopBackOff (last exit code 1 (Error))',
      revision: '2',
      problems: [{ pod: 'web-7f9c-a', container: 'app', reason: 'CrashLoopBackOff', restarts: 5 }],
    });
  });

  test("pods of the old ReplicaSet failing are not this rollout's problem", () => {
    const { outcome, state } = replay('Deployment', [
      [0, deployment({ replicas: 4, updatedReplicas: 1 })],
      [0, revision('7f9c', 2)],
      [0, pods(pod('web-5b1d-a', RS, '5b1d', { reason: 'ImagePullBackOff', message: 'not found' }))],
      [10 * GRACE, 'tick'],
    ]);
    expect(outcome).toBeUndefined();
    expect(state.stuckSince.size).toBe(0);
  });

  test('past its progress deadline it fails at once, with the new pods it found', () => {
    const { outcome } = replay('Deployment', [
      [0, revision('7f9c', 3)],
      [0, pods(pod('web-7f9c-a', RS, '7f9c', { reason: 'ErrImagePull', message: 'manifest unknown' }))],
      [
        5,
        deployment(
          {
            updatedReplicas: 1,
            conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }],
          },
          '3',
        ),
      ],
    ]);
    expect(outcome).toMatchObject({
      ok: false,
      failure: 'progress-deadline',
      message: 'deployment "web" exceeded its progress deadline',
      revision: '3',
      problems: [{ pod: 'web-7f9c-a', reason: 'ErrImagePull', message: 'manifest unknown' }],
    });
  });

  test('a new ReplicaSet hash drops the stuck clock of the old one: its pods get a grace of their own', () => {
    const steps: Step[] = [
      [0, deployment({ replicas: 4, updatedReplicas: 1 })],
      [0, revision('7f9c', 2)],
      [0, pods(pod('web-7f9c-a', RS, '7f9c', { reason: 'CrashLoopBackOff' }))],
      // The deployment is changed again mid-rollout: revision 3, a new ReplicaSet.
      [GRACE / 2, deployment({ replicas: 4, updatedReplicas: 0 }, '3')],
      [GRACE / 2, revision('c41a', 3)],
      [
        GRACE / 2,
        pods(
          pod('web-7f9c-a', RS, '7f9c', { reason: 'CrashLoopBackOff' }),
          pod('web-c41a-a', RS, 'c41a', { reason: 'ImagePullBackOff', message: 'pull access denied' }),
        ),
      ],
      // Where the first pod's grace would have ended: the regrace timer looks again.
      [GRACE, 'tick'],
    ];
    const before = replay('Deployment', steps);
    expect(before.outcome).toBeUndefined();
    expect([...before.state.stuckSince]).toEqual([['web-c41a-a/app/ImagePullBackOff', GRACE / 2]]);

    const { outcome } = replay('Deployment', [...steps, [GRACE / 2 + GRACE, 'tick']]);
    expect(outcome).toMatchObject({
      failure: 'stuck-pods',
      message:
        'deployment "web" cannot finish: pod web-c41a-a container app is ImagePullBackOff (pull access denied)',
      revision: '3',
    });
    expect(outcome?.problems.map((p) => p.pod)).toEqual(['web-c41a-a']);
  });

  test('a problem that clears and comes back starts its grace again', () => {
    const stuck = pod('web-7f9c-a', RS, '7f9c', { reason: 'CrashLoopBackOff' });
    const { outcome, state } = replay('Deployment', [
      [0, deployment({ replicas: 4, updatedReplicas: 1 })],
      [0, revision('7f9c', 2)],
      [0, pods(stuck)],
      [GRACE - 1, pods(pod('web-7f9c-a', RS, '7f9c'))],
      [GRACE + 1, pods(stuck)],
      [2 * GRACE, 'tick'],
    ]);
    expect(outcome).toBeUndefined();
    expect(state.stuckSince.get('web-7f9c-a/app/CrashLoopBackOff')).toBe(GRACE + 1);
  });

  test('a deleted Deployment keeps the last one seen, so its revision is still reported', () => {
    let state = foldWaitEvent(initialWaitState(), deployment({}, '5'));
    state = foldWaitEvent(state, { type: 'workload', object: undefined });
    expect(revisionOf('Deployment', state)).toBe('5');
  });
});

describe('a StatefulSet', () => {
  test('finishes with the revision read from its history', () => {
    const { outcome } = replay('StatefulSet', [
      [0, statefulSet({ readyReplicas: 1, updatedReplicas: 0 })],
      [0, revision('web-7c9b', 4, '4/web-7c9b')],
      [3_000, statefulSet({ readyReplicas: 2, updatedReplicas: 2, currentRevision: 'web-7c9b' })],
    ]);
    expect(outcome).toMatchObject({
      ok: true,
      message: 'statefulset rolling update complete 0 pods at revision web-7c9b...',
      revision: '4',
    });
  });

  test('a new pod in ImagePullBackOff fails the wait after the grace', () => {
    const { outcome } = replay('StatefulSet', [
      [0, statefulSet({ readyReplicas: 1, updatedReplicas: 1 })],
      [0, revision('web-7c9b', 4, '4/web-7c9b')],
      [
        0,
        pods(
          pod('web-0', CR, 'web-6d5f'),
          pod('web-1', CR, 'web-7c9b', { reason: 'ImagePullBackOff', message: 'Back-off pulling image' }),
        ),
      ],
      [GRACE, 'tick'],
    ]);
    expect(outcome).toMatchObject({
      failure: 'stuck-pods',
      message:
        'statefulset "web" cannot finish: pod web-1 container app is ImagePullBackOff (Back-off pulling image)',
      revision: '4',
      problems: [{ pod: 'web-1', reason: 'ImagePullBackOff' }],
    });
  });

  test('before its revision is known no pod is judged', () => {
    const { outcome } = replay('StatefulSet', [
      [0, statefulSet({ readyReplicas: 1 })],
      [0, pods(pod('web-1', CR, 'web-7c9b', { reason: 'CrashLoopBackOff' }))],
      [10 * GRACE, 'tick'],
    ]);
    expect(outcome).toBeUndefined();
  });
});

describe('a DaemonSet', () => {
  test('finishes when every scheduled pod is updated and available', () => {
    const { outcome, notes } = replay('DaemonSet', [
      [0, daemonSet({ updatedNumberScheduled: 1, numberAvailable: 1 })],
      [0, revision('64f8', 7, '3/')],
      [5_000, daemonSet({ updatedNumberScheduled: 2, numberAvailable: 1 })],
      [9_000, daemonSet({ updatedNumberScheduled: 2, numberAvailable: 2 })],
    ]);
    expect(notes).toEqual([
      'Waiting for daemon set "web" rollout to finish: 1 out of 2 new pods have been updated...',
      'Waiting for daemon set "web" rollout to finish: 1 out of 2 new pods have been updated...',
      'Waiting for daemon set "web" rollout to finish: 1 of 2 updated pods are available...',
      'daemon set "web" successfully rolled out',
    ]);
    expect(outcome).toMatchObject({ ok: true, revision: '7' });
  });

  test('a new pod in CrashLoopBackOff fails the wait after the grace', () => {
    const { outcome } = replay('DaemonSet', [
      [0, daemonSet({ updatedNumberScheduled: 2, numberAvailable: 1 })],
      [0, revision('64f8', 7, '3/')],
      [100, pods(pod('web-x1', CR, '64f8'), pod('web-x2', CR, '64f8', { reason: 'CrashLoopBackOff' }))],
      [100 + GRACE, 'tick'],
    ]);
    expect(outcome).toMatchObject({
      failure: 'stuck-pods',
      message:
        'daemon set "web" cannot finish: pod web-x2 container app is CrashLoopBackOff (last exit code 1 (Error))',
      revision: '7',
    });
  });
});

describe('the end of the wait', () => {
  test('the deadline names where the rollout stood and the new pods in trouble', () => {
    let state = foldWaitEvent(initialWaitState(), revision('7f9c', 2));
    state = foldWaitEvent(
      state,
      pods(pod('web-7f9c-a', RS, '7f9c', { reason: 'CreateContainerConfigError' })),
    );
    expect(
      timeoutVerdict(subject('Deployment'), state, 300_000, 'Waiting for 1 pods to be ready...'),
    ).toMatchObject({
      ok: false,
      failure: 'timeout',
      message: 'deployment "web" did not finish rolling out within 5m: Waiting for 1 pods to be ready...',
      problems: [{ pod: 'web-7f9c-a', reason: 'CreateContainerConfigError' }],
    });
  });

  test('a revision event without a current revision forgets the old hash', () => {
    let state = foldWaitEvent(initialWaitState(), revision('7f9c', 2));
    state = foldWaitEvent(state, { type: 'revision', key: '3', current: undefined });
    expect(state).toEqual(initialWaitState());
  });
});
