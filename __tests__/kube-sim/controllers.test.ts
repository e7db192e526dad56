import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { type KubeSim, startKubeSim } from '../../tooling/kube-sim/index.ts';
import { clients, deployment, until } from './helpers.ts';

let sim: KubeSim;
let api: ReturnType<typeof clients>;
const ns = 'default';

beforeAll(async () => {
  sim = await startKubeSim({
    timeScale: 100,
    images: [
      { pattern: 'registry/app:crash-*', mode: 'crash', crashAfterMs: 500 },
      { pattern: 'registry/app:missing-*', mode: 'pull-error' },
      { pattern: 'registry/app:pending-*', mode: 'unschedulable' },
      { pattern: /^registry\/job:ok/, jobOutcome: 'succeed', jobDurationMs: 2000 },
      { pattern: 'registry/job:fail', jobOutcome: 'fail', jobDurationMs: 1000 },
    ],
  });
  api = clients(sim);
});

afterAll(async () => {
  expect(sim.controllerErrors).toEqual([]);
  await sim.close();
});

const strategic = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch);

async function setImage(name: string, image: string): Promise<void> {
  await api.apps.patchNamespacedDeployment(
    { name, namespace: ns, body: { spec: { template: { spec: { containers: [{ name: 'app', image }] } } } } },
    strategic,
  );
}

async function rolledOut(name: string): Promise<k8s.V1Deployment> {
  return until(`${name} rolled out`, async () => {
    const d = await api.apps.readNamespacedDeployment({ name, namespace: ns });
    const s = d.status ?? {};
    const want = d.spec?.replicas ?? 1;
    const done =
      (s.observedGeneration ?? 0) >= (d.metadata?.generation ?? 1) &&
      (s.updatedReplicas ?? 0) === want &&
      (s.replicas ?? 0) === want &&
      (s.availableReplicas ?? 0) === want;
    return done ? d : undefined;
  });
}

/** Watches ReplicaSets of one app and reports, after every event, the totals across them. */
async function trackReplicaSets(
  app: string,
  onChange: (sets: k8s.V1ReplicaSet[]) => void,
): Promise<AbortController> {
  const sets = new Map<string, k8s.V1ReplicaSet>();
  return new k8s.Watch(api.kc).watch(
    `/apis/apps/v1/namespaces/${ns}/replicasets`,
    { labelSelector: `app=${app}` },
    (phase, rs: k8s.V1ReplicaSet) => {
      if (phase === 'DELETED') sets.delete(rs.metadata!.name!);
      else sets.set(rs.metadata!.name!, rs);
      onChange([...sets.values()]);
    },
    () => {},
  );
}

