import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import pg from 'pg';
import { parse as parseYaml } from 'yaml';
import { formatDuration, MemoryLogger, silentLogger } from '../core/index.ts';
import { KubeClient, loadKubeConfig } from '../kube/client.ts';
import { loadManifests } from '../kube/manifests.ts';
import { type KubeSim, startKubeSim } from '../kube-sim/index.ts';
import { runMigrations } from '../migrate/index.ts';
import { deploy } from '../rollout/deploy.ts';
import { REPO_ROOT } from '../runner/action-runner.ts';
import { LocalGitHub } from '../testkit/local-github.ts';
import { LocalSlack, type StoredMessage } from '../testkit/local-slack.ts';
import { type PostgresServer, startPostgres } from '../testkit/postgres.ts';
import { type JobRecord, type RunnerEvent, type WorkflowRun, WorkflowRunner } from '../workflow/runner.ts';
import { startIngress } from './ingress.ts';
import { renderReport } from './report.ts';
import {
  BAD_MIGRATION,
  EXPECTATIONS,
  imageForCommit,
  PREVIOUS_IMAGE,
  type ScenarioName,
} from './scenarios.ts';

export const ENVIRONMENTS = ['dev', 'staging', 'production'] as const;

export interface RehearseOptions {
  scenario: ScenarioName;
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
  image: string | undefined;
  revision: string | undefined;
  canary: string;
  migrations: string[];
}

export interface RehearseResult {
  scenario: ScenarioName;
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

async function startServices(scenario: ScenarioName, newImage: string): Promise<Services> {
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
    } finally {
      await admin.end();
    }
    const slack = await LocalSlack.start({ tokens: ['xoxb-rehearsal'], channels: { deploys: 'C0DEPLOYS' } });
    started.push(() => slack.close());
    const github = await LocalGitHub.start({ tokens: ['ghs_rehearsal'] });
    started.push(() => github.close());
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

/**
 * The release as it was before this one: the previous image running in every environment and
 * its migrations applied, so the rehearsal shows an upgrade (and the canary has a stable version).
 */
async function seedPreviousRelease(s: Services, workspace: string): Promise<void> {
  const kc = loadKubeConfig({ kubeconfig: s.sim.kubeconfig });
  const client = new KubeClient(kc);
  try {
    for (const env of ENVIRONMENTS) {
      await runMigrations({
        command: 'up',
        target: '2',
        databaseUrl: s.databases[env],
        dir: join(workspace, 'migrations'),
        lockTimeoutMs: 30_000,
        logger: silentLogger,
      });
      const objects = await loadManifests({ kustomize: `k8s/${env}`, cwd: workspace });
      const result = await deploy({
        client,
        app: 'shop',
        environment: env,
        namespace: `shop-${env}`,
        createNamespace: true,
        objects,
        images: new Map([['ghcr.io/acme/shop', PREVIOUS_IMAGE]]),
        prune: false,
        dryRun: false,
        forceConflicts: true,
        timeoutMs: 120_000,
        stuckGraceMs: 30_000,
        rollbackOnFailure: false,
        logger: new MemoryLogger(),
      });
      if (!result.ok) throw new Error(`seeding the previous release in ${env} failed: ${result.failure}`);
    }
  } finally {
    client.close();
  }
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
  try {
    const out: EnvironmentState[] = [];
    for (const env of ENVIRONMENTS) {
      const d = await client.getJson<{
        metadata: { annotations?: Record<string, string> };
        spec: { template: { spec: { containers: { image: string }[] } } };
      }>(`/apis/apps/v1/namespaces/shop-${env}/deployments/shop`);
      const canary = await client.getJson<{ spec?: { replicas?: number } }>(
        `/apis/apps/v1/namespaces/shop-${env}/deployments/shop-canary`,
      );
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
        image: d?.spec.template.spec.containers[0]?.image,
        revision: d?.metadata.annotations?.['deployment.kubernetes.io/revision'],
        canary: canary ? `present with ${canary.spec?.replicas ?? 0} replicas` : 'none',
        migrations,
      });
    }
    return out;
  } finally {
    client.close();
  }
}

