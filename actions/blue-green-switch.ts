import { defineInputs, input, KUBE_NAME_MAX } from '../packages/config/index.ts';
import { yamlInput } from '../packages/config/yaml-input.ts';
import { PipelineError } from '../packages/core/index.ts';
import { type Check, checkSecrets, DEFAULT_LIMITS, parseChecks } from '../packages/health/checks.ts';
import { checkImageInput } from '../packages/kube/image-reference.ts';
import {
  BG_MODES,
  checkBlueGreenImage,
  checkRenderingInputs,
  DEFAULT_COLOR_LABEL,
  IMAGE_INPUT,
  labelKeyInput,
  PREVIEW_SUFFIX,
  previewNameOf,
} from '../packages/rollout/options.ts';
import { clusterInputs, connectCluster, lockRequest, rolloutInputs } from './cluster.ts';
import { runAction } from './runtime.ts';

const checksInput = () =>
  yamlInput((doc) => doc, {
    accepted: 'a YAML list of health-gate checks (http, prometheus or kubernetes)',
  });

export const schema = defineInputs({
  mode: input.enum(BG_MODES, { default: 'deploy' }),
  app: input.kubeName({
    required: true,
    max: KUBE_NAME_MAX - PREVIEW_SUFFIX.length,
    maxWhy: 'its preview Service is <app>-preview',
  }),
  namespace: input.kubeName(),
  environment: input.kubeName(),
  kustomize: input.string(),
  manifests: input.list(),
  'keep-previous': input.boolean({ default: 'false' }),
  reason: input.string(),
  image: input.string(IMAGE_INPUT),
  container: input.kubeName(),
  service: input.kubeName(),
  'preview-service': input.kubeName(),
  'color-label': input.string({
    default: DEFAULT_COLOR_LABEL,
    ...labelKeyInput('color or pipeline.dev/color'),
  }),
  'pre-checks': checksInput(),
  'post-checks': checksInput(),
  'analysis-interval': input.duration({ default: '30s', minMs: 100 }),
  'analysis-count': input.integer({ default: '3', min: 1, max: 10_000 }),
  'scale-down-delay': input.duration({ default: '30s' }),
  'prometheus-url': input.url(),
  'prometheus-token': input.secret(),
  ...clusterInputs,
  ...rolloutInputs,
});

