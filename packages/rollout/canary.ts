import { isDeepStrictEqual } from 'node:util';
import { errorMessage, formatDuration, InputError, PipelineError } from '../core/index.ts';
import type { GateResult, Verdict } from '../health/index.ts';
import { imageRepository, type SourcedObject } from '../kube/manifests.ts';
import { updateObject } from '../kube/objects.ts';
import type { DeploymentObject } from '../kube/rollout.ts';
import {
  abortReason,
  afterLastStep,
  afterVerdict,
  type CanaryStep,
  isInFlight,
  resumption,
  type StoredPhase,
  stepNumber,
  stepsToTake,
} from './canary-plan.ts';
import { type DeployResult, deploy } from './deploy.ts';
import { pruneOlderGenerations } from './generations.ts';
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
import {
  type AbortAction,
  CANARY_ANNOTATIONS,
  CANARY_OF,
  type CanaryMode,
  CREATED_BY,
  canaryAnalyses,
  canaryNameOf,
  checksRequired,
  checkWeight,
  DEFAULT_ABORT_ACTION,
  DEFAULT_TRACK_LABEL,
  imageRequired,
  type RouterConfig,
  type RouterKind,
  referenceServiceOf,
} from './options.ts';
import { templateHashOf } from './rendered.ts';
import { makeRouter, type Router } from './routers/index.ts';
import {
  annotationState,
  createDeploymentLike,
  createService,
  labelled,
  mustBeReady,
  runStrategy,
  type StateStore,
  type StrategyCommon,
  waitsOf,
} from './strategy.ts';

export { type CanaryStep, canaryReplicasFor, parseSteps } from './canary-plan.ts';
export type CanaryPhase = 'progressing' | 'promoted' | 'aborted';
type Template = NonNullable<NonNullable<DeploymentObject['spec']>['template']>;

export interface CanaryOptions extends StrategyCommon {
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
   * count; its other objects are validated by the server before anything else and applied (once
   * the lock is held) before the canary starts. With no stable Deployment yet, `all` of them are
   * deployed directly: the first release.
   */
  release?: {
    deployment: DeploymentObject;
    templateHash: string;
    all: SourcedObject[];
    applySupporting(dryRun: boolean): Promise<void>;
  };
  /**
   * The app and environment labels of the overlay's objects (a first release deploys them under
   * these): once a promotion is final, the older generations of the ConfigMaps and Secrets the
   * stable uses are pruned (the previous one kept).
   */
  generations?: { app: string; environment: string };
  abortAction?: AbortAction;
  abortReason?: string;
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
  /** No stable Deployment existed: the release was deployed directly, as deploy-env does, under these labels. */
  firstRelease?: { deployed: DeployResult; app: string; environment: string };
}

interface State {
  phase: StoredPhase | undefined;
  image: string | undefined;
  weight: number;
  stableReplicas: number | undefined;
  stableImage: string | undefined;
  steps: StepRecord[];
}

type Store = StateStore<keyof typeof CANARY_ANNOTATIONS>;

function readState(store: Store, d: DeploymentObject): State {
  const a = store.read(d.metadata.annotations);
  let steps: StepRecord[] = [];
  try {
    steps = JSON.parse(a.steps || '[]') as StepRecord[];
  } catch {
    steps = [];
  }
  return {
    phase: a.phase as StoredPhase | undefined,
    image: a.image,
    weight: Number(a.weight ?? 0) || 0,
    stableReplicas: a.stableReplicas ? Number(a.stableReplicas) : undefined,
    stableImage: a.stableImage,
    steps,
  };
}

