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
  type StepRecord,
  type WorkflowRun,
  WorkflowRunner,
} from '../runners/workflow-runner.ts';
import { startIngress } from './ingress.ts';
import { ENVIRONMENTS, type RepoLayout, readRepoLayout } from './layout.ts';
import { renderReport } from './report.ts';
import {
  BAD_MIGRATION,
  type Expectation,
  FEATURE_SHA,
  imageForCommit,
  MAIN_SHA,
  PREVIOUS_SHA,
  type RunKind,
  type ScenarioName,
  type Strategy,
  scenario as scenarioOf,
} from './scenarios.ts';

export { ENVIRONMENTS } from './layout.ts';

export interface RehearseOptions {
  scenario: ScenarioName;
  /** Production strategy written into the caller workflow (default: the one it names). */
  strategy?: Strategy;
  /** Decides approvals: a fixed answer per environment, or a prompt. */
  approve(environment: string, job: JobRecord): Promise<boolean>;
  /** How much faster than real time the workflows' waits run (soak windows, pauses, intervals). */
  timeScale: number;
  /** Where the Markdown report is written. */
  reportPath: string;
  /** The repository to rehearse, laid out like examples/shop (the default). */
  example?: string;
  onEvent?(event: RunnerEvent | { type: 'phase'; text: string }): void;
}

/** A Deployment as it is at the end: what it runs and with which settings. */
export interface DeploymentState {
  name: string;
  image: string | undefined;
  revision: string | undefined;
  replicas: number | undefined;
  /** Data of the ConfigMap its pods read their settings from (envFrom), if any. */
  config: Record<string, string>;
}

export interface EnvironmentState extends Omit<DeploymentState, 'name'> {
  environment: string;
  namespace: string;
  /** The Deployment the app's Service sends traffic to (`shop`, or the live colour `shop-blue`). */
  deployment: string | undefined;
  canary: string;
  /** Every Deployment in the namespace (the app, its canary, both colours). */
  deployments: DeploymentState[];
  migrations: string[];
}

export interface RehearseResult {
  scenario: ScenarioName;
  strategy: Strategy;
  app: string;
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
  /** The migration versions the scenario names: the release's new one, the failing one, the first. */
  migrations: Record<'new' | 'bad' | 'first', string>;
}

interface Services {
  sim: KubeSim;
  postgres: PostgresServer;
  slack: LocalSlack;
  github: LocalGitHub;
  databases: Record<string, string>;
  ingress: { url: string; close(): Promise<void> };
}

/** The repository's history as LocalGitHub's compare answers it: the previous release, the feature, its merge. */
const historyOf = (owner: string): CommitRecord[] =>
  [
    { sha: PREVIOUS_SHA, message: 'Release 1.4', login: 'octocat' },
    { sha: FEATURE_SHA, message: 'Faster checkout: batch the price lookups', login: 'hubot' },
    { sha: MAIN_SHA, message: mergeMessage(owner), login: 'octocat' },
  ].map((c, i) => ({
    ...c,
    author: { name: c.login, email: `${c.login}@example.com`, date: `2026-11-0${i + 1}T09:00:00Z` },
  }));
const mergeMessage = (owner: string) => `Merge pull request #42 from ${owner}/feature/faster-checkout`;

const healthy = (version: string) => ({ http: { health: { status: 'healthy', version } } });
const CRASH = { mode: 'crash', crashAfterMs: 2000 } as const;

/** A database name for the app (letters, digits and underscores). */
const databaseName = (app: string) => app.toLowerCase().replace(/[^a-z0-9_]/g, '_');

