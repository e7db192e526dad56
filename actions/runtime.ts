import { appendFileSync, existsSync } from 'node:fs';
import { type Inputs, parseInputs, type Schema } from '../packages/config/index.ts';
import { type RunContext, readRunContext } from '../packages/config/run-context.ts';
import { escapeMarkdown } from '../packages/core/escape.ts';
import type { Clock, Logger } from '../packages/core/index.ts';
import {
  clockFromEnvironment,
  fileCommandRecord,
  isExpectedError,
  PipelineError,
  redactSecrets,
  workflowCommand,
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

// The runner's protocol as GitHub documents it ("Workflow commands for GitHub Actions"), written
// here rather than through @actions/core: the handful of commands an action step uses, without
// the toolkit's start-up (it loads child_process, fs/promises and its exec and io helpers for
// every step).
const command = (name: string, message: string) => process.stdout.write(workflowCommand(name, message));

/** An input as the runner passes it: INPUT_<NAME>, spaces as underscores, upper case, trimmed. */
function getInput(name: string): string {
  return (process.env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] ?? '').trim();
}

/** Appends a record to a file command the runner created (GITHUB_OUTPUT, GITHUB_ENV, ...). */
function appendFileCommand(variable: string, text: string): void {
  const path = process.env[variable];
  if (!path) throw new Error(`Unable to find environment variable for file command ${variable}`);
  if (!existsSync(path)) throw new Error(`Missing file at path: ${path}`);
  appendFileSync(path, text, 'utf8');
}

function setOutput(name: string, value: string): void {
  if (process.env.GITHUB_OUTPUT) appendFileCommand('GITHUB_OUTPUT', fileCommandRecord(name, value));
  // Outside a runner (a local run), the deprecated command at least shows the value.
  else process.stdout.write(`\n${workflowCommand('set-output', value, { name })}`);
}

/** Fails the step: exit code 1 once the step ends, and the message as an error annotation. */
function setFailed(message: string): void {
  process.exitCode = 1;
  command('error', message);
}

/** The engines' Logger backed by the runner's workflow commands. */
const actionsLogger: Logger = {
  debug: (m) => command('debug', clean(m)),
  info: (m) => process.stdout.write(`${clean(m)}\n`),
  warning: (m) => command('warning', clean(m)),
  error: (m) => command('error', clean(m)),
  async group(title, body) {
    command('group', clean(title));
    try {
      return await body();
    } finally {
      command('endgroup', '');
    }
  },
  mask: (secret) => {
    if (!secret || masked.has(secret)) return;
    masked.add(secret);
    command('add-mask', secret);
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
    const inputs = parseInputs(schema, getInput, actionsLogger.mask);
    const run = readRunContext(process.env);
    await body({
      inputs,
      run,
      log: actionsLogger,
      clock: clockFromEnvironment(process.env),
      cancelled: cancellation.signal,
      lockHolder: `${run.repository}/${run.workflow}#${run.runId}.${run.runAttempt}/${run.job}`,
      setOutput: (name, value) =>
        setOutput(name, typeof value === 'string' ? cleanRendered(value) : String(value)),
      exportVariable: (name, value) => {
        process.env[name] = value;
        // Outside a runner there is no GITHUB_ENV (the old ::set-env:: command is refused by GitHub).
        if (process.env.GITHUB_ENV) appendFileCommand('GITHUB_ENV', fileCommandRecord(name, value));
      },
      async writeSummary(markdown) {
        if (!process.env.GITHUB_STEP_SUMMARY) return;
        appendFileCommand('GITHUB_STEP_SUMMARY', `${cleanRendered(markdown)}\n`);
        await capStepSummaryFile(process.env.GITHUB_STEP_SUMMARY);
      },
    });
  } catch (error) {
    if (isExpectedError(error)) setFailed(clean(error.message));
    else setFailed(clean(error instanceof Error ? (error.stack ?? error.message) : String(error)));
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
