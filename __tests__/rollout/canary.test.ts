import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { InputError, MemoryLogger } from '../../packages/core/index.ts';
import { DEFAULT_LIMITS, parseChecks } from '../../packages/health/checks.ts';
import { KubeClient } from '../../packages/kube/client.ts';
import { renderBlueGreenSummary } from '../../packages/rollout/blue-green-summary.ts';
import { type CanaryResult, runCanary } from '../../packages/rollout/canary.ts';
import { canaryReplicasFor, parseSteps } from '../../packages/rollout/canary-plan.ts';
import { renderCanaryChart, stepsJson } from '../../packages/rollout/canary-summary.ts';
import { countRequests, delta } from '../../packages/rollout/kube-ops.ts';
import { CANARY_ANNOTATIONS } from '../../packages/rollout/options.ts';
import { type KubeSim, startKubeSim } from '../../tooling/kube-sim/index.ts';

describe('canary steps', () => {
  test('weights with optional pauses, in the one duration syntax', () => {
    expect(parseSteps('10,50,100')).toEqual([
      { weight: 10, pauseMs: 0 },
      { weight: 50, pauseMs: 0 },
      { weight: 100, pauseMs: 0 },
    ]);
    expect(parseSteps('5:30s, 25%:5m\n100')).toEqual([
      { weight: 5, pauseMs: 30_000 },
      { weight: 25, pauseMs: 300_000 },
      { weight: 100, pauseMs: 0 },
    ]);
  });

  test.each([
    ['10,10', /has 10 after 10; the weights are not increasing/],
    ['50,10', /has 10 after 50/],
    ['10,101', /the weight 101, which is not from 1 to 100/],
    ['0,50', /the weight 0/],
    ['10:soon', /"soon", which is not a duration/],
    ['ten', /"ten", which is not weight\[:pause\]/],
    [' , ', /is empty/],
  ])('%j is refused, naming the input', (text, message) => {
    let error: unknown;
    try {
      parseSteps(text);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).message).toMatch(/^Input 'steps'/);
    expect((error as InputError).message).toMatch(message);
  });

  test('replica shares keep at least one canary pod and never exceed the total', () => {
    expect([10, 50, 100].map((w) => canaryReplicasFor(w, 10))).toEqual([1, 5, 10]);
    expect([10, 50, 100].map((w) => canaryReplicasFor(w, 4))).toEqual([1, 2, 4]);
    expect(canaryReplicasFor(1, 3)).toBe(1);
    expect(canaryReplicasFor(0, 10)).toBe(0);
  });
});

describe('measured traffic', () => {
  test('http_requests_total by code: 5xx are errors, other metrics are ignored', () => {
    const text = [
      '# TYPE http_requests_total counter',
      'http_requests_total{code="200",path="/"} 40',
      'http_requests_total{code="503"} 3',
      'http_requests_total_created 1700000000',
      'http_request_duration_seconds_count 43',
      'http_requests_total 7',
    ].join('\n');
    expect(countRequests(text)).toEqual({ requests: 50, errors: 3 });
  });

  test('per-pod deltas count pods that appeared during the step from zero', () => {
    const before = new Map([['a', { requests: 10, errors: 1 }]]);
    const after = new Map([
      ['a', { requests: 15, errors: 1 }],
      ['b', { requests: 4, errors: 2 }],
    ]);
    expect(delta(before, after)).toEqual({ requests: 9, errors: 2 });
  });
});

describe('summaries', () => {
  const result: CanaryResult = {
    ok: false,
    phase: 'aborted',
    mode: 'run',
    weight: 0,
    reason: 'step 2 (50%) was failed: errors',
    image: 'shop:v2',
    stableImage: 'shop:v1',
    router: 'replicas',
    canary: 'shop-canary',
    steps: [
      {
        step: 1,
        weight: 10,
        effectiveWeight: 10,
        verdict: 'passed',
        reason: 'ok',
        startedAt: '',
        endedAt: '',
        traffic: {
          canary: { requests: 10, errors: 0 },
          stable: { requests: 90, errors: 0 },
          share: 0.1,
          errorRate: 0,
        },
      },
      {
        step: 2,
        weight: 50,
        effectiveWeight: 50,
        verdict: 'failed',
        reason: 'errors',
        startedAt: '',
        endedAt: '',
        traffic: {
          canary: { requests: 50, errors: 25 },
          stable: { requests: 50, errors: 0 },
          share: 0.5,
          errorRate: 0.5,
        },
      },
    ],
    timings: { failedMeasurementAt: 1000, trafficRestoredAt: 1040 },
  };

  test('the canary chart has the weight per step as bars and share and error rate as lines', () => {
    const chart = renderCanaryChart(result.steps);
    expect(chart).toContain('x-axis ["1: 10%", "2: 50% ✗"]');
    expect(chart).toContain('bar [10, 50]');
    expect(chart).toContain('line [10, 50]');
    expect(chart).toContain('line [0, 50]');
    expect(JSON.parse(stepsJson(result))[1]).toMatchObject({
      weight: 50,
      verdict: 'failed',
      traffic: { errorRate: 0.5 },
    });
  });

  test('the blue-green diagram shows which colour each Service sends to, before and after', () => {
    const colors = {
      blue: { image: 'shop:v1', replicas: 3, available: 3, exists: true },
      green: { image: 'shop:v2', replicas: 3, available: 3, exists: true },
    };
    const md = renderBlueGreenSummary(
      {
        ok: true,
        mode: 'deploy',
        activeColor: 'green',
        previousColor: 'blue',
        switched: true,
        rolledBack: false,
        reason: 'switched',
        image: 'shop:v2',
        before: { live: 'blue', preview: 'green', colors },
        after: { live: 'green', preview: 'blue', colors },
      },
      'shop',
      'shop',
      'shop-preview',
    );
    expect(md).toContain('b_live ==> b_blue');
    expect(md).toContain('a_live ==> a_green');
    expect(md).toContain('a_preview -.-> a_blue');
  });
});

