import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import pg from 'pg';
import { parse as parseYaml } from 'yaml';
import { formatDuration } from '../../packages/core/index.ts';
import { KubeClient, loadKubeConfig } from '../../packages/kube/client.ts';
import { type KubeSim, startKubeSim } from '../kube-sim/index.ts';
import { type CommitRecord, LocalGitHub } from '../local-services/local-github.ts';
import { LocalSlack, type StoredMessage } from '../local-services/local-slack.ts';
import { type PostgresServer, startPostgres } from '../local-services/postgres.ts';
import { readOnlyKubeconfig } from '../local-services/read-only-access.ts';
import { REPO_ROOT } from '../runners/action-runner.ts';
import { OUR_ACTIONS } from '../runners/our-actions.ts';
import {
  type JobRecord,
  type RunnerEvent,
  type WorkflowRun,
  WorkflowRunner,
} from '../runners/workflow-runner.ts';
import { startIngress } from './ingress.ts';
import { renderReport } from './report.ts';
import {
  BAD_MIGRATION,
  expectationFor,
  imageForCommit,
  PREVIOUS_IMAGE,
  PREVIOUS_SHA,
  playsPreviousRelease,
  type ScenarioName,
  type Strategy,
} from './scenarios.ts';

export const ENVIRONMENTS = ['dev', 'staging', 'production'] as const;

export interface RehearseOptions {
  scenario: ScenarioName;
  /** Production strategy written into the caller workflow (default: the one it names, canary). */
  strategy?: Strategy;
  /** Decides approvals: a fixed answer per environment, or a prompt. */
  approve(environment: string, job: JobRecord): Promise<boolean>;
  /** How much faster than real time the workflows' waits run (soak windows, pauses, intervals). */
  timeScale: number;
  /** Where the Markdown report is written. */
  reportPath: string;
  /** The example consumer repository to rehearse. */
  example?: string;
  onEvent?(event: RunnerEvent | { type: 'phase'; text: string }): void;
}

export interface EnvironmentState {
  environment: string;
  /** The Deployment the app's Service sends traffic to (`shop`, or the live colour `shop-blue`). */
  deployment: string | undefined;
  image: string | undefined;
  revision: string | undefined;
  replicas: number | undefined;
  /** Data of the ConfigMap the live Deployment's pods read their settings from. */
  config: Record<string, string>;
  canary: string;
  migrations: string[];
}

export interface RehearseResult {
  scenario: ScenarioName;
  strategy: Strategy;
  /** The runs that played the previous release (a first release into empty environments). */
  previous: { label: string; run: WorkflowRun }[];
  ok: boolean;
  /** What differed from the scenario's expected ending, if anything. */
  mismatches: string[];
  runs: { label: string; run: WorkflowRun }[];
  state: EnvironmentState[];
  slack: StoredMessage[];
  deployments: LocalGitHub['deployments'];
  durationMs: number;
  reportPath: string;
  images: Record<'feature' | 'main' | 'previous', string>;
}

interface Services {
  sim: KubeSim;
  postgres: PostgresServer;
  slack: LocalSlack;
  github: LocalGitHub;
  databases: Record<string, string>;
  ingress: { url: string; close(): Promise<void> };
}

const FEATURE_SHA = '5f1c0d2e9a7b4c3d8e6f1a2b3c4d5e6f7a8b9c0d';
const MAIN_SHA = '9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d';
/** The example's history as LocalGitHub's compare answers it: the previous release, the feature, its merge. */
const HISTORY: CommitRecord[] = [
  { sha: PREVIOUS_SHA, message: 'Release 1.4', login: 'octocat' },
  { sha: FEATURE_SHA, message: 'Faster checkout: batch the price lookups', login: 'hubot' },
  { sha: MAIN_SHA, message: 'Merge pull request #42 from acme/feature/faster-checkout', login: 'octocat' },
].map((c, i) => ({
  ...c,
  author: { name: c.login, email: `${c.login}@example.com`, date: `2026-11-0${i + 1}T09:00:00Z` },
}));

