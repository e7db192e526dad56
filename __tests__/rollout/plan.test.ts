import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { MemoryLogger } from '../../packages/core/index.ts';
import { KubeClient, loadKubeConfig } from '../../packages/kube/client.ts';
import type { SourcedObject } from '../../packages/kube/manifests.ts';
import { readOnlyDiff } from '../../packages/kube/read-only-diff.ts';
import type { KubeObject } from '../../packages/kube/resources.ts';
import { deploy } from '../../packages/rollout/deploy.ts';
import { planManifests } from '../../packages/rollout/plan.ts';
import { manifestPlanLine, renderManifestPlan } from '../../packages/rollout/plan-summary.ts';
import { type KubeSim, startKubeSim } from '../../tooling/kube-sim/index.ts';
import { readOnlyKubeconfig } from '../../tooling/local-services/read-only-access.ts';

const NS = 'shop-production';
const OLD = 'ghcr.io/acme/shop@sha256:1111111111111111111111111111111111111111111111111111111111111111';
const NEW = 'ghcr.io/acme/shop@sha256:2222222222222222222222222222222222222222222222222222222222222222';
const SECRET_OLD = 'hunter2-old-password';
const SECRET_NEW = 'hunter3-new-password';

function manifests(o: {
  replicas: number;
  settings: string;
  logLevel: string;
  password: string;
  extraEnv: boolean;
  worker: boolean;
}): SourcedObject[] {
  const objects: KubeObject[] = [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: o.settings },
      data: { LOG_LEVEL: o.logLevel, REGION: 'eu' },
    },
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'shop-db' },
      type: 'Opaque',
      stringData: { PASSWORD: o.password },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'shop' },
      spec: { selector: { app: 'shop' }, ports: [{ port: 80, targetPort: 8080 }] },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'shop', labels: { app: 'shop' } },
      spec: {
        replicas: o.replicas,
        selector: { matchLabels: { app: 'shop' } },
        template: {
          metadata: { labels: { app: 'shop' } },
          spec: {
            containers: [
              {
                name: 'shop',
                image: 'ghcr.io/acme/shop:dev',
                envFrom: [{ configMapRef: { name: o.settings } }],
                env: [
                  { name: 'MODE', value: 'web' },
                  ...(o.extraEnv ? [{ name: 'LEGACY', value: 'on' }] : []),
                ],
                resources: { requests: { cpu: o.replicas > 5 ? '500m' : '250m' } },
              },
            ],
          },
        },
      },
    },
  ];
  if (o.worker)
    objects.push({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'shop-worker' },
      data: { QUEUE: 'orders' },
    });
  return objects.map((object, i) => ({ object, source: `test (document ${i + 1})` }));
}

let sim: KubeSim;
let admin: KubeClient;
const before = {
  replicas: 3,
  settings: 'shop-settings-5k299btm8t',
  logLevel: 'info',
  password: SECRET_OLD,
  extraEnv: true,
  worker: true,
};
const after = {
  replicas: 10,
  settings: 'shop-settings-c8t88cdk4d',
  logLevel: 'warn',
  password: SECRET_NEW,
  extraEnv: false,
  worker: false,
};

beforeAll(async () => {
  sim = await startKubeSim({
    timeScale: 50,
    namespaces: [NS],
    images: [{ pattern: '*', http: { health: { ok: true } } }],
  });
  admin = new KubeClient(loadKubeConfig({ kubeconfig: sim.kubeconfig }));
  const result = await deploy({
    client: admin,
    app: 'shop',
    environment: 'production',
    namespace: NS,
    createNamespace: true,
    objects: manifests(before),
    images: new Map([['ghcr.io/acme/shop', OLD]]),
    prune: false,
    dryRun: false,
    forceConflicts: true,
    timeoutMs: 60_000,
    stuckGraceMs: 30_000,
    rollbackOnFailure: false,
    logger: new MemoryLogger(),
  });
  expect(result.ok).toBe(true);
});
afterAll(async () => {
  admin?.close();
  await sim?.close();
});

const planWith = (client: KubeClient) =>
  planManifests({
    client,
    app: 'shop',
    environment: 'production',
    namespace: NS,
    objects: manifests(after),
    images: new Map([['ghcr.io/acme/shop', NEW]]),
    logger: new MemoryLogger(),
  });

