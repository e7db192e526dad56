import {
  type Clock,
  errorMessage,
  formatDuration,
  InputError,
  type Logger,
  PipelineError,
  systemClock,
} from '../core/index.ts';
import type { GateResult } from '../health/index.ts';
import { LABEL_MANAGED_BY } from '../kube/apply.ts';
import type { KubeClient } from '../kube/client.ts';
import { waitForServiceEndpoints } from '../kube/endpoints.ts';
import { acquireRolloutLock, type HeldLease, type LockRequest } from '../kube/lease.ts';
import { imageRepository } from '../kube/manifests.ts';
import type { DeploymentObject } from '../kube/rollout.ts';
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
import { templateHashOf } from './rendered.ts';

/** Where a blue-green release's state lives: annotations on the live Service. */
export const BG_ANNOTATIONS = {
  phase: 'pipeline.dev/bg-phase',
  image: 'pipeline.dev/bg-image',
  target: 'pipeline.dev/bg-target-color',
  previous: 'pipeline.dev/bg-previous-color',
  reason: 'pipeline.dev/bg-reason',
} as const;
/** On a colour's Deployment: when it may be scaled to zero (an ISO time). */
export const SCALE_DOWN_AT = 'pipeline.dev/scale-down-at';

export const COLORS = ['blue', 'green'] as const;
export type Color = (typeof COLORS)[number];
export const BG_MODES = ['deploy', 'switch', 'rollback', 'finish'] as const;
export type BlueGreenMode = (typeof BG_MODES)[number];
type Phase = 'deploying' | 'verifying' | 'switched' | 'done' | 'rolled-back' | 'failed';

