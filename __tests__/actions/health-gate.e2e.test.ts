import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { closeServer, listenLoopback } from '../../tooling/local-services/http.ts';
import { MetricsApp } from '../../tooling/local-services/metrics-app.ts';
import {
  type PrometheusServer,
  requirePrometheus,
  startPrometheus,
  waitForSeries,
} from '../../tooling/local-services/prometheus.ts';
import { findLeaks, runBuiltAction, type StepResult } from '../../tooling/runners/action-runner.ts';

let server: Server;
let base: string;
let healthy = true;
const seenAuth: string[] = [];

beforeAll(async () => {
  ({ server, url: base } = await listenLoopback((req, res) => {
    seenAuth.push(String(req.headers.authorization ?? ''));
    res.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: healthy ? 'healthy' : 'degraded' }));
  }));
});
afterAll(() => closeServer(server));

const errors = (step: StepResult) =>
  step.annotations.filter((a) => a.level === 'error').map((a) => a.message);

function gate(inputs: Record<string, string>) {
  return runBuiltAction('health-gate', { inputs, env: { HOME: '/nonexistent-home' } });
}

describe('health-gate through the runner contract', () => {
  test('passes a healthy service, with the verdict, evidence and a summary', async () => {
    healthy = true;
    const step = await gate({
      checks: `- name: api\n  url: ${base}/health\n  json: .status == "healthy"\n  headers: { Authorization: Bearer s3cr3t-probe-token }`,
      count: '3',
      interval: '100ms',
    });
    expect(errors(step)).toEqual([]);
    expect(step.exitCode).toBe(0);
    expect(step.outputs.verdict).toBe('passed');
    expect(step.outputs['decided-by']).toBe('');
    expect(step.outputs['verdict-line']).toMatch(/^health gate passed: 3 rounds over \d+ms; checks: api$/);
    const evidence = JSON.parse(step.outputs.evidence!);
    expect(evidence.checks[0].measurements.map((m: { state: string }) => m.state)).toEqual([
      'success',
      'success',
      'success',
    ]);
    expect(step.summary).toContain('### ✅ Health gate: passed');
    expect(seenAuth.at(-1)).toBe('Bearer s3cr3t-probe-token');
    expect(step.masks).toContain('Bearer s3cr3t-probe-token');
    expect(findLeaks(step, 's3cr3t-probe-token')).toEqual([]);
  });

  test('fails the step on an unhealthy service, still setting the outputs a rollback step reads', async () => {
    healthy = false;
    const step = await gate({
      checks: `- { name: api, url: "${base}/health" }`,
      count: '5',
      interval: '100ms',
      name: 'staging smoke',
    });
    healthy = true;
    expect(step.exitCode).toBe(1);
    expect(step.outputs.verdict).toBe('failed');
    expect(step.outputs['decided-by']).toBe('api');
    expect(step.outputs['verdict-line']).toMatch(
      /^health gate failed: 1 round over \d+m?s; checks: api \(failed\)$/,
    );
    expect(errors(step)).toEqual([
      `Health gate failed: api failed 1 time(s), more than its failure limit of 0: HTTP 503 (expected 2xx): {"status":"degraded"}`,
    ]);
    expect(step.summary).toContain('### ❌ staging smoke: failed');
  });

  test('inconclusive is a failure unless fail-on-inconclusive is off', async () => {
    const prom = await listenLoopback((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [] } }));
    });
    try {
      const checks = `- { name: rate, type: prometheus, query: "sum(rate(x[1m]))", condition: "< 1", prometheus-url: "${prom.url}" }`;
      const strict = await gate({ checks, count: '1' });
      expect(strict.exitCode).toBe(1);
      expect(strict.outputs.verdict).toBe('inconclusive');
      expect(strict.outputs['verdict-line']).toMatch(
        /^health gate inconclusive: 1 round over \d+m?s; checks: rate \(no data\)$/,
      );
      const lenient = await gate({ checks, count: '1', 'fail-on-inconclusive': 'false' });
      expect(lenient.exitCode).toBe(0);
      expect(
        lenient.annotations
          .filter((a) => a.level === 'warning')
          .map((a) => a.message)
          .at(-1),
      ).toMatch(/^Health gate inconclusive: rate had no data/);
    } finally {
      await closeServer(prom.server);
    }
  });

  test.each([
    [
      { checks: 'name: x' },
      "Input 'checks' is not a list. Accepted: a YAML list of checks, each with name and type (http, prometheus or kubernetes).",
    ],
    [
      { checks: '- { name: a, type: ping }' },
      'Input \'checks[0] (a).type\' has the unknown type "ping". Accepted: one of http, prometheus, kubernetes.',
    ],
    [
      { checks: '- { name: a, url: "http://x" }', count: '3', duration: '5m' },
      "Input 'duration' is set together with count. Accepted: either count (measurements) or duration (a soak window such as 15m).",
    ],
    [
      { checks: '- { name: a, url: "http://x" }', interval: 'often' },
      'Input \'interval\' has "often", which is not a duration.',
    ],
    [
      {},
      "Input 'checks' is required (or checks-file). Accepted: a YAML list of checks, each with name and type.",
    ],
    [{ 'checks-file': 'nope.yml' }, 'Input \'checks-file\' names "nope.yml", which cannot be read.'],
    [
      { checks: '- { name: pods, workload: deployment/shop, namespace: prod }' },
      "Input 'kubeconfig' was not given, KUBECONFIG is not set and ~/.kube/config does not exist.",
    ],
  ])('bad input %j fails before probing, naming the input', async (inputs, message) => {
    const step = await gate(inputs as Record<string, string>);
    expect(step.exitCode).toBe(1);
    expect(errors(step)).toHaveLength(1);
    expect(errors(step)[0]).toContain(message);
    expect(step.outputs.verdict).toBeUndefined();
  });
});

