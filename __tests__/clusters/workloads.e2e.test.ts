/**
 * StatefulSets and DaemonSets through deploy-env on every kind of cluster — kube-sim and the real
 * control plane (the real StatefulSet and DaemonSet controllers, scheduler, KWOK nodes) — with a
 * ServiceAccount bound to exactly the Role deploy-env's README documents: deployed, waited for
 * with kubectl's rules, failed fast on a crashing image and rolled back through their
 * ControllerRevisions. Then kube-sim's controllers are held to the real ones: the status fields
 * and revisions each writes for the same objects and changes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { rolloutStatus, type WorkloadKind, type WorkloadObject } from '../../packages/kube/status-viewers.ts';
import { clusterKinds } from '../../tooling/cluster.ts';
import { LocalGitHub } from '../../tooling/local-services/local-github.ts';
import { runBuiltAction, type StepResult } from '../../tooling/runners/action-runner.ts';
import {
  readmeRoleKubeconfigs,
  useCluster,
  useServer,
  useWorkDir,
} from '../../tooling/test-support/fixtures.ts';
import { conformanceSuite, statusOf, type Target } from '../conformance/harness.ts';

const IMAGES = [{ pattern: '*:crash*', mode: 'crash' as const, crashAfterMs: 500 }];

type Pod = {
  metadata: { name: string; labels: Record<string, string>; deletionTimestamp?: string };
  spec: { containers: { image: string }[] };
  status?: { conditions?: { type: string; status: string }[] };
};
type Revision = { metadata: { name: string }; revision: number; data: { spec: { template: Pod } } };
type Workload = WorkloadObject & {
  spec: { template: { spec: { containers: { image: string }[] } } };
  status: Record<string, unknown>;
};

const ready = (p: Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');

function statefulSet(o: { image: string; partition?: number; strategy?: string }): string {
  const strategy = o.strategy
    ? `{ type: ${o.strategy} }`
    : `{ type: RollingUpdate, rollingUpdate: { partition: ${o.partition ?? 0} } }`;
  return `apiVersion: apps/v1
kind: StatefulSet
metadata: { name: db, labels: { app: db } }
spec:
  replicas: 3
  serviceName: db
  selector: { matchLabels: { app: db } }
  updateStrategy: ${strategy}
  template:
    metadata: { labels: { app: db } }
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: db
          image: ${o.image}
          ports: [{ containerPort: 5432 }]
`;
}

function daemonSet(o: { image: string; strategy?: string }): string {
  return `apiVersion: apps/v1
kind: DaemonSet
metadata: { name: agent, labels: { app: agent } }
spec:
  selector: { matchLabels: { app: agent } }
  updateStrategy: { type: ${o.strategy ?? 'RollingUpdate'} }
  template:
    metadata: { labels: { app: agent } }
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: agent
          image: ${o.image}
`;
}

describe.each(clusterKinds())(
  'deploy-env with StatefulSets and DaemonSets on %s with the README Role',
  (kind) => {
    const cluster = useCluster(kind, { images: IMAGES, timeScale: 4 });
    const github = useServer('LocalGitHub', () => LocalGitHub.start());
    const work = useWorkDir(`workloads-${kind}-`);
    const deployer = readmeRoleKubeconfigs(cluster, 'deploy-env');
    let dirs = 0;

    async function deploy(
      namespace: string,
      app: string,
      manifest: string,
      image?: string,
    ): Promise<StepResult> {
      const kubeconfig = await deployer(namespace);
      const dir = join(work, `m${++dirs}`);
      mkdirSync(dir);
      writeFileSync(join(dir, 'app.yaml'), manifest);
      return runBuiltAction('deploy-env', {
        inputs: {
          kubeconfig,
          namespace,
          environment: 'staging',
          app,
          manifests: dir,
          'fail-fast-after': '2s',
          timeout: '120s',
          ...(image ? { image } : {}),
        },
        github: { apiUrl: github.url },
        cwd: work,
        timeoutMs: 180_000,
      });
    }
    const errors = (s: StepResult) => s.annotations.filter((a) => a.level === 'error').map((a) => a.message);
    async function get<T>(path: string): Promise<T> {
      const r = await cluster.api('GET', path);
      if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body as T;
    }
    const pods = async (namespace: string, app: string) =>
      (
        await get<{ items: Pod[] }>(`/api/v1/namespaces/${namespace}/pods?labelSelector=app%3D${app}`)
      ).items.filter((p) => !p.metadata.deletionTimestamp);
    const revisions = async (namespace: string) =>
      (
        await get<{ items: Revision[] }>(`/apis/apps/v1/namespaces/${namespace}/controllerrevisions`)
      ).items.sort((a, b) => a.revision - b.revision);
    /** Every pod of the app runs `image` and is ready, and the workload's own verdict is done. */
    async function settled(namespace: string, workloadKind: WorkloadKind, name: string, image: string) {
      const plural = workloadKind === 'StatefulSet' ? 'statefulsets' : 'daemonsets';
      for (let i = 0; ; i++) {
        const w = await get<Workload>(`/apis/apps/v1/namespaces/${namespace}/${plural}/${name}`);
        const running = await pods(namespace, name);
        const images = running.map((p) => p.spec.containers[0]!.image);
        if (
          rolloutStatus(workloadKind, w).done &&
          running.length > 0 &&
          running.every(ready) &&
          images.every((x) => x === image)
        )
          return { workload: w, pods: running };
        if (i > 300)
          throw new Error(`${name} did not settle on ${image}: ${JSON.stringify(w.status)} ${images}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }

    test('a StatefulSet: first release, an image update, a crashing image fails fast and rolls back to the running release', async () => {
      await cluster.createNamespace('db-staging');
      const first = await deploy('db-staging', 'db', statefulSet({ image: 'registry.local/db:v1' }));
      expect(errors(first)).toEqual([]);
      expect(first.outputs).toMatchObject({ revision: '1', 'previous-revision': '', 'rolled-back': 'false' });
      let now = await settled('db-staging', 'StatefulSet', 'db', 'registry.local/db:v1');
      expect(now.pods.map((p) => p.metadata.name).sort()).toEqual(['db-0', 'db-1', 'db-2']);
      expect(now.workload.status).toMatchObject({ readyReplicas: 3, updatedReplicas: 3, currentReplicas: 3 });

      const second = await deploy(
        'db-staging',
        'db',
        statefulSet({ image: 'registry.local/db:v1' }),
        'registry.local/db:v2',
      );
      expect(errors(second)).toEqual([]);
      expect(second.outputs).toMatchObject({
        revision: '2',
        'previous-revision': '1',
        'previous-image': 'registry.local/db:v1',
        image: 'registry.local/db:v2',
      });
      now = await settled('db-staging', 'StatefulSet', 'db', 'registry.local/db:v2');
      expect(now.workload.status['currentRevision']).toBe(now.workload.status['updateRevision']);

      const crash = await deploy(
        'db-staging',
        'db',
        statefulSet({ image: 'registry.local/db:v1' }),
        'registry.local/db:crash-1',
      );
      expect(crash.exitCode).toBe(1);
      // The highest ordinal is replaced first; the release stops at it.
      expect(errors(crash)[0]).toMatch(
        /statefulset "db" cannot finish: pod db-2 container db is CrashLoopBackOff/,
      );
      expect(errors(crash)[0]).toMatch(/The previous version was rolled back\.$/);
      expect(crash.outputs).toMatchObject({ 'rolled-back': 'true', 'rollback-revision': '2' });
      now = await settled('db-staging', 'StatefulSet', 'db', 'registry.local/db:v2');
      // Rolled back through the history: v2's ControllerRevision is reused under the next number.
      const history = await revisions('db-staging');
      expect(history.map((r) => [r.revision, r.data.spec.template.spec.containers[0]!.image])).toEqual([
        [1, 'registry.local/db:v1'],
        [3, 'registry.local/db:crash-1'],
        [4, 'registry.local/db:v2'],
      ]);
      expect(now.workload.status['updateRevision']).toBe(history.at(-1)!.metadata.name);
      expect(crash.outputs.revision).toBe('4');
    }, 400_000);

    test('a partitioned StatefulSet update finishes once the pods at and above the partition run it', async () => {
      const step = await deploy(
        'db-staging',
        'db',
        statefulSet({ image: 'registry.local/db:v1', partition: 2 }),
        'registry.local/db:v3',
      );
      expect(errors(step)).toEqual([]);
      expect(step.log).toContain('partitioned roll out complete: 1 new pods have been updated...');
      const images = Object.fromEntries(
        (await pods('db-staging', 'db')).map((p) => [p.metadata.name, p.spec.containers[0]!.image]),
      );
      expect(images).toEqual({
        'db-0': 'registry.local/db:v2',
        'db-1': 'registry.local/db:v2',
        'db-2': 'registry.local/db:v3',
      });
    }, 300_000);

    test('a DaemonSet: first release, an image update, a crashing image fails fast and rolls back on every node', async () => {
      await cluster.createNamespace('agent-staging');
      const first = await deploy('agent-staging', 'agent', daemonSet({ image: 'registry.local/agent:v1' }));
      expect(errors(first)).toEqual([]);
      expect(first.outputs).toMatchObject({ revision: '1', 'previous-revision': '', 'rolled-back': 'false' });
      let now = await settled('agent-staging', 'DaemonSet', 'agent', 'registry.local/agent:v1');
      const nodes = now.workload.status['desiredNumberScheduled'];
      expect(nodes).toBe(kind === 'real' ? 3 : 1);
      expect(now.pods).toHaveLength(nodes as number);

      const second = await deploy(
        'agent-staging',
        'agent',
        daemonSet({ image: 'registry.local/agent:v1' }),
        'registry.local/agent:v2',
      );
      expect(errors(second)).toEqual([]);
      expect(second.outputs).toMatchObject({ revision: '2', 'previous-revision': '1' });
      await settled('agent-staging', 'DaemonSet', 'agent', 'registry.local/agent:v2');

      const crash = await deploy(
        'agent-staging',
        'agent',
        daemonSet({ image: 'registry.local/agent:v1' }),
        'registry.local/agent:crash-1',
      );
      expect(crash.exitCode).toBe(1);
      expect(errors(crash)[0]).toMatch(
        /daemon set "agent" cannot finish: pod agent-\w+ container agent is CrashLoopBackOff/,
      );
      expect(errors(crash)[0]).toMatch(/The previous version was rolled back\.$/);
      expect(crash.outputs['rolled-back']).toBe('true');
      now = await settled('agent-staging', 'DaemonSet', 'agent', 'registry.local/agent:v2');
      expect(now.pods).toHaveLength(nodes as number);
      const history = await revisions('agent-staging');
      expect(history.at(-1)!.data.spec.template.spec.containers[0]!.image).toBe('registry.local/agent:v2');
      expect(history.at(-1)!.revision).toBe(4);
      expect(crash.outputs.revision).toBe('4');
    }, 400_000);

    test('a first StatefulSet release that fails has nothing to roll back to, and says so', async () => {
      await cluster.createNamespace('cache-dev');
      const step = await deploy('cache-dev', 'db', statefulSet({ image: 'registry.local/db:crash-0' }));
      expect(step.exitCode).toBe(1);
      expect(step.outputs['rolled-back']).toBe('false');
      expect(errors(step)[0]).toContain(
        'statefulset "db" has no previous revision to roll back to (first deploy)',
      );
    }, 300_000);
  },
);

/** What a controller wrote, with revision names as letters in order of appearance and, for a
 * DaemonSet, the node count as N (kube-sim has one node, the real cluster three). */
function shape(value: unknown, names: Map<string, string>, nodes?: number, key = ''): unknown {
  if (typeof value === 'string' && /-[0-9a-z]{6,10}$/.test(value)) {
    if (!names.has(value)) names.set(value, String.fromCharCode(65 + names.size));
    return names.get(value);
  }
  if (
    typeof value === 'number' &&
    nodes &&
    value === nodes &&
    /^(number|currentNumber|desiredNumber|updatedNumber)/.test(key)
  )
    return 'N';
  if (Array.isArray(value)) return value.map((v) => shape(v, names, nodes));
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => [k, shape(v, names, nodes, k)]),
    );
  return value;
}

describe('kube-sim StatefulSet and DaemonSet controllers against the real ones', () => {
  const suite = conformanceSuite('workloads');

  async function until(t: Target, path: string, done: (o: Workload) => boolean): Promise<Workload> {
    for (let i = 0; ; i++) {
      const o = (await t.call('GET', path)).body as unknown as Workload;
      if (done(o)) return o;
      if (i > 400) throw new Error(`${path} never got there: ${JSON.stringify(o.status)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const create = (t: Target, plural: string, manifest: object) =>
    t.call('POST', `/apis/apps/v1/namespaces/${t.namespace}/${plural}`, manifest);
  const setImage = (t: Target, path: string, container: string, image: string) =>
    t.call(
      'PATCH',
      path,
      { spec: { template: { spec: { containers: [{ name: container, image }] } } } },
      { type: 'application/strategic-merge-patch+json' },
    );
  type StoredRevision = Revision & { metadata: { labels: Record<string, string> } };
  const revisionsOf = async (t: Target) =>
    (
      (await t.call('GET', `/apis/apps/v1/namespaces/${t.namespace}/controllerrevisions`))
        .body as unknown as {
        items: StoredRevision[];
      }
    ).items.sort((a, b) => a.revision - b.revision);
  const history = (revisions: StoredRevision[]) =>
    revisions.map((r) => ({
      revision: r.revision,
      labelKeys: Object.keys(r.metadata.labels).sort(),
      patch: (r.data.spec.template as unknown as Record<string, unknown>)['$patch'],
      image: r.data.spec.template.spec.containers[0]!.image,
    }));

  test("StatefulSets and DaemonSets are decoded by the real schemas: a wrong type is the decoder's 400, an unknown field refused under Strict", async () => {
    const bad = (kind: string, spec: object) => ({
      apiVersion: 'apps/v1',
      kind,
      metadata: { name: 'bad' },
      spec: {
        selector: { matchLabels: { app: 'bad' } },
        template: {
          metadata: { labels: { app: 'bad' } },
          spec: { containers: [{ name: 'c', image: 'registry.example/c:v1' }] },
        },
        ...spec,
      },
    });
    await suite.same(
      async (t) => {
        const replicas = await create(t, 'statefulsets', bad('StatefulSet', { replicas: 'three' }));
        const unknown = await t.call(
          'POST',
          `/apis/apps/v1/namespaces/${t.namespace}/daemonsets?fieldValidation=Strict`,
          bad('DaemonSet', { replicas: 2 }),
        );
        return { replicas: statusOf(replicas), unknown: statusOf(unknown) };
      },
      {
        replicas: {
          code: 400,
          reason: 'BadRequest',
          message: expect.stringContaining(
            'cannot unmarshal string into Go struct field StatefulSetSpec.spec.replicas of type int32',
          ),
        },
        unknown: {
          code: 400,
          reason: 'BadRequest',
          message: expect.stringContaining('unknown field "spec.replicas"'),
        },
      } as unknown,
    );
  }, 120_000);

  test('a StatefulSet: created, updated, then a partitioned update; status and revisions as the real controller writes them', async () => {
    const sts = {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'db' },
      spec: {
        replicas: 3,
        serviceName: 'db',
        selector: { matchLabels: { app: 'db' } },
        template: {
          metadata: { labels: { app: 'db' } },
          spec: {
            terminationGracePeriodSeconds: 1,
            containers: [{ name: 'db', image: 'registry.example/db:v1' }],
          },
        },
      },
    };
    await suite.same(
      async (t) => {
        const names = new Map<string, string>();
        const path = `/apis/apps/v1/namespaces/${t.namespace}/statefulsets/db`;
        const created = await create(t, 'statefulsets', sts);
        const spec = created.body['spec'] as Record<string, unknown>;
        const finished = (o: Workload) =>
          rolloutStatus('StatefulSet', o).done && o.status['currentRevision'] === o.status['updateRevision'];
        const first = await until(t, path, finished);
        await setImage(t, path, 'db', 'registry.example/db:v2');
        const second = await until(t, path, (o) => o.metadata.generation === 2 && finished(o));
        await t.call(
          'PATCH',
          path,
          {
            spec: {
              updateStrategy: { rollingUpdate: { partition: 2 } },
              template: { spec: { containers: [{ name: 'db', image: 'registry.example/db:v3' }] } },
            },
          },
          { type: 'application/strategic-merge-patch+json' },
        );
        const partitioned = await until(
          t,
          path,
          (o) =>
            o.metadata.generation === 3 &&
            rolloutStatus('StatefulSet', o).done &&
            o.status['readyReplicas'] === 3,
        );
        const pods = (
          (await t.call('GET', `/api/v1/namespaces/${t.namespace}/pods`)).body as unknown as { items: Pod[] }
        ).items
          .filter((p) => !p.metadata.deletionTimestamp)
          .map((p) => ({
            name: p.metadata.name,
            labels: p.metadata.labels,
            image: p.spec.containers[0]!.image,
          }))
          .sort((a, b) => (a.name < b.name ? -1 : 1));
        return shape(
          {
            defaults: {
              podManagementPolicy: spec['podManagementPolicy'],
              updateStrategy: spec['updateStrategy'],
              revisionHistoryLimit: spec['revisionHistoryLimit'],
              persistentVolumeClaimRetentionPolicy: spec['persistentVolumeClaimRetentionPolicy'],
            },
            first: first.status,
            second: second.status,
            partitioned: partitioned.status,
            pods,
            history: history(await revisionsOf(t)),
          },
          names,
        );
      },
      {
        defaults: {
          persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
          podManagementPolicy: 'OrderedReady',
          revisionHistoryLimit: 10,
          updateStrategy: { rollingUpdate: { partition: 0 }, type: 'RollingUpdate' },
        },
        first: {
          availableReplicas: 3,
          collisionCount: 0,
          currentReplicas: 3,
          currentRevision: 'A',
          observedGeneration: 1,
          readyReplicas: 3,
          replicas: 3,
          updateRevision: 'A',
          updatedReplicas: 3,
        },
        second: {
          availableReplicas: 3,
          collisionCount: 0,
          currentReplicas: 3,
          currentRevision: 'B',
          observedGeneration: 2,
          readyReplicas: 3,
          replicas: 3,
          updateRevision: 'B',
          updatedReplicas: 3,
        },
        // Below the partition the pods keep the current revision, and it stays current.
        partitioned: {
          availableReplicas: 3,
          collisionCount: 0,
          currentReplicas: 2,
          currentRevision: 'B',
          observedGeneration: 3,
          readyReplicas: 3,
          replicas: 3,
          updateRevision: 'C',
          updatedReplicas: 1,
        },
        pods: ['0', '1', '2'].map((i) => ({
          name: `db-${i}`,
          labels: {
            app: 'db',
            'apps.kubernetes.io/pod-index': i,
            'controller-revision-hash': i === '2' ? 'C' : 'B',
            'statefulset.kubernetes.io/pod-name': `db-${i}`,
          },
          image: i === '2' ? 'registry.example/db:v3' : 'registry.example/db:v2',
        })),
        history: [1, 2, 3].map((revision) => ({
          revision,
          labelKeys: ['app', 'controller.kubernetes.io/hash'],
          patch: 'replace',
          image: `registry.example/db:v${revision}`,
        })),
      },
    );
  }, 300_000);

  test('a DaemonSet: created, updated, then rolled back to its first template; status and revisions as the real controller writes them', async () => {
    const ds = {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'agent' },
      spec: {
        selector: { matchLabels: { app: 'agent' } },
        template: {
          metadata: { labels: { app: 'agent' } },
          spec: {
            terminationGracePeriodSeconds: 1,
            containers: [{ name: 'agent', image: 'registry.example/agent:v1' }],
          },
        },
      },
    };
    await suite.same(
      async (t) => {
        const names = new Map<string, string>();
        const path = `/apis/apps/v1/namespaces/${t.namespace}/daemonsets/agent`;
        const created = await create(t, 'daemonsets', ds);
        const spec = created.body['spec'] as Record<string, unknown>;
        const finished = (generation: number) => (o: Workload) =>
          o.metadata.generation === generation &&
          rolloutStatus('DaemonSet', o).done &&
          Number(o.status['desiredNumberScheduled'] ?? 0) > 0;
        const first = await until(t, path, finished(1));
        const nodes = Number(first.status['desiredNumberScheduled']);
        await setImage(t, path, 'agent', 'registry.example/agent:v2');
        const second = await until(t, path, finished(2));
        await setImage(t, path, 'agent', 'registry.example/agent:v1');
        const back = await until(t, path, finished(3));
        const revisions = await revisionsOf(t);
        const pods = (
          (await t.call('GET', `/api/v1/namespaces/${t.namespace}/pods`)).body as unknown as {
            items: (Pod & { spec: { tolerations?: unknown[]; affinity?: unknown } })[];
          }
        ).items.filter((p) => !p.metadata.deletionTimestamp);
        return shape(
          {
            defaults: {
              updateStrategy: spec['updateStrategy'],
              revisionHistoryLimit: spec['revisionHistoryLimit'],
            },
            first: first.status,
            second: second.status,
            back: back.status,
            pods: {
              count: pods.length === nodes ? 'one per node' : pods.length,
              // The hash label names the revision whose ControllerRevision carries the same hash.
              labels: [
                ...new Set(
                  pods.map((p) => {
                    const hash = p.metadata.labels['controller-revision-hash'];
                    const owner = revisions.find(
                      (r) => r.metadata.labels['controller-revision-hash'] === hash,
                    );
                    return JSON.stringify({
                      ...p.metadata.labels,
                      'controller-revision-hash': `revision ${owner?.revision}`,
                    });
                  }),
                ),
              ].map((l) => JSON.parse(l)),
              pinned: pods.every((p) => JSON.stringify(p.spec.affinity).includes('"metadata.name"')),
              tolerations: pods[0]?.spec.tolerations?.length,
            },
            history: history(revisions),
          },
          names,
          nodes,
        );
      },
      {
        defaults: {
          revisionHistoryLimit: 10,
          updateStrategy: { rollingUpdate: { maxSurge: 0, maxUnavailable: 1 }, type: 'RollingUpdate' },
        },
        ...Object.fromEntries(
          (['first', 'second', 'back'] as const).map((k, i) => [
            k,
            {
              currentNumberScheduled: 'N',
              desiredNumberScheduled: 'N',
              numberAvailable: 'N',
              numberMisscheduled: 0,
              numberReady: 'N',
              observedGeneration: i + 1,
              updatedNumberScheduled: 'N',
            },
          ]),
        ),
        pods: {
          count: 'one per node',
          // The first template's revision, renumbered 3, under a new pod-template-generation.
          labels: [
            { app: 'agent', 'controller-revision-hash': 'revision 3', 'pod-template-generation': '3' },
          ],
          pinned: true,
          tolerations: 6,
        },
        history: [
          {
            revision: 2,
            labelKeys: ['app', 'controller-revision-hash'],
            patch: 'replace',
            image: 'registry.example/agent:v2',
          },
          {
            revision: 3,
            labelKeys: ['app', 'controller-revision-hash'],
            patch: 'replace',
            image: 'registry.example/agent:v1',
          },
        ],
      } as unknown,
    );
  }, 300_000);
});