export interface BlueGreenOptions {
  client: KubeClient;
  namespace: string;
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
  timeoutMs: number;
  stuckGraceMs: number;
  lock?: LockRequest;
  clock?: Clock;
  logger: Logger;
  signal?: AbortSignal;
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

export const other = (c: Color): Color => (c === 'blue' ? 'green' : 'blue');
const isColor = (v: unknown): v is Color => v === 'blue' || v === 'green';

/**
 * Blue-green on two Deployments and a Service: bring up the idle colour, verify it through the
 * preview Service, switch the live Service's selector, verify again, and switch back at once on
 * failure. The old colour stays up for the scale-down delay so a switch back needs no new pods.
 */
export async function runBlueGreen(options: BlueGreenOptions): Promise<BlueGreenResult> {
  const { client, namespace, app, logger: log } = options;
  const clock = options.clock ?? systemClock;
  const label = options.colorLabel ?? 'color';
  const liveName = options.service ?? app;
  const previewName = options.previewService ?? `${app}-preview`;
  const deploymentOf = (c: Color) => `${app}-${c}`;
  const waits: WaitSettings = {
    timeoutMs: options.timeoutMs,
    stuckGraceMs: options.stuckGraceMs,
    clock,
    logger: log,
    ...(options.signal ? { signal: options.signal } : {}),
  };

  if (options.mode === 'deploy' && options.release) {
    const [blue, green] = await Promise.all(
      COLORS.map((c) => client.getJson<DeploymentObject>(deploymentPath(namespace, deploymentOf(c)))),
    );
    if (!blue && !green) return firstRelease(options, waits);
  }

  // ---- Validate everything before the first change. ----
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
  const activeDeployment = await client.getJson<DeploymentObject>(
    deploymentPath(namespace, deploymentOf(activeAtStart)),
  );
  if (!activeDeployment)
    throw new InputError(
      'app',
      `names ${app}, but the live colour's Deployment ${deploymentOf(activeAtStart)} does not exist`,
      `an app with Deployments ${app}-blue and ${app}-green`,
    );
  const activeLabels = activeDeployment.spec?.template?.metadata?.labels ?? {};
  if (!selects(liveSelector, activeLabels))
    throw new InputError(
      'service',
      `names the Service ${liveName}, whose selector does not match the pods of ${deploymentOf(activeAtStart)}`,
      `Deployments whose pod labels include ${label}: <colour> and the Service's other selector labels`,
    );
  const preview = await client.getJson<ServiceObject>(servicePath(namespace, previewName));
  if (preview && Object.keys(preview.spec?.selector ?? {}).length === 0)
    throw new InputError(
      'preview-service',
      `names the Service ${previewName}, which has no selector`,
      `a Service whose selector has ${label}`,
    );
  if (options.mode === 'deploy' && !options.image)
    throw new InputError(
      'image',
      'is required with mode deploy',
      'the new image reference, such as ghcr.io/acme/shop:1.4.2',
    );
  const container = options.image
    ? withImage(activeDeployment.spec!.template!, options.image, options.container, imageRepository).container
    : options.container;
  if (options.mode === 'switch' || options.mode === 'rollback') {
    const target = await client.getJson<DeploymentObject>(
      deploymentPath(namespace, deploymentOf(other(activeAtStart))),
    );
    if (!target)
      throw new PipelineError(
        `There is no ${other(activeAtStart)} Deployment (${deploymentOf(other(activeAtStart))}) to ${options.mode === 'switch' ? 'switch' : 'roll back'} to`,
      );
  }

  const lease: HeldLease | undefined = await acquireRolloutLock({
    client,
    namespace,
    deployments: [deploymentOf('blue'), deploymentOf('green')],
    lock: options.lock,
    logger: log,
    labels: { [LABEL_MANAGED_BY]: 'pipeline' },
    signal: options.signal,
  });
  try {
    const before = await snapshot();
    const state = await readState();
    let previousColor: Color | '' = state.previous ?? '';
    const finish = async (
      ok: boolean,
      reason: string,
      extra: Partial<BlueGreenResult> & { switched?: boolean; rolledBack?: boolean } = {},
    ): Promise<BlueGreenResult> => {
      const after = await snapshot();
      return {
        ok,
        mode: options.mode,
        activeColor: after.live,
        previousColor,
        switched: false,
        rolledBack: false,
        reason,
        image: options.image ?? after.colors[after.live].image,
        before,
        after,
        ...extra,
      };
    };

    // A previous run switched and never finished verifying: continue it, or put the old colour back.
    if (state.phase === 'switched' && state.previous && before.live === state.target) {
      if (options.mode === 'deploy' && state.image === options.image) {
        log.info(
          `A previous run switched ${liveName} to ${before.live} but did not finish verifying; verifying again`,
        );
        return await verifyLive(before.live, state.previous, false);
      }
      if (options.mode !== 'rollback') {
        log.warning(
          `A previous run switched ${liveName} to ${before.live} and never verified it; switching back to ${state.previous} first`,
        );
        await switchLive(
          state.previous,
          'rolled-back',
          `switched back: the switch to ${before.live} was never verified`,
        );
      }
    }

    const current = await snapshot();
    const active = current.live;
    const idle = other(active);
    previousColor = state.previous ?? '';

    if (options.mode === 'finish') {
      if (current.colors[idle].exists && current.colors[idle].replicas > 0) {
        await mergePatch(client, deploymentPath(namespace, deploymentOf(idle)), {
          metadata: { annotations: { [SCALE_DOWN_AT]: null } },
          spec: { replicas: 0 },
        });
        log.info(`Scaled ${deploymentOf(idle)} to zero: the release on ${active} is final`);
      }
      return await finish(true, `${liveName} stays on ${active}; ${deploymentOf(idle)} is scaled to zero`, {
        previousColor: state.previous ?? '',
      });
    }

    if (options.mode === 'rollback') {
      const target = state.previous && state.previous !== active ? state.previous : idle;
      await ensureUp(target, current.colors[active].replicas || 1);
      await switchLive(
        target,
        'rolled-back',
        options.reason ?? `rolled back from ${active} to ${target} on request`,
        active,
      );
      previousColor = active;
      await scaleDownLater(active);
      return await finish(
        true,
        `${liveName} is back on ${target} (${current.colors[target].image}); ${active} was taken out`,
        {
          switched: true,
          rolledBack: true,
        },
      );
    }

    if (options.mode === 'deploy') {
      const activeNow = await client.getJson<DeploymentObject>(
        deploymentPath(namespace, deploymentOf(active)),
      );
      const upToDate = options.release
        ? templateHashOf(activeNow) === options.release.templateHash
        : current.colors[active].image === options.image;
      if (upToDate && (state.phase === undefined || state.phase === 'done')) {
        await finishPendingScaleDown(idle);
        return await finish(
          true,
          `${liveName} already serves ${options.image} from ${active}; nothing to do`,
          {
            previousColor: state.previous ?? '',
          },
        );
      }
      await saveState({
        phase: 'deploying',
        image: options.image!,
        target: idle,
        previous: active,
        reason: null,
      });
      await options.release?.applySupporting(active);
      const deployed = await deployIdle(idle, active);
      if (!deployed.ok) {
        const reason = `${deploymentOf(idle)} did not become ready: ${deployed.message}`;
        await scaleDeployment(client, namespace, deploymentOf(idle), 0).catch(() => {});
        await saveState({ phase: 'failed', reason });
        return await finish(false, reason);
      }
    } else {
      await ensureUp(idle, current.colors[active].replicas || 1);
    }

    // Pre-switch: the idle colour, through the preview Service.
    await pointPreview(idle);
    if (options.preChecks) await endpointsFollow(previewName, idle);
    let pre: GateResult | undefined;
    if (options.preChecks) {
      await saveState({ phase: 'verifying' });
      pre = (await analyse(client, options.preChecks, 0, clock, log, options.signal, options.fetch)).gate;
      if (pre.verdict !== 'passed') {
        const reason = `pre-switch checks on ${idle} were ${pre.verdict}: ${pre.reason}`;
        await saveState({ phase: 'failed', reason });
        return await finish(false, reason, { pre });
      }
    }
    await switchLive(idle, 'switched', null, active);
    if (options.postChecks) await endpointsFollow(liveName, idle);
    previousColor = active;
    return await verifyLive(idle, active, true, pre);
  } finally {
    await lease?.release();
  }

  // ---- helpers ----

  async function readState(): Promise<{ phase?: Phase; image?: string; target?: Color; previous?: Color }> {
    const svc = await client.getJson<ServiceObject>(servicePath(namespace, liveName));
    const a = svc?.metadata.annotations ?? {};
    const target = a[BG_ANNOTATIONS.target];
    const previous = a[BG_ANNOTATIONS.previous];
    return {
      ...(a[BG_ANNOTATIONS.phase] ? { phase: a[BG_ANNOTATIONS.phase] as Phase } : {}),
      ...(a[BG_ANNOTATIONS.image] ? { image: a[BG_ANNOTATIONS.image] } : {}),
      ...(isColor(target) ? { target } : {}),
      ...(isColor(previous) ? { previous } : {}),
    };
  }

  async function saveState(
    values: Partial<Record<keyof typeof BG_ANNOTATIONS, string | null>>,
  ): Promise<void> {
    const annotations: Record<string, string | null> = {};
    for (const [k, v] of Object.entries(values))
      annotations[BG_ANNOTATIONS[k as keyof typeof BG_ANNOTATIONS]] = v ?? null;
    await mergePatch(client, servicePath(namespace, liveName), { metadata: { annotations } });
  }

  async function snapshot(): Promise<Snapshot> {
    const [svc, pv, blue, green] = await Promise.all([
      client.getJson<ServiceObject>(servicePath(namespace, liveName)),
      client.getJson<ServiceObject>(servicePath(namespace, previewName)),
      client.getJson<DeploymentObject>(deploymentPath(namespace, deploymentOf('blue'))),
      client.getJson<DeploymentObject>(deploymentPath(namespace, deploymentOf('green'))),
    ]);
    const view = (d: DeploymentObject | undefined): ColorView => ({
      image: containerImage(d, container),
      replicas: d?.spec?.replicas ?? 0,
      available: d?.status?.availableReplicas ?? 0,
      exists: d !== undefined,
    });
    const previewColor = pv?.spec?.selector?.[label];
    return {
      live: (svc?.spec?.selector?.[label] as Color | undefined) ?? (activeAtStart as Color),
      preview: isColor(previewColor) ? previewColor : undefined,
      colors: { blue: view(blue), green: view(green) },
    };
  }

  /** The live selector and the state change together, in one patch, so a crash never splits them. */
  async function switchLive(to: Color, phase: Phase, reason: string | null, from?: Color): Promise<void> {
    await mergePatch(client, servicePath(namespace, liveName), {
      metadata: {
        annotations: {
          [BG_ANNOTATIONS.phase]: phase,
          [BG_ANNOTATIONS.target]: to,
          ...(from ? { [BG_ANNOTATIONS.previous]: from } : {}),
          [BG_ANNOTATIONS.reason]: reason,
        },
      },
      spec: { selector: { [label]: to } },
    });
    log.info(`${liveName} now sends traffic to ${to}`);
  }

  /** Checks through a Service only mean something once its endpoints are the colour's pods. */
  async function endpointsFollow(service: string, to: Color): Promise<void> {
    const caught = await waitForServiceEndpoints({
      client,
      namespace,
      service,
      selector: { ...liveSelector, [label]: to },
      deadlineMs: 60_000,
      clock,
      ...(options.signal ? { signal: options.signal } : {}),
      logger: log,
    });
    if (!caught)
      log.warning(`${service}'s endpoints did not settle on the ${to} pods within 60s; checking anyway`);
  }

  async function pointPreview(to: Color): Promise<void> {
    const pv = await client.getJson<ServiceObject>(servicePath(namespace, previewName));
    if (pv) {
      await mergePatch(client, servicePath(namespace, previewName), { spec: { selector: { [label]: to } } });
      return;
    }
    await client.json('POST', `/api/v1/namespaces/${encodeURIComponent(namespace)}/services`, {
      body: {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: {
          name: previewName,
          namespace,
          labels: { [LABEL_MANAGED_BY]: 'pipeline' },
          annotations: { 'pipeline.dev/created-by': 'blue-green-switch' },
        },
        spec: {
          selector: { ...liveSelector, [label]: to },
          ports: (live!.spec?.ports ?? []).map(({ name, port, targetPort, protocol }) => ({
            ...(name ? { name } : {}),
            port,
            ...(targetPort !== undefined ? { targetPort } : {}),
            ...(protocol ? { protocol } : {}),
          })),
        },
      },
    });
    log.info(`Created the preview Service ${previewName} on ${to}`);
  }

  /** The idle colour gets the active colour's template with the new image, at the same size. */
  async function deployIdle(idle: Color, active: Color) {
    const active_ = (await client.getJson<DeploymentObject>(
      deploymentPath(namespace, deploymentOf(active)),
    ))!;
    const source = options.release?.deployment ?? active_;
    const replicas = source.spec?.replicas ?? active_.spec?.replicas ?? 1;
    const template = options.release
      ? structuredClone(options.release.deployment.spec!.template!)
      : withImage(source.spec!.template!, options.image!, container, imageRepository).template;
    template.metadata = {
      ...template.metadata,
      labels: { ...(template.metadata?.labels ?? {}), [label]: idle },
    };
    const name = deploymentOf(idle);
    const existing = await client.getJson<DeploymentObject>(deploymentPath(namespace, name));
    log.info(`Deploying ${options.image} to ${name} (${replicas} pod(s))`);
    if (existing) {
      await client.json('PUT', deploymentPath(namespace, name), {
        body: {
          ...existing,
          metadata: {
            ...existing.metadata,
            annotations: Object.fromEntries(
              Object.entries(existing.metadata.annotations ?? {}).filter(([k]) => k !== SCALE_DOWN_AT),
            ),
          },
          spec: { ...existing.spec, replicas, template },
        },
      });
    } else {
      const selector = { ...(source.spec?.selector?.matchLabels ?? {}), [label]: idle };
      const spec = source.spec as Record<string, unknown>;
      await client.json('POST', `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/deployments`, {
        body: {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: {
            name,
            namespace,
            labels: { ...(source.metadata.labels ?? {}), [label]: idle, [LABEL_MANAGED_BY]: 'pipeline' },
          },
          spec: {
            replicas,
            selector: { matchLabels: selector },
            template,
            ...(spec.minReadySeconds !== undefined ? { minReadySeconds: spec.minReadySeconds } : {}),
            ...(spec.progressDeadlineSeconds !== undefined
              ? { progressDeadlineSeconds: spec.progressDeadlineSeconds }
              : {}),
            ...(spec.strategy !== undefined ? { strategy: spec.strategy } : {}),
          },
        },
      });
    }
    return waitReady(client, namespace, name, waits);
  }

  async function ensureUp(color: Color, replicas: number): Promise<void> {
    const d = await client.getJson<DeploymentObject>(deploymentPath(namespace, deploymentOf(color)));
    const patch: Record<string, unknown> = { metadata: { annotations: { [SCALE_DOWN_AT]: null } } };
    if ((d?.spec?.replicas ?? 0) === 0) {
      log.info(`Scaling ${deploymentOf(color)} up to ${replicas} pod(s) first`);
      patch.spec = { replicas };
    }
    await mergePatch(client, deploymentPath(namespace, deploymentOf(color)), patch);
    const outcome = await waitReady(client, namespace, deploymentOf(color), waits);
    if (!outcome.ok) throw new PipelineError(`${deploymentOf(color)} is not ready: ${outcome.message}`);
  }

  /** Post-switch checks on the live Service; on failure the old colour takes the traffic back at once. */
  async function verifyLive(
    to: Color,
    from: Color,
    fresh: boolean,
    pre?: GateResult,
  ): Promise<BlueGreenResult> {
    const snapshotBefore = fresh ? undefined : await snapshot();
    let post: GateResult | undefined;
    let failedAt: number | undefined;
    let failure: string | undefined;
    if (options.postChecks) {
      try {
        const analysed = await analyse(
          client,
          options.postChecks,
          0,
          clock,
          log,
          options.signal,
          options.fetch,
        );
        post = analysed.gate;
        failedAt = analysed.firstBadAt;
        if (post.verdict !== 'passed')
          failure = `post-switch checks on ${to} were ${post.verdict}: ${post.reason}`;
      } catch (error) {
        failure = `post-switch checks on ${to} could not finish: ${errorMessage(error)}`;
      }
    }
    if (failure) {
      // Switch back first: the old colour's pods are still up, so this is instant.
      await switchLive(from, 'rolled-back', failure);
      const switchedBackAt = clock.now();
      log.error(`Switched ${liveName} back to ${from}: ${failure}`);
      await pointPreview(to);
      await scaleDeployment(client, namespace, deploymentOf(to), 0);
      const after = await snapshot();
      return {
        ok: false,
        mode: options.mode,
        activeColor: from,
        previousColor: to,
        switched: false,
        rolledBack: true,
        reason: failure,
        image: options.image ?? after.colors[to].image,
        before: snapshotBefore ?? (await beforeOf(after, to, from)),
        after,
        ...(pre ? { pre } : {}),
        ...(post ? { post } : {}),
        timings: { ...(failedAt !== undefined ? { failedMeasurementAt: failedAt } : {}), switchedBackAt },
      };
    }
    await saveState({ phase: 'done', reason: null });
    await pointPreview(from);
    if (!options.keepPrevious) await scaleDownLater(from);
    const after = await snapshot();
    return {
      ok: true,
      mode: options.mode,
      activeColor: to,
      previousColor: from,
      switched: true,
      rolledBack: false,
      reason: `${liveName} serves ${after.colors[to].image} from ${to}${options.postChecks ? ', verified after the switch' : ''}; ${from} ${options.keepPrevious ? 'stays up for a switch back until the release is final' : `was scaled down after ${formatDuration(options.scaleDownDelayMs)}`}`,
      image: after.colors[to].image,
      before: snapshotBefore ?? (await beforeOf(after, to, from)),
      after,
      ...(pre ? { pre } : {}),
      ...(post ? { post } : {}),
    };
  }

  /** Before the switch, as far as it can be told afterwards: traffic on `from`. */
  async function beforeOf(after: Snapshot, to: Color, from: Color): Promise<Snapshot> {
    return { ...after, live: from, preview: to };
  }

  /** Keeps `color` up for the delay (a switch back needs no new pods), then scales it to zero. */
  async function scaleDownLater(color: Color): Promise<void> {
    const at = clock.now() + options.scaleDownDelayMs;
    await mergePatch(client, deploymentPath(namespace, deploymentOf(color)), {
      metadata: { annotations: { [SCALE_DOWN_AT]: new Date(at).toISOString() } },
    });
    await finishPendingScaleDown(color);
  }

  async function finishPendingScaleDown(color: Color): Promise<void> {
    const d = await client.getJson<DeploymentObject>(deploymentPath(namespace, deploymentOf(color)));
    const when = d?.metadata.annotations?.[SCALE_DOWN_AT];
    if (!d || !when) return;
    const wait = Date.parse(when) - clock.now();
    if (wait > 0) {
      log.info(`${deploymentOf(color)} stays up for ${formatDuration(wait)} so a switch back is instant`);
      await clock.sleep(wait, options.signal);
    }
    // Only if nothing switched to it meanwhile.
    const svc = await client.getJson<ServiceObject>(servicePath(namespace, liveName));
    if (svc?.spec?.selector?.[label] === color) return;
    await mergePatch(client, deploymentPath(namespace, deploymentOf(color)), {
      metadata: { annotations: { [SCALE_DOWN_AT]: null } },
      spec: { replicas: 0 },
    });
    log.info(`Scaled ${deploymentOf(color)} to zero`);
  }
}

/**
 * No colour exists yet: there is nothing to switch from, so the overlay's Deployment comes up as
 * blue and the live Service (applied from the overlay) selects it at once.
 */
async function firstRelease(options: BlueGreenOptions, waits: WaitSettings): Promise<BlueGreenResult> {
  const { client, namespace, app, logger: log } = options;
  const label = options.colorLabel ?? 'color';
  const liveName = options.service ?? app;
  const release = options.release!;
  const rendered = release.deployment;
  const name = `${app}-blue`;
  const matchLabels = rendered.spec?.selector?.matchLabels ?? {};
  if (Object.keys(matchLabels).length === 0)
    throw new InputError(
      'kustomize',
      `renders the Deployment ${app} without a matchLabels selector`,
      'a Deployment selecting its pods by matchLabels',
    );
  const lease: HeldLease | undefined = await acquireRolloutLock({
    client,
    namespace,
    deployments: [`${app}-blue`, `${app}-green`],
    lock: options.lock,
    logger: log,
    labels: { [LABEL_MANAGED_BY]: 'pipeline' },
    signal: options.signal,
  });
  try {
    log.info(
      `No colour of ${app} exists yet: this first release brings up ${name} and makes it live directly`,
    );
    await release.applySupporting('blue');
    const template = structuredClone(rendered.spec!.template!);
    template.metadata = {
      ...template.metadata,
      labels: { ...(template.metadata?.labels ?? {}), [label]: 'blue' },
    };
    const spec = rendered.spec as Record<string, unknown>;
    await client.json('POST', `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/deployments`, {
      body: {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: {
          name,
          namespace,
          labels: { ...(rendered.metadata.labels ?? {}), [label]: 'blue', [LABEL_MANAGED_BY]: 'pipeline' },
        },
        spec: {
          ...spec,
          selector: { matchLabels: { ...matchLabels, [label]: 'blue' } },
          template,
        },
      },
    });
    const outcome = await waitReady(client, namespace, name, waits);
    const view = async (): Promise<Snapshot> => {
      const d = await client.getJson<DeploymentObject>(deploymentPath(namespace, name));
      const none: ColorView = { image: '', replicas: 0, available: 0, exists: false };
      return {
        live: 'blue',
        preview: undefined,
        colors: {
          blue: {
            image: containerImage(d, options.container),
            replicas: d?.spec?.replicas ?? 0,
            available: d?.status?.availableReplicas ?? 0,
            exists: d !== undefined,
          },
          green: none,
        },
      };
    };
    const reason = outcome.ok
      ? `first release: no colour to switch from, so ${options.image} came up as blue and ${liveName} serves it`
      : `first release: ${name} did not become ready: ${outcome.message}`;
    await mergePatch(client, servicePath(namespace, liveName), {
      metadata: {
        annotations: {
          [BG_ANNOTATIONS.phase]: outcome.ok ? 'done' : 'failed',
          [BG_ANNOTATIONS.image]: options.image ?? null,
          [BG_ANNOTATIONS.target]: 'blue',
          [BG_ANNOTATIONS.reason]: outcome.ok ? null : reason,
        },
      },
    });
    const after = await view();
    return {
      ok: outcome.ok,
      mode: options.mode,
      activeColor: 'blue',
      previousColor: '',
      switched: false,
      rolledBack: false,
      firstRelease: true,
      reason,
      image: options.image ?? after.colors.blue.image,
      before: {
        live: 'blue',
        preview: undefined,
        colors: {
          blue: { ...after.colors.blue, exists: false, replicas: 0, available: 0, image: '' },
          green: after.colors.green,
        },
      },
      after,
    };
  } finally {
    await lease?.release();
  }
}