describe('Deployment controller', () => {
  test('names ReplicaSets <deployment>-<pod-template-hash>, numbers revisions and reports status', async () => {
    await api.apps.createNamespacedDeployment({ namespace: ns, body: deployment('rev', 'registry/app:v1') });
    const d1 = await rolledOut('rev');
    expect(d1.metadata?.annotations?.['deployment.kubernetes.io/revision']).toBe('1');
    expect(d1.status).toMatchObject({
      replicas: 3,
      updatedReplicas: 3,
      readyReplicas: 3,
      availableReplicas: 3,
    });
    expect(d1.status?.unavailableReplicas).toBeUndefined();
    expect(d1.status?.conditions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' }),
        expect.objectContaining({ type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' }),
      ]),
    );
    const rs = (await api.apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: 'app=rev' })).items;
    expect(rs).toHaveLength(1);
    const hash = rs[0]!.metadata!.labels!['pod-template-hash']!;
    expect(rs[0]!.metadata!.name).toBe(`rev-${hash}`);
    expect(rs[0]!.metadata!.ownerReferences![0]).toMatchObject({
      kind: 'Deployment',
      name: 'rev',
      controller: true,
    });
    const pods = (
      await api.core.listNamespacedPod({ namespace: ns, labelSelector: `app=rev,pod-template-hash=${hash}` })
    ).items;
    expect(pods).toHaveLength(3);
    expect(pods[0]!.metadata!.name).toMatch(new RegExp(`^rev-${hash}-[a-z0-9]{5}$`));
    expect(pods[0]!.status).toMatchObject({
      phase: 'Running',
      containerStatuses: [expect.objectContaining({ ready: true, started: true })],
    });

    await setImage('rev', 'registry/app:v2');
    const d2 = await rolledOut('rev');
    expect(d2.metadata?.annotations?.['deployment.kubernetes.io/revision']).toBe('2');
    expect(d2.metadata?.generation).toBe(2);
    const sets = (await api.apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: 'app=rev' })).items;
    const byRevision = Object.fromEntries(
      sets.map((s) => [s.metadata!.annotations!['deployment.kubernetes.io/revision'], s.spec!.replicas]),
    );
    expect(byRevision).toEqual({ '1': 0, '2': 3 });

    const events = (
      await api.core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=rev' })
    ).items;
    expect(events.map((e) => e.reason)).toContain('ScalingReplicaSet');
    expect(events.map((e) => e.message)).toContain(`Scaled up replica set rev-${hash} from 0 to 3`);
    const podEvents = (
      await api.core.listNamespacedEvent({
        namespace: ns,
        fieldSelector: `involvedObject.name=${pods[0]!.metadata!.name}`,
      })
    ).items.map((e) => e.reason);
    expect(podEvents).toEqual(['Scheduled', 'Pulling', 'Pulled', 'Created', 'Started', 'Killing']);
  });

  test('a rolling update stays within maxSurge and maxUnavailable (percentages round surge up, unavailable down)', async () => {
    await api.apps.createNamespacedDeployment({
      namespace: ns,
      body: deployment('surge', 'registry/app:v1', {
        replicas: 10,
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } },
      }),
    });
    await rolledOut('surge');
    let maxTotal = 0;
    let minAvailable = Number.POSITIVE_INFINITY;
    const watch = await trackReplicaSets('surge', (sets) => {
      maxTotal = Math.max(
        maxTotal,
        sets.reduce((n, s) => n + (s.spec?.replicas ?? 0), 0),
      );
      minAvailable = Math.min(
        minAvailable,
        sets.reduce((n, s) => n + (s.status?.availableReplicas ?? 0), 0),
      );
    });
    await setImage('surge', 'registry/app:v2');
    await rolledOut('surge');
    watch.abort();
    expect(maxTotal).toBe(13); // 10 + ceil(2.5)
    expect(minAvailable).toBeGreaterThanOrEqual(8); // 10 - floor(2.5)
  });

  test('maxUnavailable 0 with maxSurge 1 never drops below the desired count', async () => {
    await api.apps.createNamespacedDeployment({
      namespace: ns,
      body: deployment('careful', 'registry/app:v1', {
        replicas: 4,
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      }),
    });
    await rolledOut('careful');
    let maxTotal = 0;
    let minAvailable = Number.POSITIVE_INFINITY;
    const watch = await trackReplicaSets('careful', (sets) => {
      maxTotal = Math.max(
        maxTotal,
        sets.reduce((n, s) => n + (s.spec?.replicas ?? 0), 0),
      );
      minAvailable = Math.min(
        minAvailable,
        sets.reduce((n, s) => n + (s.status?.availableReplicas ?? 0), 0),
      );
    });
    await setImage('careful', 'registry/app:v2');
    await rolledOut('careful');
    watch.abort();
    expect(maxTotal).toBe(5);
    expect(minAvailable).toBe(4);
  });

  test('Recreate removes every old pod before the new ReplicaSet scales up', async () => {
    await api.apps.createNamespacedDeployment({
      namespace: ns,
      body: deployment('recreate', 'registry/app:v1', { replicas: 2, strategy: { type: 'Recreate' } }),
    });
    const first = await rolledOut('recreate');
    const oldHash = (
      await api.apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: 'app=recreate' })
    ).items[0]!.metadata!.labels!['pod-template-hash'];
    let overlap = false;
    const watch = await trackReplicaSets('recreate', (sets) => {
      const oldPods = sets
        .filter((s) => s.metadata!.labels!['pod-template-hash'] === oldHash)
        .reduce((n, s) => n + (s.status?.replicas ?? 0), 0);
      const newWanted = sets
        .filter((s) => s.metadata!.labels!['pod-template-hash'] !== oldHash)
        .reduce((n, s) => n + (s.spec?.replicas ?? 0), 0);
      if (oldPods > 0 && newWanted > 0) overlap = true;
    });
    await setImage('recreate', 'registry/app:v2');
    const second = await rolledOut('recreate');
    watch.abort();
    expect(overlap).toBe(false);
    expect(second.metadata?.annotations?.['deployment.kubernetes.io/revision']).toBe('2');
    expect(first.metadata?.uid).toBe(second.metadata?.uid);
  });

  test.each([
    ['RollingUpdate', 'annotated-rolling'],
    ['Recreate', 'annotated-recreate'],
  ])('changing only annotations of a %s Deployment keeps its ReplicaSet and pods', async (type, name) => {
    await api.apps.createNamespacedDeployment({
      namespace: ns,
      body: deployment(name, 'registry/app:v1', { replicas: 4, strategy: { type } }),
    });
    await rolledOut(name);
    const podUids = async () =>
      (await api.core.listNamespacedPod({ namespace: ns, labelSelector: `app=${name}` })).items
        .map((p) => p.metadata!.uid!)
        .sort();
    const before = await podUids();
    let fewest = 4;
    const watch = await trackReplicaSets(name, (sets) => {
      for (const s of sets) fewest = Math.min(fewest, s.spec?.replicas ?? 0);
    });
    // The annotations are copied to the current ReplicaSet, which replaces the controller's copy
    // of it: that copy must not then be taken for an old ReplicaSet and scaled down.
    await api.apps.patchNamespacedDeployment(
      { name, namespace: ns, body: { metadata: { annotations: { 'example.com/note': 'step 1' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await until('annotation copied to the ReplicaSet', async () => {
      const sets = await api.apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: `app=${name}` });
      return sets.items.some((s) => s.metadata?.annotations?.['example.com/note'] === 'step 1');
    });
    await rolledOut(name);
    watch.abort();
    const sets = await api.apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: `app=${name}` });
    expect(sets.items).toHaveLength(1);
    expect(fewest).toBe(4);
    expect(await podUids()).toEqual(before);
    const events = await api.core.listNamespacedEvent({ namespace: ns });
    expect(
      events.items.filter((e) => e.involvedObject.name === name && /Scaled down/.test(e.message ?? '')),
    ).toEqual([]);
  });

  test('a paused deployment does not roll out until resumed', async () => {
    await api.apps.createNamespacedDeployment({
      namespace: ns,
      body: deployment('paused', 'registry/app:v1', { replicas: 1 }),
    });
    await rolledOut('paused');
    await api.apps.patchNamespacedDeployment(
      {
        name: 'paused',
        namespace: ns,
        body: {
          spec: {
            paused: true,
            template: { spec: { containers: [{ name: 'app', image: 'registry/app:v2' }] } },
          },
        },
      },
      strategic,
    );
    const paused = await until('paused condition', async () => {
      const d = await api.apps.readNamespacedDeployment({ name: 'paused', namespace: ns });
      return d.status?.conditions?.find((c) => c.type === 'Progressing' && c.reason === 'DeploymentPaused')
        ? d
        : undefined;
    });
    expect(paused.status?.observedGeneration).toBe(paused.metadata?.generation);
    expect(
      (await api.apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: 'app=paused' })).items,
    ).toHaveLength(1);
    await api.apps.patchNamespacedDeployment(
      { name: 'paused', namespace: ns, body: { spec: { paused: false } } },
      strategic,
    );
    const resumed = await rolledOut('paused');
    expect(resumed.metadata?.annotations?.['deployment.kubernetes.io/revision']).toBe('2');
  });

  test('minReadySeconds holds pods ready but not yet available', async () => {
    let sawReadyNotAvailable = false;
    const watch = await new k8s.Watch(api.kc).watch(
      `/apis/apps/v1/namespaces/${ns}/deployments`,
      { fieldSelector: 'metadata.name=minready' },
      (_phase, d: k8s.V1Deployment) => {
        if ((d.status?.readyReplicas ?? 0) > (d.status?.availableReplicas ?? 0)) sawReadyNotAvailable = true;
      },
      () => {},
    );
    await api.apps.createNamespacedDeployment({
      namespace: ns,
      body: deployment('minready', 'registry/app:v1', { replicas: 2, minReadySeconds: 30 }),
    });
    await rolledOut('minready');
    watch.abort();
    expect(sawReadyNotAvailable).toBe(true);
  });

  test('the scale subresource reads and sets replicas', async () => {
    await api.apps.createNamespacedDeployment({
      namespace: ns,
      body: deployment('scaled', 'registry/app:v1', { replicas: 1 }),
    });
    await rolledOut('scaled');
    const scale = await api.apps.patchNamespacedDeploymentScale(
      { name: 'scaled', namespace: ns, body: { spec: { replicas: 4 } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    expect(scale).toMatchObject({ kind: 'Scale', spec: { replicas: 4 } });
    const d = await rolledOut('scaled');
    expect(d.status?.availableReplicas).toBe(4);
    const read = await api.apps.readNamespacedDeploymentScale({ name: 'scaled', namespace: ns });
    expect(read.status).toEqual({ replicas: 4, selector: 'app=scaled' });
  });

  test('a rollout that cannot progress gets ProgressDeadlineExceeded after progressDeadlineSeconds', async () => {
    await api.apps.createNamespacedDeployment({
      namespace: ns,
      body: deployment('stuck', 'registry/app:v1', { replicas: 2, progressDeadlineSeconds: 60 }),
    });
    await rolledOut('stuck');
    await setImage('stuck', 'registry/app:missing-1');
    const d = await until('deadline exceeded', async () => {
      const x = await api.apps.readNamespacedDeployment({ name: 'stuck', namespace: ns });
      return x.status?.conditions?.find((c) => c.type === 'Progressing' && c.status === 'False')
        ? x
        : undefined;
    });
    const progressing = d.status!.conditions!.find((c) => c.type === 'Progressing')!;
    expect(progressing.reason).toBe('ProgressDeadlineExceeded');
    expect(progressing.message).toMatch(/^ReplicaSet "stuck-[a-z0-9]+" has timed out progressing\.$/);
    // The old pods keep serving: maxUnavailable 25% of 2 rounds down to 0.
    expect(d.status?.availableReplicas).toBe(2);
    const pods = (await api.core.listNamespacedPod({ namespace: ns, labelSelector: 'app=stuck' })).items;
    const waiting = pods
      .flatMap((p) => p.status?.containerStatuses ?? [])
      .map((c) => c.state?.waiting?.reason)
      .filter(Boolean);
    expect(waiting.length).toBeGreaterThan(0);
    expect(['ErrImagePull', 'ImagePullBackOff']).toEqual(expect.arrayContaining([waiting[0]]));
  });
});

describe('simulated pods', () => {
  async function podOf(app: string, image: string): Promise<string> {
    await api.apps.createNamespacedDeployment({
      namespace: ns,
      body: deployment(app, image, { replicas: 1 }),
    });
    const pod = await until(
      `${app} pod`,
      async () => (await api.core.listNamespacedPod({ namespace: ns, labelSelector: `app=${app}` })).items[0],
    );
    return pod.metadata!.name!;
  }

  async function eventsOf(pod: string): Promise<k8s.CoreV1Event[]> {
    return (
      await api.core.listNamespacedEvent({
        namespace: ns,
        fieldSelector: `involvedObject.name=${pod},involvedObject.kind=Pod`,
      })
    ).items;
  }

  test('a crashing container goes into CrashLoopBackOff with a growing restart count', async () => {
    const name = await podOf('crashy', 'registry/app:crash-1');
    const pod = await until('two restarts', async () => {
      const p = await api.core.readNamespacedPod({ name, namespace: ns });
      const c = p.status?.containerStatuses?.[0];
      return c && (c.restartCount ?? 0) >= 2 && c.state?.waiting?.reason === 'CrashLoopBackOff'
        ? p
        : undefined;
    });
    const c = pod.status!.containerStatuses![0]!;
    expect(c.ready).toBe(false);
    expect(c.lastState?.terminated).toMatchObject({ exitCode: 1, reason: 'Error' });
    expect(c.state?.waiting?.message).toContain('restarting failed container=app');
    expect(pod.status?.phase).toBe('Running');
    const backOff = (await eventsOf(name)).find((e) => e.reason === 'BackOff');
    expect(backOff).toMatchObject({
      type: 'Warning',
      message: expect.stringContaining('Back-off restarting failed container app'),
    });
    expect(backOff?.count).toBeGreaterThanOrEqual(2);
  });

  test('an image that cannot be pulled shows ErrImagePull then ImagePullBackOff', async () => {
    const reasons: string[] = [];
    const watch = await new k8s.Watch(api.kc).watch(
      `/api/v1/namespaces/${ns}/pods`,
      { labelSelector: 'app=nopull' },
      (_phase, p: k8s.V1Pod) => {
        const reason = p.status?.containerStatuses?.[0]?.state?.waiting?.reason;
        if (reason && reasons.at(-1) !== reason) reasons.push(reason);
      },
      () => {},
    );
    const name = await podOf('nopull', 'registry/app:missing-2');
    await until('both pull failures', () => reasons.includes('ImagePullBackOff'));
    watch.abort();
    expect(reasons.slice(0, 3)).toEqual(['ContainerCreating', 'ErrImagePull', 'ImagePullBackOff']);
    const pod = await api.core.readNamespacedPod({ name, namespace: ns });
    expect(pod.status?.phase).toBe('Pending');
    const events = await eventsOf(name);
    expect(events.map((e) => e.reason)).toEqual(
      expect.arrayContaining(['Scheduled', 'Pulling', 'Failed', 'BackOff']),
    );
    expect(events.find((e) => e.reason === 'Failed')?.type).toBe('Warning');
  });

  test('an unschedulable pod stays Pending with PodScheduled=False', async () => {
    const name = await podOf('nowhere', 'registry/app:pending-1');
    const pod = await until('scheduling verdict', async () => {
      const p = await api.core.readNamespacedPod({ name, namespace: ns });
      return p.status?.conditions?.length ? p : undefined;
    });
    expect(pod.status?.phase).toBe('Pending');
    expect(pod.status?.conditions).toEqual([
      expect.objectContaining({ type: 'PodScheduled', status: 'False', reason: 'Unschedulable' }),
    ]);
    expect((await eventsOf(name)).map((e) => e.reason)).toEqual(['FailedScheduling']);
  });

  test('a behaviour set at runtime applies to pods created afterwards', async () => {
    sim.setImageBehaviour('registry/late:*', { mode: 'never-ready' });
    const name = await podOf('late', 'registry/late:v1');
    const pod = await until('running', async () => {
      const p = await api.core.readNamespacedPod({ name, namespace: ns });
      return p.status?.phase === 'Running' ? p : undefined;
    });
    expect(pod.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'ContainersNotReady',
    });
  });
});

