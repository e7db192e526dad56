import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { clusterKinds } from '../../tooling/cluster.ts';
import { LocalGitHub } from '../../tooling/local-services/local-github.ts';
import { runBuiltAction, type StepResult } from '../../tooling/runners/action-runner.ts';
import {
  type AppOptions,
  kubectlFor,
  readmeRoleKubeconfigs,
  useCluster,
  useServer,
  useWorkDir,
  writeApp,
} from '../../tooling/test-support/fixtures.ts';

const IMAGES = [
  { pattern: '*:crash*', mode: 'crash' as const, crashAfterMs: 500 },
  { pattern: '*:nopull*', mode: 'pull-error' as const },
  { pattern: '*:stuck*', mode: 'never-ready' as const },
  { pattern: '*:nowhere*', mode: 'unschedulable' as const },
  // The first of two concurrent deploys must still be rolling out when the second asks for the lock.
  { pattern: '*:slower*', startupMs: 30_000, readyMs: 1000 },
  { pattern: '*:slow*', startupMs: 3000, readyMs: 1000 },
];

type Deployment = {
  metadata: { annotations: Record<string, string> };
  spec: { template: { spec: { containers: { image: string; env?: unknown }[] } } };
  status: { availableReplicas?: number; updatedReplicas?: number; replicas?: number };
};

