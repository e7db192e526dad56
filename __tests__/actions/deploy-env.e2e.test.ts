import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { LocalGitHub } from '../../tooling/local-services/local-github.ts';
import { findLeaks, runBuiltAction, type StepResult } from '../../tooling/runners/action-runner.ts';
import {
  type AppOptions,
  kubectlFor,
  useKubeSim,
  useServer,
  useWorkDir,
  writeApp,
} from '../../tooling/test-support/fixtures.ts';

const sim = useKubeSim({
  timeScale: 20,
  users: [{ token: 'team-a-token', name: 'team-a', namespaces: ['team-a'] }],
  images: [
    { pattern: '*:crash*', mode: 'crash', crashAfterMs: 500 },
    { pattern: '*:nopull*', mode: 'pull-error' },
    { pattern: '*:stuck*', mode: 'never-ready' },
    { pattern: '*:slower*', startupMs: 40_000, readyMs: 2000 },
    { pattern: '*:slow*', startupMs: 4000, readyMs: 2000 },
  ],
});
const github = useServer('LocalGitHub', () => LocalGitHub.start());
const work = useWorkDir('deploy-env-');
const { kubectl, kubectlJson, kubectlApply: applyIn } = kubectlFor(sim, work);
const kubectlApply = (yaml: string) => applyIn(undefined, yaml);
const app = (dir: string, o: AppOptions = {}) => writeApp(work, dir, o);

function deploy(
  inputs: Record<string, string>,
  extra: { runId?: string; cancelAfterMs?: number; cancelWhenOutput?: RegExp } = {},
): Promise<StepResult> {
  return runBuiltAction('deploy-env', {
    ...(extra.cancelAfterMs !== undefined ? { cancelAfterMs: extra.cancelAfterMs } : {}),
    ...(extra.cancelWhenOutput ? { cancelWhenOutput: extra.cancelWhenOutput } : {}),
    inputs: { kubeconfig: sim.kubeconfigPath, 'fail-fast-after': '2s', timeout: '60s', ...inputs },
    github: { apiUrl: github.url, ...(extra.runId ? { runId: extra.runId } : {}) },
    cwd: work,
    timeoutMs: 120_000,
  });
}

const errors = (step: StepResult) =>
  step.annotations.filter((a) => a.level === 'error').map((a) => a.message);
type Deployment = {
  metadata: { annotations: Record<string, string> };
  spec: {
    template: {
      spec: { containers: { image: string }[] };
      metadata: { annotations?: Record<string, string> };
    };
  };
  status: { availableReplicas?: number; updatedReplicas?: number };
};

