import * as core from '@actions/core';
import { type Inputs, parseInputs, type Schema } from '../packages/config/index.ts';
import { type RunContext, readRunContext } from '../packages/config/run-context.ts';
import { escapeMarkdown } from '../packages/core/escape.ts';
import type { Clock, Logger } from '../packages/core/index.ts';
import {
  clockFromEnvironment,
  isExpectedError,
  PipelineError,
  redactSecrets,
} from '../packages/core/index.ts';
import { capStepSummaryFile } from '../packages/core/summary-cap.ts';

/**
 * Every value masked in this step. The runner masks them in the log only; the job summary and the
 * step outputs are written as given, so they are redacted here with the same list.
 */
const masked = new Set<string>();

// Log lines are redacted before printing too, not left to the runner: a body that reflects a
// credential must not reach the raw log, which debug logging and log archives keep.
const clean = (text: string) => redactSecrets(text, masked);

/**
 * A summary shows a secret as the renderer escaped it (`probe\-token` in Markdown, `&amp;` in HTML,
 * `\"` in JSON), which a plain text mask would miss: each escaped form is redacted as well.
 */
function cleanRendered(text: string): string {
  const forms = new Set<string>();
  for (const secret of masked) {
    forms.add(secret);
    forms.add(escapeMarkdown(secret));
    forms.add(
      secret.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;'),
    );
    forms.add(JSON.stringify(secret).slice(1, -1));
  }
  return redactSecrets(text, forms);
}

/** The engines' Logger backed by the runner's workflow commands. */
const actionsLogger: Logger = {
  debug: (m) => core.debug(clean(m)),
  info: (m) => core.info(clean(m)),
  warning: (m) => core.warning(clean(m)),
  error: (m) => core.error(clean(m)),
  group: (title, body) => core.group(clean(title), body),
  mask: (secret) => {
    if (!secret || masked.has(secret)) return;
    masked.add(secret);
    core.setSecret(secret);
  },
};

export interface ActionContext<S extends Schema> {
  inputs: Inputs<S>;
  run: RunContext;
  log: Logger;
  /** The system clock; under PIPELINE_TIME_SCALE (the local rehearsal only), a faster one. */
  clock: Clock;
  /** Aborts when the runner cancels the job (SIGTERM or SIGINT), so waits stop and restore what they must. */
  cancelled: AbortSignal;
  /** Who holds a cluster lock for this step: repository, workflow run and job. */
  lockHolder: string;
  setOutput(name: string, value: string | number | boolean): void;
  /** Sets an environment variable for the job's later steps (GITHUB_ENV), and no other job's. */
  exportVariable(name: string, value: string): void;
  /** Appends Markdown to the job summary (GITHUB_STEP_SUMMARY); a no-op outside a runner. */
  writeSummary(markdown: string): Promise<void>;
}

/**
 * The whole life of an action step: parse and validate every input (masking secrets first), run
 * the body, and turn the outcome into the runner's contract. Expected failures (bad input,
 * a failed rollout) become one `::error::` with no stack; anything else is a bug and keeps it.
 */
export async function runAction<S extends Schema>(
  schema: S,
  body: (ctx: ActionContext<S>) => Promise<void>,
): Promise<void> {
  const cancellation = new AbortController();
  const onSignal = (signal: string) =>
    cancellation.abort(new PipelineError(`The step was cancelled (${signal})`));
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    const inputs = parseInputs(schema, (name) => core.getInput(name), actionsLogger.mask);
    const run = readRunContext(process.env);
    await body({
      inputs,
      run,
      log: actionsLogger,
      clock: clockFromEnvironment(process.env),
      cancelled: cancellation.signal,
      lockHolder: `${run.repository}/${run.workflow}#${run.runId}.${run.runAttempt}/${run.job}`,
      setOutput: (name, value) =>
        core.setOutput(name, typeof value === 'string' ? cleanRendered(value) : value),
      exportVariable: (name, value) => {
        // Outside a runner, core would fall back to ::set-env::, which GitHub refuses.
        if (process.env.GITHUB_ENV) core.exportVariable(name, value);
        else process.env[name] = value;
      },
      async writeSummary(markdown) {
        if (!process.env.GITHUB_STEP_SUMMARY) return;
        await core.summary.addRaw(cleanRendered(markdown), true).write();
        await capStepSummaryFile(process.env.GITHUB_STEP_SUMMARY);
      },
    });
  } catch (error) {
    if (isExpectedError(error)) core.setFailed(clean(error.message));
    else core.setFailed(clean(error instanceof Error ? (error.stack ?? error.message) : String(error)));
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