async function startServices(
  layout: RepoLayout,
  previousImage: string,
  newImages: string[],
  crash: boolean,
): Promise<Services> {
  // The namespaces exist (the deployer's RBAC is scoped to them) and hold nothing else.
  // Everything started so far is stopped if a later start fails, so nothing keeps the process alive.
  const started: (() => Promise<unknown>)[] = [];
  try {
    const sim = await startKubeSim({
      timeScale: 50,
      namespaces: ENVIRONMENTS.map((e) => layout.namespaces[e]),
      images: [
        { pattern: previousImage, ...healthy('v1.4.0') },
        ...newImages.map((pattern) => (crash ? { pattern, ...CRASH } : { pattern, ...healthy('v1.5.0') })),
      ],
    });
    started.push(() => sim.close());
    const postgres = await startPostgres();
    started.push(() => postgres.stop());
    const databases: Record<string, string> = {};
    const db = databaseName(layout.app);
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    try {
      for (const env of ENVIRONMENTS) {
        await admin.query(`CREATE DATABASE ${db}_${env}`);
        databases[env] = postgres.urlFor(`${db}_${env}`);
      }
      // The production plan's login (docs/environments.md): it may read production's database, never write.
      await admin.query(`CREATE ROLE ${db}_plan LOGIN IN ROLE pg_read_all_data`);
      databases['production-plan'] = databases.production!.replace(`//${postgres.user}@`, `//${db}_plan@`);
    } finally {
      await admin.end();
    }
    const slack = await LocalSlack.start({
      tokens: ['xoxb-rehearsal'],
      channels: { [layout.slackChannel ?? 'deploys']: 'C0DEPLOYS' },
    });
    started.push(() => slack.close());
    const github = await LocalGitHub.start({ tokens: ['ghs_rehearsal'] });
    started.push(() => github.close());
    const [owner, repo] = layout.repository.split('/') as [string, string];
    github.seedCommits(owner, repo, historyOf(owner));
    const ingress = await startIngress(sim.url, sim.token, layout.namespaces.staging, `${layout.app}:80`);
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

type LiveDeployment = {
  metadata: { name: string; annotations?: Record<string, string> };
  spec: {
    replicas?: number;
    template: {
      spec: { containers: { image: string; envFrom?: { configMapRef?: { name: string } }[] }[] };
    };
  };
};

async function readState(s: Services, layout: RepoLayout): Promise<EnvironmentState[]> {
  const client = new KubeClient(loadKubeConfig({ kubeconfig: s.sim.kubeconfig }));
  const { app } = layout;
  try {
    const out: EnvironmentState[] = [];
    for (const env of ENVIRONMENTS) {
      const namespace = layout.namespaces[env];
      const list = await client.getJson<{ items: LiveDeployment[] }>(
        `/apis/apps/v1/namespaces/${namespace}/deployments`,
      );
      const deployments: DeploymentState[] = [];
      for (const d of (list?.items ?? []).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
        const container = d.spec.template.spec.containers[0];
        const configName = container?.envFrom?.find((e) => e.configMapRef)?.configMapRef?.name;
        const config = configName
          ? ((
              await client.getJson<{ data?: Record<string, string> }>(
                `/api/v1/namespaces/${namespace}/configmaps/${configName}`,
              )
            )?.data ?? {})
          : {};
        deployments.push({
          name: d.metadata.name,
          image: container?.image,
          revision: d.metadata.annotations?.['deployment.kubernetes.io/revision'],
          replicas: d.spec.replicas,
          config,
        });
      }
      const service = await client.getJson<{ spec?: { selector?: Record<string, string> } }>(
        `/api/v1/namespaces/${namespace}/services/${app}`,
      );
      const color = service?.spec?.selector?.color;
      const live = deployments.find((d) => d.name === (color ? `${app}-${color}` : app));
      const canary = deployments.find((d) => d.name === `${app}-canary`);
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
        namespace,
        deployment: live?.name,
        image: live?.image,
        revision: live?.revision,
        replicas: live?.replicas,
        config: live?.config ?? {},
        canary: canary ? `present with ${canary.replicas ?? 0} replicas` : 'none',
        deployments,
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
  expected: Expectation,
  runs: { label: string; run: WorkflowRun }[],
  state: EnvironmentState[],
  images: RehearseResult['images'],
  versions: RehearseResult['migrations'],
): string[] {
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
    const version = versions[m.version];
    // A repository without migrations has no version to check.
    if (!version) continue;
    const applied = byEnv[m.environment]?.migrations.includes(version) ?? false;
    if (applied !== m.applied)
      problems.push(`migration ${version} should ${m.applied ? '' : 'not '}be applied in ${m.environment}`);
  }
  const jobs = runs.flatMap((r) => r.run.jobs);
  const failedJobs = jobs.filter(
    (j) => j.conclusion === 'failure' && !jobs.some((k) => k.path.startsWith(`${j.path}/`)),
  );
  const failed = failedJobs.map((j) => j.path);
  // Why an unexpected failure happened, so a mismatch can be read without the report.
  const why = (path: string) => {
    const job = failedJobs.find((j) => j.path === path);
    const step = job?.steps.find((st) => st.conclusion === 'failure');
    // A run: step's error is its exit code; its ::error:: lines say what was wrong.
    const text = (step && stepErrors(step).join('; ')) || step?.error || job?.reason;
    return text ? `: ${step ? `${step.name}: ` : ''}${text.split('\n')[0]}` : '';
  };
  for (const want of expected.failingJobs)
    if (!failed.some((p) => p.endsWith(want))) problems.push(`job ${want} should have failed`);
  for (const path of failed)
    if (!expected.failingJobs.some((w) => path.endsWith(w)))
      problems.push(`job ${path} failed unexpectedly${why(path)}`);
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

/** The caller's `strategy:` line set to `strategy` (added under `app:` when it names none); nothing else changes. */
function setStrategyLine(file: string, strategy: string): void {
  const text = readFileSync(file, 'utf8');
  writeFileSync(
    file,
    /^\s+strategy: .*$/m.test(text)
      ? text.replace(/^(\s+strategy:) .*$/m, `$1 ${strategy}`)
      : text.replace(/^(\s+)(app: .*)$/m, `$1$2\n$1strategy: ${strategy}`),
  );
}

/**
 * The bundled example's caller as a team using `strategy` would write it (checks aimed at that
 * strategy's Services). Only for examples/shop: a team's own workflow is played as written, or a
 * check aimed at the wrong workload would pass here and fail on GitHub.
 */
function useStrategy(file: string, app: string, strategy: string): void {
  setStrategyLine(file, strategy);
  let text = readFileSync(file, 'utf8');
  if (strategy === 'blue-green') {
    // The idle colour is checked through its preview Service; there is no Deployment named <app>.
    text = text
      .replace(`service: ${app}-canary:80`, `service: ${app}-preview:80`)
      .replace(
        new RegExp(
          `\\n\\s+- name: [^\\n]+\\n\\s+type: kubernetes\\n\\s+workload: deployment/${app}\\n(\\s+secrets: inherit)`,
        ),
        '\n$1',
      );
  }
  writeFileSync(file, text);
}

/** A configuration-only change of the production overlay: another log level and more replicas. */
export const CONFIG_CHANGE = { LOG_LEVEL: 'debug', replicas: 12 } as const;

function changeProductionConfig(layout: RepoLayout, workspace: string): void {
  const path = join(layout.kustomizeRoot, 'production', 'kustomization.yaml');
  const before = readFileSync(join(workspace, path), 'utf8');
  const text = before
    .replace(/- LOG_LEVEL=\S+/, `- LOG_LEVEL=${CONFIG_CHANGE.LOG_LEVEL}`)
    .replace(new RegExp(`(- name: ${layout.app}\\n\\s+count: )\\d+`), `$1${CONFIG_CHANGE.replicas}`);
  if (
    !text.includes(`LOG_LEVEL=${CONFIG_CHANGE.LOG_LEVEL}`) ||
    !text.includes(`count: ${CONFIG_CHANGE.replicas}`)
  )
    throw new Error(
      `scenario config-change changes LOG_LEVEL and the replicas of ${layout.app} in ${path}, which has no '- LOG_LEVEL=…' literal or no 'replicas: - name: ${layout.app} count: N' entry`,
    );
  writeFileSync(join(workspace, path), text);
}

/** The caller's image line handing the pipeline a tag instead of the build's digest. */
function useTagImage(file: string, imageRepository: string): void {
  const text = readFileSync(file, 'utf8');
  const line = /^(\s+image: )\$\{\{ *needs\.[\w-]+\.outputs\.[\w-]+ *\}\}\s*$/m;
  if (!line.test(text))
    throw new Error(
      `scenario tag-image replaces the pipeline job's image: \${{ needs.<build>.outputs.<image> }} line, which ${file} does not have`,
    );
  writeFileSync(file, text.replace(line, `$1${imageRepository}:latest`));
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
  const layout = readRepoLayout(options.example ?? join(REPO_ROOT, 'examples', 'shop'));
  const { app, namespaces } = layout;
  const spec = scenarioOf(options.scenario);
  const strategy = (options.strategy ?? layout.strategy) as Strategy;
  if (spec.runs.includes('rollback') && !existsSync(join(layout.dir, '.github', 'workflows', 'rollback.yml')))
    throw new Error(
      `scenario ${options.scenario} runs .github/workflows/rollback.yml by hand, which ${layout.dir} does not have (see examples/shop's)`,
    );
  if (spec.change === 'bad-migration' && !layout.migrationsDir)
    throw new Error(
      `scenario ${options.scenario} adds a failing migration, and the caller names no migrations-dir`,
    );
  const workspace = tempDir('rehearsal-');
  cpSync(layout.dir, workspace, { recursive: true });
  const suite = snapshotSuite(tempDir('rehearsal-suite-'));
  const say = (text: string) => options.onEvent?.({ type: 'phase', text });
  const caller = join(workspace, layout.caller);
  if (spec.change === 'mistyped-strategy') setStrategyLine(caller, 'bluegreen');
  else if (!options.example) useStrategy(caller, app, strategy);
  else if (options.strategy && options.strategy !== layout.strategy) {
    setStrategyLine(caller, options.strategy);
    say(
      `--strategy ${options.strategy}: only the strategy: line of ${layout.caller} was changed (it names ${layout.strategy}); its checks are played as written`,
    );
  }
  if (spec.change === 'tag-image') useTagImage(caller, layout.imageRepository);
  const images = {
    feature: imageForCommit(FEATURE_SHA, layout.imageRepository),
    main: imageForCommit(MAIN_SHA, layout.imageRepository),
    previous: imageForCommit(PREVIOUS_SHA, layout.imageRepository),
  };
  const newest = layout.migrations.at(-1);
  const versions = {
    new: newest?.version ?? '',
    first: layout.migrations[0]?.version ?? '',
    bad: String(Number(newest?.version ?? 0) + 1),
  };
  const [owner, repo] = layout.repository.split('/') as [string, string];
  let services: Services | undefined;
  try {
    say('starting the embedded Kubernetes API, PostgreSQL, Slack and GitHub endpoints (empty environments)');
    services = await startServices(
      layout,
      images.previous,
      [images.feature, images.main],
      spec.fault === 'crash',
    );
    const s = services;
    // production-plan gets a get/list Role and the read-only login, as the docs ask of a real setup.
    const planSecrets = {
      KUBECONFIG: await readOnlyKubeconfig(s.sim, namespaces.production),
      DATABASE_URL: s.databases['production-plan']!,
    };
    const needsApproval = approvalEnvironments(workspace);
    const allowed = branchPolicies(workspace);
    const productionService = `/namespaces/${namespaces.production}/services/(https?:)?${app}(:[^/]*)?/proxy`;
    let runNumber = 100;
    // freeze: the repository variable PIPELINE_FREEZE, set once the previous release is out.
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
          repository: layout.repository,
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
          // The new version breaks under production traffic only, or crashes only on production's
          // pods (a simulated image behaviour is fixed when its pod starts).
          if (inProduction && e.type === 'job-start') {
            if (spec.fault === 'production-errors')
              s.sim.setImageBehaviour(images.main, {
                http: { errorRate: 0.6, health: { status: 'healthy', version: 'v1.5.0' } },
              });
            if (spec.fault === 'production-crash') s.sim.setImageBehaviour(images.main, CRASH);
          }
          // Healthy through the deploy's own checks; once the soak starts, production's Service
          // answers 503 (through the service proxy), until the job ends.
          if (spec.fault === 'soak-503' && inProduction) {
            if (e.type === 'step-start' && e.step.name === 'health gate (soak)')
              s.sim.setFaults({ errorRate: 1, statuses: [503], match: { pathPattern: productionService } });
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
    // first release with every strategy. The newest migration belongs to the new release.
    const previous: { label: string; run: WorkflowRun }[] = [];
    if (spec.previous) {
      const aside =
        newest && layout.migrationsDir ? join(workspace, layout.migrationsDir, newest.file) : undefined;
      if (aside) renameSync(aside, `${aside}.later`);
      say(`playing the previous release (${images.previous.slice(0, 40)}…) into the empty environments`);
      const always = async () => true;
      previous.push({
        label: 'previous release: feature branch → dev',
        run: await runOne('previous-feature', 'refs/heads/feature/v1.4', PREVIOUS_SHA, 'Release 1.4', always),
      });
      previous.push({
        label: 'previous release: main → staging → production',
        run: await runOne('main-previous', 'refs/heads/main', PREVIOUS_SHA, 'Release 1.4', always),
      });
      if (aside) renameSync(`${aside}.later`, aside);
    }

    if (spec.change === 'freeze')
      freeze = JSON.stringify({
        environments: ['production'],
        by: 'alice',
        at: '2026-01-01T00:00:00Z',
        reason: 'payments provider migration tonight',
      });
    if (spec.change === 'bad-migration')
      writeFileSync(
        join(workspace, layout.migrationsDir!, `${versions.bad.padStart(3, '0')}_add_order_priority.sql`),
        BAD_MIGRATION,
      );
    if (spec.change === 'production-config') changeProductionConfig(layout, workspace);
    const approve = (env: string, job: JobRecord) =>
      spec.rejects?.includes(env) ? Promise.resolve(false) : options.approve(env, job);
    const merge = mergeMessage(owner);
    const plays: Record<RunKind, () => Promise<{ label: string; run: WorkflowRun }[]>> = {
      feature: async () => [
        {
          label: 'feature branch → dev',
          run: await runOne(
            'feature',
            'refs/heads/feature/faster-checkout',
            FEATURE_SHA,
            'Faster checkout: batch the price lookups',
            approve,
          ),
        },
      ],
      main: async () => [
        {
          label: 'main → staging → production',
          run: await runOne('main', 'refs/heads/main', MAIN_SHA, merge, approve),
        },
      ],
      // Production's approval rejected once: staging keeps the new migration, production has not got it.
      'main-rejected': async () => [
        {
          label: 'main → staging → production rejected',
          run: await runOne('main-rejected', 'refs/heads/main', MAIN_SHA, merge, async (env, job) =>
            env === 'production' ? false : approve(env, job),
          ),
        },
      ],
      'main-config': async () => [
        {
          label: 'main → staging → production (configuration only)',
          run: await runOne(
            'main-config',
            'refs/heads/main',
            PREVIOUS_SHA,
            'Production: debug logs, 12 replicas',
            approve,
          ),
        },
      ],
      // Production breaks after the release; someone returns it to the last good one from the
      // Actions tab (the repository's rollback.yml), reverting the migration it did not know.
      rollback: async () => {
        if (!s.github.environments.some((e) => e.name === 'production'))
          s.github.seedEnvironment({ owner, repo, name: 'production' });
        const reason = 'checkout errors since the release';
        return [
          {
            label: 'rollback of production to the previous release (by hand)',
            run: await runOne('rollback', 'refs/heads/main', MAIN_SHA, reason, approve, {
              workflow: 'rollback.yml',
              inputs: { environment: 'production', reason, 'down-migrations': true },
            }),
          },
        ];
      },
      // Release A waits for its approval; meanwhile release B (a later merge) goes all the way.
      superseded: async () => {
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
            }
            return approve(env, job);
          },
        );
        return [
          ...(newer ? [{ label: 'main (a newer merge) → staging → production', run: newer }] : []),
          { label: 'main → staging → approved after the newer release', run: older },
        ];
      },
    };
    const runs: { label: string; run: WorkflowRun }[] = [];
    let featureRun: WorkflowRun | undefined;
    for (const kind of spec.runs) {
      // A release whose feature branch failed in dev is not merged; a rollback follows a release.
      if ((kind === 'main' || kind === 'main-rejected') && featureRun && featureRun.conclusion !== 'success')
        break;
      if (kind === 'rollback' && runs.at(-1)?.run.conclusion !== 'success') break;
      const played = await plays[kind]();
      if (kind === 'feature') featureRun = played[0]!.run;
      runs.push(...played);
    }
    say('reading the final state of the cluster and the databases');
    const state = await readState(s, layout);
    const expected = spec.expect(strategy);
    const mismatches = compare(expected, runs, state, images, versions);
    for (const p of previous)
      if (p.run.conclusion !== 'success' || endingOf(p.run) !== 'succeeded')
        mismatches.unshift(
          `${p.label} (a first release into empty environments) ended ${endingOf(p.run) || p.run.conclusion}`,
        );
    const result: RehearseResult = {
      scenario: options.scenario,
      strategy,
      app,
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
      migrations: versions,
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

/**
 * The final state for scripts (`pipeline rehearse --json <file>`): per environment what runs
 * there (every Deployment's image, revision, replicas and ConfigMap data) and the migrations
 * applied, the Slack messages and the GitHub deployments with their statuses.
 */
/** A failed step's ::error:: messages (masked, as GitHub keeps them), less the one its error line already says. */
export function stepErrors(step: StepRecord): string[] {
  return step.annotations
    .filter((a) => a.level === 'error' && a.message !== step.error)
    .map((a) => a.message);
}

/** Every failed step of a run with its error messages: what a script needs to say why a run failed. */
function failedSteps(run: WorkflowRun) {
  return run.jobs.flatMap((job) =>
    job.steps
      .filter((step) => step.conclusion === 'failure')
      .map((step) => ({
        job: job.path,
        step: step.name,
        errors: step.annotations.filter((a) => a.level === 'error').map((a) => a.message),
        ...(step.error ? { error: step.error } : {}),
      })),
  );
}

export function finalState(r: RehearseResult) {
  const last = r.runs.at(-1)?.run;
  return {
    scenario: r.scenario,
    strategy: r.strategy,
    app: r.app,
    ok: r.ok,
    ended: last ? endingOf(last) : '',
    mismatches: r.mismatches,
    durationMs: Math.round(r.durationMs),
    images: r.images,
    environments: Object.fromEntries(
      r.state.map((s) => [
        s.environment,
        {
          namespace: s.namespace,
          image: s.image ?? null,
          revision: s.revision ?? null,
          deployment: s.deployment ?? null,
          deployments: Object.fromEntries(
            s.deployments.map((d) => [
              d.name,
              {
                image: d.image ?? null,
                revision: d.revision ?? null,
                replicas: d.replicas ?? null,
                config: d.config,
              },
            ]),
          ),
          migrations: s.migrations,
        },
      ]),
    ),
    slack: r.slack.map((m) => ({
      channel: m.channel,
      ts: m.ts,
      ...(m.threadTs ? { threadTs: m.threadTs } : {}),
      text: m.text,
      blocks: m.blocks,
    })),
    deployments: r.deployments.map((d) => ({
      id: d.id,
      environment: d.environment,
      ref: d.ref,
      description: d.description,
      payload: d.payload,
      statuses: d.statuses.map((st) => ({ state: st.state, description: st.description })),
    })),
    runs: r.runs.map(({ label, run }) => ({
      label,
      conclusion: run.conclusion,
      ended: endingOf(run),
      failed: failedSteps(run),
    })),
  };
}
