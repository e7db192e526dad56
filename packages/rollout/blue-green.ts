import { type Clock, errorMessage, formatDuration, InputError, PipelineError } from '../core/index.ts';
import type { GateResult } from '../health/index.ts';
import { waitForServiceEndpoints } from '../kube/endpoints.ts';
import { imageRepository } from '../kube/manifests.ts';
import { updateObject } from '../kube/objects.ts';
import type { DeploymentObject } from '../kube/rollout.ts';
import { pruneOlderGenerations } from './generations.ts';
import {
  type AnalysisSettings,
  analyse,
  containerImage,
  deploymentPath,
  mergePatch,
  type ServiceObject,
  scaleDeployment,
  selects,
  servicePath,
  type WaitSettings,
  waitReady,
  withImage,
} from './kube-ops.ts';
import {
  BG_ANNOTATIONS,
  type BlueGreenMode,
  COLORS,
  type Color,
  checkBlueGreenImage,
  colorDeploymentOf,
  DEFAULT_COLOR_LABEL,
  previewNameOf,
  SCALE_DOWN_AT,
} from './options.ts';
import { templateHashOf } from './rendered.ts';
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

export type { Color } from './options.ts';

type Phase = 'deploying' | 'verifying' | 'switched' | 'done' | 'rolled-back' | 'failed';

export interface BlueGreenOptions extends StrategyCommon {
  /** Deployments are `<app>-blue` and `<app>-green`. */
  app: string;
  mode: BlueGreenMode;
  image?: string;
  container?: string;
  /** The live Service (default: app); its selector names the active colour. */
  service?: string;
  /** Points at the idle colour (default `<app>-preview`, created when missing). */
  previewService?: string;
  colorLabel?: string;
  preChecks?: AnalysisSettings;
  postChecks?: AnalysisSettings;
  scaleDownDelayMs: number;
  /** Keep the old colour scaled after the switch until mode finish (a soak still to come can switch back at once). */
  keepPrevious?: boolean;
  /** For mode rollback: why, recorded on the Service. */
  reason?: string;
  /**
   * The environment's rendered overlay, laid out for one Deployment named `app`: the idle colour
   * runs its template and replica count; its other objects are applied first, the live Service
   * keeping the live colour in its selector (`applySupporting(live)`).
   */
  release?: {
    deployment: DeploymentObject;
    templateHash: string;
    applySupporting(live: Color): Promise<void>;
  };
  /**
   * The app and environment labels of the overlay's objects: once a switch is final (the old
   * colour scaled down, or mode finish), the older generations of the ConfigMaps and Secrets the
   * colours use are pruned; both colours keep theirs, so a switch back finds its configuration.
   */
  generations?: { app: string; environment: string };
  fetch?: typeof fetch;
}

export interface ColorView {
  image: string;
  replicas: number;
  available: number;
  exists: boolean;
}

export interface Snapshot {
  live: Color;
  preview: Color | undefined;
  colors: Record<Color, ColorView>;
}

export interface BlueGreenResult {
  ok: boolean;
  mode: BlueGreenMode;
  activeColor: Color;
  previousColor: Color | '';
  switched: boolean;
  rolledBack: boolean;
  /** No colour existed: the first one was brought up and made live directly. */
  firstRelease?: boolean;
  reason: string;
  image: string;
  before: Snapshot;
  after: Snapshot;
  pre?: GateResult;
  post?: GateResult;
  timings?: { failedMeasurementAt?: number; switchedBackAt?: number };
}

const other = (c: Color): Color => (c === 'blue' ? 'green' : 'blue');
const isColor = (v: unknown): v is Color => v === 'blue' || v === 'green';

interface State {
  phase?: Phase;
  image?: string;
  target?: Color;
  previous?: Color;
}

/** Everything a blue-green run knows once validated; `before`, `state` and `previousColor` are set under the lock. */
interface BlueGreenRun {
  o: BlueGreenOptions;
  clock: Clock;
  waits: WaitSettings;
  label: string;
  liveName: string;
  previewName: string;
  /** No colour exists yet: the first release brings up blue (nothing else was validated). */
  first: boolean;
  liveSelector: Record<string, string>;
  live: ServiceObject | undefined;
  activeAtStart: Color;
  container: string | undefined;
  store: StateStore<keyof typeof BG_ANNOTATIONS>;
  before: Snapshot;
  state: State;
  previousColor: Color | '';
}

