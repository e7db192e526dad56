import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { type KubeSim, startKubeSim } from '../../tooling/kube-sim/index.ts';
import { clients, deployment, failure, until } from './helpers.ts';

let sim: KubeSim;
let api: ReturnType<typeof clients>;

beforeAll(async () => {
  sim = await startKubeSim({
    timeScale: 50,
    users: [{ token: 'dev-token', name: 'dev', namespaces: ['dev'] }],
    namespaces: ['dev', 'prod'],
  });
  api = clients(sim);
});

afterAll(async () => {
  await sim.close();
});

describe('wire protocol', () => {
  test('serves /version and discovery that client-node can map kinds with', async () => {
    const version = await (await fetch(`${sim.url}/version`)).json();
    expect(version).toMatchObject({ major: '1', minor: '32' });
    const res = await fetch(`${sim.url}/apis/apps/v1`, { headers: { authorization: `Bearer ${sim.token}` } });
    const list = (await res.json()) as { resources: { name: string; kind: string; group?: string }[] };
    expect(list.resources).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'deployments', kind: 'Deployment' }),
        expect.objectContaining({ name: 'deployments/scale', kind: 'Scale', group: 'autoscaling' }),
      ]),
    );
    const created = await api.objects.create<k8s.KubernetesObject & { spec: unknown }>({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'route', namespace: 'default' },
      spec: { parentRefs: [{ name: 'gw' }] },
    });
    expect(created.metadata?.uid).toBeTruthy();
  });

  test('a wrong token gets 401 and a scoped user 403 outside its namespaces, as Status objects', async () => {
    const res = await fetch(`${sim.url}/api/v1/namespaces`, { headers: { authorization: 'Bearer nope' } });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({
      kind: 'Status',
      status: 'Failure',
      reason: 'Unauthorized',
      code: 401,
    });
    const dev = clients(sim, sim.writeKubeconfig('dev-token', 'dev'));
    await dev.core.createNamespacedConfigMap({ namespace: 'dev', body: { metadata: { name: 'ok' } } });
    const denied = await failure(dev.core.listNamespacedConfigMap({ namespace: 'prod' }));
    expect(denied.code).toBe(403);
    expect(denied.status).toMatchObject({ kind: 'Status', reason: 'Forbidden', code: 403 });
    expect(String(denied.status['message'])).toContain(
      'User "dev" cannot list resource "configmaps" in API group "" in the namespace "prod"',
    );
  });

  test('objects get uid, creationTimestamp, a global resourceVersion and generation that moves with spec', async () => {
    const a = await api.core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'a' }, data: { k: 'v' } },
    });
    const b = await api.core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'b' } },
    });
    expect(a.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.metadata?.creationTimestamp).toBeTruthy();
    expect(Number(b.metadata?.resourceVersion)).toBeGreaterThan(Number(a.metadata?.resourceVersion));
    const d = await api.apps.createNamespacedDeployment({
      namespace: 'default',
      body: deployment('gen', 'registry/app:v1'),
    });
    expect(d.metadata?.generation).toBe(1);
    const patched = await api.apps.patchNamespacedDeployment(
      { name: 'gen', namespace: 'default', body: { spec: { replicas: 1 } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    expect(patched.metadata?.generation).toBe(2);
    const labelled = await api.apps.patchNamespacedDeployment(
      { name: 'gen', namespace: 'default', body: { metadata: { labels: { x: 'y' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    expect(labelled.metadata?.generation).toBe(2);
  });

  test('lists filter by label and field selectors', async () => {
    for (const [name, tier] of [
      ['sel-a', 'web'],
      ['sel-b', 'db'],
      ['sel-c', 'web'],
    ] as const) {
      await api.core.createNamespacedConfigMap({
        namespace: 'prod',
        body: { metadata: { name, labels: { tier } } },
      });
    }
    const web = await api.core.listNamespacedConfigMap({ namespace: 'prod', labelSelector: 'tier=web' });
    expect(web.items.map((i) => i.metadata?.name)).toEqual(['sel-a', 'sel-c']);
    const notWeb = await api.core.listNamespacedConfigMap({
      namespace: 'prod',
      labelSelector: 'tier in (db),tier!=web',
    });
    expect(notWeb.items.map((i) => i.metadata?.name)).toEqual(['sel-b']);
    const byName = await api.core.listConfigMapForAllNamespaces({
      fieldSelector: 'metadata.name=sel-b,metadata.namespace=prod',
    });
    expect(byName.items.map((i) => i.metadata?.name)).toEqual(['sel-b']);
    const page = await api.core.listNamespacedConfigMap({ namespace: 'prod', limit: 2 });
    expect(page.items).toHaveLength(2);
    const rest = await api.core.listNamespacedConfigMap({
      namespace: 'prod',
      limit: 2,
      _continue: page.metadata?._continue,
    });
    expect(rest.items.map((i) => i.metadata?.name)).toEqual(['sel-c']);
  });

  test('create conflicts (409 AlreadyExists), stale updates (409 Conflict), absent namespaces (404) and invalid objects (422)', async () => {
    await api.core.createNamespacedSecret({
      namespace: 'default',
      body: { metadata: { name: 's1' }, stringData: { p: 'w' } },
    });
    const dup = await failure(
      api.core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 's1' } } }),
    );
    expect(dup).toMatchObject({ code: 409, status: { reason: 'AlreadyExists' } });

    const cm = await api.core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'stale' }, data: { v: '1' } },
    });
    await api.core.replaceNamespacedConfigMap({
      name: 'stale',
      namespace: 'default',
      body: { ...cm, data: { v: '2' } },
    });
    const stale = await failure(
      api.core.replaceNamespacedConfigMap({
        name: 'stale',
        namespace: 'default',
        body: { ...cm, data: { v: '3' } },
      }),
    );
    expect(stale.code).toBe(409);
    expect(stale.status).toMatchObject({ reason: 'Conflict' });
    expect(String(stale.status['message'])).toContain('the object has been modified');

    const absent = await failure(
      api.core.createNamespacedConfigMap({ namespace: 'nowhere', body: { metadata: { name: 'x' } } }),
    );
    expect(absent).toMatchObject({
      code: 404,
      status: { reason: 'NotFound', message: 'namespaces "nowhere" not found' },
    });

    const bad = deployment('mismatch', 'registry/app:v1');
    bad.spec!.template.metadata!.labels = { app: 'other' };
    const invalid = await failure(api.apps.createNamespacedDeployment({ namespace: 'default', body: bad }));
    expect(invalid.code).toBe(422);
    expect(invalid.status).toMatchObject({
      reason: 'Invalid',
      details: {
        name: 'mismatch',
        kind: 'Deployment',
        causes: [{ field: 'spec.template.metadata.labels', reason: 'FieldValueInvalid' }],
      },
    });
    const nameless = await failure(
      api.core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: {} } }),
    );
    expect(nameless.code).toBe(422);
    expect(nameless.status).toMatchObject({
      details: { causes: [{ field: 'metadata.name', reason: 'FieldValueRequired' }] },
    });
  });

  test('dryRun=All validates and answers without storing', async () => {
    const out = await api.core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'dry' } },
      dryRun: 'All',
    });
    expect(out.metadata?.name).toBe('dry');
    expect(
      (await failure(api.core.readNamespacedConfigMap({ name: 'dry', namespace: 'default' }))).code,
    ).toBe(404);
    const invalid = await failure(
      api.core.createNamespacedConfigMap({
        namespace: 'default',
        body: { metadata: { name: 'Bad_Name' } },
        dryRun: 'All',
      }),
    );
    expect(invalid.code).toBe(422);
  });
});