export async function main(): Promise<void> {
  await runAction(schema, async ({ inputs, log, clock, setOutput, writeSummary, cancelled, lockHolder }) => {
    checkBlueGreenImage(inputs.mode, inputs.image);
    if (inputs.image) checkImageInput(inputs.image, 'image');
    const rendering = checkRenderingInputs(inputs, inputs.mode, ['deploy'], 'deploys nothing new');
    const client = await connectCluster(inputs, log);
    const namespace = inputs.namespace ?? client.defaultNamespace;
    const readChecks = (doc: unknown, name: string): Check[] | undefined =>
      doc === undefined
        ? undefined
        : parseChecks(
            doc,
            {
              ...DEFAULT_LIMITS,
              ...(inputs.prometheusUrl ? { prometheusUrl: inputs.prometheusUrl } : {}),
              prometheusAuth: inputs.prometheusToken ? { bearerToken: inputs.prometheusToken } : {},
              namespace,
              timeoutMs: 10_000,
            },
            name,
          );
    const analysis = (checks: Check[] | undefined) =>
      checks
        ? { checks, intervalMs: inputs.analysisInterval, count: inputs.analysisCount, initialDelayMs: 0 }
        : undefined;
    const preChecks = analysis(readChecks(inputs.preChecks, 'pre-checks'));
    const postChecks = analysis(readChecks(inputs.postChecks, 'post-checks'));
    for (const secret of checkSecrets([...(preChecks?.checks ?? []), ...(postChecks?.checks ?? [])]))
      log.mask(secret);

    const { runBlueGreen } = await import('../packages/rollout/blue-green.ts');
    const service = inputs.service ?? inputs.app;
    const preview = inputs.previewService ?? previewNameOf(inputs.app);
    const { deploymentPath } = await import('../packages/rollout/kube-ops.ts');
    const { REVISION_ANNOTATION } = await import('../packages/kube/rollout.ts');
    try {
      let release: Parameters<typeof runBlueGreen>[0]['release'];
      if (rendering) {
        const { applySupporting, renderRelease } = await import('../packages/rollout/rendered.ts');
        const rendered = await renderRelease({
          source: {
            ...(inputs.kustomize ? { kustomize: inputs.kustomize } : {}),
            ...(inputs.manifests ? { manifests: inputs.manifests } : {}),
            cwd: process.env.GITHUB_WORKSPACE || process.cwd(),
          },
          deployment: inputs.app,
          image: inputs.image!,
          app: inputs.app,
          environment: inputs.environment ?? namespace,
          cluster: { client, namespace, logger: log },
        });
        // The overlay's Service selects every pod of the app; live, it must select one colour.
        const withLive = (live: string) =>
          rendered.supporting.map((o) =>
            o.object.kind === 'Service' && o.object.metadata.name === service
              ? {
                  ...o,
                  object: {
                    ...o.object,
                    spec: {
                      ...(o.object.spec as Record<string, unknown>),
                      selector: {
                        ...((o.object.spec as { selector?: Record<string, string> }).selector ?? {}),
                        [inputs.colorLabel]: live,
                      },
                    },
                  },
                }
              : o,
          );
        await applySupporting({ client, namespace, objects: withLive('blue'), dryRun: true, logger: log });
        release = {
          deployment: rendered.deployment,
          templateHash: rendered.templateHash,
          applySupporting: async (live) => {
            await applySupporting({ client, namespace, objects: withLive(live), dryRun: false, logger: log });
          },
        };
      }
      const result = await runBlueGreen({
        client,
        namespace,
        app: inputs.app,
        mode: inputs.mode,
        ...(inputs.image ? { image: inputs.image } : {}),
        ...(inputs.container ? { container: inputs.container } : {}),
        service,
        previewService: preview,
        colorLabel: inputs.colorLabel,
        ...(preChecks ? { preChecks } : {}),
        ...(postChecks ? { postChecks } : {}),
        scaleDownDelayMs: inputs.scaleDownDelay,
        keepPrevious: inputs.keepPrevious,
        ...(inputs.reason ? { reason: inputs.reason } : {}),
        ...(release ? { release } : {}),
        generations: { app: inputs.app, environment: inputs.environment ?? namespace },
        timeoutMs: inputs.timeout,
        stuckGraceMs: inputs.failFastAfter,
        lock: lockRequest(inputs, lockHolder),
        logger: log,
        clock,
        signal: cancelled,
      });
      const liveDeployment = await client.getJson<import('../packages/kube/rollout.ts').DeploymentObject>(
        deploymentPath(namespace, `${inputs.app}-${result.activeColor}`),
      );
      setOutput('image', result.after.colors[result.activeColor].image);
      setOutput('revision', liveDeployment?.metadata.annotations?.[REVISION_ANNOTATION] ?? '');
      setOutput('reason', result.reason);
      setOutput('first-release', result.firstRelease === true);
      setOutput('active-color', result.activeColor);
      setOutput('previous-color', result.previousColor);
      setOutput('switched', result.switched);
      setOutput('rolled-back', result.rolledBack);
      const { renderBlueGreenSummary } = await import('../packages/rollout/blue-green-summary.ts');
      await writeSummary(renderBlueGreenSummary(result, inputs.app, service, preview));
      if (!result.ok)
        throw new PipelineError(`Blue-green ${inputs.mode} of ${inputs.app} failed: ${result.reason}`);
      log.info(result.reason);
    } finally {
      client.close();
    }
  });
}