/** Everything a canary run knows once its inputs and the cluster's objects are validated. */
interface CanaryRun {
  o: CanaryOptions;
  waits: WaitSettings;
  restore: WaitSettings;
  clock: NonNullable<StrategyCommon['clock']>;
  track: string;
  stableName: string;
  canaryName: string;
  canaryServiceName: string;
  stable: DeploymentObject;
  stableSelector: Record<string, string>;
  templateLabels: Record<string, string>;
  canaryLabels: Record<string, string>;
  state: State;
  image: string | undefined;
  container: string | undefined;
  stableImage: string;
  renderedTemplate: Template | undefined;
  /** What the stable ran before this run: put back whole if the promotion itself fails. */
  templateAtStart: Template | undefined;
  total: number;
  referenceService: ServiceObject;
  router: Router;
  store: Store;
  steps: StepRecord[];
}

/**
 * A canary beside the stable Deployment, traffic shifted in steps with the health engine deciding
 * each one; abort puts everything back on stable at once, promote gives the stable the new template.
 */
export async function runCanary(options: CanaryOptions): Promise<CanaryResult> {
  const { client, namespace, release } = options;
  if (release) {
    if (!(await client.getJson<DeploymentObject>(deploymentPath(namespace, options.deployment))))
      return firstRelease(options, release);
    // The server validates the overlay's other objects now, before the first change.
    await release.applySupporting(true);
  }
  return runStrategy(options, options.mode, {
    validate: () => validateCanary(options),
    locks: (run) => [run.stableName],
    async resume(run) {
      const now = await run.o.client.getJson<DeploymentObject>(
        deploymentPath(run.o.namespace, run.stableName),
      );
      Object.assign(run.state, readState(run.store, now ?? run.stable));
      return undefined;
    },
    modes: { abort: abortMode, promote: promoteMode, run: shiftMode, 'set-weight': shiftMode },
  });
}

/**
 * Nothing to compare a canary with: the overlay is deployed directly, as Argo Rollouts does for a
 * first release, with the same lock, rollout wait and rollback as deploy-env.
 */
async function firstRelease(
  o: CanaryOptions,
  release: NonNullable<CanaryOptions['release']>,
): Promise<CanaryResult> {
  o.logger.info(
    `There is no ${o.deployment} Deployment in ${o.namespace} yet: this first release is deployed directly, without a canary`,
  );
  const labels = o.generations ?? { app: o.deployment, environment: o.namespace };
  const deployed = await deploy({
    client: o.client,
    ...labels,
    namespace: o.namespace,
    createNamespace: false,
    objects: release.all,
    images: new Map(),
    // renderRelease prepared them already (images set, checksums, labels).
    prepared: { objects: release.all, imageChanges: [] },
    prune: false,
    dryRun: false,
    forceConflicts: true,
    timeoutMs: o.timeoutMs,
    stuckGraceMs: o.stuckGraceMs,
    rollbackOnFailure: true,
    lock: o.lock,
    logger: o.logger,
    clock: o.clock,
    signal: o.signal,
  });
  const image = o.image ?? '';
  return {
    ok: deployed.ok,
    phase: deployed.ok ? 'promoted' : 'aborted',
    mode: o.mode,
    weight: deployed.ok ? 100 : 0,
    reason: deployed.ok
      ? `first release: no stable ${o.deployment} to compare a canary with, so ${image} was deployed directly`
      : `first release of ${image} failed: ${deployed.failure}`,
    image,
    stableImage: '',
    router: o.router.kind,
    canary: canaryNameOf(o.deployment),
    steps: [],
    firstRelease: { deployed, ...labels },
  };
}

