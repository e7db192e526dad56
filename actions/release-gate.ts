import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineInputs, input } from '../packages/config/index.ts';
import { yamlInput } from '../packages/config/yaml-input.ts';
import { InputError, PipelineError } from '../packages/core/index.ts';
import {
  parseSchedule,
  RULE_FORMS,
  type Schedule,
  ScheduleError,
  type ScheduleSpec,
} from '../packages/core/schedule.ts';
import {
  type BreakGlassDecision,
  BreakGlassError,
  decide,
  decideBreakGlass,
  FREEZE_FORM,
  type Freeze,
  FreezeError,
  parseAllowed,
  parseFreezes,
} from '../packages/release/index.ts';
import { renderGateSummary } from '../packages/release/summary.ts';
import { runAction } from './runtime.ts';

const WINDOWS_FORM = `a schedule {timezone, allow, deny, holidays} with rules ${RULE_FORMS.replace(/^a rule /, '')}, or a map of environment names to schedules`;
const SCHEDULE_KEYS = ['timezone', 'allow', 'deny', 'holidays'];

type WindowsLookup = ((environment: string) => Schedule | undefined) & { names: string[] };

function windowsFor(doc: unknown, name: string): WindowsLookup {
  if (doc === null || doc === undefined || doc === '') return Object.assign(() => undefined, { names: [] });
  if (typeof doc !== 'object' || Array.isArray(doc))
    throw new InputError(name, 'is not a mapping', WINDOWS_FORM);
  const map = doc as Record<string, unknown>;
  const single = Object.keys(map).some((k) => SCHEDULE_KEYS.includes(k));
  const specs = single ? { '*': map } : map;
  const parsed = new Map<string, Schedule>();
  for (const [env, spec] of Object.entries(specs)) {
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec))
      throw new InputError(
        name,
        `gives ${JSON.stringify(env)} a schedule that is not a mapping`,
        WINDOWS_FORM,
      );
    const unknown = Object.keys(spec).find((k) => !SCHEDULE_KEYS.includes(k));
    if (unknown) throw new InputError(name, `has the unknown key ${JSON.stringify(unknown)}`, WINDOWS_FORM);
    const s = spec as Record<string, unknown>;
    for (const key of ['allow', 'deny', 'holidays'])
      if (s[key] !== undefined && !Array.isArray(s[key]))
        throw new InputError(name, `has ${key} that is not a list`, WINDOWS_FORM);
    // GitHub treats environment names case-insensitively, so the map's keys are too.
    const key = env.toLowerCase();
    if (parsed.has(key))
      throw new InputError(name, `names the environment ${JSON.stringify(env)} twice`, WINDOWS_FORM);
    try {
      parsed.set(key, parseSchedule(spec as ScheduleSpec));
    } catch (error) {
      if (error instanceof ScheduleError)
        throw new InputError(name, `is refused: ${error.message}`, WINDOWS_FORM);
      throw error;
    }
  }
  return Object.assign((environment: string) => parsed.get(environment.toLowerCase()) ?? parsed.get('*'), {
    names: Object.keys(specs),
  });
}

const MODES = ['check', 'known-good', 'pin'] as const;

export const schema = defineInputs({
  mode: input.enum(MODES, { default: 'check' }),
  environment: input.string({
    required: true,
    pattern: /^[\w.-]+$/,
    accepted: 'a GitHub environment name (letters, digits, -, _ and .)',
  }),
  app: input.string(),
  windows: yamlInput(windowsFor, { accepted: WINDOWS_FORM }),
  freeze: input.string(),
  pin: input.string(),
  'freeze-file': input.string(),
  'break-glass': input.string(),
  'break-glass-allowed': input.list({ accepted: 'GitHub logins and @org/team slugs' }),
  actor: input.string(),
  checkpoint: input.string({ default: 'before the deploy' }),
  'github-token': input.secret(),
  'pin-token': input.secret(),
  'record-blocked': input.boolean({ default: 'true' }),
  'deployment-id': input.integer({
    min: 1,
    accepted: 'the numeric ID of a successful GitHub deployment of the environment',
  }),
  'schema-version': input.string({
    pattern: /^(\d+(\.\d+)*)?$/,
    accepted:
      "the database's current migration version (the current-version output of run-migrations status)",
  }),
  'down-migrations': input.boolean({ default: 'false' }),
  wait: input.duration({ default: '0s', maxMs: 24 * 3_600_000 }),
  'freeze-variable': input.string({
    pattern: /^[A-Za-z_][A-Za-z0-9_]*$/,
    accepted: 'the name of a repository variable, such as PIPELINE_FREEZE',
  }),
  reason: input.string(),
  stages: input.string(),
  summary: input.boolean({ default: 'true' }),
});