describe('production plan: a read-only manifest diff', () => {
  test('with a get/list Role: replicas, image, resources, removed env, the new ConfigMap generation, the object left behind; Secrets unreadable; nothing written', async () => {
    const versions = () =>
      ['Deployment', 'ConfigMap', 'Service'].map(
        (k) => sim.peek(k, NS, k === 'ConfigMap' ? before.settings : 'shop')?.metadata.resourceVersion,
      );
    const was = versions();
    const readOnly = new KubeClient(loadKubeConfig({ kubeconfig: await readOnlyKubeconfig(sim, NS) }));
    try {
      const plan = await planWith(readOnly);
      const byName = Object.fromEntries(plan.objects.map((p) => [`${p.kind}/${p.name}`, p]));
      const deployment = byName['Deployment/shop']!;
      expect(deployment.change).toBe('changed');
      expect(deployment.callouts).toEqual(
        expect.arrayContaining([
          'replicas 3 → 10',
          'image ghcr.io/acme/shop@sha256:111111111111… → ghcr.io/acme/shop@sha256:222222222222…',
          'resources requests.cpu 250m → 500m',
          'env LEGACY removed',
        ]),
      );
      // The env entry we set before and no longer send: found through managedFields.
      expect(deployment.fields).toContainEqual({
        path: 'spec.template.spec.containers.0.env.1.name',
        before: '"LEGACY"',
      });
      // Server defaults (terminationMessagePath, strategy, ...) and status never show.
      expect(
        deployment.fields
          .map((f) => f.path)
          .filter((p) => /status|terminationMessage|managedFields|resourceVersion|strategy/.test(p)),
      ).toEqual([]);

      const settings = byName[`ConfigMap/${after.settings}`]!;
      expect(settings).toMatchObject({ change: 'added', replaces: before.settings });
      expect(settings.callouts).toEqual(['LOG_LEVEL: info → warn']);
      expect(byName['Service/shop']!.change).toBe('unchanged');
      expect(byName['ConfigMap/shop-worker']!.change).toBe('removed');
      expect(byName['Secret/shop-db']!.change).toBe('unreadable');
    } finally {
      readOnly.close();
    }
    expect(versions()).toEqual(was);
  });

  test('with read access to Secrets: says a Secret key changes, never its value, in the result or the summary', async () => {
    const plan = await planWith(admin);
    const secret = plan.objects.find((p) => p.kind === 'Secret')!;
    expect(secret.change).toBe('changed');
    expect(secret.callouts).toEqual(['PASSWORD changes (value not shown)']);
    const markdown = renderManifestPlan(plan, { app: 'shop', environment: 'production', image: NEW });
    for (const text of [JSON.stringify(plan), markdown])
      for (const value of [
        SECRET_OLD,
        SECRET_NEW,
        Buffer.from(SECRET_OLD).toString('base64'),
        Buffer.from(SECRET_NEW).toString('base64'),
      ])
        expect(text).not.toContain(value);
    expect(markdown).toContain(
      '| Deployment/shop | ✏️ changed | replicas 3 → 10; env LEGACY removed; image ghcr\\.io/acme/shop&#64;sha256:111111111111… → ghcr\\.io/acme/shop&#64;sha256:222222222222…; resources',
    );
    expect(markdown).toContain('new generation of shop\\-settings\\-5k299btm8t: LOG\\_LEVEL: info → warn');
    expect(markdown).toContain('| ConfigMap/shop\\-worker | 🗑️ removed |');
    expect(markdown).toContain('<details><summary>Deployment/shop: ');
    expect(manifestPlanLine(plan)).toBe('objects: 2 changed, 1 added, 2 no longer in the manifests');
  });

  test('an unchanged release plans no change', async () => {
    const plan = await planManifests({
      client: admin,
      app: 'shop',
      environment: 'production',
      namespace: NS,
      objects: manifests(before),
      images: new Map([['ghcr.io/acme/shop', OLD]]),
      logger: new MemoryLogger(),
    });
    expect(plan.objects.filter((p) => p.change !== 'unchanged')).toEqual([]);
    expect(manifestPlanLine(plan)).toBe('no object changes');
  });

  test('the first release into an empty namespace: every object is added', async () => {
    const plan = await planManifests({
      client: admin,
      app: 'shop',
      environment: 'production',
      namespace: 'shop-nowhere',
      objects: manifests(after),
      images: new Map([['ghcr.io/acme/shop', NEW]]),
      logger: new MemoryLogger(),
    });
    expect(plan.namespaceExists).toBe(false);
    expect(new Set(plan.objects.map((p) => p.change))).toEqual(new Set(['added']));
  });

  test('blue-green: the rendered Deployment is compared with the live colour the Service selects', async () => {
    const ns = 'shop-bluegreen';
    const coloured = manifests(before).map((o) => structuredClone(o));
    for (const { object } of coloured) {
      const o = object as KubeObject & {
        spec?: {
          selector: Record<string, unknown> & { matchLabels: Record<string, string> };
          template: { metadata: { labels: Record<string, string> } };
        };
      };
      if (o.kind === 'Deployment') {
        o.metadata.name = 'shop-blue';
        o.spec!.selector.matchLabels.color = 'blue';
        o.spec!.template.metadata.labels.color = 'blue';
      }
      if (o.kind === 'Service') o.spec!.selector['color'] = 'blue';
    }
    const seeded = await deploy({
      client: admin,
      app: 'shop',
      environment: 'production',
      namespace: ns,
      createNamespace: true,
      objects: coloured,
      images: new Map([['ghcr.io/acme/shop', OLD]]),
      prune: false,
      dryRun: false,
      forceConflicts: true,
      timeoutMs: 60_000,
      stuckGraceMs: 30_000,
      rollbackOnFailure: false,
      logger: new MemoryLogger(),
    });
    expect(seeded.ok).toBe(true);
    const plan = await planManifests({
      client: admin,
      app: 'shop',
      environment: 'production',
      namespace: ns,
      objects: manifests(after),
      images: new Map([['ghcr.io/acme/shop', NEW]]),
      logger: new MemoryLogger(),
    });
    // The new template goes to the idle colour, compared with what the live colour runs.
    const deployment = plan.objects.find((p) => p.kind === 'Deployment' && p.name === 'shop-green')!;
    expect(deployment).toMatchObject({ change: 'changed', replaces: 'shop-blue' });
    expect(deployment.callouts[0]).toBe(
      'the idle colour green gets the new template (compared with the live shop-blue)',
    );
    expect(deployment.callouts).toEqual(expect.arrayContaining(['replicas 3 → 10', 'env LEGACY removed']));
    expect(deployment.fields.map((f) => f.path).filter((p) => /color|^metadata\./.test(p))).toEqual([]);
    expect(plan.objects.filter((p) => p.kind === 'Deployment' && p.name === 'shop')).toEqual([]);
    // Then the live Service switches its selector, and the old colour is retired after the soak.
    const service = plan.objects.find((p) => p.kind === 'Service' && p.name === 'shop')!;
    expect(service).toMatchObject({
      change: 'changed',
      fields: [{ path: 'spec.selector.color', before: '"blue"', after: '"green"' }],
      callouts: ['selector color blue → green: the switch, once shop-green is ready and its checks pass'],
    });
    const old = plan.objects.find((p) => p.kind === 'Deployment' && p.name === 'shop-blue')!;
    expect(old).toMatchObject({
      change: 'changed',
      fields: [{ path: 'spec.replicas', before: '3', after: '0' }],
    });
    expect(old.callouts[0]).toMatch(
      /serves until the switch, .*until the soak ends .*then scaled to 0 \(from 3\)/,
    );
    const markdown = renderManifestPlan(plan, { app: 'shop', environment: 'production' });
    expect(markdown).toContain(
      '| Deployment/shop\\-green | ✏️ changed | the idle colour green gets the new template \\(compared with the live shop\\-blue\\); replicas 3 → 10',
    );
    expect(markdown).toContain('| Service/shop | ✏️ changed | selector color blue → green: the switch');
    expect(markdown).toContain(
      '| Deployment/shop\\-blue | ✏️ changed | the live colour: serves until the switch',
    );
    expect(markdown).not.toMatch(/Unchanged: .*Service\/shop/);

    // The same template as the live colour: no new colour and no switch.
    const same = await planManifests({
      client: admin,
      app: 'shop',
      environment: 'production',
      namespace: ns,
      objects: manifests(before),
      images: new Map([['ghcr.io/acme/shop', OLD]]),
      logger: new MemoryLogger(),
    });
    expect(same.objects.filter((p) => p.change !== 'unchanged')).toEqual([]);
    expect(same.objects.find((p) => p.kind === 'Deployment')!.callouts).toEqual([
      'the same template as the live blue: no new colour, no switch',
    ]);
  });

  test('readOnlyDiff compares only the fields sent, plus owned fields no longer sent', () => {
    const live: KubeObject = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'x',
        resourceVersion: '9',
        managedFields: [
          {
            manager: 'pipeline-deploy-env',
            operation: 'Apply',
            fieldsV1: { 'f:data': { 'f:A': {}, 'f:B': {} } },
          },
          { manager: 'kubectl-edit', operation: 'Update', fieldsV1: { 'f:data': { 'f:C': {} } } },
        ],
      },
      data: { A: '1', B: '2', C: 'theirs' },
    };
    expect(
      readOnlyDiff(live, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { A: '1' } }),
    ).toEqual([{ path: 'data.B', before: '"2"' }]);
  });
});
