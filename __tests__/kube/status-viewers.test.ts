/**
 * The rollout verdicts with kubectl's rules and words (rollout_status.go), the stuck-pod reasons,
 * `rollout undo`'s choice of revision and the Lease acquisition rule: pure functions, no cluster.
 */
import { describe, expect, test } from '@jest/globals';
import { chooseRollbackRevision, currentRevision, type Revision } from '../../packages/kube/history.ts';
import { claimLease, type LeaseObject } from '../../packages/kube/lease.ts';
import { podProblems } from '../../packages/kube/rollout.ts';
import {
  daemonSetRolloutStatus,
  deploymentRolloutStatus,
  statefulSetRolloutStatus,
} from '../../packages/kube/status-viewers.ts';

const meta = (generation = 2) => ({ name: 'web', generation });

describe('deploymentRolloutStatus', () => {
  const d = (status: object, replicas = 3, generation = 2) => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(generation),
    spec: { replicas },
    status: { observedGeneration: 2, ...status },
  });
  test.each([
    [{ observedGeneration: 1 }, false, 'Waiting for deployment spec update to be observed...'],
    [
      { updatedReplicas: 1, replicas: 3 },
      false,
      'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...',
    ],
    [
      { updatedReplicas: 3, replicas: 4 },
      false,
      'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...',
    ],
    [
      { updatedReplicas: 3, replicas: 3, availableReplicas: 2 },
      false,
      'Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...',
    ],
    [
      { updatedReplicas: 3, replicas: 3, availableReplicas: 3 },
      true,
      'deployment "web" successfully rolled out',
    ],
  ])('%j → done %s: %s', (status, done, message) => {
    expect(deploymentRolloutStatus(d(status))).toEqual({ done, failed: false, message });
  });

  test('a Progressing condition with ProgressDeadlineExceeded fails, before counting replicas', () => {
    const status = deploymentRolloutStatus(
      d({
        updatedReplicas: 1,
        conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }],
      }),
    );
    expect(status).toEqual({
      done: false,
      failed: true,
      message: 'deployment "web" exceeded its progress deadline',
    });
  });

  test('an unobserved spec is never done, even with every replica available', () => {
    expect(
      deploymentRolloutStatus(d({ updatedReplicas: 3, replicas: 3, availableReplicas: 3 }, 3, 3)).done,
    ).toBe(false);
  });

  test('spec.replicas defaults to 1, as the API server defaults it', () => {
    const one = { ...d({ updatedReplicas: 1, replicas: 1, availableReplicas: 1 }), spec: {} };
    expect(deploymentRolloutStatus(one).done).toBe(true);
  });
});

describe('statefulSetRolloutStatus', () => {
  const s = (spec: object, status: object) => ({
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: meta(),
    spec: { replicas: 3, ...spec },
    status: { observedGeneration: 2, ...status },
  });
  const rolling = (partition?: number) => ({
    updateStrategy: { type: 'RollingUpdate', rollingUpdate: partition === undefined ? {} : { partition } },
  });

  test('observedGeneration 0 or behind waits for the spec to be observed', () => {
    expect(statefulSetRolloutStatus(s(rolling(0), { observedGeneration: 0 })).message).toBe(
      'Waiting for statefulset spec update to be observed...',
    );
    expect(statefulSetRolloutStatus(s(rolling(0), { observedGeneration: 1 })).done).toBe(false);
  });

  test('counts the pods not ready before anything else', () => {
    expect(statefulSetRolloutStatus(s(rolling(0), { readyReplicas: 1, updatedReplicas: 3 }))).toEqual({
      done: false,
      failed: false,
      message: 'Waiting for 2 pods to be ready...',
    });
  });

  test('a partitioned rolling update is done when the pods at and above the partition are updated', () => {
    expect(statefulSetRolloutStatus(s(rolling(2), { readyReplicas: 3, updatedReplicas: 0 })).message).toBe(
      'Waiting for partitioned roll out to finish: 0 out of 1 new pods have been updated...',
    );
    expect(statefulSetRolloutStatus(s(rolling(2), { readyReplicas: 3, updatedReplicas: 1 }))).toEqual({
      done: true,
      failed: false,
      message: 'partitioned roll out complete: 1 new pods have been updated...',
    });
    expect(statefulSetRolloutStatus(s(rolling(0), { readyReplicas: 3, updatedReplicas: 2 })).done).toBe(
      false,
    );
  });

  test('without a partition, done when the current revision is the update revision', () => {
    const spec = { updateStrategy: { type: 'RollingUpdate' } };
    expect(
      statefulSetRolloutStatus(
        s(spec, { readyReplicas: 3, updatedReplicas: 1, currentRevision: 'web-a', updateRevision: 'web-b' }),
      ).message,
    ).toBe('waiting for statefulset rolling update to complete 1 pods at revision web-b...');
    expect(
      statefulSetRolloutStatus(
        s(spec, { readyReplicas: 3, currentReplicas: 3, currentRevision: 'web-b', updateRevision: 'web-b' }),
      ),
    ).toEqual({
      done: true,
      failed: false,
      message: 'statefulset rolling update complete 3 pods at revision web-b...',
    });
  });

  test('OnDelete is done once observed and ready, and says the pods change only when deleted', () => {
    const status = statefulSetRolloutStatus(
      s(
        { updateStrategy: { type: 'OnDelete' } },
        { readyReplicas: 3, updatedReplicas: 0, updateRevision: 'web-b' },
      ),
    );
    expect(status.done).toBe(true);
    expect(status.message).toContain('OnDelete');
    expect(status.message).toContain('0 of 3 pods run revision web-b');
  });
});

