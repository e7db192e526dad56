import { defineInputs, input } from '../packages/config/index.ts';
import { yamlInput } from '../packages/config/yaml-input.ts';
import { InputError, PipelineError } from '../packages/core/index.ts';
import { type Check, DEFAULT_LIMITS, parseChecks } from '../packages/health/checks.ts';
import { clusterInputs, connectCluster, lockRequest, rolloutInputs } from './cluster.ts';
import { runAction } from './runtime.ts';

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const NAME_FORM = 'a Kubernetes object name: lowercase letters, digits and -';
const checksInput = () =>
  yamlInput((doc) => doc, {
    accepted: 'a YAML list of health-gate checks (http, prometheus or kubernetes)',
  });

export const schema = defineInputs({
  mode: input.enum(['deploy', 'switch', 'rollback'] as const, { default: 'deploy' }),
  app: input.string({ required: true, pattern: NAME, accepted: NAME_FORM }),
  namespace: input.string({ pattern: NAME, accepted: NAME_FORM }),
  image: input.string({
    pattern: /^[^\s=]+$/,
    accepted: 'an image reference such as ghcr.io/acme/shop:1.4.2 or ghcr.io/acme/shop@sha256:…',
  }),
  container: input.string({ pattern: NAME, accepted: NAME_FORM }),
  service: input.string({ pattern: NAME, accepted: NAME_FORM }),
  'preview-service': input.string({ pattern: NAME, accepted: NAME_FORM }),
  'color-label': input.string({
    default: 'color',
    pattern: /^([a-z0-9.-]+\/)?[A-Za-z0-9_.-]+$/,
    accepted: 'a label key such as color or pipeline.dev/color',
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
    if (inputs.mode === 'deploy' && !inputs.image)
      throw new InputError(
        'image',
        'is required with mode deploy',
        'the new image reference, such as ghcr.io/acme/shop:1.4.2',
      );
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

    const { runBlueGreen } = await import('../packages/rollout/blue-green.ts');
    const service = inputs.service ?? inputs.app;
    const preview = inputs.previewService ?? `${inputs.app}-preview`;
    try {
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
        timeoutMs: inputs.timeout,
        stuckGraceMs: inputs.failFastAfter,
        lock: lockRequest(inputs, lockHolder),
        logger: log,
        clock,
        signal: cancelled,
      });
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
