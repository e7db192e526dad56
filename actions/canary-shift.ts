import { defineInputs, input, KUBE_NAME_MAX } from '../packages/config/index.ts';
import { yamlInput } from '../packages/config/yaml-input.ts';
import { PipelineError } from '../packages/core/index.ts';
import { checkSecrets, DEFAULT_LIMITS, parseChecks } from '../packages/health/checks.ts';
import { checkImageInput } from '../packages/kube/image-reference.ts';
import {
  ABORT_ACTIONS,
  CANARY_MODES,
  CANARY_SUFFIX,
  canaryAnalyses,
  checkRenderingInputs,
  checksRequired,
  checkWeight,
  DEFAULT_ABORT_ACTION,
  DEFAULT_TRACK_LABEL,
  IMAGE_INPUT,
  imageRequired,
  labelKeyInput,
  METRICS_PATH_INPUT,
  ROUTERS,
  routerConfig,
  WEIGHT_INPUT,
} from '../packages/rollout/options.ts';
import { clusterInputs, connectCluster, lockRequest, rolloutInputs } from './cluster.ts';
import { runAction } from './runtime.ts';

export const schema = defineInputs({
  mode: input.enum(CANARY_MODES, { default: 'run' }),
  deployment: input.kubeName({
    required: true,
    max: KUBE_NAME_MAX - CANARY_SUFFIX.length,
    maxWhy: 'its canary Service is <deployment>-canary',
  }),
  namespace: input.kubeName(),
  environment: input.kubeName(),
  kustomize: input.string(),
  manifests: input.list(),
  image: input.string(IMAGE_INPUT),
  container: input.kubeName(),
  router: input.enum(ROUTERS, { default: 'replicas' }),
  steps: input.string({ default: '10,50,100' }),
  weight: input.integer(WEIGHT_INPUT),
  service: input.kubeName(),
  'stable-service': input.kubeName(),
  'canary-service': input.kubeName(),
  'http-route': input.kubeName(),
  ingress: input.kubeName(),
  checks: yamlInput((doc) => doc, {
    accepted: 'a YAML list of health-gate checks (http, prometheus or kubernetes) against the canary',
  }),
  'analysis-interval': input.duration({ default: '30s', minMs: 100 }),
  'analysis-count': input.integer({ default: '3', min: 1, max: 10_000 }),
  'initial-delay': input.duration({ default: '0s' }),
  'metrics-path': input.string(METRICS_PATH_INPUT),
  'track-label': input.string({
    default: DEFAULT_TRACK_LABEL,
    ...labelKeyInput(DEFAULT_TRACK_LABEL),
  }),
  'abort-action': input.enum(ABORT_ACTIONS, { default: DEFAULT_ABORT_ACTION }),
  reason: input.string(),
  'prometheus-url': input.url(),
  'prometheus-token': input.secret(),
  ...clusterInputs,
  ...rolloutInputs,
});