async function validateCanary(o: CanaryOptions): Promise<CanaryRun> {
  const { client, namespace } = o;
  const stableName = o.deployment;
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
  const store = annotationState(client, deploymentPath(namespace, stableName), CANARY_ANNOTATIONS);
  const state = readState(store, stable);
  const inFlight = isInFlight(state.phase);
  const image = o.image ?? (inFlight ? state.image : undefined);
  if (!image && canaryAnalyses(o.mode)) throw imageRequired('to start a canary');
  if (o.image && !canaryAnalyses(o.mode) && inFlight && state.image !== o.image)
    throw new PipelineError(
      `The canary in progress runs ${state.image}, not ${o.image}; ${o.mode} was not done`,
    );
  // The image must land in exactly one container; find out now.
  const container = image
    ? withImage(stable.spec!.template!, image, o.container, imageRepository).container
    : o.container;
  const renderedTemplate = o.release?.deployment.spec?.template;
  if (renderedTemplate && !selects(stableSelector, renderedTemplate.metadata?.labels ?? {}))
    throw new InputError(
      'kustomize',
      `renders a pod template for ${stableName} whose labels do not match the live Deployment's selector (${selectorText(stableSelector)})`,
      'an overlay whose Deployment keeps the selector labels of the one running (a selector cannot change in place)',
    );
  checkWeight(o.mode, o.weight);
  if (canaryAnalyses(o.mode) && !o.analysis) throw checksRequired(o.mode);
  const track = o.trackLabel ?? DEFAULT_TRACK_LABEL;
  const canaryLabels = { ...templateLabels, [track]: 'canary' };
  const canaryName = canaryNameOf(stableName);
  const canaryServiceName = o.canaryService ?? canaryNameOf(stableName);
  const referenceService = await validateServices(o, {
    templateLabels,
    canaryLabels,
    track,
    canaryServiceName,
  });
  const total =
    inFlight && state.stableReplicas !== undefined ? state.stableReplicas : (stable.spec?.replicas ?? 1);
  const { clock, waits, restore } = waitsOf(o);
  const router = makeRouter(o.router, {
    client,
    namespace,
    stableName,
    canaryName,
    canaryServiceName,
    track,
    total,
    async sizeCanary(replicas) {
      await scaleDeployment(client, namespace, canaryName, replicas);
      if (replicas > 0) await mustBeReady(client, namespace, canaryName, waits);
    },
    canaryReplicas: async () =>
      (await client.getJson<DeploymentObject>(deploymentPath(namespace, canaryName)))?.spec?.replicas ?? 0,
    mustBeReady: (name) => mustBeReady(client, namespace, name, waits),
  });
  await router.validate();
  return {
    o,
    waits,
    restore,
    clock,
    track,
    stableName,
    canaryName,
    canaryServiceName,
    stable,
    stableSelector,
    templateLabels,
    canaryLabels,
    state,
    image,
    container,
    stableImage: state.stableImage && inFlight ? state.stableImage : containerImage(stable, container),
    renderedTemplate,
    templateAtStart: inFlight ? undefined : structuredClone(stable.spec!.template!),
    total,
    referenceService,
    store,
    steps: state.steps.map((s) => ({ ...s, earlier: true })),
    router,
  };
}

/** The Service in front of the stable pods (and, with the replicas router, the canary's), and the canary's own. */
async function validateServices(
  o: CanaryOptions,
  c: {
    templateLabels: Record<string, string>;
    canaryLabels: Record<string, string>;
    track: string;
    canaryServiceName: string;
  },
): Promise<ServiceObject> {
  const { client, namespace } = o;
  const { name, input, sharedWithCanary: replicas } = referenceServiceOf(o.router);
  const reference = await client.getJson<ServiceObject>(servicePath(namespace, name));
  if (!reference)
    throw new InputError(
      input,
      `names ${JSON.stringify(name)}, which does not exist in namespace ${namespace}`,
      'an existing Service in front of the stable Deployment',
    );
  const selector = reference.spec?.selector ?? {};
  if (Object.keys(selector).length === 0)
    throw new InputError(
      input,
      `names the Service ${name}, which has no selector`,
      'a Service with a selector matching the Deployment’s pods',
    );
  if (!selects(selector, c.templateLabels))
    throw new InputError(
      input,
      `names the Service ${name}, whose selector does not match the pods of ${o.deployment}`,
      'a Service whose selector matches the stable Deployment’s pod labels',
    );
  if (replicas && !selects(selector, c.canaryLabels))
    throw new InputError(
      'service',
      `names the Service ${name}, whose selector does not pick the canary's pods`,
      `a Service selecting labels the canary keeps (not ${c.track}), so the canary's pods share its traffic`,
    );
  if (!replicas && selects(selector, c.canaryLabels))
    throw new InputError(
      'stable-service',
      `names the Service ${name}, whose selector would also pick the canary's pods`,
      `a Service that selects only stable pods: add ${c.track}: stable to the stable pod labels and to its selector`,
    );
  const existing = await client.getJson<ServiceObject>(servicePath(namespace, c.canaryServiceName));
  if (existing) {
    const sel = existing.spec?.selector ?? {};
    if (Object.keys(sel).length === 0 || !selects(sel, c.canaryLabels) || selects(sel, c.templateLabels))
      throw new InputError(
        'canary-service',
        `names the Service ${c.canaryServiceName}, whose selector does not pick only the canary's pods`,
        `a Service selecting ${c.track}: canary (or a free name, and it is created)`,
      );
  }
  return reference;
}

