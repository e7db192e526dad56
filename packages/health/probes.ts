import { errorMessage, redactSecrets } from '../core/index.ts';
import { collectionPathOf, labelQuery, pathOf } from '../kube/objects.ts';
import {
  type Check,
  checkSecrets,
  type HttpCheck,
  type KubernetesCheck,
  type PrometheusAuth,
  type PrometheusCheck,
} from './checks.ts';
import { holds } from './condition.ts';
import { readJsonPath } from './json-path.ts';

export type MeasurementState = 'success' | 'failure' | 'error' | 'no-data';

export interface Measurement {
  check: string;
  round: number;
  /** Clock time the measurement was taken (epoch ms on the system clock). */
  at: number;
  state: MeasurementState;
  value?: number;
  message: string;
}

export type ProbeResult = Omit<Measurement, 'check' | 'round' | 'at'>;

/** The raw answer of an HTTP request, however it travelled (directly or through the API server). */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** What the health engine needs of a cluster; packages/kube implements it over a kubeconfig. */
export interface KubeAccess {
  /** A request to the API server, such as the service proxy path; throws on network failure. */
  request(
    path: string,
    init: { method: string; headers: Record<string, string>; body?: string; timeoutMs: number },
  ): Promise<RawResponse>;
  /** A GET answering undefined for 404; `timeoutMs` bounds it (one attempt: the gate's error limits handle retries). */
  getJson(path: string, timeoutMs?: number): Promise<unknown | undefined>;
}

export interface ProbeContext {
  fetch: typeof fetch;
  kube?: KubeAccess;
  /** Per-check memory across rounds (restart baselines). */
  memory: Map<string, unknown>;
}

class ProbeSetupError extends Error {}

function statusAccepted(status: number, expected: string[]): boolean {
  return expected.some((e) =>
    e.endsWith('xx') ? Math.floor(status / 100) === Number(e[0]) : Number(e) === status,
  );
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

async function httpRequest(check: HttpCheck, ctx: ProbeContext): Promise<RawResponse> {
  if (check.target.kind === 'service') {
    if (!ctx.kube)
      throw new ProbeSetupError(
        `check '${check.name}' probes a Service but no cluster access was given (kubeconfig)`,
      );
    const t = check.target;
    const path = `/api/v1/namespaces/${encodeURIComponent(t.namespace)}/services/${encodeURIComponent(t.service)}${t.port ? `:${encodeURIComponent(t.port)}` : ''}/proxy${t.path}`;
    return ctx.kube.request(path, {
      method: check.method,
      headers: check.headers,
      ...(check.body !== undefined ? { body: check.body } : {}),
      timeoutMs: check.timeoutMs,
    });
  }
  const response = await ctx.fetch(check.target.url, {
    method: check.method,
    headers: check.headers,
    ...(check.body !== undefined ? { body: check.body } : {}),
    redirect: 'manual',
    signal: AbortSignal.timeout(check.timeoutMs),
  });
  return {
    status: response.status,
    headers: Object.fromEntries(response.headers),
    body: await response.text(),
  };
}

/** fetch says only "fetch failed"; why (refused, unresolvable host, TLS) is on its cause. */
function fetchFailure(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if (!cause) return errorMessage(error);
  return `${errorMessage(error)} (${cause.code && !cause.message?.includes(cause.code) ? `${cause.code}: ` : ''}${cause.message ?? cause.code ?? ''})`;
}

async function probeHttp(check: HttpCheck, ctx: ProbeContext): Promise<ProbeResult> {
  const started = performance.now();
  let response: RawResponse;
  try {
    response = await httpRequest(check, ctx);
  } catch (error) {
    if (error instanceof ProbeSetupError) throw error;
    const timedOut = (error as Error).name === 'TimeoutError' || (error as Error).name === 'AbortError';
    return {
      state: 'error',
      message: timedOut ? `no answer within ${check.timeoutMs} ms` : `request failed: ${fetchFailure(error)}`,
    };
  }
  const latency = Math.round(performance.now() - started);
  const fail = (message: string): ProbeResult => ({ state: 'failure', value: latency, message });
  if (!statusAccepted(response.status, check.expectStatus)) {
    return fail(
      `HTTP ${response.status} (expected ${check.expectStatus.join(' or ')})${response.body ? `: ${shown(check, response.body, 120)}` : ''}`,
    );
  }
  if (check.jsonPath) {
    let doc: unknown;
    try {
      doc = JSON.parse(response.body);
    } catch {
      return fail(`the body is not JSON: ${shown(check, response.body, 80)}`);
    }
    const { found, value } = readJsonPath(doc, check.jsonPath);
    if (!found) return fail(`${check.jsonPathText} is not in the body`);
    if (check.equals !== undefined && !deepEqual(value, check.equals)) {
      return fail(
        `${check.jsonPathText} is ${JSON.stringify(value)}, expected ${JSON.stringify(check.equals)}`,
      );
    }
    if (check.matches && !check.matches.test(typeof value === 'string' ? value : JSON.stringify(value))) {
      return fail(`${check.jsonPathText} is ${JSON.stringify(value)}, which does not match ${check.matches}`);
    }
  }
  if (check.bodyPattern && !check.bodyPattern.test(response.body))
    return fail(`the body does not match ${check.bodyPattern}`);
  if (check.maxLatencyMs !== undefined && latency > check.maxLatencyMs)
    return fail(`answered in ${latency} ms, more than ${check.maxLatencyMs} ms`);
  return { state: 'success', value: latency, message: `HTTP ${response.status} in ${latency} ms` };
}

/** Prometheus writes infinities as +Inf / -Inf (a p99 above the top bucket is +Inf: the worst value, not no data). */
function promNumber(text: string): number {
  if (/^\+?Inf$/i.test(text)) return Number.POSITIVE_INFINITY;
  if (/^-Inf$/i.test(text)) return Number.NEGATIVE_INFINITY;
  return Number(text);
}

function promHeaders(auth: PrometheusAuth): Record<string, string> {
  if (auth.bearerToken) return { authorization: `Bearer ${auth.bearerToken}` };
  if (auth.username)
    return {
      authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password ?? ''}`).toString('base64')}`,
    };
  return {};
}