function freezesFrom(text: string | undefined, name: string, source: string): Freeze[] {
  try {
    return parseFreezes(text ?? '', source);
  } catch (error) {
    if (error instanceof FreezeError) throw new InputError(name, `is refused: ${error.message}`, FREEZE_FORM);
    throw error;
  }
}

/** notify's stages with this environment's stage skipped when blocked (notify refuses a stage named twice). */
function stagesAfter(stages: string, environment: string, blocked: boolean): string {
  if (!blocked) return stages;
  const pairs = stages
    .split(/[,\n]/)
    .map((p) => p.trim())
    .filter((p) => p !== '');
  const mine = `${environment}=skipped`;
  const at = pairs.findIndex((p) => p.split('=')[0]!.trim() === environment);
  if (at >= 0) pairs[at] = mine;
  else pairs.push(mine);
  return pairs.join(',');
}

type Context = Parameters<Parameters<typeof runAction<typeof schema>>[1]>[0];

async function githubOf(ctx: Context) {
  if (!ctx.inputs.githubToken)
    throw new InputError(
      'github-token',
      `is required with mode ${ctx.inputs.mode}`,
      'a token with deployments: read (known-good) or environment variables: write (pin)',
    );
  const gh = await import('../packages/github/client.ts');
  return gh.createOctokit({ token: ctx.inputs.githubToken, apiUrl: ctx.run.apiUrl });
}

/** known-good: which earlier deployment to return to, and whether the database still fits it. */
async function knownGood(ctx: Context): Promise<void> {
  const { inputs, run, log, setOutput, writeSummary } = ctx;
  const app = inputs.app || run.repo;
  if (inputs.schemaVersion === undefined)
    throw new InputError(
      'schema-version',
      'is required with mode known-good (use 0 for a database without migrations)',
      'the current-version output of run-migrations status, or 0',
    );
  const octokit = await githubOf(ctx);
  const { listDeployments } = await import('../packages/release/records.ts');
  const { checkSchema, KnownGoodError, pickKnownGood, releaseOf } = await import(
    '../packages/release/known-good.ts'
  );
  const deployments = await listDeployments(
    octokit,
    { owner: run.owner, repo: run.repo, environment: inputs.environment },
    { onRetry: (m) => log.warning(m) },
  );
  let target: ReturnType<typeof pickKnownGood>;
  try {
    target = pickKnownGood(deployments, app, inputs.environment, inputs.deploymentId ?? 'previous');
  } catch (error) {
    if (error instanceof KnownGoodError) throw new PipelineError(`Nothing was changed: ${error.message}`);
    throw error;
  }
  const release = releaseOf(target);
  const schemaCheck = checkSchema(release, inputs.schemaVersion, inputs.downMigrations);
  const image = Object.values(release.images)[0]!;
  const line = `${inputs.environment}: return to deployment ${target.id} (${image}, commit ${target.sha.slice(0, 12)}); ${schemaCheck.line}`;
  setOutput('deployment-id', target.id);
  setOutput('sha', target.sha);
  setOutput('image', image);
  setOutput('config-hash', release.configHash ?? '');
  setOutput('migrations-version', release.migrationsVersion ?? '');
  setOutput('strategy', release.strategy ?? '');
  setOutput('down-to', schemaCheck.downTo ?? '');
  setOutput('up-to', schemaCheck.upTo ?? '');
  setOutput('line', line);
  if (!schemaCheck.ok) throw new PipelineError(`Nothing was changed: ${schemaCheck.line}`);
  log.info(line);
  if (inputs.summary)
    await writeSummary(
      `### Return to a known-good release: ${inputs.environment}\n\n| | |\n|---|---|\n| deployment | ${target.id} of ${target.createdAt} |\n| image | \`${image}\` |\n| commit | \`${target.sha}\` |\n| configuration | ${release.configHash ? `\`${release.configHash.slice(0, 19)}…\`` : 'not recorded'} |\n| schema | ${schemaCheck.line} |\n`,
    );
}

/** pin: freeze the environment on the release a rollback returned to, until someone deletes the variable. */
async function pin(ctx: Context, now: number): Promise<void> {
  const { inputs, run, log, setOutput, writeSummary } = ctx;
  if (!inputs.reason?.trim())
    throw new InputError(
      'reason',
      'is required with mode pin',
      'why the environment is pinned, shown to whoever is blocked by it',
    );
  const octokit = await githubOf(ctx);
  const { freezeDocument } = await import('../packages/release/freeze.ts');
  const { PIN_VARIABLE, setEnvironmentVariable } = await import('../packages/release/records.ts');
  const by = inputs.actor || run.actor || 'rollback';
  const value = freezeDocument({
    environments: [inputs.environment],
    by,
    at: new Date(now).toISOString(),
    reason: inputs.reason.trim(),
  });
  await setEnvironmentVariable(
    octokit,
    { owner: run.owner, repo: run.repo, environment: inputs.environment },
    PIN_VARIABLE,
    value,
    {
      onRetry: (m) => log.warning(m),
    },
  );
  const line = `${inputs.environment}: pinned by ${by}: ${inputs.reason.trim()}; deploys are blocked until the ${PIN_VARIABLE} variable of the ${inputs.environment} environment is deleted`;
  setOutput('freeze', value.trim());
  setOutput('line', line);
  log.info(line);
  // The reason is free text from a workflow_dispatch input: escaped, as the check's table is.
  const { escapeMarkdown } = await import('../packages/core/escape.ts');
  if (inputs.summary)
    await writeSummary(`### Pinned: ${escapeMarkdown(inputs.environment)}\n\n${escapeMarkdown(line)}\n`);
}