function result(
  run: CanaryRun,
  ok: boolean,
  phase: CanaryPhase,
  weight: number,
  reason: string,
  extra: Partial<CanaryResult> = {},
): CanaryResult {
  return {
    ok,
    phase,
    mode: run.o.mode,
    weight,
    reason,
    image: run.image ?? run.state.image ?? '',
    stableImage: run.stableImage,
    router: run.o.router.kind,
    canary: run.canaryName,
    steps: run.steps,
    ...extra,
  };
}

const upToDate = (run: CanaryRun, d: DeploymentObject) =>
  run.o.release
    ? templateHashOf(d) === run.o.release.templateHash
    : containerImage(d, run.container) === run.image;

async function abortMode(run: CanaryRun): Promise<CanaryResult> {
  if (!isInFlight(run.state.phase))
    return result(
      run,
      true,
      'aborted',
      0,
      run.state.phase === 'aborted'
        ? (run.stable.metadata.annotations?.[CANARY_ANNOTATIONS.reason] ?? 'already aborted')
        : 'no canary in progress; nothing to abort',
    );
  const reason = run.o.abortReason ?? 'aborted on request';
  const timings = await abortCanary(run, reason, run.state.phase === 'promoting');
  return result(run, true, 'aborted', 0, reason, { timings });
}

async function promoteMode(run: CanaryRun): Promise<CanaryResult> {
  const { state } = run;
  if (state.phase === 'promoted' && containerImage(run.stable, run.container) === state.image)
    return result(run, true, 'promoted', 100, `${state.image} was already promoted`);
  if (!isInFlight(state.phase))
    throw new PipelineError(`No canary of ${run.stableName} is in progress; there is nothing to promote`);
  return promote(run);
}

/** run and set-weight: start, continue or supersede the canary, then take the steps still to take. */
async function shiftMode(run: CanaryRun): Promise<CanaryResult> {
  const { o, state, image, stableName } = run;
  const mode = o.mode as 'run' | 'set-weight';
  const log = o.logger;
  let next = resumption(mode, state.phase, state.image, image!);
  if (next === 'supersede') {
    log.warning(
      `A canary of ${state.image} is in progress; it is aborted and ${image} starts from the first step`,
    );
    await abortCanary(run, `superseded by ${image}`, state.phase === 'promoting');
    state.steps = [];
    run.steps.length = 0;
    state.phase = 'aborted';
    next = 'start';
  }
  if (next === 'refuse')
    throw new PipelineError(`The promotion of ${image} has started; run promote (or abort) to finish it`);
  if (next === 'promote') return promote(run);
  if (next === 'start') {
    if (upToDate(run, run.stable))
      return result(run, true, 'promoted', 100, `${stableName} already runs ${image}; nothing to do`);
    run.steps.length = 0;
    state.steps = [];
    await run.store.save({
      phase: 'progressing',
      image: image!,
      weight: '0',
      stableReplicas: String(run.total),
      stableImage: run.stableImage,
      router: o.router.kind,
      reason: null,
      steps: '[]',
    });
    log.info(
      `Starting a canary of ${image} beside ${stableName} (${run.stableImage}), ${run.total} pod(s) of capacity`,
    );
  } else {
    log.info(`Continuing the canary of ${image} from ${state.weight}%`);
  }
  await o.release?.applySupporting(false);
  await ensureCanaryService(run);
  await ensureCanaryDeployment(run, image!);

  let weight = state.weight;
  for (const step of stepsToTake(mode, o.steps, run.steps, o.weight)) {
    const taken = await takeStep(run, step, weight);
    weight = taken.record.effectiveWeight;
    if (afterVerdict(taken.record.verdict) === 'abort') {
      const reason = abortReason(taken.record.step, step.weight, taken.record.verdict, taken.record.reason);
      log.error(`Canary aborted: ${reason}`);
      const timings = await abortCanary(run, reason, false, taken.failedAt ?? run.clock.now());
      return result(run, false, 'aborted', 0, reason, { timings });
    }
    log.info(`Step ${taken.record.step} passed at ${weight}%: ${taken.record.reason}`);
  }
  if (afterLastStep(mode) === 'promote') return promote(run);
  return result(
    run,
    true,
    'progressing',
    weight,
    `the canary takes ${weight}% after ${run.steps.filter((s) => s.verdict === 'passed').length} passed step(s)`,
  );
}

