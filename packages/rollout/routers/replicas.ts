import { scaleDeployment } from '../../kube/objects.ts';
import { canaryReplicasFor } from '../canary-plan.ts';
import type { Router, RouterContext } from './router.ts';

/**
 * One Service over stable and canary pods: the canary's share of the traffic is its share of the
 * pods, so the weight in effect is rounded to whole pods.
 */
export function replicasRouter(ctx: RouterContext): Router {
  const { client, namespace, stableName, canaryName, total } = ctx;
  return {
    kind: 'replicas',
    async validate() {},
    async setWeight(weight) {
      const c = canaryReplicasFor(weight, total);
      // Grow first, then shrink, so ready capacity never drops below the total.
      if (c >= (await ctx.canaryReplicas())) {
        await ctx.sizeCanary(c);
        await scaleDeployment(client, namespace, stableName, total - c);
      } else {
        await scaleDeployment(client, namespace, stableName, total - c);
        await ctx.mustBeReady(stableName);
        await scaleDeployment(client, namespace, canaryName, c);
      }
      return total > 0 ? Math.round((c * 100) / total) : 0;
    },
    async toStable() {
      await scaleDeployment(client, namespace, canaryName, 0);
      await scaleDeployment(client, namespace, stableName, total);
    },
    async cleanup() {},
  };
}