const prometheusBinary = requirePrometheus();
(prometheusBinary ? describe : describe.skip)('health-gate with a real Prometheus', () => {
  let app: MetricsApp;
  let prometheus: PrometheusServer;
  beforeAll(async () => {
    app = await MetricsApp.start({ requestsPerSecond: 100 });
    prometheus = await startPrometheus({
      targets: [app.target],
      scrapeIntervalMs: 1000,
      binary: prometheusBinary!,
    });
    await waitForSeries(prometheus.url, 'sum(rate(http_requests_total{job="app"}[5s]))');
  }, 60_000);
  afterAll(async () => {
    await prometheus?.stop();
    await app?.close();
  });

  test('ready-made success-rate and p99 queries pass on a healthy app', async () => {
    const step = await gate({
      checks: `- { name: success, metric: request-success-rate, selector: 'job="app"', window: 5s }\n- { name: p99, metric: latency-p99, selector: 'job="app"', window: 5s }`,
      'prometheus-url': prometheus.url,
      'initial-delay': '500ms',
      interval: '500ms',
      count: '3',
    });
    expect(errors(step)).toEqual([]);
    expect(step.outputs.verdict).toBe('passed');
    // A series that moved has a chart; one that held one value (a success rate of 1) is said in words.
    for (const name of ['success', 'p99'])
      expect(step.summary).toMatch(
        new RegExp(`#### ${name}\\n\\n3 measurement\\\\\\(s\\\\\\), .*\\n\\n(\`\`\`mermaid|<details>)`),
      );
  }, 30_000);
});

describe('health-gate against the embedded Kubernetes API', () => {
  let sim: import('../../tooling/kube-sim/index.ts').KubeSim;
  const manifest = (name: string, image: string, replicas = 2) => `apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name}, namespace: shop }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: ${name} } }
  template:
    metadata: { labels: { app: ${name} } }
    spec: { containers: [{ name: web, image: "${image}" }] }
---
apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: shop }
spec:
  selector: { app: ${name} }
  ports: [{ name: http, port: 80, targetPort: 8080 }]
`;

  beforeAll(async () => {
    const { startKubeSim } = await import('../../tooling/kube-sim/index.ts');
    sim = await startKubeSim({
      timeScale: 50,
      namespaces: ['shop'],
      images: [
        { pattern: 'registry.local/web:ok', http: { health: { status: 'healthy' } } },
        { pattern: 'registry.local/web:crash', mode: 'crash', crashAfterMs: 300 },
      ],
    });
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    // Asynchronously: the embedded API server answers from this very process.
    const run = promisify(execFile);
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'gate-k8s-'));
    writeFileSync(join(dir, 'ok.yaml'), manifest('web', 'registry.local/web:ok'));
    writeFileSync(join(dir, 'crash.yaml'), manifest('broken', 'registry.local/web:crash', 1));
    const env = { ...process.env, KUBECONFIG: sim.kubeconfigPath };
    await run('kubectl', ['apply', '-f', dir], { env });
    await run('kubectl', ['rollout', 'status', 'deployment/web', '-n', 'shop', '--timeout=60s'], { env });
  }, 90_000);
  afterAll(async () => {
    await sim?.close();
  });

  test('probes a private Service through the API server proxy and checks the Deployment, with only a kubeconfig', async () => {
    const step = await gate({
      kubeconfig: sim.kubeconfig,
      namespace: 'shop',
      count: '3',
      interval: '100ms',
      checks:
        '- { name: web health, service: "web:http", path: /health, json: .status == "healthy" }\n- { name: web pods, type: kubernetes, workload: deployment/web }',
    });
    expect(errors(step)).toEqual([]);
    expect(step.outputs.verdict).toBe('passed');
    const evidence = JSON.parse(step.outputs.evidence!);
    expect(evidence.checks[1].measurements[0].message).toBe('2/2 available, 0 restarts');
    expect(findLeaks(step, sim.token)).toEqual([]);
  });

  test('a crash-looping Deployment fails the kubernetes check with the pod and its reason', async () => {
    const step = await gate({
      kubeconfig: sim.kubeconfig,
      namespace: 'shop',
      count: '20',
      interval: '250ms',
      checks: '- { name: broken pods, type: kubernetes, workload: deployment/broken }',
    });
    expect(step.exitCode).toBe(1);
    expect(step.outputs.verdict).toBe('failed');
    expect(errors(step)[0]).toMatch(
      /^Health gate failed: broken pods failed 1 time\(s\), more than its failure limit of 0: .*0 of 1 replicas are available/,
    );
  });

  test('a Service with no ready pods answers 503 through the proxy, a failure with the reason', async () => {
    const step = await gate({
      kubeconfig: sim.kubeconfig,
      namespace: 'shop',
      count: '1',
      checks: '- { name: broken health, service: "broken:http", path: /health }',
    });
    expect(step.outputs.verdict).toBe('failed');
    expect(errors(step)[0]).toMatch(/HTTP 503 \(expected 2xx\)/);
  });
});