describe.each(clusterKinds())('deploy-env on %s with the README Role', (kind) => {
  const cluster = useCluster(kind, { images: IMAGES, timeScale: 4 });
  const github = useServer('LocalGitHub', () => LocalGitHub.start());
  const work = useWorkDir(`deploy-env-${kind}-`);
  const { kubectl, kubectlJson } = kubectlFor(cluster, work);
  /** The deployer of a namespace: its own ServiceAccount with deploy-env's README Role there. */
  const deployer = readmeRoleKubeconfigs(cluster, 'deploy-env');

  const get = <T>(...args: string[]) => kubectlJson<T>('get', ...args);
  const app = (dir: string, o: AppOptions = {}) => writeApp(work, dir, { gracePeriod: 5, ...o });

  async function deploy(
    namespace: string,
    inputs: Record<string, string>,
    runId?: string,
  ): Promise<StepResult> {
    return runBuiltAction('deploy-env', {
      inputs: {
        kubeconfig: await deployer(namespace),
        namespace,
        'fail-fast-after': '2s',
        timeout: '90s',
        ...inputs,
      },
      github: { apiUrl: github.url, ...(runId ? { runId } : {}) },
      cwd: work,
      timeoutMs: 150_000,
    });
  }
  const errors = (s: StepResult) => s.annotations.filter((a) => a.level === 'error').map((a) => a.message);

  test('first release into an empty namespace, an image update and a config-only change', async () => {
    const first = await deploy('shop-staging', { environment: 'staging', app: 'shop', manifests: app('v1') });
    expect(errors(first)).toEqual([]);
    expect(first.outputs).toMatchObject({ revision: '1', 'previous-revision': '', 'rolled-back': 'false' });
    let d = await get<Deployment>('deployment', 'shop', '-n', 'shop-staging');
    expect(d.status.availableReplicas).toBe(3);
    expect(d.spec.template.spec.containers[0]!.image).toBe('registry.local/shop:v1');
    const record = github.deployments.find((x) => String(x.id) === first.outputs['deployment-id'])!;
    expect(record.statuses.map((s) => s.state)).toEqual(['in_progress', 'success']);

    const second = await deploy('shop-staging', {
      environment: 'staging',
      app: 'shop',
      manifests: app('v1'),
      image: 'registry.local/shop:v2',
    });
    expect(errors(second)).toEqual([]);
    expect(second.outputs).toMatchObject({
      revision: '2',
      'previous-revision': '1',
      'previous-image': 'registry.local/shop:v1',
    });
    d = await get<Deployment>('deployment', 'shop', '-n', 'shop-staging');
    expect(d.spec.template.spec.containers[0]!.image).toBe('registry.local/shop:v2');
    expect(d.status).toMatchObject({ availableReplicas: 3, updatedReplicas: 3, replicas: 3 });

    const third = await deploy('shop-staging', {
      environment: 'staging',
      app: 'shop',
      manifests: app('debug', { logLevel: 'debug' }),
      image: 'registry.local/shop:v2',
    });
    expect(errors(third)).toEqual([]);
    expect(third.outputs).toMatchObject({ revision: '3', 'previous-revision': '2' });
    const cm = await get<{ data: Record<string, string> }>(
      'configmap',
      'shop-settings',
      '-n',
      'shop-staging',
    );
    expect(cm.data.LOG_LEVEL).toBe('debug');
  }, 240_000);

  test.each([
    ['crashes', 'registry.local/shop:crash-1', /container web is CrashLoopBackOff/],
    ['never pulls', 'registry.local/shop:nopull-1', /container web is (ImagePullBackOff|ErrImagePull)/],
    ['cannot be scheduled', 'registry.local/shop:nowhere-1', /is Unschedulable/],
  ])(
    'an image that %s fails fast with the pod reason and is rolled back to the running release',
    async (_what, image, reason) => {
      const step = await deploy('shop-staging', {
        environment: 'staging',
        app: 'shop',
        manifests: app('debug', { logLevel: 'debug' }),
        image,
      });
      expect(step.exitCode).toBe(1);
      expect(errors(step)[0]).toMatch(reason);
      expect(errors(step)[0]).toMatch(/The previous version was rolled back\.$/);
      expect(step.outputs['rolled-back']).toBe('true');
      // Rolled back: the template is the previous one and every replica of it is available again.
      for (let i = 0; ; i++) {
        const d = await get<Deployment>('deployment', 'shop', '-n', 'shop-staging');
        expect(d.spec.template.spec.containers[0]!.image).toBe('registry.local/shop:v2');
        if (d.status.availableReplicas === 3 && d.status.updatedReplicas === 3) break;
        if (i > 100) throw new Error(`not back to 3 available replicas: ${JSON.stringify(d.status)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    180_000,
  );

  test("a rollout that exceeds its progress deadline fails with kubectl's words and rolls back", async () => {
    const step = await deploy('shop-staging', {
      environment: 'staging',
      app: 'shop',
      manifests: app('deadline', { logLevel: 'debug', deadline: 6 }),
      image: 'registry.local/shop:stuck-1',
      'fail-fast-after': '5m',
    });
    expect(step.exitCode).toBe(1);
    expect(errors(step)[0]).toContain('deployment "shop" exceeded its progress deadline');
    expect(step.outputs['rolled-back']).toBe('true');
    const d = await get<Deployment>('deployment', 'shop', '-n', 'shop-staging');
    expect(d.spec.template.spec.containers[0]!.image).toBe('registry.local/shop:v2');
  }, 180_000);

  test('a first release that fails has nothing to roll back to, and says so', async () => {
    const step = await deploy('cart-dev', {
      environment: 'dev',
      app: 'cart',
      manifests: app('cart', { name: 'cart', image: 'registry.local/cart:crash' }),
    });
    expect(step.exitCode).toBe(1);
    expect(step.outputs['rolled-back']).toBe('false');
    expect(errors(step)[0]).toContain(
      'deployment "cart" has no previous revision to roll back to (first deploy)',
    );
  }, 180_000);

  test('prune deletes only what this action applied and dropped, with the README Role', async () => {
    const extra = `---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: old-flags }\ndata: { A: "1" }\n`;
    const first = await deploy('web-dev', {
      environment: 'dev',
      app: 'web',
      manifests: app('prune1', { name: 'web', replicas: 1, extra }),
    });
    expect(errors(first)).toEqual([]);
    await kubectl('create', 'configmap', 'hand-made', '-n', 'web-dev', '--from-literal=x=1');
    const step = await deploy('web-dev', {
      environment: 'dev',
      app: 'web',
      manifests: app('prune2', { name: 'web', replicas: 1 }),
      prune: 'true',
    });
    expect(errors(step)).toEqual([]);
    expect(JSON.parse(step.outputs.result!).objects).toContainEqual({
      kind: 'ConfigMap',
      name: 'old-flags',
      action: 'pruned',
    });
    const names = (
      await get<{ items: { metadata: { name: string } }[] }>('configmaps', '-n', 'web-dev')
    ).items.map((i) => i.metadata.name);
    expect(names).toEqual(expect.arrayContaining(['hand-made', 'web-settings']));
    expect(names).not.toContain('old-flags');
  }, 180_000);

  test('dry-run validates on the server and changes nothing', async () => {
    const before = await get<Deployment>('deployment', 'shop', '-n', 'shop-staging');
    const step = await deploy('shop-staging', {
      environment: 'staging',
      app: 'shop',
      manifests: app('dry', { logLevel: 'trace' }),
      image: 'registry.local/shop:v3',
      'dry-run': 'true',
    });
    expect(errors(step)).toEqual([]);
    expect(step.summary).toContain('+ spec.template.spec.containers.0.image: "registry.local/shop:v3"');
    const after = await get<Deployment>('deployment', 'shop', '-n', 'shop-staging');
    expect(after.metadata.annotations['deployment.kubernetes.io/revision']).toBe(
      before.metadata.annotations['deployment.kubernetes.io/revision'],
    );
    expect(after.spec.template.spec.containers[0]!.image).toBe('registry.local/shop:v2');
  }, 120_000);

  test('a manifest the API server rejects fails before anything changes, naming the field', async () => {
    const dir = join(work, 'invalid');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'app.yaml'),
      `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: bad-settings }\ndata: { A: "1" }\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: { name: bad }\nspec:\n  replicas: 1\n  selector: { matchLabels: { app: bad } }\n  template:\n    metadata: { labels: { app: other } }\n    spec: { containers: [{ name: web, image: registry.local/bad:v1 }] }\n`,
    );
    const step = await deploy('bad-dev', { environment: 'dev', app: 'bad', manifests: dir });
    expect(step.exitCode).toBe(1);
    expect(errors(step).join('\n')).toMatch(/selector|labels/);
    const cms = (
      await get<{ items: { metadata: { name: string } }[] }>('configmaps', '-n', 'bad-dev')
    ).items.map((i) => i.metadata.name);
    expect(cms).not.toContain('bad-settings');
  }, 120_000);

  test('two concurrent deploys of one app never interleave: the second waits for the lock', async () => {
    const dir = app('concurrent', { name: 'api', image: 'registry.local/api:slower-1', replicas: 2 });
    await deployer('api-dev');
    const first = deploy('api-dev', { environment: 'dev', app: 'api', manifests: dir }, '1001');
    for (let i = 0; ; i++) {
      const leases = await get<{ items: unknown[] }>('leases', '-n', 'api-dev');
      if (leases.items.length > 0) break;
      if (i > 600) throw new Error('the first deploy never took its lock');
      await new Promise((r) => setTimeout(r, 50));
    }
    const second = deploy(
      'api-dev',
      { environment: 'dev', app: 'api', manifests: dir, image: 'registry.local/api:slow-2' },
      '1002',
    );
    const [a, b] = await Promise.all([first, second]);
    expect(errors(a)).toEqual([]);
    expect(errors(b)).toEqual([]);
    expect(b.stdout).toMatch(/held by acme\/shop\/deploy#1001/);
    expect(b.outputs).toMatchObject({ 'previous-revision': '1', revision: '2' });
    expect((await get<{ items: unknown[] }>('leases', '-n', 'api-dev')).items).toHaveLength(0);
  }, 240_000);

  test('a deployer bound in another namespace gets a clear 403 and nothing is applied', async () => {
    const foreign = await deployer('team-a');
    await cluster.createNamespace('team-b');
    const step = await runBuiltAction('deploy-env', {
      inputs: {
        kubeconfig: foreign,
        namespace: 'team-b',
        environment: 'dev',
        app: 'intruder',
        manifests: app('intruder', { name: 'intruder' }),
        lock: 'false',
      },
      github: { apiUrl: github.url },
      cwd: work,
      timeoutMs: 60_000,
    });
    expect(step.exitCode).toBe(1);
    expect(errors(step)[0]).toMatch(/not allowed to do this in namespace team-b \(403 Forbidden\)/);
    expect((await get<{ items: unknown[] }>('deployments', '-n', 'team-b')).items).toHaveLength(0);
  }, 60_000);
});