describe('Job controller', () => {
  function job(name: string, image: string, spec: Partial<k8s.V1JobSpec> = {}): k8s.V1Job {
    return {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name },
      spec: {
        template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image }] } },
        ...spec,
      },
    };
  }

  async function finished(name: string): Promise<k8s.V1Job> {
    return until(`${name} finished`, async () => {
      const j = await api.batch.readNamespacedJob({ name, namespace: ns });
      return j.status?.conditions?.some(
        (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
      )
        ? j
        : undefined;
    });
  }

  test('runs pods to completions within parallelism', async () => {
    await api.batch.createNamespacedJob({
      namespace: ns,
      body: job('migrate', 'registry/job:ok', { completions: 3, parallelism: 2 }),
    });
    const j = await finished('migrate');
    expect(j.status).toMatchObject({ succeeded: 3 });
    expect(j.status?.conditions?.find((c) => c.type === 'Complete')).toMatchObject({
      status: 'True',
      reason: 'CompletionsReached',
    });
    expect(j.status?.completionTime).toBeTruthy();
    const pods = (await api.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=migrate' }))
      .items;
    expect(pods.map((p) => p.status?.phase)).toEqual(['Succeeded', 'Succeeded', 'Succeeded']);
  });

  test('fails once pod failures pass backoffLimit', async () => {
    await api.batch.createNamespacedJob({
      namespace: ns,
      body: job('broken', 'registry/job:fail', { backoffLimit: 1 }),
    });
    const j = await finished('broken');
    expect(j.status?.failed).toBe(2);
    expect(j.status?.conditions?.find((c) => c.type === 'Failed')).toMatchObject({
      status: 'True',
      reason: 'BackoffLimitExceeded',
    });
    const events = (
      await api.core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=broken' })
    ).items;
    expect(events.map((e) => e.reason)).toContain('BackoffLimitExceeded');
  });
});
