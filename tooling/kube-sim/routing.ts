/**
 * A data plane for the traffic routers canary tools write to, so that tests send requests through
 * the routing decisions in the cluster rather than only reading the weights back (a kube-sim
 * extension, not a Kubernetes API):
 *
 * - `/kube-sim/gateway/<ns>/<httproute>/<path>` follows the weights of the HTTPRoute's first rule's
 *   backendRefs, the way a Gateway API implementation would;
 * - `/kube-sim/ingress/<ns>/<ingress>/<path>` follows ingress-nginx's canary annotations: a canary
 *   Ingress of the same host with `canary: "true"` takes `canary-weight` of `canary-weight-total`.
 *
 * The chosen Service answers exactly as through the service proxy (same ready pods, same
 * round-robin, same counters). Backends are chosen by smooth weighted round-robin, so shares are
 * exact over every window of `total weight` requests and a weight of 0 gets nothing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isObject } from './patch.ts';
import { type ProxyContext, proxyToService } from './proxy.ts';
import { resourceByKind } from './resources.ts';
import { ApiError, notFound } from './status.ts';
import type { JsonObject, KubeObject } from './types.ts';

const HTTP_ROUTES = resourceByKind('HTTPRoute');
const INGRESSES = resourceByKind('Ingress');
const NGINX_CANARY = 'nginx.ingress.kubernetes.io/canary';
const NGINX_CANARY_WEIGHT = 'nginx.ingress.kubernetes.io/canary-weight';
const NGINX_CANARY_WEIGHT_TOTAL = 'nginx.ingress.kubernetes.io/canary-weight-total';

export interface WeightedBackend {
  service: string;
  weight: number;
}

/**
 * Smooth weighted round-robin (as nginx's upstream balancer): each pick adds every weight to its
 * backend's running score and takes the highest, which then gives back the total. A new set of
 * weights starts afresh, so a change applies from the very next request.
 */
export class SmoothWeightedRoundRobin {
  private readonly states = new Map<string, { signature: string; current: number[] }>();

  pick(key: string, backends: readonly WeightedBackend[]): WeightedBackend | undefined {
    const signature = JSON.stringify(backends.map((b) => [b.service, b.weight]));
    let state = this.states.get(key);
    if (!state || state.signature !== signature) {
      state = { signature, current: backends.map(() => 0) };
      this.states.set(key, state);
    }
    let total = 0;
    let best = -1;
    backends.forEach((b, i) => {
      if (b.weight <= 0) return;
      total += b.weight;
      state.current[i]! += b.weight;
      if (best < 0 || state.current[i]! > state.current[best]!) best = i;
    });
    if (best < 0) return undefined;
    state.current[best]! -= total;
    return backends[best];
  }
}

function weightOf(value: unknown, fallback: number): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : Number.NaN;
  return Number.isFinite(n) && n >= 0 ? Math.floor(n) : fallback;
}

/** The Service named by `spec.rules[0].http.paths[0].backend`, else `spec.defaultBackend`. */
function ingressBackend(ingress: KubeObject): string | undefined {
  const spec = (ingress['spec'] ?? {}) as JsonObject;
  const rule = ((spec['rules'] ?? []) as JsonObject[])[0];
  const path = (((rule?.['http'] as JsonObject | undefined)?.['paths'] ?? []) as JsonObject[])[0];
  for (const backend of [path?.['backend'], spec['defaultBackend']]) {
    if (!isObject(backend)) continue;
    const service = backend['service'];
    if (isObject(service) && typeof service['name'] === 'string') return service['name'];
  }
  return undefined;
}

function ingressHost(ingress: KubeObject): string {
  const rule = ((((ingress['spec'] ?? {}) as JsonObject)['rules'] ?? []) as JsonObject[])[0];
  return typeof rule?.['host'] === 'string' ? rule['host'] : '';
}

const isCanary = (ingress: KubeObject) => ingress.metadata.annotations?.[NGINX_CANARY] === 'true';

export class TrafficRouter {
  private readonly balancer = new SmoothWeightedRoundRobin();
  private readonly ctx: ProxyContext;