async function startServices(scenario: ScenarioName, newImage: string): Promise<Services> {
  // The namespaces exist (the deployer's RBAC is scoped to them) and hold nothing else.
  // Everything started so far is stopped if a later start fails, so nothing keeps the process alive.
  const started: (() => Promise<unknown>)[] = [];
  try {
    const sim = await startKubeSim({
      timeScale: 50,
      namespaces: ENVIRONMENTS.map((e) => `shop-${e}`),
      images: [
        { pattern: PREVIOUS_IMAGE, http: { health: { status: 'healthy', version: 'v1.4.0' } } },
        scenario === 'crashloop'
          ? { pattern: newImage, mode: 'crash', crashAfterMs: 2000 }
          : { pattern: newImage, http: { health: { status: 'healthy', version: 'v1.5.0' } } },
      ],
    });
    started.push(() => sim.close());
    const postgres = await startPostgres();
    started.push(() => postgres.stop());
    const databases: Record<string, string> = {};
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    try {
      for (const env of ENVIRONMENTS) {
        await admin.query(`CREATE DATABASE shop_${env}`);
        databases[env] = postgres.urlFor(`shop_${env}`);
      }
      // The production plan's login (docs/environments.md): it may read production's database, never write.
      await admin.query('CREATE ROLE shop_plan LOGIN IN ROLE pg_read_all_data');
      databases['production-plan'] = databases.production!.replace(`//${postgres.user}@`, '//shop_plan@');
    } finally {
      await admin.end();
    }
    const slack = await LocalSlack.start({ tokens: ['xoxb-rehearsal'], channels: { deploys: 'C0DEPLOYS' } });
    started.push(() => slack.close());
    const github = await LocalGitHub.start({ tokens: ['ghs_rehearsal'] });
    started.push(() => github.close());
    github.seedCommits('acme', 'shop', HISTORY);
    const ingress = await startIngress(sim.url, sim.token, 'shop-staging', 'shop:80');
    return { sim, postgres, slack, github, databases, ingress };
  } catch (error) {
    await Promise.allSettled(started.reverse().map((stop) => stop()));
    throw error;
  }
}

async function stopServices(s: Services | undefined): Promise<void> {
  if (!s) return;
  await Promise.allSettled([
    s.ingress.close(),
    s.slack.close(),
    s.github.close(),
    s.postgres.stop(),
    s.sim.close(),
  ]);
}