/** One step: the weight set, the analysis over its pause, the record kept in the cluster. */
async function takeStep(
  run: CanaryRun,
  step: CanaryStep,
  weightBefore: number,
): Promise<{ record: StepRecord; failedAt?: number }> {
  const { o, clock } = run;
  const log = o.logger;
  const record: StepRecord = {
    step: stepNumber(o.steps, step.weight, run.steps.length),
    weight: step.weight,
    effectiveWeight: weightBefore,
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
    const weight = await run.router.setWeight(step.weight);
    record.effectiveWeight = weight;
    if (weight !== step.weight)
      log.warning(
        `With ${run.total} pod(s), ${step.weight}% is ${weight}% of the pods: the canary gets ${weight}% of the traffic`,
      );
    await run.store.save({ weight: String(weight) });
    const before = o.metrics ? await counters(run) : undefined;
    const { gate, firstBadAt } = await analyse(
      o.client,
      o.analysis!,
      step.pauseMs,
      clock,
      log,
      o.signal,
      o.fetch,
    );
    failedAt = firstBadAt;
    if (before) record.traffic = sample(before, await counters(run));
    record.gate = gate;
    record.verdict = gate.verdict;
    record.reason = gate.reason;
  } catch (error) {
    record.verdict = 'error';
    record.reason = errorMessage(error);
  }
  record.endedAt = new Date(clock.now()).toISOString();
  run.steps.push(record);
  await run.store
    .save({ steps: historyJson(run.steps) })
    .catch((e: unknown) => log.warning(`Recording step ${record.step}: ${errorMessage(e)}`));
  return { record, ...(failedAt !== undefined ? { failedAt } : {}) };
}

function historyJson(steps: StepRecord[]): string {
  // Compact: the cluster keeps verdicts and traffic, not every measurement.
  return JSON.stringify(
    steps.slice(-20).map(({ gate: _gate, earlier: _earlier, ...rest }) => ({
      ...rest,
      reason: rest.reason.slice(0, 300),
    })),
  );
}

type Counters = { canary: Map<string, TrafficCounts>; stable: Map<string, TrafficCounts> };

async function counters(run: CanaryRun): Promise<Counters> {
  const { client, namespace } = run.o;
  const endpoint = run.o.metrics!;
  const [canary, stablePods] = await Promise.all([
    podCounters(client, namespace, { ...run.stableSelector, [run.track]: 'canary' }, endpoint),
    podCounters(client, namespace, run.stableSelector, endpoint, { [run.track]: 'canary' }),
  ]);
  return { canary, stable: stablePods };
}

