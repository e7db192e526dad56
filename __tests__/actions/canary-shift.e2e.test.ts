import { describe, expect, test } from '@jest/globals';
import { findLeaks, runBuiltAction, type StepResult } from '../../tooling/runners/action-runner.ts';
import { kubectlFor, useKubeSim, useWorkDir } from '../../tooling/test-support/fixtures.ts';

const sim = useKubeSim({
  timeScale: 40,
  seed: 7,
  namespaces: [
    'c-healthy',
    'c-bad',
    'c-gateway',
    'c-gateway-bad',
    'c-nginx',
    'c-nginx-bad',
    'c-split',
    'c-rerun',
    'c-inputs',
  ],
  images: [
    { pattern: '*:bad*', http: { status: 500 } },
    { pattern: '*:flaky*', http: { errorRate: 0.5 } },
  ],
});
const work = useWorkDir('canary-shift-');
const { kubectl, kubectlJson, kubectlApply } = kubectlFor(sim, work);

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

/** The uids of the stable's pods, to prove they were neither restarted nor replaced. */
async function stablePodUids(ns: string): Promise<string[]> {
  const pods = await kubectlJson<{ items: { metadata: { uid: string } }[] }>(
    'get',
    'pods',
    '-n',
    ns,
    '-l',
    'pipeline.dev/track=stable',
  );
  return pods.items.map((p) => p.metadata.uid).sort();
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

interface Answer {
  /** The canary weight the cluster's routing object held when the request was sent. */
  weight: number;
  status: number;
  /** The Service the router chose (X-Kube-Sim-Backend), also on a 503 from a Service without ready pods. */
  backend: string;
  image: string;
}

/**
 * Requests through kube-sim's data plane for an HTTPRoute or Ingress, until stopped; each answer
 * is recorded with the canary weight the routing object held when it was sent and the image that
 * answered (X-Kube-Sim-Image, which the simulated pod sets).
 */
function routedTraffic(base: string, canaryWeight: () => number) {
  let stop = false;
  const answers: Answer[] = [];
  const loop = async () => {
    while (!stop) {
      const weight = canaryWeight();
      try {
        const r = await fetch(`${base}/`, { headers: { authorization: `Bearer ${sim.token}` } });
        await r.text();
        answers.push({
          weight,
          status: r.status,
          backend: r.headers.get('x-kube-sim-backend') ?? '',
          image: r.headers.get('x-kube-sim-image') ?? '',
        });
      } catch {
        answers.push({ weight, status: 0, backend: '', image: '' });
      }
      await new Promise((r) => setTimeout(r, 3));
    }
  };
  const workers = [loop(), loop()];
  return async () => {
    stop = true;
    await Promise.all(workers);
    return answers;
  };
}

type Peeked = {
  spec?: { rules?: { backendRefs?: { name: string; weight?: number }[] }[] };
  metadata: { annotations?: Record<string, string> };
};
/** The canary's weight on the HTTPRoute as the cluster holds it now. */
const routeWeight = (ns: string) => () =>
  (sim.peek('HTTPRoute', ns, 'shop') as Peeked | undefined)?.spec?.rules?.[0]?.backendRefs?.find(
    (b) => b.name === 'shop-canary',
  )?.weight ?? 0;
/** The canary Ingress's canary-weight as the cluster holds it now (0 without one). */
const ingressWeight = (ns: string) => () =>
  Number(
    (sim.peek('Ingress', ns, 'shop-canary') as Peeked | undefined)?.metadata.annotations?.[
      'nginx.ingress.kubernetes.io/canary-weight'
    ] ?? 0,
  );

/**
 * Of the requests sent at `weight`: how many the router routed, how many to the canary Service,
 * the errors the canary's pods answered, and 5xx answered by other pods.
 */
function atWeight(answers: Answer[], weight: number, canaryImage: string) {
  const sent = answers.filter((a) => a.weight === weight && a.backend !== '');
  const canary = sent.filter((a) => a.backend === 'shop-canary');
  return {
    requests: sent.length,
    canary: canary.length,
    canaryAnswers: canary.filter((a) => a.image === canaryImage).length,
    canaryErrors: canary.filter((a) => a.image === canaryImage && a.status >= 500).length,
    otherErrors: sent.filter((a) => a.backend !== 'shop-canary' && a.image !== '' && a.status >= 500).length,
  };
}

/** `n` requests one after another through a routing base URL; the images that answered. */
async function sequential(base: string, n: number): Promise<string[]> {
  const images: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await fetch(`${base}/`, { headers: { authorization: `Bearer ${sim.token}` } });
    await r.text();
    expect(r.status).toBe(200);
    images.push(r.headers.get('x-kube-sim-image') ?? '');
  }
  return images;
}

