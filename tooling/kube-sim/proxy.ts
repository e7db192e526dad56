/**
 * The service (and pod) proxy: `/api/v1/namespaces/<ns>/services/<name>[:port]/proxy/<path>`
 * picks a ready endpoint round-robin — so traffic follows the number of ready pods — and the pod
 * answers per its image's HTTP behaviour.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Kubelet } from './controllers/kubelet.ts';
import { isPodReady } from './controllers/kubelet.ts';
import type { ProxyMetrics } from './metrics.ts';
import { isObject } from './patch.ts';
import { resourceByKind } from './resources.ts';
import type { SimTime } from './runtime.ts';
import { ApiError, notFound } from './status.ts';
import type { Store } from './store.ts';
import type { JsonObject, KubeObject } from './types.ts';

const SERVICES = resourceByKind('Service');
const ENDPOINTS = resourceByKind('Endpoints');
const PODS = resourceByKind('Pod');

export interface ProxyContext {
  store: Store;
  kubelet: Kubelet;
  metrics: ProxyMetrics;
  time: SimTime;
  random: () => number;
  balancing: 'round-robin' | 'random';
}

const counters = new WeakMap<ProxyContext, Map<string, number>>();

function readyPods(ctx: ProxyContext, namespace: string, service: string): KubeObject[] {
  const ep = ctx.store.get(ENDPOINTS, namespace, service);
  const out: KubeObject[] = [];
  for (const subset of (ep?.['subsets'] ?? []) as JsonObject[]) {
    for (const a of (subset['addresses'] ?? []) as JsonObject[]) {
      const ref = a['targetRef'];
      if (!isObject(ref)) continue;
      const pod = ctx.store.get(PODS, namespace, String(ref['name']));
      if (pod && isPodReady(pod)) out.push(pod);
    }
  }
  return out;
}

function pick(ctx: ProxyContext, key: string, pods: KubeObject[]): KubeObject {
  if (ctx.balancing === 'random') return pods[Math.floor(ctx.random() * pods.length)]!;
  let map = counters.get(ctx);
  if (!map) {
    map = new Map();
    counters.set(ctx, map);
  }
  const n = map.get(key) ?? 0;
  map.set(key, n + 1);
  return pods[n % pods.length]!;
}

export async function proxyToService(
  ctx: ProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  namespace: string,
  target: string,
  subpath: string,
): Promise<void> {
  const parts = target.split(':');
  const name = parts.length === 3 ? parts[1]! : parts[0]!;
  if (!ctx.store.get(SERVICES, namespace, name)) throw notFound(SERVICES, name);
  const pods = readyPods(ctx, namespace, name);
  if (pods.length === 0) {
    throw new ApiError(503, 'ServiceUnavailable', `no endpoints available for service "${name}"`);
  }
  await answerAsPod(ctx, req, res, pick(ctx, `${namespace}/${name}`, pods), name, subpath);
}

export async function proxyToPod(
  ctx: ProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  namespace: string,
  target: string,
  subpath: string,
): Promise<void> {
  const name = target.split(':')[0]!;
  const pod = ctx.store.get(PODS, namespace, name);
  if (!pod) throw notFound(PODS, name);
  if (!isPodReady(pod)) {
    throw new ApiError(
      503,
      'ServiceUnavailable',
      `error trying to reach service: dial tcp ${String(((pod['status'] ?? {}) as JsonObject)['podIP'] ?? '')}: connect: connection refused`,
    );
  }
  await answerAsPod(ctx, req, res, pod, '', subpath);
}

async function answerAsPod(
  ctx: ProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  pod: KubeObject,
  service: string,
  subpath: string,
): Promise<void> {
  const behaviour = ctx.kubelet.behaviourOf(pod);
  const http = behaviour.http ?? {};
  const image = String(
    (((pod['spec'] ?? {}) as JsonObject)['containers'] as JsonObject[] | undefined)?.[0]?.['image'] ?? '',
  );
  const latencyMs = http.latencyMs ?? 0;
  if (latencyMs > 0) await ctx.time.clock.sleep(latencyMs / ctx.time.scale);
  const namespace = pod.metadata.namespace!;
  const podName = pod.metadata.name!;
  const path = `/${subpath}`.replace(/\/+/g, '/').split('?')[0]!;
  let code = http.status ?? 200;
  let body: string;
  let contentType = 'application/json';
  if (path === '/metrics') {
    code = 200;
    contentType = 'text/plain; version=0.0.4';
    const counts = ctx.metrics.podCounts(namespace, podName);
    body = `# TYPE http_requests_total counter\n${[...counts].map(([c, n]) => `http_requests_total{code="${c}"} ${n}`).join('\n')}\n`;
  } else {
    if (http.errorRate !== undefined && http.errorRate > 0 && ctx.random() < http.errorRate) code = 500;
    if (path === '/health' || path === '/healthz' || path === '/ready' || path === '/readyz') {
      body = JSON.stringify(http.health ?? { status: code < 400 ? 'ok' : 'error' });
    } else if (code >= 500) {
      body = JSON.stringify({ error: 'simulated server error', pod: podName });
    } else {
      body = JSON.stringify(http.body ?? { pod: podName, image, path, method: req.method });
    }
    ctx.metrics.observe({ namespace, service, pod: podName, image }, code, latencyMs / 1000);
  }
  res.writeHead(code, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
    'X-Kube-Sim-Pod': podName,
    'X-Kube-Sim-Image': image,
  });
  res.end(body);
}