/**
 * Blue-green on two Deployments and a Service: bring up the idle colour, verify it through the
 * preview Service, switch the live Service's selector, verify again, and switch back at once on
 * failure. The old colour stays up for the scale-down delay so a switch back needs no new pods.
 */
export async function runBlueGreen(options: BlueGreenOptions): Promise<BlueGreenResult> {
  return runStrategy(options, options.mode, {
    validate: () => validateBlueGreen(options),
    locks: (run) => COLORS.map((c) => colorDeploymentOf(run.o.app, c)),
    resume: resumeBlueGreen,
    modes: { deploy: deployMode, switch: switchMode, rollback: rollbackMode, finish: finishMode },
  });
}

const deploymentOf = (run: BlueGreenRun, c: Color) => colorDeploymentOf(run.o.app, c);
const getColor = (run: BlueGreenRun, c: Color) =>
  run.o.client.getJson<DeploymentObject>(deploymentPath(run.o.namespace, deploymentOf(run, c)));

async function validateBlueGreen(o: BlueGreenOptions): Promise<BlueGreenRun> {
  const { client, namespace, app } = o;
  const label = o.colorLabel ?? DEFAULT_COLOR_LABEL;
  const liveName = o.service ?? app;
  const { clock, waits } = waitsOf(o);
  const run: BlueGreenRun = {
    o,
    clock,
    waits,
    label,
    liveName,
    previewName: o.previewService ?? previewNameOf(app),
    first: false,
    liveSelector: {},
    live: undefined,
    activeAtStart: 'blue',
    container: o.container,
    store: annotationState(client, servicePath(namespace, liveName), BG_ANNOTATIONS),
    before: undefined as unknown as Snapshot,
    state: {},
    previousColor: '',
  };
  if (o.mode === 'deploy' && o.release) {
    const [blue, green] = await Promise.all(COLORS.map((c) => getColor(run, c)));
    if (!blue && !green) return validateFirstRelease(run);
  }
  const live = await client.getJson<ServiceObject>(servicePath(namespace, liveName));
  if (!live)
    throw new InputError(
      'service',
      `names ${JSON.stringify(liveName)}, which does not exist in namespace ${namespace}`,
      'the live Service, whose selector names the active colour',
    );
  const liveSelector = live.spec?.selector ?? {};
  if (Object.keys(liveSelector).length === 0)
    throw new InputError(
      'service',
      `names the Service ${liveName}, which has no selector`,
      `a Service whose selector has ${label}: blue or green`,
    );
  const activeAtStart = liveSelector[label];
  if (!isColor(activeAtStart))
    throw new InputError(
      'service',
      `names the Service ${liveName}, whose selector has no ${label}: blue or green`,
      `a Service whose selector names the active colour with ${label}: blue or green (see color-label)`,
    );
  Object.assign(run, { live, liveSelector, activeAtStart });
  const activeDeployment = await getColor(run, activeAtStart);
  if (!activeDeployment)
    throw new InputError(
      'app',
      `names ${app}, but the live colour's Deployment ${deploymentOf(run, activeAtStart)} does not exist`,
      `an app with Deployments ${app}-blue and ${app}-green`,
    );
  if (!selects(liveSelector, activeDeployment.spec?.template?.metadata?.labels ?? {}))
    throw new InputError(
      'service',
      `names the Service ${liveName}, whose selector does not match the pods of ${deploymentOf(run, activeAtStart)}`,
      `Deployments whose pod labels include ${label}: <colour> and the Service's other selector labels`,
    );
  const preview = await client.getJson<ServiceObject>(servicePath(namespace, run.previewName));
  if (preview && Object.keys(preview.spec?.selector ?? {}).length === 0)
    throw new InputError(
      'preview-service',
      `names the Service ${run.previewName}, which has no selector`,
      `a Service whose selector has ${label}`,
    );
  checkBlueGreenImage(o.mode, o.image);
  if (o.image)
    run.container = withImage(
      activeDeployment.spec!.template!,
      o.image,
      o.container,
      imageRepository,
    ).container;
  if ((o.mode === 'switch' || o.mode === 'rollback') && !(await getColor(run, other(activeAtStart))))
    throw new PipelineError(
      `There is no ${other(activeAtStart)} Deployment (${deploymentOf(run, other(activeAtStart))}) to ${o.mode === 'switch' ? 'switch' : 'roll back'} to`,
    );
  return run;
}