describe('patches', () => {
  const strategic = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch);

  test('strategic merge patch merges containers and env by name and ports by containerPort', async () => {
    const d = deployment('smp', 'registry/app:v1');
    d.spec!.template.spec!.containers[0]!.env = [{ name: 'A', value: '1' }];
    d.spec!.template.spec!.containers.push({ name: 'side', image: 'registry/side:v1' });
    await api.apps.createNamespacedDeployment({ namespace: 'default', body: d });
    const patched = await api.apps.patchNamespacedDeployment(
      {
        name: 'smp',
        namespace: 'default',
        body: {
          spec: {
            template: {
              spec: {
                containers: [
                  {
                    name: 'app',
                    image: 'registry/app:v2',
                    env: [{ name: 'B', value: '2' }],
                    ports: [{ containerPort: 9090, name: 'metrics' }],
                  },
                ],
              },
            },
          },
        },
      },
      strategic,
    );
    const containers = patched.spec!.template.spec!.containers;
    expect(containers.map((c) => `${c.name}=${c.image}`)).toEqual([
      'app=registry/app:v2',
      'side=registry/side:v1',
    ]);
    expect(containers[0]!.env).toEqual([
      { name: 'A', value: '1' },
      { name: 'B', value: '2' },
    ]);
    expect(containers[0]!.ports!.map((p) => p.containerPort)).toEqual([8080, 9090]);
    const removed = await api.apps.patchNamespacedDeployment(
      {
        name: 'smp',
        namespace: 'default',
        body: { spec: { template: { spec: { containers: [{ name: 'side', $patch: 'delete' }] } } } },
      },
      strategic,
    );
    expect(removed.spec!.template.spec!.containers.map((c) => c.name)).toEqual(['app']);
  });

  test('JSON patch and merge patch', async () => {
    await api.core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'jp' }, data: { a: '1', b: '2' } },
    });
    const json = await api.core.patchNamespacedConfigMap(
      {
        name: 'jp',
        namespace: 'default',
        body: [
          { op: 'replace', path: '/data/a', value: '10' },
          { op: 'remove', path: '/data/b' },
          { op: 'add', path: '/metadata/labels', value: { x: 'y' } },
        ],
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );
    expect(json.data).toEqual({ a: '10' });
    expect(json.metadata?.labels).toEqual({ x: 'y' });
    const merge = await api.core.patchNamespacedConfigMap(
      { name: 'jp', namespace: 'default', body: { data: { a: null, c: '3' } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    expect(merge.data).toEqual({ c: '3' });
    const failedTest = await failure(
      api.core.patchNamespacedConfigMap(
        { name: 'jp', namespace: 'default', body: [{ op: 'test', path: '/data/c', value: 'nope' }] },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
      ),
    );
    expect(failedTest.code).toBe(422);
  });

  test('server-side apply: same manager re-applies, another manager conflicts with 409 unless forced', async () => {
    const config: k8s.V1ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'ssa', namespace: 'default', labels: { team: 'a' } },
      data: { owner: 'first', shared: 'x' },
    };
    const created = await api.objects.patch(
      config,
      undefined,
      undefined,
      'first',
      false,
      k8s.PatchStrategy.ServerSideApply,
    );
    expect(created.metadata?.managedFields?.[0]).toMatchObject({ manager: 'first', operation: 'Apply' });
    const again = await api.objects.patch(
      { ...config, data: { owner: 'first-again' } },
      undefined,
      undefined,
      'first',
      false,
      k8s.PatchStrategy.ServerSideApply,
    );
    expect((again as k8s.V1ConfigMap).data).toEqual({ owner: 'first-again' });
    const second: k8s.V1ConfigMap = {
      ...config,
      metadata: { name: 'ssa', namespace: 'default' },
      data: { owner: 'second' },
    };
    const conflict = await failure(
      api.objects.patch(second, undefined, undefined, 'second', false, k8s.PatchStrategy.ServerSideApply),
    );
    expect(conflict.code).toBe(409);
    expect(conflict.status).toMatchObject({
      reason: 'Conflict',
      details: { causes: [{ reason: 'FieldManagerConflict', field: '.data.owner' }] },
    });
    expect(String(conflict.status['message'])).toContain('conflict with "first"');
    const forced = await api.objects.patch(
      second,
      undefined,
      undefined,
      'second',
      true,
      k8s.PatchStrategy.ServerSideApply,
    );
    expect((forced as k8s.V1ConfigMap).data).toEqual({ owner: 'second' });
    const managers = forced.metadata?.managedFields?.map((m) => m.manager).sort();
    expect(managers).toEqual(['first', 'second']);
    const sameValue = await api.objects.patch(
      { ...second, data: { owner: 'second' } },
      undefined,
      undefined,
      'third',
      false,
      k8s.PatchStrategy.ServerSideApply,
    );
    expect((sameValue as k8s.V1ConfigMap).data).toEqual({ owner: 'second' });
  });

  test('an update by another manager takes the field, and a later apply conflicts on it', async () => {
    const config = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'ssa2', namespace: 'default' },
      data: { k: 'applied' },
    };
    await api.objects.patch(
      config,
      undefined,
      undefined,
      'deployer',
      false,
      k8s.PatchStrategy.ServerSideApply,
    );
    await api.core.patchNamespacedConfigMap(
      { name: 'ssa2', namespace: 'default', body: { data: { k: 'edited' } }, fieldManager: 'kubectl-edit' },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const conflict = await failure(
      api.objects.patch(
        { ...config, data: { k: 'again' } },
        undefined,
        undefined,
        'deployer',
        false,
        k8s.PatchStrategy.ServerSideApply,
      ),
    );
    expect(conflict.code).toBe(409);
    expect(String(conflict.status['message'])).toContain('conflict with "kubectl-edit"');
  });
});

