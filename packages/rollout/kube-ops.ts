import { type Clock, InputError, type Logger } from '../core/index.ts';
import type { Check, GateResult, KubeAccess, Measurement } from '../health/index.ts';
import { runHealthGate } from '../health/index.ts';
import type { KubeClient } from '../kube/client.ts';
import { isPodReady, ns, selectorText, selects } from '../kube/objects.ts';
import type { KubeObject } from '../kube/resources.ts';
import { type DeploymentObject, type RolloutOutcome, waitForDeployment } from '../kube/rollout.ts';
import { METRICS_PATH_INPUT } from './options.ts';

/** What the canary and blue-green engines share: small, exact operations on plain objects. */

// The primitives live in kube/objects.ts; the strategies import them from here.
export {
  deleteIfExists,
  deploymentPath,
  isPodReady,
  mergePatch,
  ns,
  scaleDeployment,
  selectorText,
  selects,
  servicePath,
} from '../kube/objects.ts';

export interface ServiceObject extends KubeObject {
  spec?: {
    selector?: Record<string, string>;
    ports?: { name?: string; port: number; targetPort?: number | string; protocol?: string }[];
    type?: string;
  };
}

export interface PodView extends KubeObject {
  status?: { conditions?: { type: string; status: string }[] };
}

export interface WaitSettings {
  timeoutMs: number;
  stuckGraceMs: number;
  clock: Clock;
  logger: Logger;
  signal?: AbortSignal;
}

export function waitReady(
  client: KubeClient,
  namespace: string,
  name: string,
  w: WaitSettings,
): Promise<RolloutOutcome> {
  return waitForDeployment({
    client,
    namespace,
    name,
    deadline: w.clock.now() + w.timeoutMs,
    stuckGraceMs: w.stuckGraceMs,
    clock: w.clock,
    logger: w.logger,
    ...(w.signal ? { signal: w.signal } : {}),
  });
}

/** The image of the container to change, and the template with the new image set. */
export function withImage(
  template: NonNullable<NonNullable<DeploymentObject['spec']>['template']>,
  image: string,
  container: string | undefined,
  repositoryOf: (ref: string) => string,
  inputName = 'container',
): { template: typeof template; previousImage: string; container: string } {
  const copy = structuredClone(template);
  const containers = ((copy.spec?.containers ?? []) as { name: string; image: string }[]).filter(Boolean);
  let target: { name: string; image: string } | undefined;
  if (container) {
    target = containers.find((c) => c.name === container);
    if (!target)
      throw inputProblem(
        inputName,
        `names ${JSON.stringify(container)}, which is not a container of the Deployment`,
        `one of ${containers.map((c) => c.name).join(', ')}`,
      );
  } else {
    const repo = repositoryOf(image);
    target =
      containers.find((c) => repositoryOf(c.image) === repo) ??
      (containers.length === 1 ? containers[0] : undefined);
    if (!target)
      throw inputProblem(
        inputName,
        `is not set and no container runs an image of ${repo}`,
        `the name of the container to change: one of ${containers.map((c) => c.name).join(', ')}`,
      );
  }
  const previousImage = target.image;
  target.image = image;
  return { template: copy, previousImage, container: target.name };
}

function inputProblem(input: string, problem: string, accepted: string): InputError {
  return new InputError(input, problem, accepted);
}

export function containerImage(d: DeploymentObject | undefined, container: string | undefined): string {
  const containers = (d?.spec?.template?.spec?.containers ?? []) as { name: string; image: string }[];
  return (container ? containers.find((c) => c.name === container) : containers[0])?.image ?? '';
}

/** Request counters of the pods behind a selector, read from each ready pod's metrics endpoint. */
export interface TrafficCounts {
  requests: number;
  errors: number;
}

/** The port (optional) and path of the pods' Prometheus endpoint, by METRICS_PATH_INPUT. */
export function parseMetricsEndpoint(text: string): { port?: string; path: string } {
  const m = METRICS_PATH_INPUT.pattern.exec(text.trim());
  if (!m) throw new InputError('metrics-path', `has ${JSON.stringify(text)}`, METRICS_PATH_INPUT.accepted);
  return { ...(m[1] ? { port: m[1] } : {}), path: m[2]! };
}

