import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type KubeSim, startKubeSim } from '../../tooling/kube-sim/index.ts';
import { SmoothWeightedRoundRobin } from '../../tooling/kube-sim/routing.ts';
import { clients, deployment, until } from './helpers.ts';

let sim: KubeSim;
let api: ReturnType<typeof clients>;
const ns = 'routing';

beforeAll(async () => {
  sim = await startKubeSim({
    timeScale: 100,
    seed: 3,
    namespaces: [ns, 'elsewhere'],
    users: [{ token: 'other', name: 'other', namespaces: ['elsewhere'] }],
    images: [{ pattern: 'registry/shop:canary', http: { health: { status: 'canary' } } }],
  });
  api = clients(sim);
  for (const [track, replicas] of [
    ['stable', 3],
    ['canary', 1],
  ] as const) {
    const d = deployment(`shop-${track}`, `registry/shop:${track}`, { replicas });
    d.spec!.template.metadata!.labels = { app: `shop-${track}`, track };
    await api.apps.createNamespacedDeployment({ namespace: ns, body: d });
  }
  for (const track of ['stable', 'canary', 'empty']) {
    await api.core.createNamespacedService({
      namespace: ns,
      body: {
        metadata: { name: `shop-${track}` },
        spec: { selector: { track }, ports: [{ port: 80, targetPort: 8080 }] },
      },
    });
  }
  await until('pods ready', async () => {
    const pods = await api.core.listNamespacedPod({ namespace: ns });
    return (
      pods.items.filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
        .length === 4
    );
  });
  await until('endpoints', async () => {
    const [s, c] = await Promise.all(
      ['shop-stable', 'shop-canary'].map((name) => api.core.readNamespacedEndpoints({ name, namespace: ns })),
    );
    return s?.subsets?.[0]?.addresses?.length === 3 && c?.subsets?.[0]?.addresses?.length === 1;
  });
});

afterAll(async () => {
  await sim.close();
});

async function call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const r = await fetch(`${sim.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${sim.token}`,
      'content-type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json',
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await r.json()) as Record<string, unknown>;
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
  return json;
}

const ROUTES = `/apis/gateway.networking.k8s.io/v1/namespaces/${ns}/httproutes`;
const INGRESSES = `/apis/networking.k8s.io/v1/namespaces/${ns}/ingresses`;

function route(name: string, backendRefs: { name: string; weight?: number }[]) {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name },
    spec: {
      parentRefs: [{ name: 'public' }],
      rules: [{ backendRefs: backendRefs.map((b) => ({ port: 80, ...b })) }],
    },
  };
}

function ingress(
  name: string,
  service: string,
  opts: { host?: string; annotations?: Record<string, string>; defaultBackend?: boolean } = {},
) {
  const backend = { service: { name: service, port: { number: 80 } } };
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name, annotations: opts.annotations ?? {} },
    spec: opts.defaultBackend
      ? { ingressClassName: 'nginx', defaultBackend: backend }
      : {
          ingressClassName: 'nginx',
          rules: [
            {
              ...(opts.host ? { host: opts.host } : {}),
              http: { paths: [{ path: '/', pathType: 'Prefix', backend }] },
            },
          ],
        },
  };
}

const canaryAnnotations = (weight: number) => ({
  'nginx.ingress.kubernetes.io/canary': 'true',
  'nginx.ingress.kubernetes.io/canary-weight': String(weight),
});

