import { appendFile, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  errorMessage,
  isExpectedError,
  type Logger,
  redact,
  workflowCommand,
} from '../../packages/core/index.ts';
import { createOctokit } from '../../packages/github/client.ts';
import {
  applyEnvironmentsPlan,
  formatEnvironmentsPlan,
  parseEnvironmentsConfig,
  planEnvironments,
  planHasChanges,
} from '../../packages/github/environments.ts';

/** What a CLI command may touch of the process: tests pass their own. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Record<string, string | undefined>;
  cwd: string;
}

export const ENVIRONMENTS_USAGE = `Usage: pipeline environments <plan|apply> [options]

Creates or updates the repository's GitHub environments (required reviewers, wait timer,
deployment branch policies, variables) from a declarative YAML file. Shows the plan first;
only 'apply --apply' changes anything.

Options:
  --config <file>    environments file (default: .github/environments.yml)
  --repo <owner/name> repository (default: GITHUB_REPOSITORY)
  --apply            with 'apply': make the changes the plan shows
  -h, --help         show this help

Environment: GITHUB_TOKEN (required; administration: write), GITHUB_API_URL
(default https://api.github.com).`;

class UsageError extends Error {}

/** Exit codes: 0 done (or nothing to do), 1 failed, 2 bad usage. */
export async function runEnvironmentsCommand(args: string[], io: CliIo): Promise<number> {
  const secrets: string[] = [];
  const out = (text: string) => io.stdout(`${redact(text, secrets)}\n`);
  const inActions = io.env.GITHUB_ACTIONS === 'true';
  const fail = (message: string) => {
    const text = redact(message, secrets);
    io.stderr(inActions ? workflowCommand('error', text) : `error: ${text}\n`);
  };
  const logger: Logger = {
    debug() {},
    info: (m) => out(m),
    warning: (m) =>
      io.stderr(
        inActions ? workflowCommand('warning', redact(m, secrets)) : `warning: ${redact(m, secrets)}\n`,
      ),
    error: (m) => fail(m),
    group: (_title, body) => body(),
    mask: (s) => {
      if (s) secrets.push(s);
    },
  };

  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine(args);
  } catch (error) {
    io.stderr(`error: ${errorMessage(error)}\n\n${ENVIRONMENTS_USAGE}\n`);
    return 2;
  }
  if (parsed.help) {
    io.stdout(`${ENVIRONMENTS_USAGE}\n`);
    return 0;
  }

  // The token is known from here on: everything printed goes through redact().
  const token = io.env.GITHUB_TOKEN ?? '';
  logger.mask(token);
  try {
    const repository = parsed.repo ?? io.env.GITHUB_REPOSITORY ?? '';
    const repoMatch = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/.exec(repository);
    if (!repoMatch) {
      throw new UsageError(
        repository
          ? `--repo ${JSON.stringify(repository)} is not owner/name`
          : 'no repository: pass --repo owner/name or set GITHUB_REPOSITORY',
      );
    }
    const configPath = resolve(io.cwd, parsed.config);
    let text: string;
    try {
      text = await readFile(configPath, 'utf8');
    } catch (error) {
      throw new UsageError(`cannot read the environments file ${parsed.config}: ${errorMessage(error)}`);
    }
    // Validate the whole file before the first request.
    const config = parseEnvironmentsConfig(text, parsed.config);
    if (!token)
      throw new UsageError('GITHUB_TOKEN is not set (a token with administration: write on the repository)');

    const octokit = createOctokit({ token, apiUrl: io.env.GITHUB_API_URL || 'https://api.github.com' });
    const target = { owner: repoMatch[1]!, repo: repoMatch[2]! };
    const plan = await planEnvironments(octokit, target, config, { logger });
    const planText = formatEnvironmentsPlan(plan);
    out(planText);
    await writeSummary(io, planText, parsed.apply);

    if (!planHasChanges(plan)) {
      out('\nNothing to change.');
      return 0;
    }
    if (!parsed.apply) {
      out(
        parsed.command === 'plan'
          ? '\nThis was a plan: nothing was changed.'
          : '\nNothing was changed: run again with --apply to make these changes.',
      );
      return 0;
    }
    out('');
    const applied = await applyEnvironmentsPlan(octokit, plan, { logger });
    const requests = applied.reduce((n, a) => n + a.requests, 0);
    out(
      `\nApplied: ${applied.filter((a) => a.requests > 0).length} environment(s) changed with ${requests} request(s).`,
    );
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      fail(error.message);
      return 2;
    }
    fail(isExpectedError(error) ? error.message : ((error as Error).stack ?? errorMessage(error)));
    return 1;
  }
}

function parseCommandLine(args: string[]) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string', default: '.github/environments.yml' },
      repo: { type: 'string' },
      apply: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return { help: true, command: 'plan', config: values.config, apply: false } as const;
  const [command, ...extra] = positionals;
  if (command !== 'plan' && command !== 'apply') {
    throw new Error(command ? `unknown subcommand '${command}'` : 'a subcommand is needed: plan or apply');
  }
  if (extra.length > 0) throw new Error(`unexpected argument '${extra[0]}'`);
  if (command === 'plan' && values.apply) {
    throw new Error("'plan' never changes anything: use 'apply --apply'");
  }
  return { help: false, command, config: values.config, repo: values.repo, apply: values.apply } as const;
}

async function writeSummary(io: CliIo, planText: string, applying: boolean): Promise<void> {
  const file = io.env.GITHUB_STEP_SUMMARY;
  if (!file) return;
  const title = applying ? 'Environments: applied plan' : 'Environments: plan (nothing changed)';
  await appendFile(file, `### ${title}\n\n\`\`\`diff\n${planText}\n\`\`\`\n`);
}