describe('watch', () => {
  test('streams ADDED, MODIFIED and DELETED, filtered by label selector', async () => {
    const seen: string[] = [];
    const watch = new k8s.Watch(api.kc);
    const controller = await watch.watch(
      '/api/v1/namespaces/default/configmaps',
      { labelSelector: 'watch=me' },
      (phase, obj: k8s.V1ConfigMap) => seen.push(`${phase} ${obj.metadata?.name}`),
      () => {},
    );
    await api.core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'w1', labels: { watch: 'me' } } },
    });
    await api.core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'w2' } } });
    await api.core.patchNamespacedConfigMap(
      { name: 'w1', namespace: 'default', body: { data: { a: 'b' } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await api.core.deleteNamespacedConfigMap({ name: 'w1', namespace: 'default' });
    await until('three events', () => seen.length >= 3);
    controller.abort();
    expect(seen).toEqual(['ADDED w1', 'MODIFIED w1', 'DELETED w1']);
  });

  test('a watch cut by the server resumes from the last resourceVersion and misses nothing', async () => {
    const seen: string[] = [];
    let lastRv = '';
    let dropped = 0;
    const watch = new k8s.Watch(api.kc);
    const start = await api.core.listNamespacedConfigMap({ namespace: 'prod' });
    const open = (rv: string) =>
      watch.watch(
        '/api/v1/namespaces/prod/configmaps',
        { resourceVersion: rv, allowWatchBookmarks: true },
        (phase, obj: k8s.V1ConfigMap) => {
          lastRv = obj.metadata?.resourceVersion ?? lastRv;
          if (phase !== 'BOOKMARK') seen.push(`${phase} ${obj.metadata?.name}`);
        },
        () => {
          dropped++;
        },
      );
    let controller = await open(start.metadata!.resourceVersion!);
    await api.core.createNamespacedConfigMap({ namespace: 'prod', body: { metadata: { name: 'r1' } } });
    await until('r1 seen', () => seen.includes('ADDED r1'));
    sim.dropWatches();
    await until('the drop to reach the client', () => dropped === 1);
    // Changes made while no watch is open must arrive after resuming.
    await api.core.createNamespacedConfigMap({ namespace: 'prod', body: { metadata: { name: 'r2' } } });
    await api.core.deleteNamespacedConfigMap({ name: 'r1', namespace: 'prod' });
    controller = await open(lastRv);
    await until('r2 and the deletion', () => seen.length >= 3);
    controller.abort();
    expect(seen).toEqual(['ADDED r1', 'ADDED r2', 'DELETED r1']);
  });

  test('a resourceVersion older than the history answers an ERROR event with 410 Gone', async () => {
    const list = await api.core.listNamespacedConfigMap({ namespace: 'default' });
    await api.core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'after-compact' } },
    });
    sim.compactHistory();
    const events: { type: string; object: Record<string, unknown> }[] = [];
    const res = await fetch(
      `${sim.url}/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=${list.metadata!.resourceVersion}`,
      { headers: { authorization: `Bearer ${sim.token}` } },
    );
    for (const line of (await res.text()).split('\n').filter(Boolean)) events.push(JSON.parse(line));
    expect(events).toEqual([
      { type: 'ERROR', object: expect.objectContaining({ kind: 'Status', code: 410, reason: 'Expired' }) },
    ]);
  });

  test('bookmarks carry the current resourceVersion when asked for', async () => {
    const types: string[] = [];
    const watch = new k8s.Watch(api.kc);
    const controller = await watch.watch(
      '/api/v1/namespaces/kube-public/configmaps',
      { allowWatchBookmarks: true },
      (phase, obj: k8s.V1ConfigMap) => types.push(`${phase}:${obj.metadata?.resourceVersion ? 'rv' : '-'}`),
      () => {},
    );
    await until('a bookmark', () => types.includes('BOOKMARK:rv'), 20_000);
    controller.abort();
  });
});