const HTTP_ROUTE = `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: shop }
spec:
  parentRefs: [{ name: public }]
  rules:
    - backendRefs: [{ name: shop, port: 80 }]
`;
const INGRESS = `---
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
`;

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
      extra: HTTP_ROUTE,
    });
    const stablePods = await stablePodUids(ns);
    const stopRouted = routedTraffic(sim.gatewayUrl(ns, 'shop'), routeWeight(ns));
    const first = await canary(ns, {
      mode: 'set-weight',
      router: 'gateway-api',
      weight: '50',
      image: 'registry.local/shop:v2',
      'metrics-path': '/metrics',
    });
    const answers = await stopRouted();
    expect(errors(first)).toEqual([]);
    expect(first.outputs).toMatchObject({ phase: 'progressing', weight: '50' });
    expect(steps(first).map((s) => [s.weight, s.verdict])).toEqual([
      [10, 'passed'],
      [50, 'passed'],
    ]);
    // Requests sent through the HTTPRoute reached the canary at each step's weight: smooth
    // weighted round-robin is exact over a window, give or take the requests in flight when the
    // weights changed.
    for (const w of [10, 50]) {
      const m = atWeight(answers, w, 'registry.local/shop:v2');
      expect(m.requests).toBeGreaterThan(20);
      expect(Math.abs(m.canary - (m.requests * w) / 100)).toBeLessThanOrEqual(3);
      expect(m.canaryErrors + m.otherErrors).toBe(0);
    }
    expect(atWeight(answers, 0, 'registry.local/shop:v2').canary).toBeLessThanOrEqual(2);
    // canary-shift's own measurement (the pods' counters) saw the routed share, plus its probes.
    const measured = steps(first).map((s) => s.traffic?.share ?? -1);
    expect(measured[0]).toBeGreaterThan(0.05);
    expect(measured[0]).toBeLessThan(0.22);
    expect(measured[1]).toBeGreaterThan(0.4);
    expect(measured[1]).toBeLessThan(0.65);
    // The stable's pods served throughout, untouched: canary-shift only annotates the stable.
    expect(await stablePodUids(ns)).toEqual(stablePods);
    // Between jobs, at 50%: exactly half of 100 consecutive requests answer from the canary.
    const held = await sequential(sim.gatewayUrl(ns, 'shop'), 100);
    expect(held.filter((i) => i === 'registry.local/shop:v2')).toHaveLength(50);
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
    // Through the route, every request now answers from the stable pods, which run v2.
    expect(new Set(await sequential(sim.gatewayUrl(ns, 'shop'), 20))).toEqual(
      new Set(['registry.local/shop:v2']),
    );
    expect(sim.peek('Deployment', ns, 'shop-canary')).toBeUndefined();
    // The earlier job's steps are in the history the promotion reports.
    expect(steps(second).every((s) => s.earlierRun)).toBe(true);
  });

  test('nginx: a canary Ingress with canary-weight; abort puts it to 0 and removes it', async () => {
    const ns = 'c-nginx';
    await stableApp(ns, {
      stableTrack: true,
      extra: INGRESS,
    });
    const stablePods = await stablePodUids(ns);
    const stopRouted = routedTraffic(sim.ingressUrl(ns, 'shop'), ingressWeight(ns));
    const first = await canary(ns, {
      mode: 'set-weight',
      router: 'nginx',
      image: 'registry.local/shop:v2',
      steps: '20,60,100',
    });
    const answers = await stopRouted();
    expect(errors(first)).toEqual([]);
    expect(first.outputs).toMatchObject({ phase: 'progressing', weight: '20' });
    // Requests through the stable Ingress followed the canary Ingress's canary-weight.
    const m = atWeight(answers, 20, 'registry.local/shop:v2');
    expect(m.requests).toBeGreaterThan(20);
    expect(Math.abs(m.canary - m.requests / 5)).toBeLessThanOrEqual(3);
    expect(m.canaryErrors + m.otherErrors).toBe(0);
    expect(atWeight(answers, 0, 'registry.local/shop:v2').canary).toBeLessThanOrEqual(2);
    // The stable's pods served throughout, untouched: canary-shift only annotates the stable.
    expect(await stablePodUids(ns)).toEqual(stablePods);
    // Between jobs, at 20%: exactly 20 of 100 consecutive requests answer from the canary.
    const held = await sequential(sim.ingressUrl(ns, 'shop'), 100);
    expect(held.filter((i) => i === 'registry.local/shop:v2')).toHaveLength(20);
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
    expect(new Set(await sequential(sim.ingressUrl(ns, 'shop'), 20))).toEqual(
      new Set(['registry.local/shop:v1']),
    );
  });

  test.each([
    { router: 'gateway-api', ns: 'c-gateway-bad', extra: HTTP_ROUTE },
    { router: 'nginx', ns: 'c-nginx-bad', extra: INGRESS },
  ] as const)(
    '$router: a canary failing half its requests through the router is aborted at 20%, and the router sends everything to stable',
    async ({ router, ns, extra }) => {
      await stableApp(ns, { stableTrack: true, extra });
      const url = router === 'nginx' ? sim.ingressUrl(ns, 'shop') : sim.gatewayUrl(ns, 'shop');
      const stopRouted = routedTraffic(url, router === 'nginx' ? ingressWeight(ns) : routeWeight(ns));
      const step = await canary(ns, {
        router,
        image: 'registry.local/shop:flaky-1',
        steps: '20,100',
        'initial-delay': '400ms',
        'analysis-count': '8',
        'metrics-path': '/metrics',
      });
      const answers = await stopRouted();
      expect(step.exitCode).toBe(1);
      expect(errors(step).join('\n')).toMatch(/aborted: step 1 \(20%\) was failed: canary health failed/);
      expect(step.outputs).toMatchObject({ phase: 'aborted', weight: '0' });
      // While the step ran, a fifth of the routed requests reached the canary, about half of them failed,
      // and the stable answered every other request without an error.
      const m = atWeight(answers, 20, 'registry.local/shop:flaky-1');
      expect(m.requests).toBeGreaterThan(20);
      expect(Math.abs(m.canary - m.requests / 5)).toBeLessThanOrEqual(3);
      expect(m.canaryErrors).toBeGreaterThan(0);
      expect(m.canaryErrors).toBeLessThan(m.canaryAnswers);
      expect(m.otherErrors).toBe(0);
      const recorded = steps(step)[0]!;
      expect(recorded).toMatchObject({ weight: 20, verdict: 'failed' });
      expect(recorded.traffic!.errorRate).toBeGreaterThan(0.1);
      expect(recorded.traffic!.errorRate).toBeLessThan(0.9);

      // Afterwards the routing object sends everything to stable: no canary answers, no errors.
      expect([routeWeight(ns)(), ingressWeight(ns)()]).toEqual([0, 0]);
      expect(new Set(await sequential(url, 50))).toEqual(new Set(['registry.local/shop:v1']));
      const stable = await kubectlJson<Deployment>('get', 'deployment/shop', '-n', ns);
      expect([stable.spec.replicas, stable.status.availableReplicas]).toEqual([10, 10]);
    },
  );

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