export async function main(): Promise<void> {
  await runAction(schema, async ({ inputs, log, clock, setOutput, writeSummary, cancelled, lockHolder }) => {
    const { parseSteps } = await import('../packages/rollout/canary-plan.ts');
    const steps = parseSteps(inputs.steps, 'steps');
    checkWeight(inputs.mode, inputs.weight);
    const router = routerConfig(inputs.router, inputs.deployment, inputs);
    const rendering = checkRenderingInputs(
      inputs,
      inputs.mode,
      CANARY_MODES.filter(canaryAnalyses),
      'starts nothing new',
    );
    if (rendering && !inputs.image)
      throw imageRequired(`with ${inputs.kustomize ? 'kustomize' : 'manifests'}`);
    if (inputs.image) checkImageInput(inputs.image, 'image');

    const client = await connectCluster(inputs, log);
    const namespace = inputs.namespace ?? client.defaultNamespace;

    const analysing = canaryAnalyses(inputs.mode);
    const checks =
      inputs.checks !== undefined
        ? parseChecks(inputs.checks, {
            ...DEFAULT_LIMITS,
            ...(inputs.prometheusUrl ? { prometheusUrl: inputs.prometheusUrl } : {}),
            prometheusAuth: inputs.prometheusToken ? { bearerToken: inputs.prometheusToken } : {},
            namespace,
            timeoutMs: 10_000,
          })
        : undefined;
    for (const secret of checkSecrets(checks ?? [])) log.mask(secret);
    if (analysing && !checks) throw checksRequired(inputs.mode);
    const { parseMetricsEndpoint } = await import('../packages/rollout/kube-ops.ts');
    const metrics = inputs.metricsPath ? parseMetricsEndpoint(inputs.metricsPath) : undefined;

    const { runCanary } = await import('../packages/rollout/canary.ts');
    const { containerImage, deploymentPath } = await import('../packages/rollout/kube-ops.ts');
    const { REVISION_ANNOTATION } = await import('../packages/kube/rollout.ts');
    type Live = import('../packages/kube/rollout.ts').DeploymentObject;
    const live = () => client.getJson<Live>(deploymentPath(namespace, inputs.deployment));
    const revisionOf = (d: Live | undefined) => d?.metadata.annotations?.[REVISION_ANNOTATION] ?? '';
    const imageOf = (d: Live | undefined) => containerImage(d, inputs.container);
    try {
      const rendered = rendering
        ? await (await import('../packages/rollout/rendered.ts')).renderRelease({
            source: {
              ...(inputs.kustomize ? { kustomize: inputs.kustomize } : {}),
              ...(inputs.manifests ? { manifests: inputs.manifests } : {}),
              cwd: process.env.GITHUB_WORKSPACE || process.cwd(),
            },
            deployment: inputs.deployment,
            image: inputs.image!,
            app: inputs.deployment,
            environment: inputs.environment ?? namespace,
            cluster: { client, namespace, logger: log },
          })
        : undefined;
      setOutput('previous-revision', revisionOf(await live()));
      const release: Parameters<typeof runCanary>[0]['release'] = rendered && {
        deployment: rendered.deployment,
        templateHash: rendered.templateHash,
        all: rendered.all,
        applySupporting: async (dryRun) => {
          const { applySupporting } = await import('../packages/rollout/rendered.ts');
          await applySupporting({ client, namespace, objects: rendered.supporting, dryRun, logger: log });
        },
      };
      const result = await runCanary({
        client,
        namespace,
        deployment: inputs.deployment,
        mode: inputs.mode,
        ...(inputs.image ? { image: inputs.image } : {}),
        ...(inputs.container ? { container: inputs.container } : {}),
        router,
        ...(inputs.canaryService ? { canaryService: inputs.canaryService } : {}),
        steps,
        ...(inputs.weight !== undefined ? { weight: inputs.weight } : {}),
        ...(checks
          ? {
              analysis: {
                checks,
                intervalMs: inputs.analysisInterval,
                count: inputs.analysisCount,
                initialDelayMs: inputs.initialDelay,
              },
            }
          : {}),
        ...(metrics ? { metrics } : {}),
        trackLabel: inputs.trackLabel,
        ...(release ? { release } : {}),
        generations: { app: inputs.deployment, environment: inputs.environment ?? namespace },
        abortAction: inputs.abortAction,
        ...(inputs.reason ? { abortReason: inputs.reason } : {}),
        timeoutMs: inputs.timeout,
        stuckGraceMs: inputs.failFastAfter,
        lock: lockRequest(inputs, lockHolder),
        logger: log,
        clock,
        signal: cancelled,
      });
      const { renderCanarySummary, stepsJson } = await import('../packages/rollout/canary-summary.ts');
      const after = await live();
      setOutput('first-release', result.firstRelease !== undefined);
      // A first release that failed was rolled back to nothing: it has no image.
      setOutput('image', result.ok || !result.firstRelease ? imageOf(after) : '');
      setOutput('revision', revisionOf(after));
      setOutput('weight', result.weight);
      setOutput('phase', result.phase);
      setOutput('reason', result.reason);
      setOutput('steps', stepsJson(result));
      await writeSummary(renderCanarySummary(result, inputs.deployment));
      if (!result.ok) throw new PipelineError(`Canary of ${result.image} aborted: ${result.reason}`);
      log.info(result.reason);
    } finally {
      client.close();
    }
  });
}
