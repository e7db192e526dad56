/**
 * Waiting for a Service's endpoints to catch up with a selector change: the endpoints controller
 * follows a selector patch a moment later, and a check sent through the Service in between
 * reaches no pod (503 "no endpoints available") or the old pods.
 */
import { type Clock, type Logger, systemClock } from '../core/index.ts';
import type { KubeClient } from './client.ts';
import { collectionPathOf, isPodReady, labelQuery } from './objects.ts';
import type { KubeObject } from './resources.ts';
import { watchUntil } from './watch.ts';

interface EndpointsObject extends KubeObject {
  subsets?: { addresses?: { targetRef?: { kind?: string; name?: string } }[] }[];
}

/**
 * Resolves once every ready address of Service `service` is one of the ready pods `selector`
 * picks, and there is at least one; false when the deadline passed first (the caller's checks
 * then judge what the Service serves).
 */
export async function waitForServiceEndpoints(options: {
  client: KubeClient;
  namespace: string;
  service: string;
  selector: Record<string, string>;
  deadlineMs: number;
  clock?: Clock;
  signal?: AbortSignal;
  logger?: Logger;
}): Promise<boolean> {
  const clock = options.clock ?? systemClock;
  const pods = await options.client.getJson<{
    items?: (KubeObject & { status?: { conditions?: { type: string; status: string }[] } })[];
  }>(`${collectionPathOf('Pod', options.namespace)}${labelQuery(options.selector)}`);
  const wanted = new Set((pods?.items ?? []).filter(isPodReady).map((p) => p.metadata.name!));
  if (wanted.size === 0) return false;
  const outcome = await watchUntil<EndpointsObject, true>({
    client: options.client,
    path: `/api/v1/namespaces/${encodeURIComponent(options.namespace)}/endpoints`,
    fieldSelector: `metadata.name=${options.service}`,
    deadline: clock.now() + options.deadlineMs,
    clock,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    condition: (objects) => {
      const ep = objects.get(options.service);
      const ready = (ep?.subsets ?? []).flatMap((s) => s.addresses ?? []).map((a) => a.targetRef?.name ?? '');
      return ready.length > 0 && ready.every((name) => wanted.has(name)) ? true : undefined;
    },
  });
  return outcome.state === 'done';
}