function validateFirstRelease(run: BlueGreenRun): BlueGreenRun {
  const rendered = run.o.release!.deployment;
  if (Object.keys(rendered.spec?.selector?.matchLabels ?? {}).length === 0)
    throw new InputError(
      'kustomize',
      `renders the Deployment ${run.o.app} without a matchLabels selector`,
      'a Deployment selecting its pods by matchLabels',
    );
  return { ...run, first: true };
}

function readState(run: BlueGreenRun, svc: ServiceObject | undefined): State {
  const a = run.store.read(svc?.metadata.annotations);
  return {
    ...(a.phase ? { phase: a.phase as Phase } : {}),
    ...(a.image ? { image: a.image } : {}),
    ...(isColor(a.target) ? { target: a.target } : {}),
    ...(isColor(a.previous) ? { previous: a.previous } : {}),
  };
}

/** Under the lock: a previous run that switched and never finished verifying is continued, or its old colour put back. */
async function resumeBlueGreen(run: BlueGreenRun): Promise<BlueGreenResult | undefined> {
  if (run.first) return undefined;
  const { o, liveName } = run;
  run.before = await snapshot(run);
  run.state = readState(run, await o.client.getJson<ServiceObject>(servicePath(o.namespace, liveName)));
  const { state, before } = run;
  run.previousColor = state.previous ?? '';
  if (state.phase === 'switched' && state.previous && before.live === state.target) {
    if (o.mode === 'deploy' && state.image === o.image) {
      o.logger.info(
        `A previous run switched ${liveName} to ${before.live} but did not finish verifying; verifying again`,
      );
      return verifyLive(run, before.live, state.previous, false);
    }
    if (o.mode !== 'rollback') {
      o.logger.warning(
        `A previous run switched ${liveName} to ${before.live} and never verified it; switching back to ${state.previous} first`,
      );
      await switchLive(
        run,
        state.previous,
        'rolled-back',
        `switched back: the switch to ${before.live} was never verified`,
      );
    }
  }
  run.previousColor = state.previous ?? '';
  return undefined;
}

/** Where traffic is now: the active and the idle colour. */
async function standing(run: BlueGreenRun): Promise<{ current: Snapshot; active: Color; idle: Color }> {
  const current = await snapshot(run);
  return { current, active: current.live, idle: other(current.live) };
}

async function finish(
  run: BlueGreenRun,
  ok: boolean,
  reason: string,
  extra: Partial<BlueGreenResult> = {},
): Promise<BlueGreenResult> {
  const after = await snapshot(run);
  return {
    ok,
    mode: run.o.mode,
    activeColor: after.live,
    previousColor: run.previousColor,
    switched: false,
    rolledBack: false,
    reason,
    image: run.o.image ?? after.colors[after.live].image,
    before: run.before,
    after,
    ...extra,
  };
}

async function finishMode(run: BlueGreenRun): Promise<BlueGreenResult> {
  const { o } = run;
  const { current, active, idle } = await standing(run);
  if (current.colors[idle].exists && current.colors[idle].replicas > 0) {
    await mergePatch(o.client, deploymentPath(o.namespace, deploymentOf(run, idle)), {
      metadata: { annotations: { [SCALE_DOWN_AT]: null } },
      spec: { replicas: 0 },
    });
    o.logger.info(`Scaled ${deploymentOf(run, idle)} to zero: the release on ${active} is final`);
  }
  await pruneAfterSwitch(run, active, idle);
  return finish(
    run,
    true,
    `${run.liveName} stays on ${active}; ${deploymentOf(run, idle)} is scaled to zero`,
    {
      previousColor: run.state.previous ?? '',
    },
  );
}

