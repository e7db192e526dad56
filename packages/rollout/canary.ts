import {
  type Clock,
  DURATION_MAX,
  errorMessage,
  formatDuration,
  InputError,
  type Logger,
  PipelineError,
  parseDuration,
  systemClock,
} from '../core/index.ts';
import type { GateResult, Verdict } from '../health/index.ts';
import { LABEL_MANAGED_BY } from '../kube/apply.ts';
import { KubeApiError, type KubeClient } from '../kube/client.ts';
import { acquireRolloutLock, type HeldLease, type LockRequest } from '../kube/lease.ts';
import { imageRepository } from '../kube/manifests.ts';
import type { KubeObject } from '../kube/resources.ts';
import type { DeploymentObject } from '../kube/rollout.ts';
import {
  type AnalysisSettings,
  analyse,
  containerImage,
  deleteIfExists,
  delta,
  deploymentPath,
  mergePatch,
  podCounters,
  type ServiceObject,
  scaleDeployment,
  selectorText,
  selects,
  servicePath,
  type TrafficCounts,
  type WaitSettings,
  waitReady,
  withImage,
} from './kube-ops.ts';
import { templateHashOf } from './rendered.ts';

/** Where a canary's state lives: annotations on the stable Deployment, read by every later run. */
export const CANARY_ANNOTATIONS = {
  phase: 'pipeline.dev/canary-phase',
  image: 'pipeline.dev/canary-image',
  weight: 'pipeline.dev/canary-weight',
  stableReplicas: 'pipeline.dev/canary-stable-replicas',
  stableImage: 'pipeline.dev/canary-stable-image',
  router: 'pipeline.dev/canary-router',
  reason: 'pipeline.dev/canary-reason',
  steps: 'pipeline.dev/canary-steps',
} as const;
export const CREATED_BY = 'pipeline.dev/created-by';
export const DEFAULT_TRACK_LABEL = 'pipeline.dev/track';

export const CANARY_MODES = ['run', 'set-weight', 'promote', 'abort'] as const;
export type CanaryMode = (typeof CANARY_MODES)[number];
export const ROUTERS = ['replicas', 'gateway-api', 'nginx'] as const;
export type RouterKind = (typeof ROUTERS)[number];
/** Stored phases; `promoting` shows as progressing in outputs. */
type StoredPhase = 'progressing' | 'promoting' | 'promoted' | 'aborted';
export type CanaryPhase = 'progressing' | 'promoted' | 'aborted';

export interface CanaryStep {
  weight: number;
  /** Time at this weight; the analysis runs over it (0: `count` rounds). */
  pauseMs: number;
}

export const STEPS_FORM =
  'increasing weights from 1 to 100, comma-separated, each with an optional pause: 10,50,100 or 10:5m,50:10m,100';

/** `10,50,100` or `10:5m, 50:10m, 100`: strictly increasing weights from 1 to 100. */
export function parseSteps(text: string, inputName = 'steps'): CanaryStep[] {
  const items = text
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new InputError(inputName, 'is empty', STEPS_FORM);
  const steps: CanaryStep[] = [];
  for (const item of items) {
    const m = /^(\d+)\s*%?\s*(?::\s*(\S+))?$/.exec(item);
    if (!m)
      throw new InputError(inputName, `has ${JSON.stringify(item)}, which is not weight[:pause]`, STEPS_FORM);
    const weight = Number(m[1]);
    if (weight < 1 || weight > 100)
      throw new InputError(inputName, `has the weight ${weight}, which is not from 1 to 100`, STEPS_FORM);
    const previous = steps.at(-1);
    if (previous && weight <= previous.weight)
      throw new InputError(
        inputName,
        `has ${weight} after ${previous.weight}; the weights are not increasing`,
        STEPS_FORM,
      );
    steps.push({
      weight,
      pauseMs: m[2] ? parseDuration(m[2], inputName, { maxMs: DURATION_MAX.window }) : 0,
    });
  }
  return steps;
}

export type RouterConfig =
  | { kind: 'replicas'; service: string }
  | { kind: 'gateway-api'; httpRoute: string; stableService: string }
  | { kind: 'nginx'; ingress: string; stableService: string };

