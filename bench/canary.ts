/**
 * Canary abort reaction: `node bench/canary.ts`.
 * A canary whose image answers 500 runs at 10% beside a stable Deployment on kube-sim; the health
 * analysis measures it every 100 ms. Printed per router: the time from the failing measurement to
 * (a) the routing change written (canary at zero / weights at 0), (b) the Service's endpoints
 * holding no canary pod any more (traffic fully back on stable), (c) the stable at full
 * capacity. Figures only; nothing here asserts.
 */
import { silentLogger } from '../packages/core/index.ts';
import { DEFAULT_LIMITS, parseChecks } from '../packages/health/checks.ts';
import { KubeClient } from '../packages/kube/client.ts';
import { runCanary } from '../packages/rollout/canary.ts';
import { parseSteps } from '../packages/rollout/canary-plan.ts';
import type { RouterConfig } from '../packages/rollout/options.ts';
import { startKubeSim } from '../tooling/kube-sim/index.ts';

const TRIALS = Number(process.env.TRIALS ?? 5);
const REPLICAS = 10;
const sim = await startKubeSim({ timeScale: 20, images: [{ pattern: '*:bad', http: { status: 500 } }] });
const client = KubeClient.load({ kubeconfig: sim.kubeconfigPath });

async function setup(ns: string, gateway: boolean): Promise<void> {
  await client.json('POST', '/api/v1/namespaces', {
    body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } },
  });
  const labels = gateway ? { app: 'shop', 'pipeline.dev/track': 'stable' } : { app: 'shop' };
  await client.json('POST', `/apis/apps/v1/namespaces/${ns}/deployments`, {
    body: {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'shop' },
      spec: {
        replicas: REPLICAS,
        selector: { matchLabels: { app: 'shop' } },
        template: {
          metadata: { labels },
          spec: { containers: [{ name: 'web', image: 'registry.local/shop:v1' }] },
        },
      },
    },
  });
  await client.json('POST', `/api/v1/namespaces/${ns}/services`, {
    body: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'shop' },
      spec: { selector: labels, ports: [{ port: 80 }] },
    },
  });
  if (gateway)
    await client.json('POST', `/apis/gateway.networking.k8s.io/v1/namespaces/${ns}/httproutes`, {
      body: {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: { name: 'shop' },
        spec: { rules: [{ backendRefs: [{ name: 'shop', port: 80 }] }] },
      },
    });
  for (;;) {
    const d = await client.json<{ status?: { availableReplicas?: number } }>(
      'GET',
      `/apis/apps/v1/namespaces/${ns}/deployments/shop`,
    );
    if (d.status?.availableReplicas === REPLICAS) break;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Polls the canary Service's and the stable Service's endpoints; remembers when the last canary pod left. */
function watchEndpoints(ns: string, service: string) {
  let stop = false;
  let lastSeenCanary = 0;
  let firstClearAfterSeen = 0;
  const loop = (async () => {
    while (!stop) {
      const ep = await client.getJson<{ subsets?: { addresses?: { targetRef?: { name?: string } }[] }[] }>(
        `/api/v1/namespaces/${ns}/endpoints/${service}`,
      );
      const canary = (ep?.subsets ?? []).some((s) =>
        (s.addresses ?? []).some((a) => a.targetRef?.name?.startsWith('shop-canary-')),
      );
      const now = Date.now();
      if (canary) {
        lastSeenCanary = now;
        firstClearAfterSeen = 0;
      } else if (lastSeenCanary && !firstClearAfterSeen) firstClearAfterSeen = now;
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  return async () => {
    stop = true;
    await loop;
    return firstClearAfterSeen;
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const fmt = (xs: number[]) =>
  `median ${median(xs).toFixed(0)} ms, min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)}`;

for (const kind of ['replicas', 'gateway-api'] as const) {
  const written: number[] = [];
  const endpoints: number[] = [];
  const capacity: number[] = [];
  for (let i = 0; i < TRIALS; i++) {
    const ns = `bench-${kind}-${i}`;
    await setup(ns, kind === 'gateway-api');
    const checks = parseChecks([{ name: 'canary', service: `${ns}/shop-canary:80`, path: '/health' }], {
      ...DEFAULT_LIMITS,
      prometheusAuth: {},
      timeoutMs: 2000,
    });
    const router: RouterConfig =
      kind === 'replicas' ? { kind, service: 'shop' } : { kind, httpRoute: 'shop', stableService: 'shop' };
    // With the replicas router the Service itself loses the canary's pods; with gateway-api the weight goes to 0.
    const stopWatch = watchEndpoints(ns, kind === 'replicas' ? 'shop' : 'shop-canary');
    const result = await runCanary({
      client,
      namespace: ns,
      deployment: 'shop',
      mode: 'run',
      image: 'registry.local/shop:bad',
      router,
      steps: parseSteps('10,100'),
      analysis: { checks, intervalMs: 100, count: 3, initialDelayMs: 0 },
      timeoutMs: 60_000,
      stuckGraceMs: 2000,
      logger: silentLogger,
    });
    const clearAt = await stopWatch();
    const t = result.timings!;
    written.push(t.trafficRestoredAt! - t.failedMeasurementAt!);
    capacity.push(t.capacityRestoredAt! - t.failedMeasurementAt!);
    if (clearAt) endpoints.push(clearAt - t.failedMeasurementAt!);
  }
  console.log(`router ${kind} (${TRIALS} aborts at 10% of ${REPLICAS} pods, kube-sim timeScale 20):`);
  console.log(`  failing measurement → routing written:          ${fmt(written)}`);
  if (endpoints.length) console.log(`  failing measurement → no canary pod in endpoints: ${fmt(endpoints)}`);
  console.log(`  failing measurement → stable at full capacity:   ${fmt(capacity)}`);
}
client.close();
await sim.close();