async function rollbackMode(run: BlueGreenRun): Promise<BlueGreenResult> {
  const { current, active, idle } = await standing(run);
  const { state } = run;
  const target = state.previous && state.previous !== active ? state.previous : idle;
  await ensureUp(run, target, current.colors[active].replicas || 1);
  await switchLive(
    run,
    target,
    'rolled-back',
    run.o.reason ?? `rolled back from ${active} to ${target} on request`,
    active,
  );
  run.previousColor = active;
  await scaleDownLater(run, active);
  return finish(
    run,
    true,
    `${run.liveName} is back on ${target} (${current.colors[target].image}); ${active} was taken out`,
    { switched: true, rolledBack: true },
  );
}

async function deployMode(run: BlueGreenRun): Promise<BlueGreenResult> {
  if (run.first) return firstRelease(run);
  const { o, state } = run;
  const { current, active, idle } = await standing(run);
  const activeNow = await getColor(run, active);
  const upToDate = o.release
    ? templateHashOf(activeNow) === o.release.templateHash
    : current.colors[active].image === o.image;
  if (upToDate && (state.phase === undefined || state.phase === 'done')) {
    await finishPendingScaleDown(run, idle);
    return finish(run, true, `${run.liveName} already serves ${o.image} from ${active}; nothing to do`, {
      previousColor: state.previous ?? '',
    });
  }
  await run.store.save({ phase: 'deploying', image: o.image!, target: idle, previous: active, reason: null });
  await o.release?.applySupporting(active);
  const deployed = await deployIdle(run, idle, active);
  if (!deployed.ok) {
    const reason = `${deploymentOf(run, idle)} did not become ready: ${deployed.message}`;
    await scaleDeployment(o.client, o.namespace, deploymentOf(run, idle), 0).catch(() => {});
    await run.store.save({ phase: 'failed', reason });
    return finish(run, false, reason);
  }
  return switchToIdle(run, active, idle);
}

async function switchMode(run: BlueGreenRun): Promise<BlueGreenResult> {
  const { current, active, idle } = await standing(run);
  await ensureUp(run, idle, current.colors[active].replicas || 1);
  return switchToIdle(run, active, idle);
}

/** Pre-switch checks on the idle colour through the preview Service, the switch, then the post-switch checks. */
async function switchToIdle(run: BlueGreenRun, active: Color, idle: Color): Promise<BlueGreenResult> {
  const { o } = run;
  await pointPreview(run, idle);
  if (o.preChecks) await endpointsFollow(run, run.previewName, idle);
  let pre: GateResult | undefined;
  if (o.preChecks) {
    await run.store.save({ phase: 'verifying' });
    pre = (await analyse(o.client, o.preChecks, 0, run.clock, o.logger, o.signal, o.fetch)).gate;
    if (pre.verdict !== 'passed') {
      const reason = `pre-switch checks on ${idle} were ${pre.verdict}: ${pre.reason}`;
      await run.store.save({ phase: 'failed', reason });
      return finish(run, false, reason, { pre });
    }
  }
  await switchLive(run, idle, 'switched', null, active);
  if (o.postChecks) await endpointsFollow(run, run.liveName, idle);
  run.previousColor = active;
  return verifyLive(run, idle, active, true, pre);
}

async function snapshot(run: BlueGreenRun): Promise<Snapshot> {
  const { client, namespace } = run.o;
  const [svc, pv, blue, green] = await Promise.all([
    client.getJson<ServiceObject>(servicePath(namespace, run.liveName)),
    client.getJson<ServiceObject>(servicePath(namespace, run.previewName)),
    getColor(run, 'blue'),
    getColor(run, 'green'),
  ]);
  const previewColor = pv?.spec?.selector?.[run.label];
  return {
    live: (svc?.spec?.selector?.[run.label] as Color | undefined) ?? run.activeAtStart,
    preview: isColor(previewColor) ? previewColor : undefined,
    colors: { blue: colorView(blue, run.container), green: colorView(green, run.container) },
  };
}