  constructor(ctx: ProxyContext) {
    this.ctx = ctx;
  }

  /** The backends an HTTPRoute's first rule names, with Gateway API's default weight of 1. */
  gatewayBackends(namespace: string, name: string): WeightedBackend[] {
    const route = this.ctx.store.get(HTTP_ROUTES, namespace, name);
    if (!route) throw notFound(HTTP_ROUTES, name);
    const rule = ((((route['spec'] ?? {}) as JsonObject)['rules'] ?? []) as JsonObject[])[0];
    const refs = ((rule?.['backendRefs'] ?? []) as JsonObject[]).filter(
      (r) =>
        (r['kind'] ?? 'Service') === 'Service' && (r['group'] ?? '') === '' && typeof r['name'] === 'string',
    );
    if (refs.length === 0)
      throw new ApiError(
        500,
        'InternalError',
        `HTTPRoute "${name}" has no Service backendRefs in its first rule`,
      );
    return refs.map((r) => ({ service: String(r['name']), weight: weightOf(r['weight'], 1) }));
  }

  /** The main Ingress's backend and, when a canary Ingress of the same host exists, its share. */
  ingressBackends(namespace: string, name: string): WeightedBackend[] {
    const main = this.ctx.store.get(INGRESSES, namespace, name);
    if (!main) throw notFound(INGRESSES, name);
    if (isCanary(main))
      throw new ApiError(
        400,
        'BadRequest',
        `Ingress "${name}" is a canary Ingress; send traffic through the main Ingress of its host`,
      );
    const mainService = ingressBackend(main);
    if (!mainService) throw new ApiError(500, 'InternalError', `Ingress "${name}" names no backend Service`);
    const host = ingressHost(main);
    const canary = this.ctx.store
      .list(INGRESSES, namespace)
      .filter((i) => i.metadata.name !== name && isCanary(i) && ingressHost(i) === host)
      .sort((a, b) => (a.metadata.name! < b.metadata.name! ? -1 : 1))[0];
    const canaryService = canary ? ingressBackend(canary) : undefined;
    if (!canary || !canaryService) return [{ service: mainService, weight: 1 }];
    const annotations = canary.metadata.annotations ?? {};
    const total = Math.max(1, weightOf(annotations[NGINX_CANARY_WEIGHT_TOTAL], 100));
    const weight = Math.min(total, weightOf(annotations[NGINX_CANARY_WEIGHT], 0));
    return [
      { service: mainService, weight: total - weight },
      { service: canaryService, weight },
    ];
  }

  async gateway(
    req: IncomingMessage,
    res: ServerResponse,
    namespace: string,
    name: string,
    subpath: string,
  ): Promise<void> {
    const backends = this.gatewayBackends(namespace, name);
    await this.forward(
      req,
      res,
      namespace,
      `HTTPRoute "${name}"`,
      `gateway/${namespace}/${name}`,
      backends,
      subpath,
    );
  }

  async ingress(
    req: IncomingMessage,
    res: ServerResponse,
    namespace: string,
    name: string,
    subpath: string,
  ): Promise<void> {
    const backends = this.ingressBackends(namespace, name);
    await this.forward(
      req,
      res,
      namespace,
      `Ingress "${name}"`,
      `ingress/${namespace}/${name}`,
      backends,
      subpath,
    );
  }

  private async forward(
    req: IncomingMessage,
    res: ServerResponse,
    namespace: string,
    what: string,
    key: string,
    backends: WeightedBackend[],
    subpath: string,
  ): Promise<void> {
    const chosen = this.balancer.pick(key, backends);
    if (!chosen)
      throw new ApiError(503, 'ServiceUnavailable', `${what} has no backend with a weight above 0`);
    res.setHeader('X-Kube-Sim-Backend', chosen.service);
    try {
      await proxyToService(this.ctx, req, res, namespace, chosen.service, subpath);
    } catch (error) {
      if (error instanceof ApiError && (error.code === 503 || error.code === 404)) {
        throw new ApiError(
          503,
          'ServiceUnavailable',
          `${what} chose the backend Service "${chosen.service}": ${error.message}`,
        );
      }
      throw error;
    }
  }
}