/** Sends `n` requests one after another; the backend Service and image of each answer, in order. */
async function send(
  base: string,
  n: number,
  path = '/orders',
): Promise<{ backend: string; image: string }[]> {
  const out: { backend: string; image: string }[] = [];
  for (let i = 0; i < n; i++) {
    const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${sim.token}` } });
    const body = (await r.json()) as { image?: string };
    expect(r.status).toBe(200);
    expect(r.headers.get('x-kube-sim-image')).toBe(body.image);
    out.push({ backend: r.headers.get('x-kube-sim-backend') ?? '', image: body.image ?? '' });
  }
  return out;
}

const count = (answers: { image: string }[], image: string) =>
  answers.filter((a) => a.image === image).length;

/** Requests the sim's counters show per image, summed over codes. */
function imageCounts(): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of sim
    .metricsText()
    .matchAll(/^kubesim_image_http_requests_total\{image="([^"]*)",code="\d+"\} (\d+)$/gm))
    out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[2]));
  return out;
}

describe('smooth weighted round-robin', () => {
  test('spreads the small weight evenly and gives weight 0 nothing', () => {
    const rr = new SmoothWeightedRoundRobin();
    const picks = Array.from(
      { length: 20 },
      () =>
        rr.pick('k', [
          { service: 'a', weight: 80 },
          { service: 'b', weight: 20 },
          { service: 'c', weight: 0 },
        ])?.service,
    );
    expect(picks.join('')).toBe('aabaa'.repeat(4));
    expect(picks.filter((p) => p === 'b')).toHaveLength(4);
    expect(picks).not.toContain('c');
    expect(rr.pick('z', [{ service: 'a', weight: 0 }])).toBeUndefined();
  });
});

describe('gateway route (HTTPRoute backendRefs weights)', () => {
  test('weights 90/10 send exactly 9 of every 10 requests to stable, and the counters agree', async () => {
    await call(
      'POST',
      ROUTES,
      route('shop', [
        { name: 'shop-stable', weight: 90 },
        { name: 'shop-canary', weight: 10 },
      ]),
    );
    const before = imageCounts();
    const answers = await send(sim.gatewayUrl(ns, 'shop'), 100);
    expect(count(answers, 'registry/shop:canary')).toBe(10);
    expect(count(answers, 'registry/shop:stable')).toBe(90);
    // Smooth: every window of 10 consecutive requests has exactly one canary answer.
    for (let i = 0; i + 10 <= 100; i += 10)
      expect(count(answers.slice(i, i + 10), 'registry/shop:canary')).toBe(1);
    expect(answers.every((a) => a.backend === `shop-${a.image.split(':')[1]}`)).toBe(true);
    const after = imageCounts();
    expect((after.get('registry/shop:canary') ?? 0) - (before.get('registry/shop:canary') ?? 0)).toBe(10);
    expect((after.get('registry/shop:stable') ?? 0) - (before.get('registry/shop:stable') ?? 0)).toBe(90);
    // Behind the Service, the ready pods share the requests round-robin as through the service proxy.
    const perPod = [
      ...sim
        .metricsText()
        .matchAll(
          /^kubesim_http_requests_total\{namespace="routing",service="shop-stable",pod="([^"]+)",[^}]*\} (\d+)$/gm,
        ),
    ];
    expect(perPod.map((m) => Number(m[2]))).toEqual([30, 30, 30]);
  });

  test('a weight change applies from the next request; a backendRef without weight counts as 1', async () => {
    const path = `${ROUTES}/shop`;
    await call('PATCH', path, {
      spec: {
        rules: [
          {
            backendRefs: [
              { name: 'shop-stable', port: 80, weight: 0 },
              { name: 'shop-canary', port: 80, weight: 100 },
            ],
          },
        ],
      },
    });
    expect(count(await send(sim.gatewayUrl(ns, 'shop'), 1), 'registry/shop:canary')).toBe(1);
    expect(count(await send(sim.gatewayUrl(ns, 'shop'), 30), 'registry/shop:canary')).toBe(30);
    await call('PATCH', path, {
      spec: {
        rules: [
          {
            backendRefs: [
              { name: 'shop-stable', port: 80, weight: 100 },
              { name: 'shop-canary', port: 80, weight: 0 },
            ],
          },
        ],
      },
    });
    expect(count(await send(sim.gatewayUrl(ns, 'shop'), 30), 'registry/shop:stable')).toBe(30);
    await call('PATCH', path, {
      spec: {
        rules: [
          {
            backendRefs: [
              { name: 'shop-stable', port: 80 },
              { name: 'shop-canary', port: 80 },
            ],
          },
        ],
      },
    });
    expect(count(await send(sim.gatewayUrl(ns, 'shop'), 40), 'registry/shop:canary')).toBe(20);
  });

  test('a backend without ready pods answers 503 with the reason; no weight at all also 503', async () => {
    await call('POST', ROUTES, route('empty', [{ name: 'shop-empty', weight: 1 }]));
    const r = await fetch(`${sim.gatewayUrl(ns, 'empty')}/`, {
      headers: { authorization: `Bearer ${sim.token}` },
    });
    expect(r.status).toBe(503);
    expect(await r.json()).toMatchObject({
      kind: 'Status',
      reason: 'ServiceUnavailable',
      message:
        'HTTPRoute "empty" chose the backend Service "shop-empty": no endpoints available for service "shop-empty"',
    });
    await call('POST', ROUTES, route('zero', [{ name: 'shop-stable', weight: 0 }]));
    const z = await fetch(`${sim.gatewayUrl(ns, 'zero')}/`, {
      headers: { authorization: `Bearer ${sim.token}` },
    });
    expect(z.status).toBe(503);
    expect(((await z.json()) as { message: string }).message).toMatch(/no backend with a weight above 0/);
    const missing = await fetch(`${sim.gatewayUrl(ns, 'nope')}/`, {
      headers: { authorization: `Bearer ${sim.token}` },
    });
    expect(missing.status).toBe(404);
  });

  test('the same bearer rules as the service proxy', async () => {
    expect((await fetch(`${sim.gatewayUrl(ns, 'shop')}/`)).status).toBe(401);
    const other = await fetch(`${sim.gatewayUrl(ns, 'shop')}/`, {
      headers: { authorization: 'Bearer other' },
    });
    expect(other.status).toBe(403);
    const proxy = await fetch(`${sim.url}/api/v1/namespaces/${ns}/services/shop-stable/proxy/`, {
      headers: { authorization: 'Bearer other' },
    });
    expect(proxy.status).toBe(403);
  });
});

describe('ingress route (ingress-nginx canary annotations)', () => {
  test('without a canary Ingress all requests go to the main backend', async () => {
    await call('POST', INGRESSES, ingress('shop', 'shop-stable', { host: 'shop.example.com' }));
    expect(count(await send(sim.ingressUrl(ns, 'shop'), 20), 'registry/shop:stable')).toBe(20);
  });

  test('a canary Ingress of the same host with canary-weight 20 takes exactly 20%; other hosts do not count', async () => {
    await call(
      'POST',
      INGRESSES,
      ingress('other-canary', 'shop-canary', {
        host: 'other.example.com',
        annotations: canaryAnnotations(100),
      }),
    );
    await call(
      'POST',
      INGRESSES,
      ingress('shop-canary', 'shop-canary', { host: 'shop.example.com', annotations: canaryAnnotations(20) }),
    );
    const answers = await send(sim.ingressUrl(ns, 'shop'), 100);
    expect(count(answers, 'registry/shop:canary')).toBe(20);
    for (let i = 0; i + 5 <= 100; i += 5)
      expect(count(answers.slice(i, i + 5), 'registry/shop:canary')).toBe(1);
    // The canary Ingress itself is not an entry point, as with ingress-nginx.
    const direct = await fetch(`${sim.ingressUrl(ns, 'shop-canary')}/`, {
      headers: { authorization: `Bearer ${sim.token}` },
    });
    expect(direct.status).toBe(400);
  });

  test('canary-weight 0 sends nothing; removing the canary Ingress sends all to main', async () => {
    await call('PATCH', `${INGRESSES}/shop-canary`, { metadata: { annotations: canaryAnnotations(0) } });
    expect(count(await send(sim.ingressUrl(ns, 'shop'), 20), 'registry/shop:stable')).toBe(20);
    await call('PATCH', `${INGRESSES}/shop-canary`, { metadata: { annotations: canaryAnnotations(50) } });
    expect(count(await send(sim.ingressUrl(ns, 'shop'), 20), 'registry/shop:canary')).toBe(10);
    await call('DELETE', `${INGRESSES}/shop-canary`);
    expect(count(await send(sim.ingressUrl(ns, 'shop'), 30), 'registry/shop:stable')).toBe(30);
  });

  test('hostless Ingresses with defaultBackend pair up; a canary backend without ready pods answers 503', async () => {
    await call('POST', INGRESSES, ingress('plain', 'shop-stable', { defaultBackend: true }));
    await call(
      'POST',
      INGRESSES,
      ingress('plain-canary', 'shop-empty', { defaultBackend: true, annotations: canaryAnnotations(50) }),
    );
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await fetch(`${sim.ingressUrl(ns, 'plain')}/`, {
        headers: { authorization: `Bearer ${sim.token}` },
      });
      const body = (await r.json()) as { message?: string };
      codes.push(r.status);
      if (r.status === 503)
        expect(body.message).toMatch(/Ingress "plain" chose the backend Service "shop-empty": no endpoints/);
    }
    expect(codes.sort()).toEqual([200, 200, 503, 503]);
  });
});
