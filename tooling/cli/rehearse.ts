import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { formatDuration } from '../../packages/core/index.ts';
import { RepoLayoutError, readRepoLayout } from '../rehearse/layout.ts';
import { ENVIRONMENTS, endingOf, finalState, rehearse, stepErrors } from '../rehearse/rehearse.ts';
import { buildOf } from '../rehearse/report.ts';
import { SCENARIOS, type ScenarioName, STRATEGIES, type Strategy } from '../rehearse/scenarios.ts';
import { LogMasker } from '../runners/log-masker.ts';
import type { RunnerEvent } from '../runners/workflow-runner.ts';
import type { CliIo } from './environments.ts';

export const REHEARSE_USAGE = `Usage: pipeline rehearse [options]

Plays a service's release from a feature branch through dev, staging and production, running the
real reusable workflows and the built actions against an embedded Kubernetes API, a throwaway
PostgreSQL and local Slack and GitHub endpoints. The service is examples/shop, or the repository
--repo names, laid out the same way: a workflow in .github/workflows calling pipeline.yml (with
app, and strategy, kustomize-root, migrations-dir as it needs), one kustomize overlay per
environment (<kustomize-root>/dev, staging, production, each with its namespace, rendering a
Deployment and a Service named after the app), its migrations, and .github/environments.yml.

Options:
  --repo <dir>        the repository to rehearse (default: the bundled examples/shop)
  --scenario <name>   ${SCENARIOS.join(' | ')} (default healthy)
  --strategy <name>   production strategy: ${STRATEGIES.join(' | ')} (default: the one the workflow names; with --repo only the strategy: line changes, never the checks)
  --approve           approve every environment that needs reviewers, without asking
  --reject <env>      reject the approval of <env> (repeatable)
  --time-scale <n>    run the workflows' waits (soak windows, pauses) n times faster (default 60)
  --report <path>     where to write the Markdown report (default .rehearsal/report.md)
  --json <file>       also write the final state as JSON for scripts: per environment the image,
                      revision, every Deployment's replicas and ConfigMap data, the migrations
                      applied; the Slack messages; the GitHub deployments and their statuses
  --verbose           print the steps' own output
  -h, --help          show this help

Without --approve or --reject, a terminal asks at each approval; without a terminal, approvals
are granted and the report says so.
Exit code: 0 when the scenario ended as expected (or as rejected, with --reject production), 1 when
it did not, 2 for bad options or a repository not laid out as described.`;

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export async function runRehearseCommand(args: string[], io: CliIo): Promise<number> {
  let values: ReturnType<typeof parse>;
  function parse() {
    return parseArgs({
      args,
      options: {
        scenario: { type: 'string', default: 'healthy' },
        strategy: { type: 'string' },
        approve: { type: 'boolean', default: false },
        reject: { type: 'string', multiple: true, default: [] },
        'time-scale': { type: 'string', default: '60' },
        report: { type: 'string', default: '.rehearsal/report.md' },
        repo: { type: 'string' },
        json: { type: 'string' },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      allowPositionals: false,
    }).values;
  }
  try {
    values = parse();
  } catch (error) {
    io.stderr(`error: ${(error as Error).message}\n\n${REHEARSE_USAGE}\n`);
    return 2;
  }
  if (values.help) {
    io.stdout(`${REHEARSE_USAGE}\n`);
    return 0;
  }
  const scenario = values.scenario as ScenarioName;
  if (!SCENARIOS.includes(scenario)) {
    io.stderr(
      `error: --scenario has ${JSON.stringify(values.scenario)}; accepted: ${SCENARIOS.join(', ')}\n`,
    );
    return 2;
  }
  const strategy = values.strategy as Strategy | undefined;
  if (strategy !== undefined && !STRATEGIES.includes(strategy)) {
    io.stderr(
      `error: --strategy has ${JSON.stringify(values.strategy)}; accepted: ${STRATEGIES.join(', ')}\n`,
    );
    return 2;
  }
  const timeScale = Number(values['time-scale']);
  if (!Number.isFinite(timeScale) || timeScale < 1 || timeScale > 10_000) {
    io.stderr(
      `error: --time-scale has ${JSON.stringify(values['time-scale'])}; accepted: a number from 1 to 10000\n`,
    );
    return 2;
  }
  const rejected = new Set(values.reject as string[]);
  for (const env of rejected) {
    if (!(ENVIRONMENTS as readonly string[]).includes(env)) {
      io.stderr(`error: --reject has ${JSON.stringify(env)}; accepted: ${ENVIRONMENTS.join(', ')}\n`);
      return 2;
    }
  }
  let repo: string | undefined;
  if (values.repo !== undefined) {
    repo = resolve(values.repo as string);
    try {
      readRepoLayout(repo);
    } catch (error) {
      if (!(error instanceof RepoLayoutError)) throw error;
      io.stderr(`error: --repo: ${error.message}\n`);
      return 2;
    }
  }
  const interactive =
    Boolean(process.stdin.isTTY && process.stdout.isTTY) && !values.approve && rejected.size === 0;
  const fancy = Boolean(process.stdout.isTTY);
  const started = performance.now();
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1).padStart(5)}s`;

  let spinner: NodeJS.Timeout | undefined;
  let current = '';
  const clearLine = () => {
    if (fancy && current) io.stdout('\r\x1b[2K');
  };
  const print = (line: string) => {
    clearLine();
    io.stdout(`${line}\n`);
    if (fancy && current) io.stdout(`  ${current}`);
  };
  const wait = (text: string | undefined) => {
    if (spinner) clearInterval(spinner);
    clearLine();
    current = text ?? '';
    if (!fancy || !text) return;
    let i = 0;
    spinner = setInterval(() => {
      io.stdout(`\r\x1b[2K${SPINNER[i++ % SPINNER.length]} ${elapsed()}  ${current}`);
    }, 100);
    spinner.unref();
  };

  // The steps' output as the runner would show it: their ::add-mask:: lines hide values, never show them.
  const masker = new LogMasker();
  const onEvent = (e: RunnerEvent | { type: 'phase'; text: string }) => {
    switch (e.type) {
      case 'phase':
        print(`${elapsed()}  ▸ ${e.text}`);
        break;
      case 'job-start':
        print(`${elapsed()}  ┌ ${e.job.path}${e.job.environment ? ` (${e.job.environment})` : ''}`);
        break;
      case 'job-end':
        if (e.job.conclusion === 'skipped')
          print(`${elapsed()}  ⏭ ${e.job.path} skipped${e.job.reason ? `: ${e.job.reason}` : ''}`);
        else
          print(
            `${elapsed()}  └ ${e.job.path}: ${e.job.conclusion === 'success' ? '✅ success' : `❌ ${e.job.conclusion}`}${e.job.reason ? ` (${e.job.reason})` : ''} in ${formatDuration(e.job.durationMs)}`,
          );
        break;
      case 'step-start':
        wait(`${e.job.path} › ${e.step.name}`);
        break;
      case 'step-end': {
        wait(undefined);
        const icon =
          e.step.kind === 'skipped-action'
            ? '⏭'
            : e.step.conclusion === 'success'
              ? '✓'
              : e.step.conclusion === 'failure'
                ? '✗'
                : '–';
        const note =
          e.step.kind === 'skipped-action'
            ? ' (not run locally)'
            : e.step.error
              ? `: ${masker.redact(e.step.error.split('\n')[0] ?? '')}`
              : '';
        print(
          `${elapsed()}  │ ${icon} ${e.step.name} ${e.step.kind === 'skipped-action' ? '' : formatDuration(e.step.durationMs)}${note}`,
        );
        // A run: step's error is only its exit code; what went wrong is in its ::error:: lines
        // (already masked by the runner), as GitHub shows them above the log.
        if (e.step.conclusion === 'failure')
          for (const message of stepErrors(e.step)) print(`${elapsed()}  │     ::error:: ${message}`);
        break;
      }
      case 'approval':
        print(
          `${elapsed()}  │ ${e.approved ? '👍 approved' : '👎 rejected'}: deployment to ${e.environment}`,
        );
        break;
      case 'output':
        // Fed even when not shown: a step's masks must be known before any later line is printed.
        for (const line of masker.push(e.job.path, e.text))
          if (values.verbose && line) print(`         ${line}`);
        break;
    }
  };

  const approve = async (environment: string): Promise<boolean> => {
    if (rejected.has(environment)) return false;
    if (values.approve || !interactive) return true;
    wait(undefined);
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    try {
      const answer = await rl.question(
        `\n  ⏸  ${environment} needs a reviewer's approval. Approve the deployment to ${environment}? [y/N] `,
      );
      return /^y(es)?$/i.test(answer.trim());
    } finally {
      rl.close();
    }
  };

  io.stdout(`Rehearsing scenario '${scenario}' (waits ${timeScale}x faster than real time)\n`);
  // Ctrl-C would end the process at once, leaving PostgreSQL's data directory and the workspace
  // in /tmp: exit instead, so the exit hooks stop the servers and remove what the rehearsal made.
  const interrupted = (signal: NodeJS.Signals) => {
    wait(undefined);
    io.stderr(`\nInterrupted (${signal}): stopping the rehearsal and removing its temporary files\n`);
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    const result = await rehearse({
      scenario,
      ...(strategy ? { strategy } : {}),
      approve,
      timeScale,
      reportPath: values.report as string,
      ...(repo ? { example: repo } : {}),
      onEvent,
    });
    if (values.json) {
      const file = resolve(values.json as string);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, `${JSON.stringify(finalState(result), null, 2)}\n`);
    }
    wait(undefined);
    io.stdout('\n');
    for (const s of result.state) {
      const which = buildOf(s.image, result.images) ?? s.image ?? 'nothing';
      io.stdout(
        `  ${s.environment.padEnd(11)} ${which.padEnd(17)} revision ${(s.revision ?? '-').padEnd(3)} migrations ${s.migrations.join(',') || '-'}\n`,
      );
    }
    io.stdout(
      `\n  Slack messages: ${result.slack.filter((m) => !m.threadTs).length} (+${result.slack.filter((m) => m.threadTs).length} thread replies), GitHub deployments: ${result.deployments.length}\n`,
    );
    io.stdout(`  Report: ${result.reportPath}\n`);
    if (values.json) io.stdout(`  Final state (JSON): ${resolve(values.json as string)}\n`);
    io.stdout(`  Time: ${formatDuration(result.durationMs)}\n\n`);
    if (result.ok) {
      io.stdout(`✅ Scenario '${scenario}' ended as expected.\n`);
      return 0;
    }
    // An approval rejected on purpose ends the release there: the ending asked for.
    const last = result.runs.at(-1)?.run;
    const asked = last?.jobs.find(
      (j) => j.environment && rejected.has(j.environment) && /rejected/.test(j.reason ?? ''),
    );
    if (asked && last && endingOf(last) === 'rejected') {
      io.stdout(
        `✅ Scenario '${scenario}' ended as rejected at the ${asked.environment} approval, as asked (--reject ${asked.environment}).\n`,
      );
      return 0;
    }
    io.stdout(
      `❌ Scenario '${scenario}' did not end as expected:\n${result.mismatches.map((m) => `   - ${m}\n`).join('')}`,
    );
    return 1;
  } catch (error) {
    wait(undefined);
    io.stderr(`\nerror: the rehearsal could not run: ${(error as Error).message}\n`);
    return 1;
  } finally {
    if (spinner) clearInterval(spinner);
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
  }
}
