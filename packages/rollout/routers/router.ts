import { InputError } from '../../core/index.ts';
import type { KubeClient } from '../../kube/client.ts';
import { scaleDeployment } from '../../kube/objects.ts';
import { canaryReplicasFor } from '../canary-plan.ts';
import type { RouterKind } from '../options.ts';

/** How traffic reaches the canary. Each router validates its objects before anything changes. */
export interface Router {
  kind: RouterKind;
  validate(): Promise<void>;
  /** Puts `weight` percent of the traffic on the canary (scaling it first); returns the weight in effect. */
  setWeight(weight: number): Promise<number>;
  /** All traffic to the stable version at once, then the canary to zero pods. */
  toStable(): Promise<void>;
  /** Removes what only the canary needed (the canary Ingress, the canary backendRefs). */
  cleanup(): Promise<void>;
}

/** What a router may do to the canary's and the stable's Deployments. */
export interface RouterContext {
  client: KubeClient;
  namespace: string;
  stableName: string;
  canaryName: string;
  canaryServiceName: string;
  track: string;
  /** The capacity the canary started with: stable and canary pods together. */
  total: number;
  /** Scales the canary to `replicas`, waiting for it when it grows. */
  sizeCanary(replicas: number): Promise<void>;
  canaryReplicas(): Promise<number>;
  mustBeReady(name: string): Promise<void>;
}

/**
 * For routers that weigh traffic themselves: the canary grows before it gets more traffic and
 * shrinks only after it got less, so no request is routed to pods that are not there.
 */
export async function sizedShift(
  ctx: RouterContext,
  weight: number,
  write: (weight: number) => Promise<void>,
): Promise<number> {
  const c = canaryReplicasFor(weight, ctx.total);
  if (c >= (await ctx.canaryReplicas())) {
    await ctx.sizeCanary(c);
    await write(weight);
  } else {
    await write(weight);
    await scaleDeployment(ctx.client, ctx.namespace, ctx.canaryName, c);
  }
  return weight;
}

/**
 * A traffic-weighing router's object must exist and already send traffic to the stable Service:
 * the one check both the HTTPRoute and the Ingress routers make before anything changes.
 */
export async function mustRouteToStable<T>(
  ctx: RouterContext,
  o: {
    input: string;
    kind: string;
    name: string;
    stableService: string;
    path: string;
    existing: string;
    routesToStable: (object: T) => boolean;
    routing: string;
  },
): Promise<void> {
  const object = await ctx.client.getJson<T>(o.path);
  if (!object)
    throw new InputError(
      o.input,
      `names ${JSON.stringify(o.name)}, which does not exist in namespace ${ctx.namespace}`,
      o.existing,
    );
  if (!o.routesToStable(object))
    throw new InputError(
      o.input,
      `names the ${o.kind} ${o.name}, which sends no traffic to ${o.stableService}`,
      o.routing,
    );
}