interface PromResponse {
  status: 'success' | 'error';
  errorType?: string;
  error?: string;
  data?: { resultType: string; result: unknown };
}

/** One instant query. Throws PromQueryRejected when Prometheus says the query itself is bad. */
export class PromQueryRejected extends Error {}

export async function queryPrometheus(
  check: PrometheusCheck,
  fetchImpl: typeof fetch,
): Promise<PromResponse> {
  const url = `${check.url}/api/v1/query`;
  const response = await fetchImpl(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...promHeaders(check.auth) },
    body: new URLSearchParams({ query: check.query }).toString(),
    signal: AbortSignal.timeout(check.timeoutMs),
  });
  const text = await response.text();
  let body: PromResponse;
  try {
    body = JSON.parse(text) as PromResponse;
  } catch {
    throw new Error(
      `Prometheus answered HTTP ${response.status} with a body that is not JSON: ${shown(check, text, 80)}`,
    );
  }
  if (body.status === 'error') {
    if (body.errorType === 'bad_data') throw new PromQueryRejected(body.error ?? 'bad_data');
    throw new Error(
      `Prometheus answered ${body.errorType ?? `HTTP ${response.status}`}: ${body.error ?? ''}`,
    );
  }
  if (!response.ok) throw new Error(`Prometheus answered HTTP ${response.status}`);
  return body;
}

export async function probePrometheus(check: PrometheusCheck, ctx: ProbeContext): Promise<ProbeResult> {
  let body: PromResponse;
  try {
    body = await queryPrometheus(check, ctx.fetch);
  } catch (error) {
    return {
      state: 'error',
      message: error instanceof PromQueryRejected ? `query rejected: ${error.message}` : errorMessage(error),
    };
  }
  const samples: { labels: string; value: number }[] = [];
  const data = body.data;
  if (data?.resultType === 'vector') {
    for (const s of data.result as { metric: Record<string, string>; value: [number, string] }[]) {
      samples.push({
        labels: Object.entries(s.metric)
          .map(([k, v]) => `${k}="${v}"`)
          .join(','),
        value: promNumber(s.value[1]),
      });
    }
  } else if (data?.resultType === 'scalar') {
    samples.push({ labels: '', value: promNumber((data.result as [number, string])[1]) });
  } else {
    return {
      state: 'error',
      message: `the query returns a ${data?.resultType ?? 'missing'} result; an instant vector or scalar is needed`,
    };
  }
  const numbers = samples.filter((s) => !Number.isNaN(s.value));
  if (numbers.length === 0)
    return {
      state: 'no-data',
      message: samples.length === 0 ? 'the query returned no series' : 'the query returned NaN',
    };
  const failing = numbers.find((s) => !holds(check.condition, s.value));
  if (failing) {
    return {
      state: 'failure',
      value: failing.value,
      message: `${failing.value} is not ${check.condition.text}${failing.labels ? ` for {${failing.labels}}` : ''}`,
    };
  }
  return {
    state: 'success',
    value: numbers[0]!.value,
    message: `${numbers.map((s) => s.value).join(', ')} ${check.condition.text}`,
  };
}

interface DeploymentView {
  metadata?: { generation?: number };
  spec?: { replicas?: number; selector?: { matchLabels?: Record<string, string> } };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    availableReplicas?: number;
    readyReplicas?: number;
  };
}

interface PodView {
  metadata?: { name?: string; uid?: string };
  status?: {
    containerStatuses?: {
      name: string;
      restartCount?: number;
      state?: { waiting?: { reason?: string; message?: string } };
    }[];
  };
}