describe('deletion', () => {
  test('background propagation removes ReplicaSets and pods; orphan keeps them without owner', async () => {
    await api.apps.createNamespacedDeployment({
      namespace: 'dev',
      body: deployment('gc', 'registry/app:v1', { replicas: 2 }),
    });
    await until(
      'pods',
      async () =>
        (await api.core.listNamespacedPod({ namespace: 'dev', labelSelector: 'app=gc' })).items.length === 2,
    );
    await api.apps.deleteNamespacedDeployment({
      name: 'gc',
      namespace: 'dev',
      propagationPolicy: 'Background',
    });
    await until('ReplicaSets and pods gone', async () => {
      const rs = await api.apps.listNamespacedReplicaSet({ namespace: 'dev', labelSelector: 'app=gc' });
      const pods = await api.core.listNamespacedPod({ namespace: 'dev', labelSelector: 'app=gc' });
      return rs.items.length === 0 && pods.items.length === 0;
    });

    await api.apps.createNamespacedDeployment({
      namespace: 'dev',
      body: deployment('orph', 'registry/app:v1', { replicas: 1 }),
    });
    await until(
      'rs',
      async () =>
        (await api.apps.listNamespacedReplicaSet({ namespace: 'dev', labelSelector: 'app=orph' })).items
          .length === 1,
    );
    await api.apps.deleteNamespacedDeployment({
      name: 'orph',
      namespace: 'dev',
      propagationPolicy: 'Orphan',
    });
    const rs = await until('orphaned rs', async () => {
      const list = await api.apps.listNamespacedReplicaSet({ namespace: 'dev', labelSelector: 'app=orph' });
      return list.items[0] && !list.items[0].metadata?.ownerReferences ? list.items[0] : undefined;
    });
    expect(rs.metadata?.name).toMatch(/^orph-[a-z0-9]+$/);
  });

  test('foreground propagation deletes dependents before the owner', async () => {
    await api.apps.createNamespacedDeployment({
      namespace: 'dev',
      body: deployment('fg', 'registry/app:v1', { replicas: 1 }),
    });
    await until(
      'pod',
      async () =>
        (await api.core.listNamespacedPod({ namespace: 'dev', labelSelector: 'app=fg' })).items.length === 1,
    );
    await api.apps.deleteNamespacedDeployment({
      name: 'fg',
      namespace: 'dev',
      propagationPolicy: 'Foreground',
    });
    await until(
      'deployment gone',
      async () =>
        (await failure(api.apps.readNamespacedDeployment({ name: 'fg', namespace: 'dev' }))).code === 404,
    );
    const pods = await api.core.listNamespacedPod({ namespace: 'dev', labelSelector: 'app=fg' });
    const rs = await api.apps.listNamespacedReplicaSet({ namespace: 'dev', labelSelector: 'app=fg' });
    expect(pods.items).toHaveLength(0);
    expect(rs.items).toHaveLength(0);
  });
});