/** The deployment branch policies of .github/environments.yml, as GitHub matches them (`*` stops at `/`). */
function branchPolicies(workspace: string): (environment: string, ref: string) => boolean {
  const file = join(workspace, '.github', 'environments.yml');
  const doc = existsSync(file)
    ? (parseYaml(readFileSync(file, 'utf8')) as {
        environments?: Record<string, { branches?: string[] } | null>;
      })
    : {};
  const patterns = new Map<string, RegExp[]>();
  for (const [name, spec] of Object.entries(doc.environments ?? {})) {
    if (!spec?.branches) continue;
    patterns.set(
      name,
      spec.branches.map(
        (p) =>
          new RegExp(
            `^${p
              .split('**')
              .map((part) =>
                part
                  .split('*')
                  .map((t) => t.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
                  .join('[^/]*'),
              )
              .join('.*')}$`,
          ),
      ),
    );
  }
  return (environment, ref) => {
    const rules = patterns.get(environment);
    if (!rules) return true;
    const branch = ref.replace(/^refs\/heads\//, '');
    return ref.startsWith('refs/heads/') && rules.some((r) => r.test(branch));
  };
}

function approvalEnvironments(workspace: string): Set<string> {
  const file = join(workspace, '.github', 'environments.yml');
  const out = new Set<string>();
  if (!existsSync(file)) return out;
  const doc = parseYaml(readFileSync(file, 'utf8')) as {
    environments?: Record<string, { reviewers?: { users?: unknown[]; teams?: unknown[] } } | null>;
  };
  for (const [name, spec] of Object.entries(doc.environments ?? {})) {
    if ((spec?.reviewers?.users?.length ?? 0) + (spec?.reviewers?.teams?.length ?? 0) > 0) out.add(name);
  }
  return out;
}

async function readState(s: Services): Promise<EnvironmentState[]> {
  const client = new KubeClient(loadKubeConfig({ kubeconfig: s.sim.kubeconfig }));
  type Live = {
    metadata: { annotations?: Record<string, string> };
    spec: {
      replicas?: number;
      template: {
        spec: { containers: { image: string; envFrom?: { configMapRef?: { name: string } }[] }[] };
      };
    };
  };
  try {
    const out: EnvironmentState[] = [];
    for (const env of ENVIRONMENTS) {
      const ns = `/apis/apps/v1/namespaces/shop-${env}/deployments`;
      const service = await client.getJson<{ spec?: { selector?: Record<string, string> } }>(
        `/api/v1/namespaces/shop-${env}/services/shop`,
      );
      const color = service?.spec?.selector?.color;
      const name = color ? `shop-${color}` : 'shop';
      const d = await client.getJson<Live>(`${ns}/${name}`);
      const canary = await client.getJson<{ spec?: { replicas?: number } }>(`${ns}/shop-canary`);
      const container = d?.spec.template.spec.containers[0];
      const configName = container?.envFrom?.find((e) => e.configMapRef)?.configMapRef?.name;
      const config = configName
        ? ((
            await client.getJson<{ data?: Record<string, string> }>(
              `/api/v1/namespaces/shop-${env}/configmaps/${configName}`,
            )
          )?.data ?? {})
        : {};
      const db = new pg.Client({ connectionString: s.databases[env] });
      await db.connect();
      let migrations: string[] = [];
      try {
        const r = await db.query<{ version: string }>(
          'SELECT version::text AS version FROM schema_migrations WHERE success ORDER BY version',
        );
        migrations = r.rows.map((row) => row.version);
      } catch {
        migrations = [];
      } finally {
        await db.end();
      }
      out.push({
        environment: env,
        deployment: d ? name : undefined,
        image: container?.image,
        revision: d?.metadata.annotations?.['deployment.kubernetes.io/revision'],
        replicas: d?.spec.replicas,
        config,
        canary: canary ? `present with ${canary.spec?.replicas ?? 0} replicas` : 'none',
        migrations,
      });
    }
    return out;
  } finally {
    client.close();
  }
}

/** How a run of the caller ended, from the pipeline's `ended` output. */
export function endingOf(run: WorkflowRun): string {
  const caller = run.jobs.find((j) => j.path === 'pipeline') ?? run.jobs.find((j) => j.path === 'rollback');
  return caller?.outputs.ended ?? '';
}

function compare(
  scenario: ScenarioName,
  strategy: Strategy,
  runs: { label: string; run: WorkflowRun }[],
  state: EnvironmentState[],
  images: Record<'feature' | 'main' | 'previous', string>,
): string[] {
  const expected = expectationFor(scenario, strategy);
  const problems: string[] = [];
  const byEnv = Object.fromEntries(state.map((s) => [s.environment, s]));
  for (const [env, build] of Object.entries(expected.images)) {
    if (build === 'none') {
      if (byEnv[env]?.image) problems.push(`${env} should run nothing but runs ${byEnv[env]?.image}`);
      continue;
    }
    if (byEnv[env]?.image !== images[build])
      problems.push(
        `${env} should run the ${build === 'previous' ? 'previous release' : `${build} build`} (${images[build]}) but runs ${byEnv[env]?.image ?? 'nothing'}`,
      );
  }
  for (const m of expected.migrations) {
    const applied = byEnv[m.environment]?.migrations.includes(m.version) ?? false;
    if (applied !== m.applied)
      problems.push(`migration ${m.version} should ${m.applied ? '' : 'not '}be applied in ${m.environment}`);
  }
  const jobs = runs.flatMap((r) => r.run.jobs);
  const failed = jobs
    .filter((j) => j.conclusion === 'failure' && !jobs.some((k) => k.path.startsWith(`${j.path}/`)))
    .map((j) => j.path);
  for (const want of expected.failingJobs)
    if (!failed.some((p) => p.endsWith(want))) problems.push(`job ${want} should have failed`);
  for (const path of failed)
    if (!expected.failingJobs.some((w) => path.endsWith(w))) problems.push(`job ${path} failed unexpectedly`);
  const last = runs.at(-1);
  if (last && endingOf(last.run) !== expected.ended)
    problems.push(
      `the last run should have ended ${expected.ended} but ended ${endingOf(last.run) || '(no ending)'}`,
    );
  const mainRan = runs.some((r) => r.label.startsWith('main'));
  if (mainRan !== expected.mainRun)
    problems.push(
      expected.mainRun
        ? 'the main-branch run should have happened'
        : 'the main-branch run should not have happened',
    );
  for (const env of ENVIRONMENTS)
    if (byEnv[env]?.canary.startsWith('present with') && !byEnv[env].canary.endsWith(' 0 replicas'))
      problems.push(`a canary is still serving in ${env}`);
  return problems;
}

/** The caller workflow as a team using `strategy` would write it (checks aimed at that strategy's Services). */
function useStrategy(workspace: string, strategy: string): void {
  const file = join(workspace, '.github', 'workflows', 'release.yml');
  let text = readFileSync(file, 'utf8').replace(/^(\s+strategy:) .*$/m, `$1 ${strategy}`);
  if (strategy === 'blue-green') {
    // The idle colour is checked through its preview Service; there is no Deployment named shop.
    text = text
      .replace('service: shop-canary:80', 'service: shop-preview:80')
      .replace(
        /\n\s+- name: pods\n\s+type: kubernetes\n\s+workload: deployment\/shop\n(\s+secrets: inherit)/,
        '\n$1',
      );
  }
  writeFileSync(file, text);
}

/** A configuration-only change of the production overlay: another log level and more replicas. */
export const CONFIG_CHANGE = { LOG_LEVEL: 'debug', replicas: 12 } as const;

function changeProductionConfig(workspace: string): void {
  const file = join(workspace, 'k8s', 'production', 'kustomization.yaml');
  const text = readFileSync(file, 'utf8')
    .replace('- LOG_LEVEL=warn', `- LOG_LEVEL=${CONFIG_CHANGE.LOG_LEVEL}`)
    .replace(/count: 10\b/, `count: ${CONFIG_CHANGE.replicas}`);
  writeFileSync(file, text);
}

/**
 * The suite as it is when the rehearsal starts: its reusable workflows, action.yml files and built
 * bundles, copied once, so a rebuild of dist/ meanwhile (another terminal, a test run) cannot
 * swap the bundles under a running release.
 */
function snapshotSuite(into: string): string {
  for (const entry of ['dist', '.github', ...OUR_ACTIONS]) {
    const from = join(REPO_ROOT, entry);
    if (existsSync(from)) cpSync(from, join(into, entry), { recursive: true });
  }
  return into;
}

const healthy = (version: string) => ({ http: { health: { status: 'healthy', version } } });

/**
 * The rehearsal's temporary directories, removed when the process exits however it exits: Ctrl-C
 * ends the command through process.exit (tooling/cli/rehearse.ts), and finally blocks do not run then.
 */
const leftovers = new Set<string>();
function tempDir(prefix: string): string {
  if (leftovers.size === 0)
    process.once('exit', () => {
      for (const dir of leftovers) rmSync(dir, { recursive: true, force: true });
    });
  const dir = mkdtempSync(join(tmpdir(), prefix));
  leftovers.add(dir);
  return dir;
}

export async function rehearse(options: RehearseOptions): Promise<RehearseResult> {
  const started = performance.now();
  const example = options.example ?? join(REPO_ROOT, 'examples', 'shop');
  const workspace = tempDir('rehearsal-');
  cpSync(example, workspace, { recursive: true });
  const suite = snapshotSuite(tempDir('rehearsal-suite-'));
  const say = (text: string) => options.onEvent?.({ type: 'phase', text });
  const scenario = options.scenario;
  const strategy: Strategy =
    options.strategy ??
    ((/^\s+strategy: (\S+)$/m.exec(
      readFileSync(join(workspace, '.github', 'workflows', 'release.yml'), 'utf8'),
    )?.[1] ?? 'canary') as Strategy);
  useStrategy(workspace, scenario === 'unknown-strategy' ? 'bluegreen' : strategy);
  const featureImage = imageForCommit(FEATURE_SHA);
  const mainImage = imageForCommit(MAIN_SHA);
  let services: Services | undefined;
  try {
    say('starting the embedded Kubernetes API, PostgreSQL, Slack and GitHub endpoints (empty environments)');
    services = await startServices(scenario, featureImage);
    services.sim.setImageBehaviour(PREVIOUS_IMAGE, healthy('v1.4.0'));
    services.sim.setImageBehaviour(
      mainImage,
      scenario === 'crashloop' ? { mode: 'crash', crashAfterMs: 2000 } : healthy('v1.5.0'),
    );

    const s = services;
    // production-plan gets a get/list Role and the read-only login, as the docs ask of a real setup.
    const planSecrets = {
      KUBECONFIG: await readOnlyKubeconfig(s.sim, 'shop-production'),
      DATABASE_URL: s.databases['production-plan']!,
    };
    const needsApproval = approvalEnvironments(workspace);
    const allowed = branchPolicies(workspace);
    const caller = join(workspace, '.github', 'workflows', 'release.yml');
    let runNumber = 100;
    // frozen: the repository variable PIPELINE_FREEZE, set once the previous release is out.
    let freeze = '';
    const runOne = async (
      label: string,
      ref: string,
      sha: string,
      message: string,
      approve: (env: string, job: JobRecord) => Promise<boolean>,
      // A run started by hand from the Actions tab instead of a push: the workflow and its inputs.
      dispatch?: { workflow: string; inputs: Record<string, unknown> },
    ): Promise<WorkflowRun> => {
      say(
        dispatch
          ? `run ${dispatch.workflow} by hand: ${message}`
          : `push to ${ref.replace('refs/heads/', '')}: ${message}`,
      );
      runNumber += 1;
      const runner = new WorkflowRunner({
        repoRoot: suite,
        workspace,
        event: {
          name: dispatch ? 'workflow_dispatch' : 'push',
          ref,
          sha,
          repository: 'acme/shop',
          actor: 'octocat',
          payload: dispatch
            ? { ref, inputs: dispatch.inputs }
            : { ref, after: sha, head_commit: { id: sha, message } },
        },
        secrets: { SLACK_BOT_TOKEN: 'xoxb-rehearsal' },
        environmentSecrets: {
          ...Object.fromEntries(
            ENVIRONMENTS.map((env) => [
              env,
              { KUBECONFIG: s.sim.kubeconfig, DATABASE_URL: s.databases[env]! },
            ]),
          ),
          'production-plan': planSecrets,
        },
        vars: {
          PIPELINE_SLACK_API_URL: s.slack.apiUrl,
          STAGING_URL: s.ingress.url,
          ...(freeze ? { PIPELINE_FREEZE: freeze } : {}),
        },
        env: { PIPELINE_TIME_SCALE: String(options.timeScale), GITHUB_API_URL: s.github.url },
        githubApiUrl: s.github.url,
        token: 'ghs_rehearsal',
        runId: String(runNumber),
        requiresApproval: (env) => needsApproval.has(env),
        allowsRef: allowed,
        recordEnvironmentDeployments: true,
        approve,
        onEvent: (e) => {
          const inProduction = 'job' in e && e.job.path.endsWith('production/deploy') && label === 'main';
          // bad-canary: the new version starts failing under production traffic only.
          if (scenario === 'bad-canary' && inProduction && e.type === 'job-start')
            s.sim.setImageBehaviour(mainImage, {
              http: { errorRate: 0.6, health: { status: 'healthy', version: 'v1.5.0' } },
            });
          // failed-soak: healthy through the deploy's own checks; once the soak starts, production's
          // Service answers 503 (a simulated image behaviour is fixed when its pod starts, so the
          // failure comes through the service proxy), until the job ends.
          if (scenario === 'failed-soak' && inProduction) {
            if (e.type === 'step-start' && e.step.name === 'health gate (soak)')
              s.sim.setFaults({
                errorRate: 1,
                statuses: [503],
                match: { pathPattern: '/namespaces/shop-production/services/(https?:)?shop(:[^/]*)?/proxy' },
              });
            if (e.type === 'step-end' && e.step.name === 'health gate (soak)') s.sim.setFaults({});
          }
          options.onEvent?.(e);
        },
      });
      return runner.runWorkflow(
        dispatch ? join(workspace, '.github', 'workflows', dispatch.workflow) : caller,
      );
    };

    // The release before this one, played through the same workflows into empty environments: a
    // first release with every strategy. Migration 3 belongs to the new release.
    const previous: { label: string; run: WorkflowRun }[] = [];
    if (playsPreviousRelease(scenario)) {
      const third = join(workspace, 'migrations', '003_index_orders_by_customer.sql');
      const aside = join(workspace, '003.sql.later');
      renameSync(third, aside);
      say(`playing the previous release (${PREVIOUS_IMAGE.slice(0, 40)}…) into the empty environments`);
      const always = async () => true;
      previous.push({
        label: 'previous release: feature branch → dev',
        run: await runOne('previous-feature', 'refs/heads/feature/v1.4', PREVIOUS_SHA, 'Release 1.4', always),
      });
      previous.push({
        label: 'previous release: main → staging → production',
        run: await runOne('main-previous', 'refs/heads/main', PREVIOUS_SHA, 'Release 1.4', always),
      });
      renameSync(aside, third);
    }

    if (scenario === 'frozen')
      freeze = JSON.stringify({
        environments: ['production'],
        by: 'alice',
        at: '2026-01-01T00:00:00Z',
        reason: 'payments provider migration tonight',
      });
    if (scenario === 'failed-migration')
      writeFileSync(join(workspace, 'migrations', '004_add_order_priority.sql'), BAD_MIGRATION);
    const runs: { label: string; run: WorkflowRun }[] = [];
    const approve = (env: string, job: JobRecord) => options.approve(env, job);
    if (scenario === 'superseded') {
      // Release A waits for its approval; meanwhile release B (a later merge) goes all the way.
      let newer: WorkflowRun | undefined;
      const older = await runOne(
        'main',
        'refs/heads/main',
        MAIN_SHA,
        'Merge pull request #42',
        async (env, job) => {
          if (env === 'production' && !newer) {
            say('while production waits for approval, a newer merge is released');
            newer = await runOne(
              'main-newer',
              'refs/heads/main',
              FEATURE_SHA,
              'Merge pull request #43',
              approve,
            );
            runs.push({ label: 'main (a newer merge) → staging → production', run: newer });
          }
          return approve(env, job);
        },
      );
      runs.push({ label: 'main → staging → approved after the newer release', run: older });
    } else if (scenario === 'config-change') {
      changeProductionConfig(workspace);
      runs.push({
        label: 'main → staging → production (configuration only)',
        run: await runOne(
          'main-config',
          'refs/heads/main',
          PREVIOUS_SHA,
          'Production: debug logs, 12 replicas',
          approve,
        ),
      });
    } else {
      runs.push({
        label: 'feature branch → dev',
        run: await runOne(
          'feature',
          'refs/heads/feature/faster-checkout',
          FEATURE_SHA,
          'Faster checkout: batch the price lookups',
          approve,
        ),
      });
      // production-lags: production's approval is rejected once, so staging keeps 003 and
      // production stays at 1,2; the release then runs again (below) and is approved.
      if (scenario === 'production-lags' && runs[0]!.run.conclusion === 'success')
        runs.push({
          label: 'main → staging → production rejected',
          run: await runOne(
            'main-rejected',
            'refs/heads/main',
            MAIN_SHA,
            'Merge pull request #42 from acme/feature/faster-checkout',
            async (env, job) => (env === 'production' ? false : approve(env, job)),
          ),
        });
      // A release whose feature branch failed in dev is not merged: main runs only after a green dev.
      if (runs[0]!.run.conclusion === 'success') {
        runs.push({
          label: 'main → staging → production',
          run: await runOne(
            'main',
            'refs/heads/main',
            MAIN_SHA,
            'Merge pull request #42 from acme/feature/faster-checkout',
            approve,
          ),
        });
      }
      // rollback: production breaks after the release; someone returns it to the last good one
      // from the Actions tab (examples/shop's rollback.yml), reverting the migration it did not know.
      if (scenario === 'rollback' && runs.at(-1)?.run.conclusion === 'success') {
        if (!s.github.environments.some((e) => e.name === 'production'))
          s.github.seedEnvironment({ owner: 'acme', repo: 'shop', name: 'production' });
        runs.push({
          label: 'rollback of production to the previous release (by hand)',
          run: await runOne(
            'rollback',
            'refs/heads/main',
            MAIN_SHA,
            'checkout errors since the release',
            approve,
            {
              workflow: 'rollback.yml',
              inputs: {
                environment: 'production',
                reason: 'checkout errors since the release',
                'down-migrations': true,
              },
            },
          ),
        });
      }
    }
    say('reading the final state of the cluster and the databases');
    const state = await readState(s);
    const images = { feature: featureImage, main: mainImage, previous: PREVIOUS_IMAGE };
    const mismatches = compare(scenario, strategy, runs, state, images);
    for (const p of previous)
      if (p.run.conclusion !== 'success' || endingOf(p.run) !== 'succeeded')
        mismatches.unshift(
          `${p.label} (a first release into empty environments) ended ${endingOf(p.run) || p.run.conclusion}`,
        );
    const result: RehearseResult = {
      scenario,
      strategy,
      previous,
      ok: mismatches.length === 0,
      mismatches,
      runs,
      state,
      slack: s.slack.messages,
      deployments: s.github.deployments,
      durationMs: performance.now() - started,
      reportPath: resolve(options.reportPath),
      images,
    };
    mkdirSync(dirname(result.reportPath), { recursive: true });
    writeFileSync(result.reportPath, renderReport(result));
    say(`done in ${formatDuration(result.durationMs)}`);
    return result;
  } finally {
    await stopServices(services);
    rmSync(workspace, { recursive: true, force: true });
    rmSync(suite, { recursive: true, force: true });
  }
}