/** Sums `http_requests_total` by code class from Prometheus text; 5xx are errors. */
export function countRequests(text: string, metric = 'http_requests_total'): TrafficCounts {
  let requests = 0;
  let errors = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(metric)) continue;
    const m = /^(\w+)(\{[^}]*\})?\s+([0-9.eE+-]+)/.exec(line);
    if (!m || m[1] !== metric) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    requests += value;
    if (/code="5\d\d"/.test(m[2] ?? '')) errors += value;
  }
  return { requests, errors };
}

export async function podCounters(
  client: KubeClient,
  namespace: string,
  selector: Record<string, string>,
  endpoint: { port?: string; path: string },
  exclude?: Record<string, string>,
): Promise<Map<string, TrafficCounts>> {
  const list = await client.json<{ items: PodView[] }>(
    'GET',
    `/api/v1/namespaces/${ns(namespace)}/pods?labelSelector=${encodeURIComponent(selectorText(selector))}`,
  );
  const out = new Map<string, TrafficCounts>();
  await Promise.all(
    list.items
      .filter((p) => isPodReady(p) && !(exclude && selects(exclude, p.metadata.labels ?? {})))
      .map(async (pod) => {
        const name = pod.metadata.name!;
        try {
          const r = await client.once(
            'GET',
            `/api/v1/namespaces/${ns(namespace)}/pods/${encodeURIComponent(name)}${endpoint.port ? `:${endpoint.port}` : ''}/proxy${endpoint.path}`,
            { accept: '*/*', timeoutMs: 5000 },
          );
          if (r.status === 200) out.set(pod.metadata.uid ?? name, countRequests(r.body));
        } catch {
          // A pod that cannot be read now counts as no data, not as an error of the canary.
        }
      }),
  );
  return out;
}

export function delta(before: Map<string, TrafficCounts>, after: Map<string, TrafficCounts>): TrafficCounts {
  let requests = 0;
  let errors = 0;
  for (const [pod, now] of after) {
    const was = before.get(pod) ?? { requests: 0, errors: 0 };
    requests += Math.max(0, now.requests - was.requests);
    errors += Math.max(0, now.errors - was.errors);
  }
  return { requests, errors };
}

/** The health engine's cluster access over our client. */
function kubeAccess(client: KubeClient): KubeAccess {
  return {
    request: (path, init) =>
      client.once(init.method, path, {
        ...(init.body !== undefined ? { body: init.body } : {}),
        timeoutMs: init.timeoutMs,
        accept: '*/*',
      }),
    getJson: (path) => client.getJson(path),
  };
}

export interface AnalysisSettings {
  checks: Check[];
  intervalMs: number;
  count: number;
  initialDelayMs: number;
}

/**
 * One analysis with the health engine: a window of `windowMs` (a step's pause) or `count` rounds.
 * Also reports when the first failing measurement was taken, to time the reaction to it.
 */
export async function analyse(
  client: KubeClient,
  settings: AnalysisSettings,
  windowMs: number,
  clock: Clock,
  logger: Logger,
  signal?: AbortSignal,
  fetchImpl?: typeof fetch,
): Promise<{ gate: GateResult; firstBadAt?: number }> {
  let firstBadAt: number | undefined;
  const gate = await runHealthGate({
    checks: settings.checks,
    initialDelayMs: settings.initialDelayMs,
    intervalMs: settings.intervalMs,
    ...(windowMs > 0 ? { durationMs: windowMs } : { count: settings.count }),
    clock,
    logger,
    kube: kubeAccess(client),
    ...(fetchImpl ? { fetch: fetchImpl } : {}),
    ...(signal ? { signal } : {}),
    onMeasurement: (m: Measurement) => {
      if ((m.state === 'failure' || m.state === 'error') && firstBadAt === undefined)
        firstBadAt = clock.now();
    },
  });
  return { gate, ...(firstBadAt !== undefined ? { firstBadAt } : {}) };
}