describe('daemonSetRolloutStatus', () => {
  const ds = (status: object, strategy = 'RollingUpdate') => ({
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: meta(),
    spec: { updateStrategy: { type: strategy } },
    status: { observedGeneration: 2, desiredNumberScheduled: 4, ...status },
  });
  test.each([
    [{ observedGeneration: 1 }, false, 'Waiting for daemon set spec update to be observed...'],
    [
      { updatedNumberScheduled: 1 },
      false,
      'Waiting for daemon set "web" rollout to finish: 1 out of 4 new pods have been updated...',
    ],
    [
      { updatedNumberScheduled: 4, numberAvailable: 3 },
      false,
      'Waiting for daemon set "web" rollout to finish: 3 of 4 updated pods are available...',
    ],
    [{ updatedNumberScheduled: 4, numberAvailable: 4 }, true, 'daemon set "web" successfully rolled out'],
  ])('%j → done %s: %s', (status, done, message) => {
    expect(daemonSetRolloutStatus(ds(status))).toEqual({ done, failed: false, message });
  });

  test('OnDelete waits for available pods only', () => {
    expect(
      daemonSetRolloutStatus(ds({ updatedNumberScheduled: 0, numberAvailable: 3 }, 'OnDelete')).done,
    ).toBe(false);
    const done = daemonSetRolloutStatus(ds({ updatedNumberScheduled: 0, numberAvailable: 4 }, 'OnDelete'));
    expect(done.done).toBe(true);
    expect(done.message).toContain('0 of 4 pods are updated');
  });
});

describe('podProblems', () => {
  const pod = (status: object) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-1' }, status });

  test('a container waiting in a stuck reason is a problem, with its message or last exit', () => {
    expect(
      podProblems(
        pod({
          containerStatuses: [
            {
              name: 'app',
              restartCount: 4,
              state: { waiting: { reason: 'CrashLoopBackOff' } },
              lastState: { terminated: { exitCode: 1, reason: 'Error' } },
            },
            {
              name: 'side',
              state: { waiting: { reason: 'ImagePullBackOff', message: 'pull access denied' } },
            },
          ],
        }),
      ),
    ).toEqual([
      {
        pod: 'web-1',
        container: 'app',
        reason: 'CrashLoopBackOff',
        message: 'last exit code 1 (Error)',
        restarts: 4,
      },
      {
        pod: 'web-1',
        container: 'side',
        reason: 'ImagePullBackOff',
        message: 'pull access denied',
        restarts: 0,
      },
    ]);
  });

  test('init containers count; waiting to start (ContainerCreating, PodInitializing) does not', () => {
    const problems = podProblems(
      pod({
        initContainerStatuses: [
          { name: 'migrate', state: { waiting: { reason: 'CreateContainerConfigError' } } },
        ],
        containerStatuses: [{ name: 'app', state: { waiting: { reason: 'PodInitializing' } } }],
      }),
    );
    expect(problems.map((p) => `${p.container}:${p.reason}`)).toEqual(['migrate:CreateContainerConfigError']);
    expect(
      podProblems(
        pod({ containerStatuses: [{ name: 'app', state: { waiting: { reason: 'ContainerCreating' } } }] }),
      ),
    ).toEqual([]);
  });

  test('an unschedulable pod says why the scheduler refused it', () => {
    expect(
      podProblems(
        pod({
          conditions: [
            {
              type: 'PodScheduled',
              status: 'False',
              reason: 'Unschedulable',
              message: '0/3 nodes are available',
            },
          ],
        }),
      ),
    ).toEqual([{ pod: 'web-1', reason: 'Unschedulable', message: '0/3 nodes are available', restarts: 0 }]);
  });
});