const colorView = (d: DeploymentObject | undefined, container: string | undefined): ColorView => ({
  image: containerImage(d, container),
  replicas: d?.spec?.replicas ?? 0,
  available: d?.status?.availableReplicas ?? 0,
  exists: d !== undefined,
});

/** The live selector and the state change together, in one patch, so a crash never splits them. */
async function switchLive(
  run: BlueGreenRun,
  to: Color,
  phase: Phase,
  reason: string | null,
  from?: Color,
): Promise<void> {
  await mergePatch(run.o.client, servicePath(run.o.namespace, run.liveName), {
    metadata: {
      annotations: {
        [BG_ANNOTATIONS.phase]: phase,
        [BG_ANNOTATIONS.target]: to,
        ...(from ? { [BG_ANNOTATIONS.previous]: from } : {}),
        [BG_ANNOTATIONS.reason]: reason,
      },
    },
    spec: { selector: { [run.label]: to } },
  });
  run.o.logger.info(`${run.liveName} now sends traffic to ${to}`);
}

/** Checks through a Service only mean something once its endpoints are the colour's pods. */
async function endpointsFollow(run: BlueGreenRun, service: string, to: Color): Promise<void> {
  const { o } = run;
  const caught = await waitForServiceEndpoints({
    client: o.client,
    namespace: o.namespace,
    service,
    selector: { ...run.liveSelector, [run.label]: to },
    deadlineMs: 60_000,
    clock: run.clock,
    ...(o.signal ? { signal: o.signal } : {}),
    logger: o.logger,
  });
  if (!caught)
    o.logger.warning(`${service}'s endpoints did not settle on the ${to} pods within 60s; checking anyway`);
}

async function pointPreview(run: BlueGreenRun, to: Color): Promise<void> {
  const { client, namespace, logger: log } = run.o;
  const pv = await client.getJson<ServiceObject>(servicePath(namespace, run.previewName));
  if (pv) {
    await mergePatch(client, servicePath(namespace, run.previewName), {
      spec: { selector: { [run.label]: to } },
    });
    return;
  }
  await createService(client, namespace, {
    name: run.previewName,
    selector: { ...run.liveSelector, [run.label]: to },
    reference: run.live!,
    labels: {},
    by: 'blue-green-switch',
  });
  log.info(`Created the preview Service ${run.previewName} on ${to}`);
}

/** The idle colour gets the active colour's template with the new image (or the overlay's), at the same size. */
async function deployIdle(run: BlueGreenRun, idle: Color, active: Color) {
  const { o } = run;
  const { client, namespace } = o;
  const activeNow = (await getColor(run, active))!;
  const source = o.release?.deployment ?? activeNow;
  const replicas = source.spec?.replicas ?? activeNow.spec?.replicas ?? 1;
  const template = labelled(
    o.release
      ? structuredClone(o.release.deployment.spec!.template!)
      : withImage(source.spec!.template!, o.image!, run.container, imageRepository).template,
    { [run.label]: idle },
  );
  const name = deploymentOf(run, idle);
  const existing = await client.getJson<DeploymentObject>(deploymentPath(namespace, name));
  o.logger.info(`Deploying ${o.image} to ${name} (${replicas} pod(s))`);
  if (existing) {
    // The controllers write the Deployment too (status, revision): a conflict reads it again.
    await updateObject<DeploymentObject>(client, deploymentPath(namespace, name), (now) => {
      if (!now) throw new PipelineError(`The Deployment ${name} disappeared`);
      return {
        ...now,
        metadata: {
          ...now.metadata,
          annotations: Object.fromEntries(
            Object.entries(now.metadata.annotations ?? {}).filter(([k]) => k !== SCALE_DOWN_AT),
          ),
        },
        spec: { ...now.spec, replicas, template },
      };
    });
  } else {
    await createDeploymentLike(client, namespace, {
      name,
      source,
      labels: { [run.label]: idle },
      selector: { ...(source.spec?.selector?.matchLabels ?? {}), [run.label]: idle },
      template,
      replicas,
    });
  }
  return waitReady(client, namespace, name, run.waits);
}