describe('deploy-env against the embedded Kubernetes API', () => {
  test('first deploy creates everything, waits for the rollout, and records a GitHub deployment', async () => {
    const dir = app('first');
    const step = await deploy({
      environment: 'staging',
      app: 'shop',
      namespace: 'shop-staging',
      'create-namespace': 'true',
      manifests: dir,
      'environment-url': 'https://staging.shop.example.com',
    });
    expect(errors(step)).toEqual([]);
    expect(step.exitCode).toBe(0);
    expect(step.outputs).toMatchObject({
      revision: '1',
      'previous-revision': '',
      image: 'registry.local/shop:v1',
      'previous-image': '',
      'rolled-back': 'false',
    });
    const result = JSON.parse(step.outputs.result!);
    expect(result.objects).toEqual([
      { kind: 'ConfigMap', name: 'shop-settings', action: 'created' },
      { kind: 'Service', name: 'shop', action: 'created' },
      { kind: 'Deployment', name: 'shop', action: 'created' },
    ]);
    const d = await kubectlJson<Deployment>('get', 'deployment', 'shop', '-n', 'shop-staging');
    expect(d.status.availableReplicas).toBe(3);
    expect(d.spec.template.metadata.annotations?.['pipeline.dev/config-checksum']).toMatch(/^[0-9a-f]{16}$/);
    const record = github.deployments.find((x) => String(x.id) === step.outputs['deployment-id'])!;
    expect(record).toMatchObject({
      environment: 'staging',
      production_environment: false,
      ref: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
    });
    expect(record.statuses.map((s) => s.state)).toEqual(['in_progress', 'success']);
    expect(record.statuses[1]!.environment_url).toBe('https://staging.shop.example.com');
    expect(step.summary).toContain('### ✅ shop deployed to staging');
    expect(step.summary).toContain('successfully rolled out');
  });

  test('an image update rolls out as a new revision; unchanged objects say so', async () => {
    const dir = app('first');
    const step = await deploy({
      environment: 'staging',
      app: 'shop',
      namespace: 'shop-staging',
      manifests: dir,
      image: 'registry.local/shop:v2',
    });
    expect(errors(step)).toEqual([]);
    expect(step.outputs).toMatchObject({
      revision: '2',
      'previous-revision': '1',
      image: 'registry.local/shop:v2',
      'previous-image': 'registry.local/shop:v1',
    });
    const actions = JSON.parse(step.outputs.result!).objects.map((o: { action: string }) => o.action);
    expect(actions).toEqual(['unchanged', 'unchanged', 'configured']);
    expect(step.summary).toContain('`registry.local/shop:v1` → `registry.local/shop:v2`');
    const d = await kubectlJson<Deployment>('get', 'deployment', 'shop', '-n', 'shop-staging');
    expect(d.spec.template.spec.containers[0]!.image).toBe('registry.local/shop:v2');
  });

  test('a config-only change rolls the pods so the new config reaches running code', async () => {
    const dir = app('config', { logLevel: 'debug' });
    const step = await deploy({
      environment: 'staging',
      app: 'shop',
      namespace: 'shop-staging',
      manifests: dir,
      image: 'registry.local/shop:v2',
    });
    expect(errors(step)).toEqual([]);
    expect(step.outputs).toMatchObject({ revision: '3', 'previous-revision': '2' });
    const actions = JSON.parse(step.outputs.result!).objects.map(
      (o: { name: string; action: string }) => `${o.name}:${o.action}`,
    );
    expect(actions).toEqual(['shop-settings:configured', 'shop:unchanged', 'shop:configured']);
  });

  test('an image that crashes fails fast with the pod reason and is rolled back automatically', async () => {
    const dir = app('config', { logLevel: 'debug' });
    const step = await deploy({
      environment: 'staging',
      app: 'shop',
      namespace: 'shop-staging',
      manifests: dir,
      image: 'registry.local/shop:crash-1',
    });
    expect(step.exitCode).toBe(1);
    expect(errors(step)[0]).toMatch(
      /^Deploy to staging failed: deployment "shop" cannot finish: pod shop-[a-z0-9]+-[a-z0-9]+ container web is CrashLoopBackOff.*The previous version was rolled back\.$/,
    );
    expect(step.outputs['rolled-back']).toBe('true');
    const result = JSON.parse(step.outputs.result!);
    expect(result.workloads[0].rollback).toMatchObject({ rolledBack: true, ok: true, toRevision: '3' });
    expect(result.workloads[0].problems[0]).toMatchObject({ container: 'web', reason: 'CrashLoopBackOff' });
    const d = await kubectlJson<Deployment>('get', 'deployment', 'shop', '-n', 'shop-staging');
    expect(d.spec.template.spec.containers[0]!.image).toBe('registry.local/shop:v2');
    expect(d.status.availableReplicas).toBe(3);
    expect(step.summary).toContain('↩️ shop failed in staging and was rolled back');
    expect(step.summary).toContain('CrashLoopBackOff');
    const record = github.deployments.find((x) => String(x.id) === step.outputs['deployment-id'])!;
    expect(record.statuses.map((s) => s.state)).toEqual(['in_progress', 'failure']);
  });

  test('an image that never pulls fails fast with ImagePullBackOff instead of waiting for the deadline', async () => {
    const dir = app('config', { logLevel: 'debug' });
    const step = await deploy({
      environment: 'staging',
      app: 'shop',
      namespace: 'shop-staging',
      manifests: dir,
      image: 'registry.local/shop:nopull',
      timeout: '5m',
    });
    expect(step.exitCode).toBe(1);
    expect(errors(step)[0]).toMatch(/container web is (ImagePullBackOff|ErrImagePull)/);
    expect(step.outputs['rolled-back']).toBe('true');
    expect(step.durationMs).toBeLessThan(5 * 60_000);
  });

  test("a rollout that exceeds its progress deadline fails with kubectl's words, and rolls back", async () => {
    const dir = app('deadline', { logLevel: 'debug', deadline: 30 });
    const step = await deploy({
      environment: 'staging',
      app: 'shop',
      namespace: 'shop-staging',
      manifests: dir,
      image: 'registry.local/shop:stuck',
    });
    expect(step.exitCode).toBe(1);
    expect(errors(step)[0]).toContain('deployment "shop" exceeded its progress deadline');
    expect(step.outputs['rolled-back']).toBe('true');
    const d = await kubectlJson<Deployment>('get', 'deployment', 'shop', '-n', 'shop-staging');
    expect(d.spec.template.spec.containers[0]!.image).toBe('registry.local/shop:v2');
  });

  test('a first deploy that fails has nothing to roll back to, and says so', async () => {
    const dir = app('fresh', { name: 'cart', image: 'registry.local/cart:crash' });
    const step = await deploy({
      environment: 'dev',
      app: 'cart',
      namespace: 'cart-dev',
      'create-namespace': 'true',
      manifests: dir,
    });
    expect(step.exitCode).toBe(1);
    expect(step.outputs['rolled-back']).toBe('false');
    expect(errors(step)[0]).toContain(
      'deployment "cart" has no previous revision to roll back to (first deploy)',
    );
  });

  test('two concurrent deploys of the same app and environment never interleave: the second waits for the lock', async () => {
    const dir = app('concurrent', { name: 'api', image: 'registry.local/api:slower-1', replicas: 2 });
    const first = deploy(
      { environment: 'dev', app: 'api', namespace: 'api-dev', 'create-namespace': 'true', manifests: dir },
      { runId: '1001' },
    );
    // The second run starts only once the first holds the lock, however fast or slow the machine is.
    while (!sim.peek('Lease', 'api-dev', 'pipeline-rollout-api')) await new Promise((r) => setTimeout(r, 20));
    const second = deploy(
      {
        environment: 'dev',
        app: 'api',
        namespace: 'api-dev',
        'create-namespace': 'true',
        manifests: dir,
        image: 'registry.local/api:slow-2',
      },
      { runId: '1002' },
    );
    const [a, b] = await Promise.all([first, second]);
    expect(errors(a)).toEqual([]);
    expect(errors(b)).toEqual([]);
    expect(b.stdout).toMatch(
      /Waiting for the deploy lock api-dev\/pipeline-rollout-api, held by acme\/shop\/deploy#1001/,
    );
    expect(b.outputs).toMatchObject({ 'previous-revision': '1', revision: '2' });
    const leases = await kubectlJson<{ items: unknown[] }>('get', 'leases', '-n', 'api-dev');
    expect(leases.items).toHaveLength(0);
  });

  test('a lock left by a runner that died is taken over once its lease expired', async () => {
    await kubectlApply(
      'apiVersion: v1\nkind: Namespace\nmetadata: { name: orphan-dev }\n---\napiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: { name: pipeline-rollout-orphan, namespace: orphan-dev }\nspec: { holderIdentity: acme/shop/deploy#999.1/deploy, leaseDurationSeconds: 5, renewTime: "2020-01-01T00:00:00.000000Z" }\n',
    );
    const dir = app('orphan', { name: 'orphan', replicas: 1 });
    const step = await deploy({ environment: 'dev', app: 'orphan', namespace: 'orphan-dev', manifests: dir });
    expect(errors(step)).toEqual([]);
    expect(step.annotations.filter((a) => a.level === 'warning').map((a) => a.message)).toContainEqual(
      expect.stringMatching(
        /^The deploy lock orphan-dev\/pipeline-rollout-orphan was held by acme\/shop\/deploy#999\.1\/deploy, which stopped renewing it .* ago; taking it over$/,
      ),
    );
  });

  test('a rollout wait survives dropped watch connections', async () => {
    const dir = app('dropped', { name: 'resilient', image: 'registry.local/resilient:slow-1', replicas: 2 });
    const stepPromise = deploy({
      environment: 'dev',
      app: 'resilient',
      namespace: 'resilient-dev',
      'create-namespace': 'true',
      manifests: dir,
    });
    const dropper = setInterval(() => sim.dropWatches(), 150);
    const step = await stepPromise.finally(() => clearInterval(dropper));
    expect(errors(step)).toEqual([]);
    expect(step.outputs.revision).toBe('1');
    expect(
      (await kubectlJson<Deployment>('get', 'deployment', 'resilient', '-n', 'resilient-dev')).status
        .availableReplicas,
    ).toBe(2);
  });

  test('prune removes what this action applied earlier and is gone from the manifests, and nothing else', async () => {
    const extra = `---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: old-flags }\ndata: { A: "1" }\n`;
    const dir1 = app('prune1', { name: 'web', extra, replicas: 1 });
    expect(
      (
        await deploy({
          environment: 'dev',
          app: 'web',
          namespace: 'web-dev',
          'create-namespace': 'true',
          manifests: dir1,
        })
      ).exitCode,
    ).toBe(0);
    await kubectlApply(
      `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: hand-made, namespace: web-dev }\ndata: { x: "1" }\n`,
    );
    const dir2 = app('prune2', { name: 'web', replicas: 1 });
    const step = await deploy({
      environment: 'dev',
      app: 'web',
      namespace: 'web-dev',
      manifests: dir2,
      prune: 'true',
    });
    expect(errors(step)).toEqual([]);
    expect(JSON.parse(step.outputs.result!).objects).toContainEqual({
      kind: 'ConfigMap',
      name: 'old-flags',
      action: 'pruned',
    });
    const names = (
      await kubectlJson<{ items: { metadata: { name: string } }[] }>('get', 'configmaps', '-n', 'web-dev')
    ).items.map((i) => i.metadata.name);
    expect(names).toContain('hand-made');
    expect(names).toContain('web-settings');
    expect(names).not.toContain('old-flags');
  });

  test('dry-run changes nothing and shows the diff in the summary', async () => {
    const dir = app('dry', { logLevel: 'trace' });
    const before = await kubectlJson<Deployment>('get', 'deployment', 'shop', '-n', 'shop-staging');
    const step = await deploy({
      environment: 'staging',
      app: 'shop',
      namespace: 'shop-staging',
      manifests: dir,
      image: 'registry.local/shop:v3',
      'dry-run': 'true',
    });
    expect(errors(step)).toEqual([]);
    expect(step.summary).toContain('🔍 Dry run: shop to staging');
    expect(step.summary).toContain('+ spec.template.spec.containers.0.image: "registry.local/shop:v3"');
    expect(step.summary).toContain('+ data.LOG_LEVEL: "trace"');
    const after = await kubectlJson<Deployment>('get', 'deployment', 'shop', '-n', 'shop-staging');
    expect(after.metadata.annotations['deployment.kubernetes.io/revision']).toBe(
      before.metadata.annotations['deployment.kubernetes.io/revision'],
    );
    expect(after.spec.template.spec.containers[0]!.image).toBe('registry.local/shop:v2');
  });

  test('API 503s and 429s are retried and the deploy still succeeds', async () => {
    sim.setFaults({ errorRate: 0.2, statuses: [503, 429], retryAfterSeconds: 0 });
    try {
      const dir = app('faults', { name: 'faulty', replicas: 2 });
      const step = await deploy({
        environment: 'dev',
        app: 'faulty',
        namespace: 'faulty-dev',
        'create-namespace': 'true',
        manifests: dir,
      });
      expect(errors(step)).toEqual([]);
      expect(step.exitCode).toBe(0);
    } finally {
      sim.setFaults({});
    }
    expect(
      (await kubectlJson<Deployment>('get', 'deployment', 'faulty', '-n', 'faulty-dev')).status
        .availableReplicas,
    ).toBe(2);
  });

  test('a deployer without rights on the namespace gets a clear 403, and nothing is applied', async () => {
    const kubeconfig = sim.writeKubeconfig('team-a-token', 'team-a');
    const dir = app('rbac', { name: 'intruder' });
    await kubectlApply('apiVersion: v1\nkind: Namespace\nmetadata: { name: team-b }\n');
    const step = await deploy({
      environment: 'dev',
      app: 'intruder',
      namespace: 'team-b',
      manifests: dir,
      kubeconfig,
      lock: 'false',
    });
    expect(step.exitCode).toBe(1);
    expect(errors(step)[0]).toMatch(/not allowed to do this in namespace team-b \(403 Forbidden\)/);
    expect(findLeaks(step, 'team-a-token')).toEqual([]);
    const deployments = await kubectlJson<{ items: unknown[] }>('get', 'deployments', '-n', 'team-b');
    expect(deployments.items).toHaveLength(0);
  });

  test('replicas from inputs override the overlay', async () => {
    const dir = app('replicas', { name: 'sized', replicas: 1 });
    const step = await deploy({
      environment: 'dev',
      app: 'sized',
      namespace: 'sized-dev',
      'create-namespace': 'true',
      manifests: dir,
      replicas: 'sized=3',
    });
    expect(errors(step)).toEqual([]);
    expect(
      (await kubectlJson<Deployment>('get', 'deployment', 'sized', '-n', 'sized-dev')).status
        .availableReplicas,
    ).toBe(3);
  });

  test('an unreachable cluster and rejected credentials fail before anything is applied, saying which', async () => {
    const dir = app('unreachable', { name: 'lonely' });
    const { readFileSync } = await import('node:fs');
    const closed = readFileSync(sim.kubeconfigPath, 'utf8').replace(
      /server: https:\/\/127\.0\.0\.1:\d+/,
      'server: https://127.0.0.1:9',
    );
    const unreachable = await deploy({
      environment: 'dev',
      app: 'lonely',
      namespace: 'lonely-dev',
      manifests: dir,
      kubeconfig: closed,
      lock: 'false',
    });
    expect(unreachable.exitCode).toBe(1);
    expect(errors(unreachable)[0]).toMatch(
      /^The cluster at https:\/\/127\.0\.0\.1:9 cannot be reached: .*ECONNREFUSED/,
    );
    const wrongToken = readFileSync(sim.kubeconfigPath, 'utf8').replace(sim.token, 'not-the-token');
    const rejected = await deploy({
      environment: 'dev',
      app: 'lonely',
      namespace: 'lonely-dev',
      manifests: dir,
      kubeconfig: wrongToken,
      lock: 'false',
    });
    expect(errors(rejected)[0]).toMatch(/rejected the credentials in the kubeconfig \(401 Unauthorized\)/);
    expect(findLeaks(rejected, 'not-the-token')).toEqual([]);
  });

  test('a failed release rolls back only the templates it changed, to exactly the revision before it, and prunes nothing', async () => {
    const two = (webImage: string, workerLabel: string, extra = '') =>
      app('pair', {
        name: 'web2',
        image: webImage,
        replicas: 1,
        extra: `---\napiVersion: apps/v1\nkind: Deployment\nmetadata: { name: worker, labels: { tier: ${workerLabel} } }\nspec:\n  replicas: 1\n  selector: { matchLabels: { app: worker } }\n  template:\n    metadata: { labels: { app: worker } }\n    spec: { containers: [{ name: worker, image: "registry.local/worker:v2" }] }\n${extra}`,
      });
    const keep = '---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: legacy-flags }\ndata: { A: "1" }\n';
    const base = { environment: 'dev', app: 'pair', namespace: 'pair-dev', 'create-namespace': 'true' };
    expect((await deploy({ ...base, manifests: two('registry.local/web:v1', 'a', keep) })).exitCode).toBe(0);
    expect((await deploy({ ...base, manifests: two('registry.local/web:v2', 'a', keep) })).exitCode).toBe(0);
    const worker = async () => kubectlJson<Deployment>('get', 'deployment', 'worker', '-n', 'pair-dev');
    const workerRevision = (await worker()).metadata.annotations['deployment.kubernetes.io/revision'];
    // web crashes; worker only gets a new label, its pod template is unchanged; legacy-flags leaves the manifests.
    const step = await deploy({ ...base, manifests: two('registry.local/web:crash-3', 'b'), prune: 'true' });
    expect(step.exitCode).toBe(1);
    const result = JSON.parse(step.outputs.result!);
    const byName = Object.fromEntries(result.workloads.map((w: { name: string }) => [w.name, w]));
    expect(byName.web2.rollback).toMatchObject({ rolledBack: true, toRevision: '2' });
    expect(byName.worker.rollback).toMatchObject({ rolledBack: false });
    expect(byName.worker.rollback.message).toMatch(
      /still has the pod template of revision \d+; nothing to roll back/,
    );
    expect((await worker()).spec.template.spec.containers[0]!.image).toBe('registry.local/worker:v2');
    expect((await worker()).metadata.annotations['deployment.kubernetes.io/revision']).toBe(workerRevision);
    expect(
      (await kubectlJson<Deployment>('get', 'deployment', 'web2', '-n', 'pair-dev')).spec.template.spec
        .containers[0]!.image,
    ).toBe('registry.local/web:v2');
    const configMaps = (
      await kubectlJson<{ items: { metadata: { name: string } }[] }>('get', 'configmaps', '-n', 'pair-dev')
    ).items.map((i) => i.metadata.name);
    expect(configMaps).toContain('legacy-flags');
  });

  test('a cancelled job stops waiting at once, says so, and releases the lock', async () => {
    const dir = app('cancel', { name: 'slowpoke', image: 'registry.local/slowpoke:stuck', replicas: 2 });
    const step = await deploy(
      {
        environment: 'dev',
        app: 'slowpoke',
        namespace: 'slowpoke-dev',
        'create-namespace': 'true',
        manifests: dir,
        'rollback-on-failure': 'false',
      },
      { cancelWhenOutput: /Waiting for \d+ (deployment|workload)\(s\) to roll out/, cancelAfterMs: 200 },
    );
    expect(step.exitCode).toBe(1);
    expect(errors(step)[0]).toMatch(/waiting for deployment "slowpoke" was cancelled/);
    const leases = await kubectlJson<{ items: unknown[] }>('get', 'leases', '-n', 'slowpoke-dev');
    expect(leases.items).toHaveLength(0);
  });

  test('a Secret-only change rolls the pods; its checksum is keyed by the namespace key and never shown, in the deploy or the plan', async () => {
    const dir = join(work, 'secret-roll');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'app.yaml'),
      `apiVersion: apps/v1
kind: Deployment
metadata: { name: vault }
spec:
  replicas: 1
  selector: { matchLabels: { app: vault } }
  template:
    metadata: { labels: { app: vault } }
    spec:
      containers:
        - name: web
          image: registry.local/vault:v1
          envFrom: [{ secretRef: { name: vault-secrets } }]
`,
    );
    const OLD = 'hunter2-PROD-s3cr3t-OLD';
    const NEW = 'hunter2-PROD-s3cr3t-NEW';
    const inputs = (password: string) => ({
      environment: 'production',
      app: 'vault',
      namespace: 'vault-production',
      'create-namespace': 'true',
      manifests: dir,
      secrets: `DB_PASSWORD=${password}`,
    });
    const checksum = async () =>
      (await kubectlJson<Deployment>('get', 'deployment', 'vault', '-n', 'vault-production')).spec.template
        .metadata.annotations?.['pipeline.dev/secret-checksum'];
    const key = async () =>
      (
        await kubectlJson<{ data: { key: string } }>(
          'get',
          'secret',
          'pipeline-checksum-key',
          '-n',
          'vault-production',
        )
      ).data.key;

    const first = await deploy(inputs(OLD));
    expect(errors(first)).toEqual([]);
    expect(first.outputs.revision).toBe('1');
    const before = await checksum();
    expect(before).toMatch(/^[0-9a-f]{16}$/);
    const firstKey = await key();

    const plan = await deploy({ ...inputs(NEW), plan: 'true' });
    expect(errors(plan)).toEqual([]);
    const planned = JSON.parse(plan.outputs.plan!) as { objects: { kind: string; callouts: string[] }[] };
    expect(planned.objects.find((o) => o.kind === 'Deployment')!.callouts).toEqual([
      'pods restart: a referenced Secret changed',
    ]);
    expect(await checksum()).toBe(before);

    const second = await deploy(inputs(NEW));
    expect(errors(second)).toEqual([]);
    // The Secret alone changed, and the pods rolled to a new revision that reads it.
    expect(second.outputs).toMatchObject({ revision: '2', 'previous-revision': '1' });
    const after = await checksum();
    expect(after).toMatch(/^[0-9a-f]{16}$/);
    expect(after).not.toBe(before);
    expect(await key()).toBe(firstKey);
    for (const step of [first, plan, second])
      for (const value of [before!, after!, OLD, NEW])
        expect([value, findLeaks(step, value)]).toEqual([value, []]);
    for (const step of [first, plan, second])
      expect(`${step.stdout}${step.summary}`).not.toMatch(/checksum=|checksum: [0-9a-f]/);
  });

  describe('bad input fails before anything is applied', () => {
    test.each([
      [
        'malformed YAML',
        'bad.yaml',
        'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a }\n---\nkind: [oops\n',
        /bad\.yaml \(document 2\): invalid YAML at line \d+/,
      ],
      [
        'an unknown kind',
        'kind.yaml',
        'apiVersion: apps/v1\nkind: Deploymnet\nmetadata: { name: a }\n',
        /kind\.yaml \(document 1\): the cluster does not serve kind Deploymnet in apps\/v1 \(it serves .*Deployment/,
      ],
      [
        'an object without a name',
        'noname.yaml',
        'apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n',
        /noname\.yaml \(document 1\): ConfigMap has no metadata\.name/,
      ],
    ])('%s', async (_what, file, content, message) => {
      const dir = join(work, `bad-${file}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, file), content);
      const step = await deploy({
        environment: 'dev',
        app: 'bad',
        namespace: 'bad-dev',
        'create-namespace': 'true',
        manifests: dir,
      });
      expect(step.exitCode).toBe(1);
      expect(errors(step)).toHaveLength(1);
      expect(errors(step)[0]).toMatch(message);
      await expect(kubectl('get', 'namespace', 'bad-dev')).rejects.toThrow(/NotFound/);
    });

    test.each([
      [
        { images: 'registry.local/nothing=registry.local/nothing:v2' },
        /Input 'images' names "registry.local\/nothing", which no container in the manifests uses\. Accepted: image names present in the manifests: registry\.local\/shop:v1\./,
      ],
      [
        // A path is not a credential (a kubeconfig given as YAML has its credentials masked).
        { kubeconfig: '/nowhere/config' },
        /Input 'kubeconfig' names the file "\/nowhere\/config", which does not exist/,
      ],
      [
        { environment: 'Prod!' },
        /Input 'environment' has "Prod!", which does not match\. Accepted: a Kubernetes name: .*at most 63 characters/,
      ],
      [{ manifests: '', kustomize: '' }, /Input 'manifests' and kustomize are both empty/],
      [
        { manifests: 'missing/*.yaml' },
        /Input 'manifests' has the pattern "missing\/\*\.yaml", which matches no file/,
      ],
      [{ timeout: 'forever' }, /Input 'timeout' has "forever", which is not a duration/],
      [
        { replicas: 'web=2' },
        /Input 'replicas' names "web", which is not a Deployment in the manifests\. Accepted: \* or Deployment names present in the manifests: valid\./,
      ],
      [
        { replicas: 'lots' },
        /Input 'replicas' has "lots", which does not match\. Accepted: a replica count for every Deployment/,
      ],
    ])('%j', async (inputs, message) => {
      const dir = app('valid', { name: 'valid' });
      const step = await deploy({
        environment: 'dev',
        app: 'valid',
        namespace: 'valid-dev',
        'create-namespace': 'true',
        manifests: dir,
        ...(inputs as Record<string, string>),
      });
      expect(step.exitCode).toBe(1);
      expect(errors(step)).toHaveLength(1);
      expect(errors(step)[0]).toMatch(message);
      await expect(kubectl('get', 'namespace', 'valid-dev')).rejects.toThrow(/NotFound/);
    });

    test('a kustomize error is reported before anything is applied', async () => {
      const dir = join(work, 'kbad');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'kustomization.yaml'), 'resources:\n  - missing.yaml\n');
      const step = await deploy({
        environment: 'dev',
        app: 'kbad',
        namespace: 'kbad-dev',
        'create-namespace': 'true',
        kustomize: 'kbad',
      });
      expect(step.exitCode).toBe(1);
      expect(errors(step)[0]).toMatch(/^kustomize could not render kbad: .*missing\.yaml/);
    });
  });
});
