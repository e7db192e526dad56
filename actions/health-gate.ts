import { readFileSync, statSync } from 'node:fs';
import { defineInputs, input } from '../packages/config/index.ts';
import { yamlInput } from '../packages/config/yaml-input.ts';
import { DURATION_MAX, InputError, PipelineError } from '../packages/core/index.ts';
import {
  type Check,
  checkSecrets,
  DEFAULT_LIMITS,
  evidenceJson,
  NO_DATA_POLICIES,
  parseChecks,
  renderGateSummary,
  runHealthGate,
  verdictLine,
} from '../packages/health/index.ts';
import type { KubeAccess } from '../packages/health/probes.ts';
import { clusterInputs, connectCluster } from './cluster.ts';
import { runAction } from './runtime.ts';

const MAX_CHECKS_FILE_BYTES = 1024 * 1024;

export const schema = defineInputs({
  checks: yamlInput((doc) => doc, {
    accepted: 'a YAML list of checks, each with name and type (http, prometheus or kubernetes)',
  }),
  'checks-file': input.string(),
  name: input.string({ default: 'Health gate' }),
  'initial-delay': input.duration({ default: '0s' }),
  interval: input.duration({ default: '30s', minMs: 100 }),
  count: input.integer({ min: 1, max: 100_000 }),
  duration: input.duration({ maxMs: DURATION_MAX.window }),
  'failure-limit': input.integer({ default: '0', min: 0 }),
  'consecutive-error-limit': input.integer({ default: '4', min: 0 }),
  'inconclusive-limit': input.integer({ default: '0', min: 0 }),
  'no-data': input.enum(NO_DATA_POLICIES, { default: 'inconclusive' }),
  timeout: input.duration({ default: '10s', minMs: 1 }),
  'prometheus-url': input.url(),
  'prometheus-token': input.secret(),
  'prometheus-username': input.string(),
  'prometheus-password': input.secret(),
  namespace: input.kubeName(),
  'fail-on-inconclusive': input.boolean({ default: 'true' }),
  ...clusterInputs,
});

function needsCluster(checks: Check[]): boolean {
  return checks.some((c) => c.type === 'kubernetes' || (c.type === 'http' && c.target.kind === 'service'));
}

export async function main(): Promise<void> {
  await runAction(schema, async ({ inputs, log, clock, setOutput, writeSummary, cancelled }) => {
    if (inputs.checks !== undefined && inputs.checksFile) {
      throw new InputError(
        'checks-file',
        'is set together with checks',
        'either checks (YAML) or checks-file (a path to a YAML file)',
      );
    }
    let doc = inputs.checks;
    if (inputs.checksFile) {
      const accepted = 'a path to a YAML file of checks (at most 1 MiB), relative to the workspace';
      let text: string;
      try {
        // A device or a huge file (/dev/zero, a log) would hang the step or exhaust its memory.
        const stat = statSync(inputs.checksFile);
        if (!stat.isFile() || stat.size > MAX_CHECKS_FILE_BYTES)
          throw new InputError(
            'checks-file',
            `names ${JSON.stringify(inputs.checksFile)}, which is ${stat.isFile() ? `${stat.size} bytes` : 'not a regular file'}`,
            accepted,
          );
        text = readFileSync(inputs.checksFile, 'utf8');
      } catch (error) {
        if (error instanceof InputError) throw error;
        throw new InputError(
          'checks-file',
          `names ${JSON.stringify(inputs.checksFile)}, which cannot be read`,
          accepted,
        );
      }
      // The same YAML reading and error wrapping as the checks input, under the file input's name.
      doc = schema.checks.parse(text, 'checks-file');
    }
    if (doc === undefined)
      throw new InputError(
        'checks',
        'is required (or checks-file)',
        'a YAML list of checks, each with name and type',
      );
    if (inputs.count !== undefined && inputs.duration !== undefined) {
      throw new InputError(
        'duration',
        'is set together with count',
        'either count (measurements) or duration (a soak window such as 15m)',
      );
    }
    if (inputs.prometheusToken && inputs.prometheusUsername) {
      throw new InputError(
        'prometheus-username',
        'is set together with prometheus-token',
        'either a bearer token or a username and password',
      );
    }
    const checks = parseChecks(doc, {
      failureLimit: inputs.failureLimit,
      consecutiveErrorLimit: inputs.consecutiveErrorLimit,
      inconclusiveLimit: inputs.inconclusiveLimit,
      noData: inputs.noData ?? DEFAULT_LIMITS.noData,
      ...(inputs.prometheusUrl ? { prometheusUrl: inputs.prometheusUrl } : {}),
      prometheusAuth: {
        ...(inputs.prometheusToken ? { bearerToken: inputs.prometheusToken } : {}),
        ...(inputs.prometheusUsername
          ? { username: inputs.prometheusUsername, password: inputs.prometheusPassword ?? '' }
          : {}),
      },
      ...(inputs.namespace ? { namespace: inputs.namespace } : {}),
      timeoutMs: inputs.timeout,
    });
    for (const secret of checkSecrets(checks)) log.mask(secret);

    let kube: (KubeAccess & { close(): void }) | undefined;
    if (needsCluster(checks)) {
      const client = await connectCluster(inputs, log);
      kube = {
        request: (path, init) =>
          client
            .once(init.method, path, {
              ...(init.body !== undefined ? { body: init.body } : {}),
              timeoutMs: init.timeoutMs,
              headers: init.headers,
              accept: init.headers.accept ?? init.headers.Accept ?? '*/*',
            })
            .then((r) => r),
        getJson: (path, timeoutMs) =>
          client.getJson(path, { ...(timeoutMs ? { timeoutMs } : {}), attempts: 1 }),
        close: () => client.close(),
      };
    }

    try {
      const result = await runHealthGate({
        checks,
        initialDelayMs: inputs.initialDelay,
        intervalMs: inputs.interval,
        ...(inputs.duration !== undefined ? { durationMs: inputs.duration } : { count: inputs.count ?? 1 }),
        logger: log,
        clock,
        ...(kube ? { kube } : {}),
        signal: cancelled,
      });
      setOutput('verdict', result.verdict);
      setOutput('reason', result.reason);
      setOutput('decided-by', result.decidedBy ?? '');
      setOutput('evidence', evidenceJson(result));
      setOutput('verdict-line', verdictLine(result));
      await writeSummary(renderGateSummary(result, inputs.name));
      if (result.verdict === 'failed') throw new PipelineError(`Health gate failed: ${result.reason}`);
      if (result.verdict === 'inconclusive') {
        if (inputs.failOnInconclusive) throw new PipelineError(`Health gate inconclusive: ${result.reason}`);
        log.warning(`Health gate inconclusive: ${result.reason}`);
      } else {
        log.info(`Health gate passed: ${result.reason}`);
      }
    } finally {
      kube?.close();
    }
  });
}