function compare(
  scenario: ScenarioName,
  runs: { label: string; run: WorkflowRun }[],
  state: EnvironmentState[],
  images: Record<'feature' | 'main' | 'previous', string>,
): string[] {
  const expected = EXPECTATIONS[scenario];
  const problems: string[] = [];
  const byEnv = Object.fromEntries(state.map((s) => [s.environment, s]));
  for (const [env, build] of Object.entries(expected.images)) {
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
  if (runs.length > 1 !== expected.mainRun)
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

export async function rehearse(options: RehearseOptions): Promise<RehearseResult> {
  const started = performance.now();
  const example = options.example ?? join(REPO_ROOT, 'examples', 'shop');
  const workspace = mkdtempSync(join(tmpdir(), 'rehearsal-'));
  cpSync(example, workspace, { recursive: true });
  const say = (text: string) => options.onEvent?.({ type: 'phase', text });
  const featureImage = imageForCommit(FEATURE_SHA);
  const mainImage = imageForCommit(MAIN_SHA);
  let services: Services | undefined;
  try {
    if (options.scenario === 'failed-migration')
      writeFileSync(join(workspace, 'migrations', '004_add_order_priority.sql'), BAD_MIGRATION);
    say('starting the embedded Kubernetes API, PostgreSQL, Slack and GitHub endpoints');
    services = await startServices(options.scenario, featureImage);
    services.sim.setImageBehaviour(
      mainImage,
      options.scenario === 'crashloop'
        ? { mode: 'crash', crashAfterMs: 2000 }
        : { http: { health: { status: 'healthy', version: 'v1.5.0' } } },
    );
    say(`deploying the previous release (${PREVIOUS_IMAGE.slice(0, 40)}…) to every environment`);
    await seedPreviousRelease(services, workspace);

    const s = services;
    const needsApproval = approvalEnvironments(workspace);
    const caller = join(workspace, '.github', 'workflows', 'release.yml');
    const runOne = async (label: string, ref: string, sha: string, message: string): Promise<WorkflowRun> => {
      say(`push to ${ref.replace('refs/heads/', '')}: ${message}`);
      const runner = new WorkflowRunner({
        repoRoot: REPO_ROOT,
        workspace,
        event: {
          name: 'push',
          ref,
          sha,
          repository: 'acme/shop',
          actor: 'octocat',
          payload: { ref, after: sha, head_commit: { id: sha, message } },
        },
        secrets: { SLACK_BOT_TOKEN: 'xoxb-rehearsal' },
        environmentSecrets: Object.fromEntries(
          ENVIRONMENTS.map((env) => [env, { KUBECONFIG: s.sim.kubeconfig, DATABASE_URL: s.databases[env]! }]),
        ),
        vars: {
          PIPELINE_SLACK_API_URL: s.slack.apiUrl,
          STAGING_URL: s.ingress.url,
        },
        env: { PIPELINE_TIME_SCALE: String(options.timeScale), GITHUB_API_URL: s.github.url },
        githubApiUrl: s.github.url,
        token: 'ghs_rehearsal',
        runId: label === 'feature' ? '101' : '102',
        requiresApproval: (env) => needsApproval.has(env),
        approve: (env, job) => options.approve(env, job),
        onEvent: (e) => {
          // bad-canary: the new version starts failing under production traffic only.
          if (
            options.scenario === 'bad-canary' &&
            e.type === 'job-start' &&
            e.job.path.endsWith('production/deploy')
          ) {
            s.sim.setImageBehaviour(mainImage, {
              http: { errorRate: 0.6, health: { status: 'healthy', version: 'v1.5.0' } },
            });
          }
          options.onEvent?.(e);
        },
      });
      return runner.runWorkflow(caller);
    };

    const runs: { label: string; run: WorkflowRun }[] = [];
    runs.push({
      label: 'feature branch → dev',
      run: await runOne(
        'feature',
        'refs/heads/feature/faster-checkout',
        FEATURE_SHA,
        'Faster checkout: batch the price lookups',
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
        ),
      });
    }
    say('reading the final state of the cluster and the databases');
    const state = await readState(s);
    const mismatches = compare(options.scenario, runs, state, {
      feature: featureImage,
      main: mainImage,
      previous: PREVIOUS_IMAGE,
    });
    const result: RehearseResult = {
      scenario: options.scenario,
      ok: mismatches.length === 0,
      mismatches,
      runs,
      state,
      slack: s.slack.messages,
      deployments: s.github.deployments,
      durationMs: performance.now() - started,
      reportPath: resolve(options.reportPath),
      images: { feature: featureImage, main: mainImage, previous: PREVIOUS_IMAGE },
    };
    mkdirSync(dirname(result.reportPath), { recursive: true });
    writeFileSync(result.reportPath, renderReport(result));
    say(`done in ${formatDuration(result.durationMs)}`);
    return result;
  } finally {
    await stopServices(services);
    rmSync(workspace, { recursive: true, force: true });
  }
}
