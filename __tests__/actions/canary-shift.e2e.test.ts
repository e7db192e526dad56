import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type KubeSim, startKubeSim } from '../../packages/kube-sim/index.ts';
import { findLeaks, runBuiltAction, type StepResult } from '../../packages/runner/action-runner.ts';

const run = promisify(execFile);
let sim: KubeSim;
let work: string;

beforeAll(async () => {
  sim = await startKubeSim({
    timeScale: 40,
    seed: 7,
    namespaces: ['c-healthy', 'c-bad', 'c-gateway', 'c-nginx', 'c-split', 'c-rerun', 'c-inputs'],
    images: [{ pattern: '*:bad*', http: { status: 500 } }],
  });
  work = mkdtempSync(join(tmpdir(), 'canary-shift-'));
});
afterAll(async () => {
  await sim?.close();
  rmSync(work, { recursive: true, force: true });
});

async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run('kubectl', args, { env: { ...process.env, KUBECONFIG: sim.kubeconfigPath } });
  return stdout;
}
let applied = 0;
async function kubectlApply(ns: string, yaml: string): Promise<void> {
  const file = join(work, `apply-${++applied}.yaml`);
  writeFileSync(file, yaml);
  await kubectl('apply', '-n', ns, '-f', file);
}
async function kubectlJson<T = Record<string, unknown>>(...args: string[]): Promise<T> {
  return JSON.parse(await kubectl(...args, '-o', 'json')) as T;
}

type Deployment = {
  metadata: { annotations?: Record<string, string> };
  spec: { replicas: number; template: { spec: { containers: { image: string }[] } } };
  status: { availableReplicas?: number; readyReplicas?: number };
};

/** A stable Deployment of `replicas` pods behind one Service, rolled out. */
async function stableApp(
  ns: string,
  opts: { replicas?: number; stableTrack?: boolean; extra?: string } = {},
) {
  const track = opts.stableTrack ? ', pipeline.dev/track: stable' : '';
  await kubectlApply(
    ns,
    `apiVersion: apps/v1
kind: Deployment
metadata: { name: shop, labels: { app: shop } }
spec:
  replicas: ${opts.replicas ?? 10}
  selector: { matchLabels: { app: shop } }
  template:
    metadata: { labels: { app: shop${track} } }
    spec:
      containers:
        - name: web
          image: registry.local/shop:v1
          ports: [{ containerPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: shop }
spec:
  selector: { app: shop${track} }
  ports: [{ port: 80, targetPort: 8080 }]
${opts.extra ?? ''}`,
  );
  await kubectl('rollout', 'status', 'deployment/shop', '-n', ns, '--timeout=60s');
}

function canary(
  ns: string,
  inputs: Record<string, string>,
  extra: { timeoutMs?: number; runAttempt?: string } = {},
) {
  return runBuiltAction('canary-shift', {
    inputs: {
      kubeconfig: sim.kubeconfigPath,
      namespace: ns,
      deployment: 'shop',
      'analysis-interval': '200ms',
      'analysis-count': '3',
      'fail-fast-after': '2s',
      timeout: '60s',
      checks: `- { name: canary health, service: ${ns}/shop-canary:80, path: /health }`,
      ...inputs,
    },
    github: { runAttempt: extra.runAttempt ?? '1' },
    cwd: work,
    timeoutMs: extra.timeoutMs ?? 120_000,
  });
}