async function ensureUp(run: BlueGreenRun, color: Color, replicas: number): Promise<void> {
  const { client, namespace, logger: log } = run.o;
  const name = deploymentOf(run, color);
  const d = await getColor(run, color);
  const patch: Record<string, unknown> = { metadata: { annotations: { [SCALE_DOWN_AT]: null } } };
  if ((d?.spec?.replicas ?? 0) === 0) {
    log.info(`Scaling ${name} up to ${replicas} pod(s) first`);
    patch.spec = { replicas };
  }
  await mergePatch(client, deploymentPath(namespace, name), patch);
  await mustBeReady(client, namespace, name, run.waits, (message) => `${name} is not ready: ${message}`);
}

/** Post-switch checks on the live Service; on failure the old colour takes the traffic back at once. */
async function verifyLive(
  run: BlueGreenRun,
  to: Color,
  from: Color,
  fresh: boolean,
  pre?: GateResult,
): Promise<BlueGreenResult> {
  const { o } = run;
  const snapshotBefore = fresh ? undefined : await snapshot(run);
  const checked = await postSwitchChecks(run, to);
  const gates = { ...(pre ? { pre } : {}), ...(checked.post ? { post: checked.post } : {}) };
  if (checked.failure) {
    // Switch back first: the old colour's pods are still up, so this is instant.
    await switchLive(run, from, 'rolled-back', checked.failure);
    const switchedBackAt = run.clock.now();
    o.logger.error(`Switched ${run.liveName} back to ${from}: ${checked.failure}`);
    await pointPreview(run, to);
    await scaleDeployment(o.client, o.namespace, deploymentOf(run, to), 0);
    const after = await snapshot(run);
    return {
      ok: false,
      mode: o.mode,
      activeColor: from,
      previousColor: to,
      switched: false,
      rolledBack: true,
      reason: checked.failure,
      image: o.image ?? after.colors[to].image,
      before: snapshotBefore ?? beforeOf(after, to, from),
      after,
      ...gates,
      timings: {
        ...(checked.failedAt !== undefined ? { failedMeasurementAt: checked.failedAt } : {}),
        switchedBackAt,
      },
    };
  }
  await run.store.save({ phase: 'done', reason: null });
  await pointPreview(run, from);
  if (!o.keepPrevious) {
    await scaleDownLater(run, from);
    await pruneAfterSwitch(run, to, from);
  }
  const after = await snapshot(run);
  return {
    ok: true,
    mode: o.mode,
    activeColor: to,
    previousColor: from,
    switched: true,
    rolledBack: false,
    reason: `${run.liveName} serves ${after.colors[to].image} from ${to}${o.postChecks ? ', verified after the switch' : ''}; ${from} ${o.keepPrevious ? 'stays up for a switch back until the release is final' : `was scaled down after ${formatDuration(o.scaleDownDelayMs)}`}`,
    image: after.colors[to].image,
    before: snapshotBefore ?? beforeOf(after, to, from),
    after,
    ...gates,
  };
}

async function postSwitchChecks(
  run: BlueGreenRun,
  to: Color,
): Promise<{ post?: GateResult; failedAt?: number; failure?: string }> {
  const { o } = run;
  if (!o.postChecks) return {};
  try {
    const analysed = await analyse(o.client, o.postChecks, 0, run.clock, o.logger, o.signal, o.fetch);
    const post = analysed.gate;
    return {
      post,
      ...(analysed.firstBadAt !== undefined ? { failedAt: analysed.firstBadAt } : {}),
      ...(post.verdict !== 'passed'
        ? { failure: `post-switch checks on ${to} were ${post.verdict}: ${post.reason}` }
        : {}),
    };
  } catch (error) {
    return { failure: `post-switch checks on ${to} could not finish: ${errorMessage(error)}` };
  }
}

/** Before the switch, as far as it can be told afterwards: traffic on `from`. */
function beforeOf(after: Snapshot, to: Color, from: Color): Snapshot {
  return { ...after, live: from, preview: to };
}

/** Keeps `color` up for the delay (a switch back needs no new pods), then scales it to zero. */
async function scaleDownLater(run: BlueGreenRun, color: Color): Promise<void> {
  const at = run.clock.now() + run.o.scaleDownDelayMs;
  await mergePatch(run.o.client, deploymentPath(run.o.namespace, deploymentOf(run, color)), {
    metadata: { annotations: { [SCALE_DOWN_AT]: new Date(at).toISOString() } },
  });
  await finishPendingScaleDown(run, color);
}