describe("rollout undo's choice of revision", () => {
  const rev = (revision: number, name = `web-${revision}`): Revision => ({
    revision,
    name,
    template: { spec: { containers: [{ name: 'web', image: `v${revision}` }] } },
    podHash: name,
  });
  const history = [rev(5), rev(3), rev(4), rev(1)];

  test('without a target: the highest revision below the current, whatever the list order', () => {
    expect(chooseRollbackRevision(history, 5)?.revision).toBe(4);
    expect(chooseRollbackRevision(history, 4)?.revision).toBe(3);
  });
  test('a named target is taken exactly, even above the current', () => {
    expect(chooseRollbackRevision(history, 4, '5')?.revision).toBe(5);
    expect(chooseRollbackRevision(history, 5, '1')?.revision).toBe(1);
  });
  test('nothing below a first revision, nor a target that was pruned', () => {
    expect(chooseRollbackRevision([rev(1)], 1)).toBeUndefined();
    expect(chooseRollbackRevision(history, 5, '2')).toBeUndefined();
  });
  test("a StatefulSet's current revision is its updateRevision; a DaemonSet's the newest", () => {
    const sts = {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'web' },
      status: { updateRevision: 'web-3' },
    };
    expect(currentRevision('StatefulSet', sts, [rev(5), rev(4), rev(3)])?.revision).toBe(3);
    expect(currentRevision('DaemonSet', { ...sts, kind: 'DaemonSet' }, [rev(5), rev(4)])?.revision).toBe(5);
    const d = {
      ...sts,
      kind: 'Deployment',
      metadata: { name: 'web', annotations: { 'deployment.kubernetes.io/revision': '4' } },
    };
    expect(currentRevision('Deployment', d, [rev(5), rev(4)])?.revision).toBe(4);
  });
});

describe('claimLease', () => {
  const now = Date.parse('2026-12-01T12:00:00Z');
  const lease = (holder: string | undefined, renewedAgoMs: number, transitions = 2): LeaseObject => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'lock', namespace: 'shop', resourceVersion: '7' },
    spec: {
      ...(holder ? { holderIdentity: holder } : {}),
      leaseDurationSeconds: 30,
      renewTime: new Date(now - renewedAgoMs).toISOString(),
      leaseTransitions: transitions,
    },
  });
  const claim = (existing: LeaseObject | undefined) =>
    claimLease({ existing, name: 'lock', namespace: 'shop', holder: 'run-2', durationSeconds: 60, now });

  test('no Lease: create one held by us, with MicroTime timestamps and no transitions', () => {
    const c = claim(undefined)!;
    expect(c.method).toBe('POST');
    expect(c.body.spec).toEqual({
      holderIdentity: 'run-2',
      leaseDurationSeconds: 60,
      acquireTime: '2026-12-01T12:00:00.000000Z',
      renewTime: '2026-12-01T12:00:00.000000Z',
      leaseTransitions: 0,
    });
  });
  test('held by another and renewed within its duration: wait', () => {
    expect(claim(lease('run-1', 29_000))).toBeUndefined();
  });
  test('held by another that stopped renewing: taken over, one more transition, resourceVersion kept', () => {
    const c = claim(lease('run-1', 31_000))!;
    expect(c).toMatchObject({ method: 'PUT', tookOverFrom: 'run-1' });
    expect(c.body.metadata.resourceVersion).toBe('7');
    expect(c.body.spec).toMatchObject({
      holderIdentity: 'run-2',
      leaseTransitions: 3,
      leaseDurationSeconds: 60,
    });
  });
  test('our own Lease, or one released without a holder, is taken without a takeover', () => {
    const own = claimLease({
      existing: lease('run-2', 1000),
      name: 'lock',
      namespace: 'shop',
      holder: 'run-2',
      durationSeconds: 60,
      now,
    })!;
    expect(own.tookOverFrom).toBeUndefined();
    expect(own.body.spec.leaseTransitions).toBe(2);
    const free = claim(lease(undefined, 1000))!;
    expect(free.tookOverFrom).toBeUndefined();
    expect(free.body.spec.leaseTransitions).toBe(3);
  });
});