/** Requests through the Service proxy, as users would send them, until stopped. */
function traffic(ns: string, service = 'shop') {
  let stop = false;
  const counts = { ok: 0, errors: 0 };
  const loop = async () => {
    while (!stop) {
      try {
        const r = await fetch(`${sim.url}/api/v1/namespaces/${ns}/services/${service}:80/proxy/`, {
          headers: { authorization: `Bearer ${sim.token}` },
        });
        await r.text();
        if (r.status >= 500) counts.errors++;
        else counts.ok++;
      } catch {
        counts.errors++;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const workers = [loop(), loop()];
  return async () => {
    stop = true;
    await Promise.all(workers);
    return counts;
  };
}

const errors = (step: StepResult) =>
  step.annotations.filter((a) => a.level === 'error').map((a) => a.message);
const steps = (step: StepResult) =>
  JSON.parse(step.outputs.steps ?? '[]') as {
    step: number;
    weight: number;
    effectiveWeight: number;
    verdict: string;
    earlierRun: boolean;
    traffic: {
      share: number | null;
      errorRate: number | null;
      canary: { requests: number; errors: number };
    } | null;
  }[];
const annotations = async (ns: string) =>
  (await kubectlJson<Deployment>('get', 'deployment/shop', '-n', ns)).metadata.annotations ?? {};

describe('canary-shift against the embedded Kubernetes API', () => {
  test('a healthy canary goes 10 → 50 → 100 with real traffic shares, and is promoted', async () => {
    const ns = 'c-healthy';
    await stableApp(ns);
    const stop = traffic(ns);
    const step = await canary(ns, { image: 'registry.local/shop:v2', 'metrics-path': '/metrics' });
    await stop();
    expect(errors(step)).toEqual([]);
    expect(step.exitCode).toBe(0);
    expect(step.outputs).toMatchObject({ phase: 'promoted', weight: '100' });
    const recorded = steps(step);
    expect(recorded.map((s) => [s.weight, s.effectiveWeight, s.verdict])).toEqual([
      [10, 10, 'passed'],
      [50, 50, 'passed'],
      [100, 100, 'passed'],
    ]);
    // The share of real requests the canary answered follows its share of the ready pods.
    const share = recorded.map((s) => s.traffic?.share ?? -1);
    expect(share[0]).toBeGreaterThan(0.03);
    expect(share[0]).toBeLessThan(0.2);
    expect(share[1]).toBeGreaterThan(0.35);
    expect(share[1]).toBeLessThan(0.65);
    expect(share[2]).toBeGreaterThan(0.95);
    expect(recorded[0]!.traffic!.canary.errors).toBe(0);

    const stable = await kubectlJson<Deployment>('get', 'deployment/shop', '-n', ns);
    expect(stable.spec.template.spec.containers[0]!.image).toBe('registry.local/shop:v2');
    expect(stable.spec.replicas).toBe(10);
    expect(stable.status.availableReplicas).toBe(10);
    expect(stable.metadata.annotations?.['pipeline.dev/canary-phase']).toBe('promoted');
    await expect(kubectl('get', 'deployment/shop-canary', '-n', ns)).rejects.toThrow(/NotFound/);
    await expect(kubectl('get', 'service/shop-canary', '-n', ns)).rejects.toThrow(/NotFound/);
    expect(step.summary).toContain('xychart-beta');
    expect(step.summary).toContain('promoted');
    expect(findLeaks(step, sim.token)).toEqual([]);

    // Idempotent: the same image again changes nothing.
    const again = await canary(ns, { image: 'registry.local/shop:v2' });
    expect(again.exitCode).toBe(0);
    expect(again.outputs).toMatchObject({ phase: 'promoted', weight: '100' });
    expect(again.outputs.reason).toMatch(/already runs/);
  });

  test('a canary whose image answers errors is aborted at 10%, with all traffic and capacity back on stable', async () => {
    const ns = 'c-bad';
    await stableApp(ns);
    const stop = traffic(ns);
    const step = await canary(ns, { image: 'registry.local/shop:bad-1', 'metrics-path': '/metrics' });
    const counts = await stop();
    expect(step.exitCode).toBe(1);
    expect(errors(step).join('\n')).toMatch(/aborted: step 1 \(10%\) was failed: canary health failed/);
    expect(step.outputs).toMatchObject({ phase: 'aborted', weight: '0' });
    const recorded = steps(step);
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatchObject({ weight: 10, verdict: 'failed' });
    // The user traffic that reached the canary during the step really failed.
    expect(recorded[0]!.traffic!.errorRate).toBe(1);
    expect(counts.errors).toBeGreaterThan(0);

    const stable = await kubectlJson<Deployment>('get', 'deployment/shop', '-n', ns);
    expect(stable.spec.template.spec.containers[0]!.image).toBe('registry.local/shop:v1');
    expect(stable.spec.replicas).toBe(10);
    expect(stable.status.availableReplicas).toBe(10);
    const canaryDeployment = await kubectlJson<Deployment>('get', 'deployment/shop-canary', '-n', ns);
    expect(canaryDeployment.spec.replicas).toBe(0);
    const a = stable.metadata.annotations ?? {};
    expect(a['pipeline.dev/canary-phase']).toBe('aborted');
    expect(a['pipeline.dev/canary-reason']).toMatch(/step 1 \(10%\)/);

    // After the abort, the Service sends nothing to the bad image.
    const after = traffic(ns);
    await new Promise((r) => setTimeout(r, 300));
    expect((await after()).errors).toBe(0);
  });

  test('gateway-api: weights on the HTTPRoute backendRefs, split across jobs, then promoted', async () => {
    const ns = 'c-gateway';
    await stableApp(ns, {
      stableTrack: true,
      extra: `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: shop }
spec:
  parentRefs: [{ name: public }]
  rules:
    - backendRefs: [{ name: shop, port: 80 }]
`,
    });
    const first = await canary(ns, {
      mode: 'set-weight',
      router: 'gateway-api',
      weight: '50',
      image: 'registry.local/shop:v2',
    });
    expect(errors(first)).toEqual([]);
    expect(first.outputs).toMatchObject({ phase: 'progressing', weight: '50' });
    expect(steps(first).map((s) => [s.weight, s.verdict])).toEqual([
      [10, 'passed'],
      [50, 'passed'],
    ]);
    const route = await kubectlJson<{
      spec: { rules: { backendRefs: { name: string; weight: number }[] }[] };
    }>('get', 'httproute/shop', '-n', ns);
    expect(route.spec.rules[0]!.backendRefs.map((b) => [b.name, b.weight])).toEqual([
      ['shop', 50],
      ['shop-canary', 50],
    ]);
    const canarySvc = await kubectlJson<{ spec: { selector: Record<string, string> } }>(
      'get',
      'service/shop-canary',
      '-n',
      ns,
    );
    expect(canarySvc.spec.selector).toEqual({ app: 'shop', 'pipeline.dev/track': 'canary' });
    expect((await annotations(ns))['pipeline.dev/canary-weight']).toBe('50');

    // A later job (after an approval) promotes without naming the image.
    const second = await canary(
      ns,
      { mode: 'promote', router: 'gateway-api', checks: '' },
      { runAttempt: '1' },
    );
    expect(errors(second)).toEqual([]);
    expect(second.outputs).toMatchObject({ phase: 'promoted', weight: '100' });
    const after = await kubectlJson<{
      spec: { rules: { backendRefs: { name: string; weight: number }[] }[] };
    }>('get', 'httproute/shop', '-n', ns);
    expect(after.spec.rules[0]!.backendRefs.map((b) => [b.name, b.weight])).toEqual([['shop', 100]]);
    const stable = await kubectlJson<Deployment>('get', 'deployment/shop', '-n', ns);
    expect(stable.spec.template.spec.containers[0]!.image).toBe('registry.local/shop:v2');
    // The earlier job's steps are in the history the promotion reports.
    expect(steps(second).every((s) => s.earlierRun)).toBe(true);
  });

  test('nginx: a canary Ingress with canary-weight; abort puts it to 0 and removes it', async () => {
    const ns = 'c-nginx';
    await stableApp(ns, {
      stableTrack: true,
      extra: `---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: shop, annotations: { nginx.ingress.kubernetes.io/rewrite-target: / } }
spec:
  ingressClassName: nginx
  rules:
    - host: shop.example.com
      http:
        paths:
          - { path: /, pathType: Prefix, backend: { service: { name: shop, port: { number: 80 } } } }
`,
    });
    const first = await canary(ns, {
      mode: 'set-weight',
      router: 'nginx',
      image: 'registry.local/shop:v2',
      steps: '20,60,100',
    });
    expect(errors(first)).toEqual([]);
    expect(first.outputs).toMatchObject({ phase: 'progressing', weight: '20' });
    const ing = await kubectlJson<{
      metadata: { annotations: Record<string, string> };
      spec: { rules: { http: { paths: { backend: { service: { name: string } } }[] } }[] };
    }>('get', 'ingress/shop-canary', '-n', ns);
    expect(ing.metadata.annotations).toMatchObject({
      'nginx.ingress.kubernetes.io/canary': 'true',
      'nginx.ingress.kubernetes.io/canary-weight': '20',
      'nginx.ingress.kubernetes.io/rewrite-target': '/',
    });
    expect(ing.spec.rules[0]!.http.paths[0]!.backend.service.name).toBe('shop-canary');
    // The canary got enough pods for its share: 20% of 10.
    expect((await kubectlJson<Deployment>('get', 'deployment/shop-canary', '-n', ns)).spec.replicas).toBe(2);

    const abort = await canary(ns, {
      mode: 'abort',
      router: 'nginx',
      reason: 'manual stop',
      checks: '',
      'abort-action': 'delete',
    });
    expect(errors(abort)).toEqual([]);
    expect(abort.outputs).toMatchObject({ phase: 'aborted', weight: '0', reason: 'manual stop' });
    await expect(kubectl('get', 'ingress/shop-canary', '-n', ns)).rejects.toThrow(/NotFound/);
    await expect(kubectl('get', 'deployment/shop-canary', '-n', ns)).rejects.toThrow(/NotFound/);
    expect((await annotations(ns))['pipeline.dev/canary-reason']).toBe('manual stop');
  });

  test('replicas router split across jobs: set-weight to 50, then promote', async () => {
    const ns = 'c-split';
    await stableApp(ns, { replicas: 4 });
    const first = await canary(ns, { mode: 'set-weight', weight: '50', image: 'registry.local/shop:v2' });
    expect(errors(first)).toEqual([]);
    // With 4 pods, 10% is one pod: 25% in effect, and the output says so.
    expect(steps(first).map((s) => [s.weight, s.effectiveWeight])).toEqual([
      [10, 25],
      [50, 50],
    ]);
    expect((await kubectlJson<Deployment>('get', 'deployment/shop', '-n', ns)).spec.replicas).toBe(2);
    expect((await kubectlJson<Deployment>('get', 'deployment/shop-canary', '-n', ns)).spec.replicas).toBe(2);
    const second = await canary(ns, { mode: 'promote', checks: '' });
    expect(errors(second)).toEqual([]);
    expect(second.outputs.phase).toBe('promoted');
    const stable = await kubectlJson<Deployment>('get', 'deployment/shop', '-n', ns);
    expect([stable.spec.replicas, stable.status.availableReplicas]).toEqual([4, 4]);
  });

  test('a run killed in the middle of a step is continued by the next run from the cluster state', async () => {
    const ns = 'c-rerun';
    await stableApp(ns, { replicas: 10 });
    let sawStep = false;
    const killed = await runBuiltAction('canary-shift', {
      inputs: {
        kubeconfig: sim.kubeconfigPath,
        namespace: ns,
        deployment: 'shop',
        image: 'registry.local/shop:v2',
        steps: '10:10m,100',
        'analysis-interval': '200ms',
        'lock-lease': '1s',
        checks: `- { name: canary health, service: ${ns}/shop-canary:80, path: /health }`,
      },
      cwd: work,
      timeoutMs: 8000,
      onStdout: (chunk) => {
        if (chunk.includes('Step 1: 10%')) sawStep = true;
      },
    });
    expect(killed.exitCode).not.toBe(0);
    expect(sawStep).toBe(true);
    const mid = await annotations(ns);
    expect(mid).toMatchObject({
      'pipeline.dev/canary-phase': 'progressing',
      'pipeline.dev/canary-weight': '10',
    });
    expect((await kubectlJson<Deployment>('get', 'deployment/shop', '-n', ns)).spec.replicas).toBe(9);

    const rerun = await canary(
      ns,
      { image: 'registry.local/shop:v2', steps: '10,100', 'lock-lease': '1s' },
      { runAttempt: '2' },
    );
    expect(errors(rerun)).toEqual([]);
    expect(rerun.log).toContain('Continuing the canary of registry.local/shop:v2 from 10%');
    expect(rerun.outputs.phase).toBe('promoted');
    const stable = await kubectlJson<Deployment>('get', 'deployment/shop', '-n', ns);
    expect([stable.spec.replicas, stable.spec.template.spec.containers[0]!.image]).toEqual([
      10,
      'registry.local/shop:v2',
    ]);
  });

  test('bad inputs fail with one error naming the input, before anything changes', async () => {
    const ns = 'c-inputs';
    await stableApp(ns, {
      replicas: 2,
      stableTrack: true,
      extra: `---
apiVersion: v1
kind: Service
metadata: { name: headless }
spec:
  ports: [{ port: 80 }]
`,
    });
    const before = await kubectl('get', 'deployments,services,ingresses,httproutes', '-n', ns, '-o', 'name');
    const cases: [Record<string, string>, RegExp][] = [
      [{ steps: '10,50,30' }, /Input 'steps' has 30 after 50; the weights are not increasing/],
      [{ steps: '10,150' }, /Input 'steps' has the weight 150, which is not from 1 to 100/],
      [{ mode: 'set-weight', weight: '120' }, /Input 'weight' has 120, which is out of range/],
      [
        { router: 'gateway-api', 'http-route': 'missing' },
        /Input 'http-route' names "missing", which does not exist/,
      ],
      [{ router: 'nginx', ingress: 'missing' }, /Input 'ingress' names "missing", which does not exist/],
      [{}, /Input 'service' names the Service shop, whose selector does not pick the canary's pods/],
      [{ service: 'headless' }, /Input 'service' names the Service headless, which has no selector/],
      [{ deployment: 'nope' }, /Input 'deployment' names "nope", which does not exist/],
    ];
    for (const [inputs, message] of cases) {
      const step = await canary(ns, { image: 'registry.local/shop:v2', ...inputs });
      expect(step.exitCode).toBe(1);
      const errs = errors(step);
      expect(errs).toHaveLength(1);
      expect(errs[0]).toMatch(message);
    }
    expect(await kubectl('get', 'deployments,services,ingresses,httproutes', '-n', ns, '-o', 'name')).toBe(
      before,
    );
    expect(await annotations(ns)).not.toHaveProperty(['pipeline.dev/canary-phase']);
  });
});