async function finishPendingScaleDown(run: BlueGreenRun, color: Color): Promise<void> {
  const { o } = run;
  const name = deploymentOf(run, color);
  const d = await getColor(run, color);
  const when = d?.metadata.annotations?.[SCALE_DOWN_AT];
  if (!d || !when) return;
  const wait = Date.parse(when) - run.clock.now();
  if (wait > 0) {
    o.logger.info(`${name} stays up for ${formatDuration(wait)} so a switch back is instant`);
    await run.clock.sleep(wait, o.signal);
  }
  // Only if nothing switched to it meanwhile.
  const svc = await o.client.getJson<ServiceObject>(servicePath(o.namespace, run.liveName));
  if (svc?.spec?.selector?.[run.label] === color) return;
  await mergePatch(o.client, deploymentPath(o.namespace, name), {
    metadata: { annotations: { [SCALE_DOWN_AT]: null } },
    spec: { replicas: 0 },
  });
  o.logger.info(`Scaled ${name} to zero`);
}

/** The switch is final: the live colour's configuration and the old colour's (a switch back) stay. */
async function pruneAfterSwitch(run: BlueGreenRun, live: Color, previous: Color): Promise<void> {
  const { o } = run;
  if (!o.generations) return;
  const [now, before] = await Promise.all([getColor(run, live), getColor(run, previous)]);
  if (!now?.spec?.template) return;
  await pruneOlderGenerations({
    client: o.client,
    namespace: o.namespace,
    ...o.generations,
    live: [now.spec.template],
    previous: before?.spec?.template ? [before.spec.template] : [],
    logger: o.logger,
  });
}

/**
 * No colour exists yet: there is nothing to switch from, so the overlay's Deployment comes up as
 * blue and the live Service (applied from the overlay) selects it at once.
 */
async function firstRelease(run: BlueGreenRun): Promise<BlueGreenResult> {
  const { o } = run;
  const { client, namespace, logger: log } = o;
  const rendered = o.release!.deployment;
  const name = deploymentOf(run, 'blue');
  log.info(
    `No colour of ${o.app} exists yet: this first release brings up ${name} and makes it live directly`,
  );
  await o.release!.applySupporting('blue');
  await createDeploymentLike(client, namespace, {
    name,
    source: rendered,
    labels: { [run.label]: 'blue' },
    selector: { ...(rendered.spec?.selector?.matchLabels ?? {}), [run.label]: 'blue' },
    template: labelled(structuredClone(rendered.spec!.template!), { [run.label]: 'blue' }),
    replicas: rendered.spec?.replicas,
    extra: rendered.spec as Record<string, unknown>,
  });
  const outcome = await waitReady(client, namespace, name, run.waits);
  const reason = outcome.ok
    ? `first release: no colour to switch from, so ${o.image} came up as blue and ${run.liveName} serves it`
    : `first release: ${name} did not become ready: ${outcome.message}`;
  await mergePatch(client, servicePath(namespace, run.liveName), {
    metadata: {
      annotations: {
        [BG_ANNOTATIONS.phase]: outcome.ok ? 'done' : 'failed',
        [BG_ANNOTATIONS.image]: o.image ?? null,
        [BG_ANNOTATIONS.target]: 'blue',
        [BG_ANNOTATIONS.reason]: outcome.ok ? null : reason,
      },
    },
  });
  const none: ColorView = { image: '', replicas: 0, available: 0, exists: false };
  const blue = colorView(await getColor(run, 'blue'), o.container);
  return {
    ok: outcome.ok,
    mode: o.mode,
    activeColor: 'blue',
    previousColor: '',
    switched: false,
    rolledBack: false,
    firstRelease: true,
    reason,
    image: o.image ?? blue.image,
    before: { live: 'blue', preview: undefined, colors: { blue: none, green: none } },
    after: { live: 'blue', preview: undefined, colors: { blue, green: none } },
  };
}
