import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { type KubeSim, startKubeSim } from '../../tooling/kube-sim/index.ts';
import { clients, deployment, failure, until } from './helpers.ts';

let sim: KubeSim;
let api: ReturnType<typeof clients>;
const ns = 'default';

beforeAll(async () => {
  sim = await startKubeSim({
    timeScale: 100,
    seed: 7,
    images: [
      { pattern: 'registry/shop:stable', http: { health: { status: 'ok', version: 'stable' } } },
      {
        pattern: 'registry/shop:canary',
        http: { errorRate: 1, latencyMs: 800, health: { status: 'degraded' } },
      },
      { pattern: 'registry/shop:down', http: { status: 503 } },
    ],
  });
  api = clients(sim);
});

afterAll(async () => {
  await sim.close();
});

async function ready(name: string, replicas: number): Promise<void> {
  await until(`${name} ready`, async () => {
    const d = await api.apps.readNamespacedDeployment({ name, namespace: ns });
    return (d.status?.readyReplicas ?? 0) === replicas && (d.status?.updatedReplicas ?? 0) === replicas;
  });
}

function proxy(path: string): Promise<Response> {
  return fetch(`${sim.url}/api/v1/namespaces/${ns}/services/${path}`, {
    headers: { authorization: `Bearer ${sim.token}` },
  });
}

describe('service proxy', () => {
  beforeAll(async () => {
    const stable = deployment('shop-stable', 'registry/shop:stable', { replicas: 3 });
    stable.spec!.template.metadata!.labels = { app: 'shop-stable', service: 'shop' };
    const canary = deployment('shop-canary', 'registry/shop:canary', { replicas: 1 });
    canary.spec!.template.metadata!.labels = { app: 'shop-canary', service: 'shop' };
    await api.apps.createNamespacedDeployment({ namespace: ns, body: stable });
    await api.apps.createNamespacedDeployment({ namespace: ns, body: canary });
    await api.core.createNamespacedService({
      namespace: ns,
      body: {
        metadata: { name: 'shop' },
        spec: { selector: { service: 'shop' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
      },
    });
    await ready('shop-stable', 3);
    await ready('shop-canary', 1);
  });

  test('Endpoints list the ready pods the selector picks', async () => {
    const ep = await until('4 endpoints', async () => {
      const e = await api.core.readNamespacedEndpoints({ name: 'shop', namespace: ns });
      return e.subsets?.[0]?.addresses?.length === 4 ? e : undefined;
    });
    expect(ep.subsets![0]!.ports).toEqual([{ name: 'http', port: 8080, protocol: 'TCP' }]);
    expect(
      ep.subsets![0]!.addresses!.every((a) => a.targetRef?.kind === 'Pod' && /^10\.244\./.test(a.ip)),
    ).toBe(true);
  });

  test('spreads requests across ready pods in proportion to their number, each answering per its image', async () => {
    const byImage = new Map<string, number>();
    const byCode = new Map<number, number>();
    for (let i = 0; i < 40; i++) {
      const res = await proxy('shop:80/proxy/api/orders');
      const image = res.headers.get('x-kube-sim-image')!;
      byImage.set(image, (byImage.get(image) ?? 0) + 1);
      byCode.set(res.status, (byCode.get(res.status) ?? 0) + 1);
      await res.arrayBuffer();
    }
    expect(byImage.get('registry/shop:stable')).toBe(30);
    expect(byImage.get('registry/shop:canary')).toBe(10);
    expect(byCode.get(500)).toBe(10);
    expect(byCode.get(200)).toBe(30);
  });

  test('/health answers the configured JSON', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const res = await proxy('shop/proxy/health');
      seen.add(JSON.stringify(await res.json()));
    }
    expect([...seen].sort()).toEqual(['{"status":"degraded"}', '{"status":"ok","version":"stable"}']);
  });

  test('counters per pod and per image, and a latency histogram, in Prometheus text', async () => {
    const text = sim.metricsText();
    expect(text).toContain('# TYPE kubesim_http_requests_total counter');
    expect(text).toMatch(
      /kubesim_http_requests_total\{namespace="default",service="shop",pod="shop-canary-[a-z0-9]+-[a-z0-9]{5}",image="registry\/shop:canary",code="500"\} 1\d/,
    );
    expect(text).toMatch(/kubesim_image_http_requests_total\{image="registry\/shop:stable",code="200"\} 3\d/);
    expect(text).toMatch(
      /kubesim_http_request_duration_seconds_bucket\{[^}]*image="registry\/shop:canary",le="1"\} 1\d/,
    );
    expect(text).toMatch(
      /kubesim_http_request_duration_seconds_bucket\{[^}]*image="registry\/shop:canary",le="0\.5"\} 0/,
    );
    const served = await (await fetch(`${sim.url}/metrics`)).text();
    expect(served).toContain('kubesim_http_requests_total{');
  });

  test('a service without ready endpoints answers 503', async () => {
    await api.core.createNamespacedService({
      namespace: ns,
      body: { metadata: { name: 'empty' }, spec: { selector: { app: 'none' }, ports: [{ port: 80 }] } },
    });
    const res = await proxy('empty/proxy/');
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({
      kind: 'Status',
      reason: 'ServiceUnavailable',
      message: 'no endpoints available for service "empty"',
    });
  });

  test('an image with a fixed status answers it', async () => {
    await api.apps.createNamespacedDeployment({
      namespace: ns,
      body: deployment('down', 'registry/shop:down', { replicas: 1 }),
    });
    await api.core.createNamespacedService({
      namespace: ns,
      body: { metadata: { name: 'down' }, spec: { selector: { app: 'down' }, ports: [{ port: 80 }] } },
    });
    await ready('down', 1);
    const res = await until('endpoint', async () => {
      const r = await proxy('down/proxy/health');
      return r.status === 503 && r.headers.get('x-kube-sim-pod') ? r : undefined;
    });
    expect(await res.json()).toEqual({ status: 'error' });
  });
});

