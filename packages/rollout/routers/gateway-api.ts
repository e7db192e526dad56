import { InputError, PipelineError } from '../../core/index.ts';
import { KubeApiError } from '../../kube/client.ts';
import { scaleDeployment } from '../../kube/objects.ts';
import type { KubeObject } from '../../kube/resources.ts';
import { type Router, type RouterContext, sizedShift } from './router.ts';

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
  /** `undefined` removes the canary's backendRefs. A conflicting write re-reads the route and tries again. */
  const writeWeights = async (weight: number | undefined, attempt = 1): Promise<void> => {
    const route = await client.getJson<HttpRoute>(path);
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
    try {
      await client.json('PUT', path, { body: route });
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 409 && attempt < 5)
        return writeWeights(weight, attempt + 1);
      throw error;
    }
  };
  return {
    kind: 'gateway-api',
    async validate() {
      const route = await client.getJson<HttpRoute>(path);
      if (!route)
        throw new InputError(
          'http-route',
          `names ${JSON.stringify(cfg.httpRoute)}, which does not exist in namespace ${namespace}`,
          'an existing gateway.networking.k8s.io/v1 HTTPRoute',
        );
      if (
        !(route.spec?.rules ?? []).some((r) =>
          (r.backendRefs ?? []).some((b) => b.name === cfg.stableService),
        )
      )
        throw new InputError(
          'http-route',
          `names the HTTPRoute ${cfg.httpRoute}, which has no backendRef to ${cfg.stableService}`,
          'an HTTPRoute whose rules send traffic to the stable Service',
        );
    },
    setWeight: (weight) => sizedShift(ctx, weight, writeWeights),
    async toStable() {
      await writeWeights(0);
      await scaleDeployment(client, namespace, ctx.canaryName, 0);
    },
    cleanup: () => writeWeights(undefined),
  };
}