export interface CanaryOptions {
  client: KubeClient;
  namespace: string;
  /** The stable Deployment. */
  deployment: string;
  mode: CanaryMode;
  image?: string;
  container?: string;
  router: RouterConfig;
  /** Service selecting only the canary's pods (created when missing); default `<deployment>-canary`. */
  canaryService?: string;
  steps: CanaryStep[];
  /** For set-weight: the weight to reach (default: the next step). */
  weight?: number;
  analysis?: AnalysisSettings;
  /** Pods' Prometheus endpoint, to measure the canary's real share and error rate per step. */
  metrics?: { port?: string; path: string };
  trackLabel?: string;
  /**
   * The environment's rendered overlay: the canary runs its Deployment's template (image, env,
   * resources, config references) and the promotion hands the stable that template and replica
   * count; its other objects are applied (once the lock is held) before the canary starts.
   */
  release?: {
    deployment: DeploymentObject;
    templateHash: string;
    applySupporting(): Promise<void>;
  };
  abortAction?: 'scale-to-zero' | 'delete';
  abortReason?: string;
  timeoutMs: number;
  stuckGraceMs: number;
  lock?: LockRequest;
  clock?: Clock;
  logger: Logger;
  signal?: AbortSignal;
  fetch?: typeof fetch;
}

export interface TrafficSample {
  canary: TrafficCounts;
  stable: TrafficCounts;
  /** The canary's measured share of requests (0..1), when any were counted. */
  share: number | null;
  /** The canary's measured error rate (0..1), when it answered any. */
  errorRate: number | null;
}

export interface StepRecord {
  step: number;
  weight: number;
  /** The weight in effect (with the replicas router, the canary's share of pods). */
  effectiveWeight: number;
  verdict: Verdict | 'error';
  reason: string;
  startedAt: string;
  endedAt: string;
  traffic?: TrafficSample;
  /** The health engine's result; not kept in the cluster. */
  gate?: GateResult;
  /** True when the record comes from an earlier run (the cluster's history). */
  earlier?: boolean;
}

export interface CanaryResult {
  ok: boolean;
  phase: CanaryPhase;
  mode: CanaryMode;
  weight: number;
  reason: string;
  image: string;
  stableImage: string;
  router: RouterKind;
  canary: string;
  steps: StepRecord[];
  /** For an abort after a failed analysis: when the bad measurement came and routing was restored. */
  timings?: { failedMeasurementAt?: number; trafficRestoredAt?: number; capacityRestoredAt?: number };
}

interface State {
  phase: StoredPhase | undefined;
  image: string | undefined;
  weight: number;
  stableReplicas: number | undefined;
  stableImage: string | undefined;
  steps: StepRecord[];
}

function readState(d: DeploymentObject): State {
  const a = d.metadata.annotations ?? {};
  let steps: StepRecord[] = [];
  try {
    steps = JSON.parse(a[CANARY_ANNOTATIONS.steps] || '[]') as StepRecord[];
  } catch {
    steps = [];
  }
  return {
    phase: a[CANARY_ANNOTATIONS.phase] as StoredPhase | undefined,
    image: a[CANARY_ANNOTATIONS.image],
    weight: Number(a[CANARY_ANNOTATIONS.weight] ?? 0) || 0,
    stableReplicas: a[CANARY_ANNOTATIONS.stableReplicas]
      ? Number(a[CANARY_ANNOTATIONS.stableReplicas])
      : undefined,
    stableImage: a[CANARY_ANNOTATIONS.stableImage],
    steps,
  };
}

const GATEWAY = '/apis/gateway.networking.k8s.io/v1';
const INGRESS = '/apis/networking.k8s.io/v1';
export const NGINX_CANARY = 'nginx.ingress.kubernetes.io/canary';
export const NGINX_CANARY_WEIGHT = 'nginx.ingress.kubernetes.io/canary-weight';

interface BackendRef {
  name: string;
  port?: number;
  weight?: number;
  [key: string]: unknown;
}
interface HttpRoute extends KubeObject {
  spec?: { rules?: { backendRefs?: BackendRef[]; [key: string]: unknown }[]; [key: string]: unknown };
}
interface IngressBackend {
  service?: { name: string; port?: unknown };
  [key: string]: unknown;
}
interface Ingress extends KubeObject {
  spec?: {
    defaultBackend?: IngressBackend;
    rules?: { host?: string; http?: { paths?: { backend: IngressBackend; [key: string]: unknown }[] } }[];
    [key: string]: unknown;
  };
}

/** How traffic reaches the canary. Each router validates its objects before anything changes. */
interface Router {
  kind: RouterKind;
  validate(): Promise<void>;
  /** Puts `weight` percent of the traffic on the canary (scaling it first); returns the weight in effect. */
  setWeight(weight: number): Promise<number>;
  /** All traffic to the stable version at once, then the canary to zero pods. */
  toStable(): Promise<void>;
  /** Removes what only the canary needed (the canary Ingress, the canary backendRefs). */
  cleanup(): Promise<void>;
}