describe('fault plan', () => {
  test('fails exactly the next N matching requests with the chosen status', async () => {
    sim.setFaults({ failNext: 2, statuses: [503], match: { verb: 'get', resource: 'configmaps' } });
    await api.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'f1' } } });
    const first = await failure(api.core.readNamespacedConfigMap({ name: 'f1', namespace: ns }));
    expect(first).toMatchObject({ code: 503, status: { kind: 'Status', reason: 'ServiceUnavailable' } });
    expect((await failure(api.core.readNamespacedConfigMap({ name: 'f1', namespace: ns }))).code).toBe(503);
    expect((await api.core.readNamespacedConfigMap({ name: 'f1', namespace: ns })).metadata?.name).toBe('f1');
    // Other verbs and resources were never touched.
    await api.core.listNamespacedConfigMap({ namespace: ns });
    sim.setFaults({});
  });

  test('429 carries Retry-After', async () => {
    sim.setFaults({ failNext: 1, statuses: [429], retryAfterSeconds: 3 });
    const res = await fetch(`${sim.url}/api/v1/namespaces/${ns}/configmaps`, {
      headers: { authorization: `Bearer ${sim.token}` },
    });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('3');
    expect(await res.json()).toMatchObject({
      reason: 'TooManyRequests',
      code: 429,
      details: { retryAfterSeconds: 3 },
    });
    sim.setFaults({});
  });

  test('an error rate fails about that share of matching requests', async () => {
    sim.setFaults({ errorRate: 0.5, statuses: [500, 503], match: { pathPattern: '/configmaps' } });
    const codes: number[] = [];
    for (let i = 0; i < 200; i++) {
      const res = await fetch(`${sim.url}/api/v1/namespaces/${ns}/configmaps`, {
        headers: { authorization: `Bearer ${sim.token}` },
      });
      codes.push(res.status);
      await res.arrayBuffer();
    }
    const failed = codes.filter((c) => c !== 200).length;
    expect(failed).toBeGreaterThan(60);
    expect(failed).toBeLessThan(140);
    expect(new Set(codes.filter((c) => c !== 200))).toEqual(new Set([500, 503]));
    const other = await fetch(`${sim.url}/api/v1/namespaces/${ns}/secrets`, {
      headers: { authorization: `Bearer ${sim.token}` },
    });
    expect(other.status).toBe(200);
    sim.setFaults({});
  });

  test('dropWatchesAfterMs closes watches, and a client resuming from its last resourceVersion misses nothing', async () => {
    sim.setFaults({ dropWatchesAfterMs: 150 });
    const names = new Set<string>();
    let ends = 0;
    let lastRv = (await api.core.listNamespacedConfigMap({ namespace: 'kube-public' })).metadata!
      .resourceVersion!;
    const watch = new k8s.Watch(api.kc);
    let current: AbortController | undefined;
    let stopped = false;
    const open = async (): Promise<void> => {
      current = await watch.watch(
        '/api/v1/namespaces/kube-public/configmaps',
        { resourceVersion: lastRv },
        (_phase, obj: k8s.V1ConfigMap) => {
          lastRv = obj.metadata!.resourceVersion!;
          names.add(obj.metadata!.name!);
        },
        () => {
          ends++;
          if (!stopped) void open();
        },
      );
    };
    await open();
    for (let i = 0; i < 10; i++) {
      await api.core.createNamespacedConfigMap({
        namespace: 'kube-public',
        body: { metadata: { name: `d${i}` } },
      });
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
    await until('all ten', () => names.size === 10);
    stopped = true;
    current?.abort();
    sim.setFaults({});
    expect(ends).toBeGreaterThan(0);
  });
});