function sample(before: Counters, after: Counters): TrafficSample {
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

async function ensureCanaryService(run: CanaryRun): Promise<void> {
  const { client, namespace, logger: log } = run.o;
  if (await client.getJson(servicePath(namespace, run.canaryServiceName))) return;
  await createService(client, namespace, {
    name: run.canaryServiceName,
    selector: { ...(run.referenceService.spec?.selector ?? {}), [run.track]: 'canary' },
    reference: run.referenceService,
    labels: { [run.track]: 'canary' },
    by: 'canary-shift',
  });
  log.info(`Created the Service ${run.canaryServiceName} for the canary's pods`);
}

async function ensureCanaryDeployment(run: CanaryRun, newImage: string): Promise<void> {
  const { client, namespace, logger: log } = run.o;
  const current = await client.getJson<DeploymentObject>(deploymentPath(namespace, run.canaryName));
  const source = run.renderedTemplate
    ? structuredClone(run.renderedTemplate)
    : withImage(run.stable.spec!.template!, newImage, run.container, imageRepository).template;
  const template = labelled(source, { [run.track]: 'canary' });
  if (current) {
    if (upToDate(run, current)) return;
    await updateObject<DeploymentObject>(client, deploymentPath(namespace, run.canaryName), (now) =>
      now ? { ...now, spec: { ...now.spec, template } } : undefined,
    );
    return;
  }
  await createDeploymentLike(client, namespace, {
    name: run.canaryName,
    source: run.stable,
    labels: { [run.track]: 'canary' },
    annotations: { [CREATED_BY]: 'canary-shift', [CANARY_OF]: run.stableName },
    selector: { ...run.stableSelector, [run.track]: 'canary' },
    template,
    replicas: 0,
    extra: { revisionHistoryLimit: 2 },
  });
  log.info(`Created the canary Deployment ${run.canaryName} (${newImage})`);
}

async function removeCanaryObjects(run: CanaryRun, keepScaledDown: boolean): Promise<void> {
  const { client, namespace } = run.o;
  await run.router.cleanup();
  if (!keepScaledDown) await deleteIfExists(client, deploymentPath(namespace, run.canaryName));
  const svc = await client.getJson<ServiceObject>(servicePath(namespace, run.canaryServiceName));
  if (svc?.metadata.annotations?.[CREATED_BY] === 'canary-shift' && !keepScaledDown)
    await deleteIfExists(client, servicePath(namespace, run.canaryServiceName));
}

/**
 * Traffic to stable at once, then the canary gone and the stable's capacity back. Its last wait
 * runs without the step's cancel signal: a cancelled job must still leave the routing good.
 */
async function abortCanary(
  run: CanaryRun,
  reason: string,
  promoting: boolean,
  failedMeasurementAt?: number,
): Promise<CanaryResult['timings']> {
  const { client, namespace, logger: log } = run.o;
  const { stableName, state, clock } = run;
  const timings: NonNullable<CanaryResult['timings']> = {
    ...(failedMeasurementAt !== undefined ? { failedMeasurementAt } : {}),
  };
  await run.store.save({ phase: 'aborted', reason, weight: '0' }).catch(() => {});
  if (promoting && run.templateAtStart) {
    // The promotion of this run failed: the stable gets back exactly the template it ran.
    await putStableTemplate(run, run.templateAtStart);
  } else if (promoting && state.stableImage) {
    // The stable may already have the new template: put its own image back.
    const current = await client.getJson<DeploymentObject>(deploymentPath(namespace, stableName));
    if (current && containerImage(current, run.container) !== state.stableImage) {
      const { template } = withImage(
        current.spec!.template!,
        state.stableImage,
        run.container,
        imageRepository,
      );
      await mergePatch(client, deploymentPath(namespace, stableName), { spec: { template } });
    }
  }
  await run.router.toStable();
  timings.trafficRestoredAt = clock.now();
  log.info(`All traffic is back on ${stableName}; the canary is scaled to zero`);
  await removeCanaryObjects(run, (run.o.abortAction ?? DEFAULT_ABORT_ACTION) === 'scale-to-zero');
  const outcome = await waitReady(client, namespace, stableName, run.restore);
  timings.capacityRestoredAt = clock.now();
  if (!outcome.ok) log.error(`The stable Deployment did not get its capacity back: ${outcome.message}`);
  else log.info(`${stableName} is back to ${run.total} available pod(s)`);
  return timings;
}

/** The stable Deployment as it is now, with a whole new pod template (a merge patch would keep removed env and volumes). */
/** The stable takes `template` (and `replicas`), written over what it is now; a conflict reads again. */
async function putStableTemplate(run: CanaryRun, template: Template, replicas?: number): Promise<void> {
  const path = deploymentPath(run.o.namespace, run.stableName);
  await updateObject<DeploymentObject>(run.o.client, path, (now) => {
    if (!now) throw new PipelineError(`The stable Deployment ${run.stableName} disappeared`);
    return { ...now, spec: { ...now.spec!, template, ...(replicas !== undefined ? { replicas } : {}) } };
  });
}

async function promote(run: CanaryRun): Promise<CanaryResult> {
  const { o, image, stableName, total } = run;
  const { client, namespace, logger: log } = o;
  const path = deploymentPath(namespace, stableName);
  await run.store.save({ phase: 'promoting' });
  log.info(`Promoting ${image}: ${stableName} takes the new template`);
  const current = (await client.getJson<DeploymentObject>(path))!;
  const previousTemplate = structuredClone(current.spec?.template);
  if (run.renderedTemplate) {
    const replicas = o.release!.deployment.spec?.replicas ?? total;
    await putStableTemplate(run, structuredClone(run.renderedTemplate), replicas);
  } else {
    const { template } = withImage(current.spec!.template!, image!, run.container, imageRepository);
    await mergePatch(client, path, { spec: { template, replicas: total } });
  }
  const outcome = await waitReady(client, namespace, stableName, run.waits);
  if (!outcome.ok) {
    const reason = `the promotion failed: ${outcome.message}`;
    log.error(reason);
    const timings = await abortCanary(run, reason, true);
    return result(run, false, 'aborted', 0, reason, { timings });
  }
  await run.router.toStable();
  // The router restores the capacity the canary started with; the overlay may ask for another.
  const size = o.release?.deployment.spec?.replicas ?? total;
  if (size !== total) {
    await scaleDeployment(client, namespace, stableName, size);
    const resized = await waitReady(client, namespace, stableName, run.restore);
    if (!resized.ok) log.warning(`${stableName} did not reach ${size} ready pod(s): ${resized.message}`);
  }
  await removeCanaryObjects(run, false);
  const reason = `${stableName} runs ${image} on all ${size} pod(s); the canary was removed`;
  await run.store.save({ phase: 'promoted', weight: '100', reason, stableReplicas: null, stableImage: null });
  log.info(reason);
  await pruneAfterPromotion(run, previousTemplate);
  return result(run, true, 'promoted', 100, reason);
}

/**
 * The promotion is final: the stable runs the new template, and the one it replaced is what a
 * rollback returns to, so both keep their configuration. A resumed promotion no longer knows the
 * template it replaced, so it prunes nothing.
 */
async function pruneAfterPromotion(run: CanaryRun, replaced: Template | undefined): Promise<void> {
  const { o } = run;
  if (!o.generations) return;
  const now = await o.client.getJson<DeploymentObject>(deploymentPath(o.namespace, run.stableName));
  const live = now?.spec?.template;
  if (!live || !replaced) return;
  if (isDeepStrictEqual(live, replaced)) {
    o.logger.info(
      'The promotion was resumed, so the template it replaced is not known: no configuration is pruned',
    );
    return;
  }
  await pruneOlderGenerations({
    client: o.client,
    namespace: o.namespace,
    ...o.generations,
    live: [live],
    previous: [replaced],
    logger: o.logger,
  });
}