/** Replicas for a share of `total`: at least one pod for any weight above 0. */
export function canaryReplicasFor(weight: number, total: number): number {
  if (weight <= 0 || total <= 0) return 0;
  return Math.min(total, Math.max(1, Math.round((total * weight) / 100)));
}

/**
 * A canary beside the stable Deployment, traffic shifted in steps with the health engine deciding
 * each one; abort puts everything back on stable at once, promote gives the stable the new template.
 */
export async function runCanary(options: CanaryOptions): Promise<CanaryResult> {
  const { client, namespace, logger: log } = options;
  const clock = options.clock ?? systemClock;
  const track = options.trackLabel ?? DEFAULT_TRACK_LABEL;
  const stableName = options.deployment;
  const canaryName = `${stableName}-canary`;
  const canaryServiceName = options.canaryService ?? `${stableName}-canary`;
  const waits: WaitSettings = {
    timeoutMs: options.timeoutMs,
    stuckGraceMs: options.stuckGraceMs,
    clock,
    logger: log,
    ...(options.signal ? { signal: options.signal } : {}),
  };
  const { signal: _cancel, ...restoreWaits } = waits;

  // ---- Everything is read and validated before the first change. ----
  const stable = await client.getJson<DeploymentObject>(deploymentPath(namespace, stableName));
  if (!stable)
    throw new InputError(
      'deployment',
      `names ${JSON.stringify(stableName)}, which does not exist in namespace ${namespace}`,
      'the name of the stable Deployment',
    );
  const stableSelector = stable.spec?.selector?.matchLabels ?? {};
  const templateLabels = stable.spec?.template?.metadata?.labels ?? {};
  if (Object.keys(stableSelector).length === 0)
    throw new InputError(
      'deployment',
      'has no matchLabels selector',
      'a Deployment selecting its pods by matchLabels',
    );
  const canaryLabels = { ...templateLabels, [track]: 'canary' };
  const state = readState(stable);
  const inFlight = state.phase === 'progressing' || state.phase === 'promoting';
  const image = options.image ?? (inFlight ? state.image : undefined);
  if (!image && (options.mode === 'run' || options.mode === 'set-weight'))
    throw new InputError(
      'image',
      'is required to start a canary',
      'the new image reference, such as ghcr.io/acme/shop:1.4.2',
    );
  if (
    options.image &&
    (options.mode === 'promote' || options.mode === 'abort') &&
    inFlight &&
    state.image !== options.image
  )
    throw new PipelineError(
      `The canary in progress runs ${state.image}, not ${options.image}; ${options.mode} was not done`,
    );
  // The image must land in exactly one container; find out now.
  const container = image
    ? withImage(stable.spec!.template!, image, options.container, imageRepository).container
    : options.container;
  const stableImage = state.stableImage && inFlight ? state.stableImage : containerImage(stable, container);
  const renderedTemplate = options.release?.deployment.spec?.template;
  if (renderedTemplate && !selects(stableSelector, renderedTemplate.metadata?.labels ?? {}))
    throw new InputError(
      'kustomize',
      `renders a pod template for ${stableName} whose labels do not match the live Deployment's selector (${selectorText(stableSelector)})`,
      'an overlay whose Deployment keeps the selector labels of the one running (a selector cannot change in place)',
    );
  // What the stable ran before this run: put back whole if the promotion itself fails.
  const templateAtStart = inFlight ? undefined : structuredClone(stable.spec!.template!);
  const upToDate = (d: DeploymentObject) =>
    options.release
      ? templateHashOf(d) === options.release.templateHash
      : containerImage(d, container) === image;
  const total =
    inFlight && state.stableReplicas !== undefined ? state.stableReplicas : (stable.spec?.replicas ?? 1);
  if (
    options.mode === 'set-weight' &&
    options.weight !== undefined &&
    (options.weight < 0 || options.weight > 100)
  )
    throw new InputError('weight', `has ${options.weight}`, 'a whole number from 0 to 100');
  if ((options.mode === 'run' || options.mode === 'set-weight') && !options.analysis)
    throw new InputError(
      'checks',
      'is required: every step is decided by the health analysis',
      'a YAML list of checks against the canary',
    );

  const referenceServiceName =
    options.router.kind === 'replicas' ? options.router.service : options.router.stableService;
  const referenceInput = options.router.kind === 'replicas' ? 'service' : 'stable-service';
  const referenceService = await client.getJson<ServiceObject>(servicePath(namespace, referenceServiceName));
  if (!referenceService)
    throw new InputError(
      referenceInput,
      `names ${JSON.stringify(referenceServiceName)}, which does not exist in namespace ${namespace}`,
      'an existing Service in front of the stable Deployment',
    );
  const refSelector = referenceService.spec?.selector ?? {};
  if (Object.keys(refSelector).length === 0)
    throw new InputError(
      referenceInput,
      `names the Service ${referenceServiceName}, which has no selector`,
      'a Service with a selector matching the Deployment’s pods',
    );
  if (!selects(refSelector, templateLabels))
    throw new InputError(
      referenceInput,
      `names the Service ${referenceServiceName}, whose selector does not match the pods of ${stableName}`,
      'a Service whose selector matches the stable Deployment’s pod labels',
    );
  if (options.router.kind === 'replicas' && !selects(refSelector, canaryLabels))
    throw new InputError(
      'service',
      `names the Service ${referenceServiceName}, whose selector does not pick the canary's pods`,
      `a Service selecting labels the canary keeps (not ${track}), so the canary's pods share its traffic`,
    );
  if (options.router.kind !== 'replicas' && selects(refSelector, canaryLabels))
    throw new InputError(
      'stable-service',
      `names the Service ${referenceServiceName}, whose selector would also pick the canary's pods`,
      `a Service that selects only stable pods: add ${track}: stable to the stable pod labels and to its selector`,
    );
  const existingCanaryService = await client.getJson<ServiceObject>(
    servicePath(namespace, canaryServiceName),
  );
  if (existingCanaryService) {
    const sel = existingCanaryService.spec?.selector ?? {};
    if (Object.keys(sel).length === 0 || !selects(sel, canaryLabels) || selects(sel, templateLabels))
      throw new InputError(
        'canary-service',
        `names the Service ${canaryServiceName}, whose selector does not pick only the canary's pods`,
        `a Service selecting ${track}: canary (or a free name, and it is created)`,
      );
  }

  const router = makeRouter();
  await router.validate();

  // ---- Changes start here, under the lock. ----
  const lease: HeldLease | undefined = await acquireRolloutLock({
    client,
    namespace,
    deployments: [stableName],
    lock: options.lock,
    logger: log,
    labels: { [LABEL_MANAGED_BY]: 'pipeline' },
    signal: options.signal,
  });
  const steps: StepRecord[] = state.steps.map((s) => ({ ...s, earlier: true }));
  const result = (
    ok: boolean,
    phase: CanaryPhase,
    weight: number,
    reason: string,
    extra: Partial<CanaryResult> = {},
  ): CanaryResult => ({
    ok,
    phase,
    mode: options.mode,
    weight,
    reason,
    image: image ?? state.image ?? '',
    stableImage,
    router: options.router.kind,
    canary: canaryName,
    steps,
    ...extra,
  });
  try {
    // Re-read under the lock: another run may have moved on while we waited.
    const fresh = readState(
      (await client.getJson<DeploymentObject>(deploymentPath(namespace, stableName))) ?? stable,
    );
    Object.assign(state, fresh);
    const flying = state.phase === 'progressing' || state.phase === 'promoting';

    if (options.mode === 'abort') {
      if (!flying) {
        return result(
          true,
          'aborted',
          0,
          state.phase === 'aborted'
            ? (stable.metadata.annotations?.[CANARY_ANNOTATIONS.reason] ?? 'already aborted')
            : 'no canary in progress; nothing to abort',
        );
      }
      const reason = options.abortReason ?? 'aborted on request';
      const timings = await abort(reason, state.phase === 'promoting');
      return result(true, 'aborted', 0, reason, { timings });
    }
    if (options.mode === 'promote') {
      if (state.phase === 'promoted' && containerImage(stable, container) === state.image)
        return result(true, 'promoted', 100, `${state.image} was already promoted`);
      if (!flying)
        throw new PipelineError(`No canary of ${stableName} is in progress; there is nothing to promote`);
      return await promote();
    }

    // run / set-weight
    if (flying && state.image !== image) {
      log.warning(
        `A canary of ${state.image} is in progress; it is aborted and ${image} starts from the first step`,
      );
      await abort(`superseded by ${image}`, state.phase === 'promoting');
      state.steps = [];
      steps.length = 0;
      state.phase = 'aborted';
    } else if (state.phase === 'promoting') {
      if (options.mode === 'set-weight')
        throw new PipelineError(`The promotion of ${image} has started; run promote (or abort) to finish it`);
      return await promote();
    }
    if (state.phase !== 'progressing') {
      if (upToDate(stable))
        return result(true, 'promoted', 100, `${stableName} already runs ${image}; nothing to do`);
      steps.length = 0;
      state.steps = [];
      await saveState({
        phase: 'progressing',
        image: image!,
        weight: '0',
        stableReplicas: String(total),
        stableImage,
        router: options.router.kind,
        reason: null,
        steps: '[]',
      });
      log.info(
        `Starting a canary of ${image} beside ${stableName} (${stableImage}), ${total} pod(s) of capacity`,
      );
    } else {
      log.info(`Continuing the canary of ${image} from ${state.weight}%`);
    }
    await options.release?.applySupporting();
    await ensureCanaryService();
    await ensureCanaryDeployment(image!);

    const passed = (w: number) => steps.some((s) => s.weight === w && s.verdict === 'passed');
    let plan: CanaryStep[];
    if (options.mode === 'run') plan = options.steps.filter((s) => !passed(s.weight));
    else {
      const highest = Math.max(0, ...steps.filter((s) => s.verdict === 'passed').map((s) => s.weight));
      const target = options.weight ?? options.steps.find((s) => s.weight > highest)?.weight ?? 100;
      plan = options.steps.filter((s) => s.weight <= target && !passed(s.weight));
      if (!plan.some((s) => s.weight === target)) plan.push({ weight: target, pauseMs: 0 });
    }

    let weight = state.weight;
    for (const step of plan) {
      const index = options.steps.findIndex((s) => s.weight === step.weight);
      const record: StepRecord = {
        step: index >= 0 ? index + 1 : steps.length + 1,
        weight: step.weight,
        effectiveWeight: weight,
        verdict: 'error',
        reason: '',
        startedAt: new Date(clock.now()).toISOString(),
        endedAt: '',
      };
      let failedAt: number | undefined;
      try {
        log.info(
          `Step ${record.step}: ${step.weight}% to the canary${step.pauseMs ? ` for ${formatDuration(step.pauseMs)}` : ''}`,
        );
        weight = await router.setWeight(step.weight);
        record.effectiveWeight = weight;
        if (weight !== step.weight)
          log.warning(
            `With ${total} pod(s), ${step.weight}% is ${weight}% of the pods: the canary gets ${weight}% of the traffic`,
          );
        await saveState({ weight: String(weight) });
        const before = options.metrics ? await counters() : undefined;
        const { gate, firstBadAt } = await analyse(
          client,
          options.analysis!,
          step.pauseMs,
          clock,
          log,
          options.signal,
          options.fetch,
        );
        failedAt = firstBadAt;
        if (before) record.traffic = sample(before, await counters());
        record.gate = gate;
        record.verdict = gate.verdict;
        record.reason = gate.reason;
      } catch (error) {
        record.verdict = 'error';
        record.reason = errorMessage(error);
      }
      record.endedAt = new Date(clock.now()).toISOString();
      steps.push(record);
      await saveState({ steps: historyJson() }).catch((e: unknown) =>
        log.warning(`Recording step ${record.step}: ${errorMessage(e)}`),
      );
      if (record.verdict !== 'passed') {
        const reason = `step ${record.step} (${step.weight}%) ${record.verdict === 'error' ? 'could not finish' : `was ${record.verdict}`}: ${record.reason}`;
        log.error(`Canary aborted: ${reason}`);
        const timings = await abort(reason, false, failedAt ?? clock.now());
        return result(false, 'aborted', 0, reason, { timings });
      }
      log.info(`Step ${record.step} passed at ${weight}%: ${record.reason}`);
    }
    if (options.mode === 'run') return await promote();
    return result(
      true,
      'progressing',
      weight,
      `the canary takes ${weight}% after ${steps.filter((s) => s.verdict === 'passed').length} passed step(s)`,
    );
  } finally {
    await lease?.release();
  }

  // ---- helpers (closures over the validated options) ----

  async function saveState(
    values: Partial<Record<keyof typeof CANARY_ANNOTATIONS, string | null>>,
  ): Promise<void> {
    const annotations: Record<string, string | null> = {};
    for (const [key, value] of Object.entries(values))
      annotations[CANARY_ANNOTATIONS[key as keyof typeof CANARY_ANNOTATIONS]] = value ?? null;
    await mergePatch(client, deploymentPath(namespace, stableName), { metadata: { annotations } });
  }

  function historyJson(): string {
    // Compact: the cluster keeps verdicts and traffic, not every measurement.
    return JSON.stringify(
      steps.slice(-20).map(({ gate: _gate, earlier: _earlier, ...rest }) => ({
        ...rest,
        reason: rest.reason.slice(0, 300),
      })),
    );
  }

  async function counters() {
    const endpoint = options.metrics!;
    const [canary, stablePods] = await Promise.all([
      podCounters(client, namespace, { ...stableSelector, [track]: 'canary' }, endpoint),
      podCounters(client, namespace, stableSelector, endpoint, { [track]: 'canary' }),
    ]);
    return { canary, stable: stablePods };
  }

  function sample(
    before: Awaited<ReturnType<typeof counters>>,
    after: Awaited<ReturnType<typeof counters>>,
  ): TrafficSample {
    const canary = delta(before.canary, after.canary);
    const stableCounts = delta(before.stable, after.stable);
    const all = canary.requests + stableCounts.requests;
    return {
      canary,
      stable: stableCounts,
      share: all > 0 ? canary.requests / all : null,
      errorRate: canary.requests > 0 ? canary.errors / canary.requests : null,
    };
  }

  async function ensureCanaryService(): Promise<void> {
    if (await client.getJson(servicePath(namespace, canaryServiceName))) return;
    await client.json('POST', `/api/v1/namespaces/${encodeURIComponent(namespace)}/services`, {
      body: {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: {
          name: canaryServiceName,
          namespace,
          labels: { [LABEL_MANAGED_BY]: 'pipeline', [track]: 'canary' },
          annotations: { [CREATED_BY]: 'canary-shift' },
        },
        spec: {
          selector: { ...refSelector, [track]: 'canary' },
          ports: (referenceService!.spec?.ports ?? []).map(({ name, port, targetPort, protocol }) => ({
            ...(name ? { name } : {}),
            port,
            ...(targetPort !== undefined ? { targetPort } : {}),
            ...(protocol ? { protocol } : {}),
          })),
        },
      },
    });
    log.info(`Created the Service ${canaryServiceName} for the canary's pods`);
  }

  async function ensureCanaryDeployment(newImage: string): Promise<void> {
    const current = await client.getJson<DeploymentObject>(deploymentPath(namespace, canaryName));
    const template = renderedTemplate
      ? structuredClone(renderedTemplate)
      : withImage(stable!.spec!.template!, newImage, container, imageRepository).template;
    template.metadata = {
      ...template.metadata,
      labels: renderedTemplate
        ? { ...(renderedTemplate.metadata?.labels ?? {}), [track]: 'canary' }
        : canaryLabels,
    };
    if (current) {
      if (upToDate(current)) return;
      await client.json('PUT', deploymentPath(namespace, canaryName), {
        body: { ...current, spec: { ...current.spec, template } },
      });
      return;
    }
    const spec = stable!.spec as Record<string, unknown>;
    await client.json('POST', `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/deployments`, {
      body: {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: {
          name: canaryName,
          namespace,
          labels: { ...(stable!.metadata.labels ?? {}), [track]: 'canary', [LABEL_MANAGED_BY]: 'pipeline' },
          annotations: { [CREATED_BY]: 'canary-shift', 'pipeline.dev/canary-of': stableName },
        },
        spec: {
          replicas: 0,
          selector: { matchLabels: { ...stableSelector, [track]: 'canary' } },
          template,
          revisionHistoryLimit: 2,
          ...(spec.minReadySeconds !== undefined ? { minReadySeconds: spec.minReadySeconds } : {}),
          ...(spec.progressDeadlineSeconds !== undefined
            ? { progressDeadlineSeconds: spec.progressDeadlineSeconds }
            : {}),
          ...(spec.strategy !== undefined ? { strategy: spec.strategy } : {}),
        },
      },
    });
    log.info(`Created the canary Deployment ${canaryName} (${newImage})`);
  }

  async function canaryReplicas(): Promise<number> {
    const d = await client.getJson<DeploymentObject>(deploymentPath(namespace, canaryName));
    return d?.spec?.replicas ?? 0;
  }

  async function mustBeReady(name: string): Promise<void> {
    const outcome = await waitReady(client, namespace, name, waits);
    if (!outcome.ok) throw new PipelineError(outcome.message);
  }

  /** Scales the canary to `replicas`, waiting for it when it grows. */
  async function sizeCanary(replicas: number): Promise<void> {
    await scaleDeployment(client, namespace, canaryName, replicas);
    if (replicas > 0) await mustBeReady(canaryName);
  }

  function makeRouter(): Router {
    const cfg = options.router;
    if (cfg.kind === 'replicas') {
      return {
        kind: 'replicas',
        async validate() {},
        async setWeight(weight) {
          const c = canaryReplicasFor(weight, total);
          // Grow first, then shrink, so ready capacity never drops below the total.
          if (c >= (await canaryReplicas())) {
            await sizeCanary(c);
            await scaleDeployment(client, namespace, stableName, total - c);
          } else {
            await scaleDeployment(client, namespace, stableName, total - c);
            await mustBeReady(stableName);
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
    const sized = async (weight: number, write: (w: number) => Promise<void>) => {
      const c = canaryReplicasFor(weight, total);
      if (c >= (await canaryReplicas())) {
        await sizeCanary(c);
        await write(weight);
      } else {
        await write(weight);
        await scaleDeployment(client, namespace, canaryName, c);
      }
      return weight;
    };
    if (cfg.kind === 'gateway-api') {
      const path = `${GATEWAY}/namespaces/${encodeURIComponent(namespace)}/httproutes/${encodeURIComponent(cfg.httpRoute)}`;
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
        setWeight: (weight) => sized(weight, writeWeights),
        async toStable() {
          await writeWeights(0);
          await scaleDeployment(client, namespace, canaryName, 0);
        },
        cleanup: () => writeWeights(undefined),
      };
    }
    const ingressPath = (name: string) =>
      `${INGRESS}/namespaces/${encodeURIComponent(namespace)}/ingresses/${encodeURIComponent(name)}`;
    const canaryIngress = `${cfg.ingress}-canary`;
    const refersToStable = (b: IngressBackend | undefined) => b?.service?.name === cfg.stableService;
    const writeWeight = async (weight: number): Promise<void> => {
      const stableIngress = await client.getJson<Ingress>(ingressPath(cfg.ingress));
      if (!stableIngress) throw new PipelineError(`Ingress ${cfg.ingress} disappeared`);
      const spec = structuredClone(stableIngress.spec ?? {});
      const swap = (b: IngressBackend | undefined) => {
        if (b?.service && refersToStable(b)) b.service.name = canaryServiceName;
      };
      swap(spec.defaultBackend);
      for (const rule of spec.rules ?? []) for (const p of rule.http?.paths ?? []) swap(p.backend);
      const annotations = Object.fromEntries(
        Object.entries(stableIngress.metadata.annotations ?? {}).filter(
          ([k]) =>
            !k.startsWith('nginx.ingress.kubernetes.io/canary') && !k.startsWith('kubectl.kubernetes.io/'),
        ),
      );
      const body = {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'Ingress',
        metadata: {
          name: canaryIngress,
          namespace,
          labels: { [LABEL_MANAGED_BY]: 'pipeline', [track]: 'canary' },
          annotations: {
            ...annotations,
            [CREATED_BY]: 'canary-shift',
            [NGINX_CANARY]: 'true',
            [NGINX_CANARY_WEIGHT]: String(weight),
          },
        },
        spec,
      };
      const existing = await client.getJson<Ingress>(ingressPath(canaryIngress));
      if (existing)
        await client.json('PUT', ingressPath(canaryIngress), {
          body: {
            ...body,
            metadata: { ...body.metadata, resourceVersion: existing.metadata.resourceVersion },
          },
        });
      else
        await client.json('POST', `${INGRESS}/namespaces/${encodeURIComponent(namespace)}/ingresses`, {
          body,
        });
    };
    return {
      kind: 'nginx',
      async validate() {
        const ing = await client.getJson<Ingress>(ingressPath(cfg.ingress));
        if (!ing)
          throw new InputError(
            'ingress',
            `names ${JSON.stringify(cfg.ingress)}, which does not exist in namespace ${namespace}`,
            'an existing networking.k8s.io/v1 Ingress served by ingress-nginx',
          );
        const uses =
          refersToStable(ing.spec?.defaultBackend) ||
          (ing.spec?.rules ?? []).some((r) => (r.http?.paths ?? []).some((p) => refersToStable(p.backend)));
        if (!uses)
          throw new InputError(
            'ingress',
            `names the Ingress ${cfg.ingress}, which sends no traffic to ${cfg.stableService}`,
            'an Ingress whose backends name the stable Service',
          );
      },
      setWeight: (weight) => sized(weight, writeWeight),
      async toStable() {
        if (await client.getJson(ingressPath(canaryIngress))) await writeWeight(0);
        await scaleDeployment(client, namespace, canaryName, 0);
      },
      async cleanup() {
        await deleteIfExists(client, ingressPath(canaryIngress));
      },
    };
  }

  async function removeCanaryObjects(keepScaledDown: boolean): Promise<void> {
    await router.cleanup();
    if (!keepScaledDown) await deleteIfExists(client, deploymentPath(namespace, canaryName));
    const svc = await client.getJson<ServiceObject>(servicePath(namespace, canaryServiceName));
    if (svc?.metadata.annotations?.[CREATED_BY] === 'canary-shift' && !keepScaledDown)
      await deleteIfExists(client, servicePath(namespace, canaryServiceName));
  }

  /**
   * Traffic to stable at once, then the canary gone and the stable's capacity back. Runs without
   * the step's cancel signal: a cancelled job must still leave the routing good.
   */
  async function abort(
    reason: string,
    promoting: boolean,
    failedMeasurementAt?: number,
  ): Promise<CanaryResult['timings']> {
    const timings: NonNullable<CanaryResult['timings']> = {
      ...(failedMeasurementAt !== undefined ? { failedMeasurementAt } : {}),
    };
    await saveState({ phase: 'aborted', reason, weight: '0' }).catch(() => {});
    if (promoting && templateAtStart) {
      // The promotion of this run failed: the stable gets back exactly the template it ran.
      await client.json('PUT', deploymentPath(namespace, stableName), {
        body: await withTemplate(templateAtStart),
      });
    } else if (promoting && state.stableImage) {
      // The stable may already have the new template: put its own image back.
      const current = await client.getJson<DeploymentObject>(deploymentPath(namespace, stableName));
      if (current && containerImage(current, container) !== state.stableImage) {
        const { template } = withImage(
          current.spec!.template!,
          state.stableImage,
          container,
          imageRepository,
        );
        await mergePatch(client, deploymentPath(namespace, stableName), { spec: { template } });
      }
    }
    await router.toStable();
    timings.trafficRestoredAt = clock.now();
    log.info(`All traffic is back on ${stableName}; the canary is scaled to zero`);
    const keep = (options.abortAction ?? 'scale-to-zero') === 'scale-to-zero';
    await removeCanaryObjects(keep);
    const outcome = await waitReady(client, namespace, stableName, restoreWaits);
    timings.capacityRestoredAt = clock.now();
    if (!outcome.ok) log.error(`The stable Deployment did not get its capacity back: ${outcome.message}`);
    else log.info(`${stableName} is back to ${total} available pod(s)`);
    return timings;
  }

  /** The stable Deployment as it is now, with a whole new pod template (a merge patch would keep removed env and volumes). */
  async function withTemplate(
    template: NonNullable<NonNullable<DeploymentObject['spec']>['template']>,
    replicas?: number,
  ): Promise<DeploymentObject> {
    const now = (await client.getJson<DeploymentObject>(deploymentPath(namespace, stableName)))!;
    return {
      ...now,
      spec: { ...now.spec!, template, ...(replicas !== undefined ? { replicas } : {}) },
    };
  }

  async function promote(): Promise<CanaryResult> {
    await saveState({ phase: 'promoting' });
    log.info(`Promoting ${image}: ${stableName} takes the new template`);
    const current = (await client.getJson<DeploymentObject>(deploymentPath(namespace, stableName)))!;
    if (renderedTemplate) {
      const replicas = options.release!.deployment.spec?.replicas ?? total;
      await client.json('PUT', deploymentPath(namespace, stableName), {
        body: await withTemplate(structuredClone(renderedTemplate), replicas),
      });
    } else {
      const { template } = withImage(current.spec!.template!, image!, container, imageRepository);
      await mergePatch(client, deploymentPath(namespace, stableName), {
        spec: { template, replicas: total },
      });
    }
    const outcome = await waitReady(client, namespace, stableName, waits);
    if (!outcome.ok) {
      const reason = `the promotion failed: ${outcome.message}`;
      log.error(reason);
      const timings = await abort(reason, true);
      return result(false, 'aborted', 0, reason, { timings });
    }
    await router.toStable();
    // The router restores the capacity the canary started with; the overlay may ask for another.
    const size = options.release?.deployment.spec?.replicas ?? total;
    if (size !== total) {
      await scaleDeployment(client, namespace, stableName, size);
      const resized = await waitReady(client, namespace, stableName, restoreWaits);
      if (!resized.ok) log.warning(`${stableName} did not reach ${size} ready pod(s): ${resized.message}`);
    }
    await removeCanaryObjects(false);
    const reason = `${stableName} runs ${image} on all ${size} pod(s); the canary was removed`;
    await saveState({ phase: 'promoted', weight: '100', reason, stableReplicas: null, stableImage: null });
    log.info(reason);
    return result(true, 'promoted', 100, reason);
  }
}