export async function main(): Promise<void> {
  await runAction(schema, async (ctx) => {
    const { inputs, run, log, clock, setOutput, writeSummary } = ctx;
    // The local runner's controlled clock (tests and rehearsal only); GitHub never sets it.
    const fixedNow = process.env.PIPELINE_NOW ? Date.parse(process.env.PIPELINE_NOW) : Number.NaN;
    if (inputs.mode === 'known-good') return knownGood(ctx);
    if (inputs.mode === 'pin') return pin(ctx, Number.isFinite(fixedNow) ? fixedNow : clock.now());
    const environment = inputs.environment;
    const freezes = [
      ...freezesFrom(inputs.freeze, 'freeze', 'vars.PIPELINE_FREEZE'),
      ...freezesFrom(inputs.pin, 'pin', 'vars.PIPELINE_PIN'),
    ];
    if (inputs.freezeFile) {
      const path = resolve(process.env.GITHUB_WORKSPACE || process.cwd(), inputs.freezeFile);
      if (!existsSync(path) || !statSync(path).isFile())
        throw new InputError(
          'freeze-file',
          `names ${inputs.freezeFile}, which is not a file`,
          'a path in the workspace, such as platform/freezes.yml',
        );
      if (statSync(path).size > 1024 * 1024)
        throw new InputError(
          'freeze-file',
          `names ${inputs.freezeFile}, over 1 MiB`,
          'a freeze file under 1 MiB',
        );
      freezes.push(...freezesFrom(readFileSync(path, 'utf8'), 'freeze-file', inputs.freezeFile));
    }
    let allowed: string[] = [];
    try {
      allowed = parseAllowed(inputs.breakGlassAllowed ?? []);
    } catch (error) {
      if (error instanceof BreakGlassError)
        throw new InputError(
          'break-glass-allowed',
          `has ${error.message}`,
          'GitHub logins and @org/team slugs',
        );
      throw error;
    }
    const schedule = inputs.windows?.(environment);
    if (inputs.windows && !schedule && inputs.windows.names.length > 0)
      log.warning(
        `windows names ${inputs.windows.names.join(', ')} and no "*": nothing limits when ${environment} deploys (a typo in an environment name?)`,
      );
    // PIPELINE_NOW fixes where the local runner's clock starts; it still runs (scaled) from there.
    const clockStart = clock.now();
    const nowAt = () => (Number.isFinite(fixedNow) ? fixedNow : clockStart) + (clock.now() - clockStart);
    let now = nowAt();
    const actor = inputs.actor || run.actor;

    const gh =
      inputs.githubToken || inputs.pinToken ? await import('../packages/github/client.ts') : undefined;
    const octokit = inputs.githubToken
      ? gh?.createOctokit({ token: inputs.githubToken, apiUrl: run.apiUrl })
      : undefined;
    if (inputs.freezeVariable && !octokit)
      throw new InputError(
        'freeze-variable',
        'needs github-token to read the variable',
        'a token that may read the repository variables',
      );
    // A workflow reads vars.* once, when its job starts; a wait reads the variable itself, so a
    // freeze lifted while the deploy waits is seen at once.
    const readVariableFreezes = async (): Promise<Freeze[]> => {
      if (!inputs.freezeVariable || !gh || !octokit) return [];
      try {
        const { data } = await gh.withGitHubRetry(`Reading the variable ${inputs.freezeVariable}`, () =>
          octokit.request('GET /repos/{owner}/{repo}/actions/variables/{name}', {
            owner: run.owner,
            repo: run.repo,
            name: inputs.freezeVariable!,
          }),
        );
        return freezesFrom(
          (data as { value?: string }).value,
          'freeze-variable',
          `vars.${inputs.freezeVariable}`,
        );
      } catch (error) {
        const cause = (error as { cause?: { status?: number; cause?: { status?: number } } }).cause;
        if ((cause?.status ?? cause?.cause?.status) === 404) return [];
        throw error;
      }
    };
    // A job without `environment:` (the gate before the approval, the production plan) never sees
    // the environment's vars.PIPELINE_PIN: with a token that may read its variables, the gate
    // reads the pin itself, so no one is asked to approve a pinned environment.
    const pinOctokit =
      inputs.pinToken && gh ? gh.createOctokit({ token: inputs.pinToken, apiUrl: run.apiUrl }) : undefined;
    const readPin = async (): Promise<Freeze[]> => {
      if (!pinOctokit || !gh) return [];
      try {
        const { data } = await gh.withGitHubRetry(
          `Reading the PIPELINE_PIN variable of the ${environment} environment`,
          () =>
            pinOctokit.request('GET /repos/{owner}/{repo}/environments/{environment_name}/variables/{name}', {
              owner: run.owner,
              repo: run.repo,
              environment_name: environment,
              name: 'PIPELINE_PIN',
            }),
          { onRetry: (m) => log.warning(m) },
        );
        return freezesFrom((data as { value?: string }).value, 'pin-token', 'vars.PIPELINE_PIN');
      } catch (error) {
        if (error instanceof InputError) throw error;
        const cause = (error as { cause?: { status?: number; cause?: { status?: number } } }).cause;
        if ((cause?.status ?? cause?.cause?.status) === 404) return [];
        log.warning(
          `Could not read the PIPELINE_PIN variable of ${environment} (${(error as Error).message}): a pin is not seen here; the deploy job's gate still honours it`,
        );
        return [];
      }
    };
    // The variable, read now, stands for the freeze input (its value when the job started).
    const fixedFreezes = (
      inputs.freezeVariable ? freezes.filter((f) => f.source !== 'vars.PIPELINE_FREEZE') : freezes
    ).filter((f) => !(pinOctokit && f.source === 'vars.PIPELINE_PIN'));
    const readAll = async (): Promise<Freeze[]> =>
      inputs.freezeVariable || pinOctokit
        ? [...fixedFreezes, ...(await readVariableFreezes()), ...(await readPin())]
        : freezes;
    let current = await readAll();
    let breakGlass: BreakGlassDecision | undefined;
    const first = decide({ environment, now, ...(schedule ? { schedule } : {}), freezes: current });
    if (inputs.breakGlass && first.state === 'blocked') {
      if (!actor)
        throw new InputError(
          'actor',
          'is empty and GITHUB_ACTOR is not set',
          'the GitHub login breaking glass',
        );
      breakGlass = await decideBreakGlass(
        { reason: inputs.breakGlass, actor, allowed },
        async (org, team, user) => {
          if (!gh || !octokit) {
            log.warning(`Cannot ask GitHub whether ${user} is in @${org}/${team}: github-token is empty`);
            return false;
          }
          try {
            await gh.withGitHubRetry(`Looking up ${user} in @${org}/${team}`, () =>
              octokit.request('GET /orgs/{org}/teams/{team_slug}/memberships/{username}', {
                org,
                team_slug: team,
                username: user,
              }),
            );
            return true;
          } catch (error) {
            // 404 is GitHub's answer for "not a member" (and for a team the token cannot see).
            const cause = (error as { cause?: { status?: number; cause?: { status?: number } } }).cause;
            if ((cause?.status ?? cause?.cause?.status) !== 404) throw error;
            // A listed team that is not there (a typo, a renamed team) grants no one: say so.
            try {
              await gh.withGitHubRetry(`Looking up @${org}/${team}`, () =>
                octokit.request('GET /orgs/{org}/teams/{team_slug}', { org, team_slug: team }),
              );
            } catch (lookup) {
              const c = (lookup as { cause?: { status?: number; cause?: { status?: number } } }).cause;
              if ((c?.status ?? c?.cause?.status) !== 404) throw lookup;
              log.warning(
                `break-glass-allowed lists @${org}/${team}, which does not exist or the token cannot see (PIPELINE_TEAMS_TOKEN needs members: read): no one is allowed through it`,
              );
            }
            return false;
          }
        },
      );
    } else if (inputs.breakGlass) {
      log.info(`break-glass is set, but nothing blocks ${environment}: not needed, not recorded`);
    }
    let decision = breakGlass
      ? decide({ environment, now, ...(schedule ? { schedule } : {}), freezes: current, breakGlass })
      : first;
    // wait: a deploy that may go soon waits for the window to open or the freeze to lift, checking
    // again when the window changes and every minute, up to the wait.
    const deadline = now + inputs.wait;
    while (decision.state === 'blocked' && now < deadline) {
      const opens = decision.window.open
        ? Number.POSITIVE_INFINITY
        : Date.parse(decision.window.nextChange ?? '') || Number.POSITIVE_INFINITY;
      const sleepMs = Math.max(1, Math.min(60_000, opens - now, deadline - now));
      log.info(
        `${decision.line}; waiting (checking again in ${Math.ceil(sleepMs / 1000)}s, until ${new Date(deadline).toISOString()})`,
      );
      await clock.sleep(sleepMs, ctx.cancelled);
      now = nowAt();
      current = await readAll();
      decision = decide({
        environment,
        now,
        ...(schedule ? { schedule } : {}),
        freezes: current,
        ...(breakGlass ? { breakGlass } : {}),
      });
      if (decision.state !== 'blocked') log.info(`${environment}: no longer blocked after waiting`);
    }

    setOutput('state', decision.state);
    setOutput('stages', stagesAfter(inputs.stages ?? '', environment, decision.state === 'blocked'));
    setOutput('blocked', decision.state === 'blocked');
    setOutput('blocked-by', decision.blockedBy.join(','));
    setOutput('line', decision.line);
    setOutput('next-window', decision.window.open ? '' : (decision.window.nextChange ?? ''));
    setOutput('next-window-text', decision.window.open ? '' : (decision.window.nextChangeText ?? ''));
    setOutput('freeze', decision.freeze ? JSON.stringify(decision.freeze) : '');
    setOutput(
      'break-glass',
      decision.state === 'break-glass' && decision.breakGlass
        ? JSON.stringify({
            actor: decision.breakGlass.actor,
            reason: decision.breakGlass.reason,
            because: decision.breakGlass.because,
            overrode: decision.blockedBy,
            at: new Date(now).toISOString(),
          })
        : '',
    );
    if (decision.state === 'blocked') log.warning(decision.line);
    else if (decision.state === 'break-glass') log.warning(decision.line);
    else log.info(decision.line);

    let deploymentId = '';
    if (decision.state === 'blocked' && inputs.recordBlocked && gh && octokit && run.repository) {
      // GitHub has no "blocked" state: an inactive deployment whose description and payload say why.
      try {
        const deployments = await import('../packages/github/deployments.ts');
        const created = await deployments.createDeployment(
          octokit,
          {
            owner: run.owner,
            repo: run.repo,
            ref: run.sha || run.ref,
            environment,
            description: decision.line,
            payload: {
              app: inputs.app ?? run.repo,
              blocked: {
                by: decision.blockedBy,
                line: decision.line,
                checkpoint: inputs.checkpoint,
                ...(decision.freeze ? { freeze: decision.freeze } : {}),
                ...(decision.window.nextChange ? { nextWindow: decision.window.nextChange } : {}),
              },
            },
            productionEnvironment: environment === 'production',
            transientEnvironment: false,
          },
          { onRetry: (m) => log.warning(m) },
        );
        await deployments.createDeploymentStatus(
          octokit,
          {
            owner: run.owner,
            repo: run.repo,
            deploymentId: created.id,
            state: 'inactive',
            description: decision.line.slice(0, 140),
            environment,
            ...(run.runUrl ? { logUrl: run.runUrl } : {}),
          },
          { onRetry: (m) => log.warning(m) },
        );
        deploymentId = String(created.id);
      } catch (error) {
        log.warning(
          `Could not record the blocked deploy as a GitHub deployment: ${(error as Error).message}`,
        );
      }
    }
    setOutput('deployment-id', deploymentId);
    if (inputs.summary) await writeSummary(renderGateSummary(decision, environment, inputs.checkpoint));
  });
}