describe('the canary engine against the embedded Kubernetes API', () => {
  const run = promisify(execFile);
  let sim: KubeSim;
  let client: KubeClient;
  let work: string;
  beforeAll(async () => {
    sim = await startKubeSim({ timeScale: 40, namespaces: ['engine'] });
    client = KubeClient.load({ kubeconfig: sim.kubeconfigPath });
    work = mkdtempSync(join(tmpdir(), 'canary-engine-'));
    writeFileSync(
      join(work, 'app.yaml'),
      `apiVersion: apps/v1
kind: Deployment
metadata: { name: shop, namespace: engine }
spec:
  replicas: 5
  selector: { matchLabels: { app: shop } }
  template:
    metadata: { labels: { app: shop } }
    spec: { containers: [{ name: web, image: registry.local/shop:v1 }] }
---
apiVersion: v1
kind: Service
metadata: { name: shop, namespace: engine }
spec: { selector: { app: shop }, ports: [{ port: 80, targetPort: 8080 }] }
`,
    );
    const env = { ...process.env, KUBECONFIG: sim.kubeconfigPath };
    await run('kubectl', ['apply', '-f', join(work, 'app.yaml')], { env });
    await run('kubectl', ['rollout', 'status', 'deployment/shop', '-n', 'engine', '--timeout=60s'], { env });
  });
  afterAll(async () => {
    client?.close();
    await sim?.close();
    rmSync(work, { recursive: true, force: true });
  });

  test('a cancelled step still puts all traffic and capacity back on stable before returning', async () => {
    const cancel = new AbortController();
    const log = new MemoryLogger();
    const checks = parseChecks([{ name: 'canary', service: 'engine/shop-canary:80', path: '/health' }], {
      ...DEFAULT_LIMITS,
      prometheusAuth: {},
      timeoutMs: 2000,
    });
    const running = runCanary({
      client,
      namespace: 'engine',
      deployment: 'shop',
      mode: 'run',
      image: 'registry.local/shop:v2',
      router: { kind: 'replicas', service: 'shop' },
      steps: parseSteps('20:10m,100'),
      analysis: { checks, intervalMs: 100, count: 1, initialDelayMs: 0 },
      timeoutMs: 30_000,
      stuckGraceMs: 2000,
      logger: log,
      signal: cancel.signal,
    });
    // Cancel once the canary carries its first share.
    for (let i = 0; i < 200; i++) {
      const d = await client.getJson<{ metadata: { annotations?: Record<string, string> } }>(
        '/apis/apps/v1/namespaces/engine/deployments/shop',
      );
      if (d?.metadata.annotations?.[CANARY_ANNOTATIONS.weight] === '20') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    cancel.abort(new Error('job cancelled'));
    const result = await running;
    expect(result).toMatchObject({ ok: false, phase: 'aborted', weight: 0 });
    expect(result.reason).toMatch(/step 1 \(20%\) could not finish/);
    const stable = await client.json<{ spec: { replicas: number }; status: { availableReplicas: number } }>(
      'GET',
      '/apis/apps/v1/namespaces/engine/deployments/shop',
    );
    const canary = await client.json<{ spec: { replicas: number } }>(
      'GET',
      '/apis/apps/v1/namespaces/engine/deployments/shop-canary',
    );
    expect([stable.spec.replicas, stable.status.availableReplicas, canary.spec.replicas]).toEqual([5, 5, 0]);
    expect(result.timings?.trafficRestoredAt).toBeDefined();
  });
});