const OBSERVE_PAUSES_MS = [100, 300, 600, 1000, 0];

async function probeKubernetes(check: KubernetesCheck, ctx: ProbeContext): Promise<ProbeResult> {
  if (!ctx.kube)
    throw new ProbeSetupError(
      `check '${check.name}' reads the cluster but no cluster access was given (kubeconfig)`,
    );
  let deployment: DeploymentView | undefined;
  // A spec change the controller has not observed yet (a canary step just scaled the stable, say)
  // says nothing about health: the controller observes within moments, so read again a few times
  // before judging. One that stays unobserved is a stuck controller, and a failure.
  for (const pause of OBSERVE_PAUSES_MS) {
    try {
      deployment = (await ctx.kube.getJson(
        pathOf('Deployment', check.namespace, check.workload),
        check.timeoutMs,
      )) as DeploymentView | undefined;
    } catch (error) {
      return {
        state: 'error',
        message: `reading deployment/${check.workload} failed: ${errorMessage(error)}`,
      };
    }
    if (!deployment || (deployment.status?.observedGeneration ?? 0) >= (deployment.metadata?.generation ?? 0))
      break;
    if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
  }
  if (!deployment)
    return { state: 'failure', message: `deployment/${check.workload} does not exist in ${check.namespace}` };
  const desired = deployment.spec?.replicas ?? 1;
  const st = deployment.status ?? {};
  const available = st.availableReplicas ?? 0;
  const problems: string[] = [];
  if ((st.observedGeneration ?? 0) < (deployment.metadata?.generation ?? 0))
    problems.push('its latest spec is not yet observed');
  if ((st.updatedReplicas ?? 0) < desired)
    problems.push(`${st.updatedReplicas ?? 0} of ${desired} replicas are updated`);
  if (available < desired) problems.push(`${available} of ${desired} replicas are available`);

  let pods: PodView[] = [];
  try {
    const list = (await ctx.kube.getJson(
      `${collectionPathOf('Pod', check.namespace)}${labelQuery(deployment.spec?.selector?.matchLabels)}`,
      check.timeoutMs,
    )) as { items?: PodView[] } | undefined;
    pods = list?.items ?? [];
  } catch (error) {
    return {
      state: 'error',
      message: `listing the pods of deployment/${check.workload} failed: ${errorMessage(error)}`,
    };
  }
  const baselineKey = `restarts:${check.name}`;
  const baseline =
    (ctx.memory.get(baselineKey) as Map<string, number> | undefined) ?? new Map<string, number>();
  const firstLook = !ctx.memory.has(baselineKey);
  let newRestarts = 0;
  for (const pod of pods) {
    for (const cs of pod.status?.containerStatuses ?? []) {
      const key = `${pod.metadata?.uid ?? pod.metadata?.name}/${cs.name}`;
      const count = cs.restartCount ?? 0;
      // A pod first seen mid-window starts from its count then; restarts before the window do not count.
      if (!baseline.has(key)) baseline.set(key, firstLook ? count : 0);
      newRestarts += Math.max(0, count - baseline.get(key)!);
      const reason = cs.state?.waiting?.reason;
      if (reason === 'CrashLoopBackOff' || reason === 'ImagePullBackOff' || reason === 'ErrImagePull') {
        problems.push(`pod ${pod.metadata?.name} container ${cs.name} is in ${reason}`);
      }
    }
  }
  ctx.memory.set(baselineKey, baseline);
  if (newRestarts > check.maxRestarts)
    problems.push(
      `${newRestarts} container restart${newRestarts === 1 ? '' : 's'} during the window (at most ${check.maxRestarts})`,
    );
  if (problems.length > 0) return { state: 'failure', value: available, message: problems.join('; ') };
  return {
    state: 'success',
    value: available,
    message: `${available}/${desired} available, ${newRestarts} restarts`,
  };
}

function measure(check: Check, ctx: ProbeContext): Promise<ProbeResult> {
  switch (check.type) {
    case 'http':
      return probeHttp(check, ctx);
    case 'prometheus':
      return probePrometheus(check, ctx);
    case 'kubernetes':
      return probeKubernetes(check, ctx);
  }
}

/**
 * A response may reflect the credentials it was sent (an echo of the Authorization header, a
 * series label): they are cut out of the measurement here, before it reaches the log, the summary
 * or the evidence, where an escape or a truncation could hide them from a plain text mask.
 */
export async function probe(check: Check, ctx: ProbeContext): Promise<ProbeResult> {
  const result = await measure(check, ctx);
  const secrets = checkSecrets([check]);
  return secrets.length ? { ...result, message: redactSecrets(result.message, secrets) } : result;
}

/** Part of a body for a message: redacted before it is cut, so no prefix of a credential survives. */
function shown(check: Check, text: string, max: number): string {
  return redactSecrets(text, checkSecrets([check])).slice(0, max);
}
