import { PipelineError } from '../../core/index.ts';
import { scaleDeployment, updateObject } from '../../kube/objects.ts';
import type { KubeObject } from '../../kube/resources.ts';
import { mustRouteToStable, type Router, type RouterContext, sizedShift } from './router.ts';

const GATEWAY = '/apis/gateway.networking.k8s.io/v1';

interface BackendRef {
  name: string;
  port?: number;
  weight?: number;
  [key: string]: unknown;
}
interface HttpRoute extends KubeObject {
  spec?: { rules?: { backendRefs?: BackendRef[]; [key: string]: unknown }[]; [key: string]: unknown };
}

/** Weighted backendRefs on an HTTPRoute: the canary Service beside the stable one in each rule. */
export function gatewayApiRouter(
  ctx: RouterContext,
  cfg: { httpRoute: string; stableService: string },
): Router {
  const { client, namespace, canaryServiceName } = ctx;
  const path = `${GATEWAY}/namespaces/${encodeURIComponent(namespace)}/httproutes/${encodeURIComponent(cfg.httpRoute)}`;
  /** `undefined` removes the canary's backendRefs; a conflicting write reads the route again. */
  const writeWeights = async (weight: number | undefined): Promise<void> => {
    await updateObject<HttpRoute>(client, path, (route) => {
      if (!route) throw new PipelineError(`HTTPRoute ${cfg.httpRoute} disappeared`);
      for (const rule of route.spec?.rules ?? []) {
        const refs = rule.backendRefs ?? [];
        const stableRef = refs.find((r) => r.name === cfg.stableService);
        if (!stableRef) continue;
        const others = refs.filter((r) => r.name !== canaryServiceName);
        if (weight === undefined) {
          stableRef.weight = 100;
          rule.backendRefs = others;
          continue;
        }
        stableRef.weight = 100 - weight;
        const { weight: _w, name: _n, ...rest } = stableRef;
        rule.backendRefs = [...others, { ...rest, name: canaryServiceName, weight }];
      }
      return route;
    });
  };
  return {
    kind: 'gateway-api',
    validate: () =>
      mustRouteToStable<HttpRoute>(ctx, {
        input: 'http-route',
        kind: 'HTTPRoute',
        name: cfg.httpRoute,
        stableService: cfg.stableService,
        path,
        existing: 'an existing gateway.networking.k8s.io/v1 HTTPRoute',
        routesToStable: (route) =>
          (route.spec?.rules ?? []).some((r) =>
            (r.backendRefs ?? []).some((b) => b.name === cfg.stableService),
          ),
        routing: 'an HTTPRoute whose rules send traffic to the stable Service',
      }),
    setWeight: (weight) => sizedShift(ctx, weight, writeWeights),
    async toStable() {
      await writeWeights(0);
      await scaleDeployment(client, namespace, ctx.canaryName, 0);
    },
    cleanup: () => writeWeights(undefined),
  };
}
