import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { POSTGRES_INSTALL_HINT, postgresAvailable } from '../../tooling/local-services/postgres.ts';
import { CONFIG_CHANGE, endingOf, type RehearseResult, rehearse } from '../../tooling/rehearse/rehearse.ts';
import { expectationFor, type ScenarioName, type Strategy } from '../../tooling/rehearse/scenarios.ts';

/**
 * The scenario matrix, shared by the test files that play it (jest runs two files at a time, so
 * the rows are spread over a few files). Each row goes through the real workflows (the caller →
 * pipeline.yml → deploy.yml → the built actions) into empty environments, the previous release
 * played first through the same workflows, and is asserted on the cluster, the database, Slack
 * and the GitHub deployments.
 */

export const SCENARIO_TIMEOUT = 300_000;
/** The rehearsal's time scale in the tests: a 15m soak lasts 4.5 s, the 2m and 5m canary pauses 1.2 s and 3 s. */
export const TIME_SCALE = 200;

if (!postgresAvailable() && process.env.CI === 'true') throw new Error(POSTGRES_INSTALL_HINT);
export const describeWithPostgres = postgresAvailable() ? describe : describe.skip;
if (!postgresAvailable()) console.warn(`skipping the rehearsal tests: ${POSTGRES_INSTALL_HINT}`);

export type Played = RehearseResult & { approvals: string[] };

const out = mkdtempSync(join(tmpdir(), 'rehearse-test-'));
const figures: string[] = [];
afterAll(() => {
  rmSync(out, { recursive: true, force: true });
  if (figures.length) console.log(`rehearsal time per scenario:\n${figures.join('\n')}`);
});

export async function play(
  scenario: ScenarioName,
  strategy: Strategy,
  options: { reject?: string[]; example?: string } = {},
): Promise<Played> {
  const approvals: string[] = [];
  const r = await rehearse({
    scenario,
    strategy,
    timeScale: TIME_SCALE,
    reportPath: join(out, `${scenario}-${strategy}.md`),
    ...(options.example ? { example: options.example } : {}),
    approve: async (env) => {
      approvals.push(env);
      return !options.reject?.includes(env);
    },
  });
  figures.push(`  ${scenario} × ${strategy}: ${(r.durationMs / 1000).toFixed(1)} s`);
  return { ...r, approvals };
}

/** GitHub's deployment records of the jobs that named an environment: [environment, statuses]. */
export const jobDeployments = (r: RehearseResult) =>
  r.deployments
    .filter((d) => d.description.startsWith('job '))
    .map((d) => [d.environment, d.statuses.map((s) => s.state).join('>')]);
/**
 * deploy-env's and deploy.yml's own records of the app: [environment, its last status]. The
 * statuses before it vary (in_progress, a soak verdict); the last one is what the release ended as.
 */
export const appDeployments = (r: RehearseResult) =>
  r.deployments
    .filter((d) => (d.payload as { app?: string }).app === r.app)
    .map((d) => [d.environment, d.statuses.at(-1)?.state]);
const header = (m: { blocks: unknown[] }) => (m.blocks[0] as { text: { text: string } }).text.text;
export const env = (r: RehearseResult, name: string) => r.state.find((s) => s.environment === name)!;
export const production = (r: RehearseResult) => env(r, 'production');
export const lastRun = (r: RehearseResult) => r.runs.at(-1)!.run;
export const jobOf = (r: RehearseResult, path: string) => lastRun(r).jobs.find((j) => j.path === path);
export const pipelineOutputs = (r: RehearseResult) => jobOf(r, 'pipeline')!.outputs;
const STEP_OF = { rolling: 'rolling', canary: 'canary', 'blue-green': 'bluegreen' } as const;
export const strategyStep = (r: RehearseResult, strategy: Strategy) =>
  jobOf(r, 'pipeline/production/deploy')!.steps.find((s) => s.id === STEP_OF[strategy])!;

/** The living message of the last run: its final header, and its thread replies. */
export function livingMessage(r: RehearseResult) {
  const living = r.slack.filter((m) => !m.threadTs).at(-1)!;
  const replies = r.slack.filter((m) => m.threadTs === living.ts).map((m) => m.text);
  return { header: header(living), text: JSON.stringify(living.blocks), replies };
}

export function expectNoDuplicateReplies(r: RehearseResult): void {
  for (const living of r.slack.filter((m) => !m.threadTs)) {
    const replies = r.slack.filter((m) => m.threadTs === living.ts).map((m) => m.text);
    expect(replies).toEqual([...new Set(replies)]);
  }
}

/** The first release (the previous one, played first) reached production with the strategy. */
export function expectFirstRelease(r: RehearseResult, strategy: Strategy): void {
  const main = r.previous.at(-1)?.run ?? lastRun(r);
  expect(endingOf(main)).toBe('succeeded');
  const step = main.jobs
    .find((j) => j.path === 'pipeline/production/deploy')!
    .steps.find((s) => s.id === STEP_OF[strategy])!;
  expect(step.conclusion).toBe('success');
  if (strategy !== 'rolling') expect(step.outputs['first-release']).toBe('true');
}

/** Production as the previous release left it: its image, the overlay's settings, its schema. */
export function expectProductionUntouched(r: RehearseResult, strategy: Strategy): void {
  const prod = production(r);
  expect(prod.image).toBe(r.images.previous);
  expect(prod.replicas).toBe(10);
  expect(prod.config.LOG_LEVEL).toBe('warn');
  if (strategy === 'blue-green') expect(prod.deployment).toBe('shop-blue');
  expect(prod.canary === 'none' || prod.canary === 'present with 0 replicas').toBe(true);
}

/** What every row of the matrix checks beyond its own assertions: the expected ending, no repeated replies. */
function expectEnding(r: Played, scenario: ScenarioName, strategy: Strategy): void {
  expect(r.mismatches).toEqual([]);
  expect(endingOf(lastRun(r))).toBe(expectationFor(scenario, strategy).ended);
  expectNoDuplicateReplies(r);
}

type Row = { scenario: ScenarioName; title: string; check(r: Played, strategy: Strategy): void };

/** The matrix rows every strategy plays, each with its own assertions. */
export const MATRIX: Row[] = [
  {
    scenario: 'first-release',
    title: 'first release into empty environments: the whole overlay reaches every environment',
    check(r, strategy) {
      expect(r.previous).toEqual([]);
      expectFirstRelease(r, strategy);
      const prod = production(r);
      expect(prod.deployment).toBe(strategy === 'blue-green' ? 'shop-blue' : 'shop');
      expect(prod.image).toBe(r.images.main);
      // The production overlay's replicas and settings, not the base's.
      expect(prod.replicas).toBe(10);
      expect(prod.config.LOG_LEVEL).toBe('warn');
      expect(prod.config.DATABASE_HOST).toBe('shop-production-db.internal.example.com');
      for (const e of ['dev', 'staging', 'production']) expect(env(r, e).migrations).toEqual(['1', '2', '3']);
      expect(r.approvals).toEqual(['production']);
      const outputs = pipelineOutputs(r);
      expect(outputs).toMatchObject({ environment: 'production', image: r.images.main, ended: 'succeeded' });
      expect(outputs.revision).toBe(prod.revision);
      const living = livingMessage(r);
      expect(living.header).toBe('✅ shop deployed to production');
      expect(living.replies.some((t) => t.includes('waiting for approval'))).toBe(true);
      // GitHub's records of the jobs that ran in an environment, and deploy-env's own.
      expect(jobDeployments(r)).toEqual([
        ['dev', 'in_progress>success'],
        ['staging', 'in_progress>success'],
        // pipeline.yml's read-only production plan job runs in an environment of its own.
        ['production-plan', 'in_progress>success'],
        ['production', 'in_progress>success'],
      ]);
      // deploy-env records a rolling release; deploy.yml records a canary or blue-green one once final.
      expect(appDeployments(r)).toEqual([
        ['dev', 'success'],
        ['staging', 'success'],
        ['production', 'success'],
      ]);
    },
  },
  {
    scenario: 'healthy',
    title: 'an image change replaces the previous release, which was itself a first release',
    check(r, strategy) {
      expectFirstRelease(r, strategy);
      const prod = production(r);
      expect(prod.image).toBe(r.images.main);
      expect(prod.canary).toBe('none');
      expect(prod.deployment).toBe(strategy === 'blue-green' ? 'shop-green' : 'shop');
      // The new version runs the production overlay's template, not the previous one's with a new image.
      expect(prod.replicas).toBe(10);
      expect(prod.config.LOG_LEVEL).toBe('warn');
      // The new release's migration, which the previous release did not have.
      expect(prod.migrations).toEqual(['1', '2', '3']);
      expect(pipelineOutputs(r)).toMatchObject({ environment: 'production', image: r.images.main });
      expect(pipelineOutputs(r).revision).toBe(prod.revision);
      expect(livingMessage(r).header).toBe('✅ shop deployed to production');
      expect(jobDeployments(r).at(-1)).toEqual(['production', 'in_progress>success']);
      expect(appDeployments(r).at(-1)).toEqual(['production', 'success']);
    },
  },
  {
    scenario: 'config-change',
    title: 'a configuration-only change (same image) reaches production',
    check(r) {
      const prod = production(r);
      expect(prod.image).toBe(r.images.previous);
      expect(prod.config.LOG_LEVEL).toBe(CONFIG_CHANGE.LOG_LEVEL);
      expect(prod.replicas).toBe(CONFIG_CHANGE.replicas);
      expect(prod.migrations).toEqual(['1', '2', '3']);
      expect(livingMessage(r).header).toBe('✅ shop deployed to production');
      expect(jobDeployments(r).at(-1)).toEqual(['production', 'in_progress>success']);
    },
  },
  {
    scenario: 'failed-soak',
    title: 'a release that fails the production soak is rolled back to the previous one',
    check(r, strategy) {
      expectProductionUntouched(r, strategy);
      const steps = jobOf(r, 'pipeline/production/deploy')!.steps;
      expect(steps.find((s) => s.id === 'gate')!.conclusion).toBe('failure');
      const rollback = steps.find(
        (s) => s.id === (strategy === 'blue-green' ? 'bluegreen-rollback' : 'rollback'),
      )!;
      expect(rollback.conclusion).toBe('success');
      expect(rollback.outputs['rolled-back']).toBe('true');
      expect(pipelineOutputs(r)).toMatchObject({
        environment: 'production',
        image: r.images.previous,
        ended: 'rolled-back',
        verdict: 'failed',
      });
      expect(pipelineOutputs(r).revision).toBe(production(r).revision);
      // The migration ran before the deploy; the schema change is backward compatible, so it stays.
      expect(production(r).migrations).toEqual(['1', '2', '3']);
      expect(livingMessage(r).header).toBe('↩️ shop rolled back in production');
      expect(jobDeployments(r).at(-1)).toEqual(['production', 'in_progress>failure']);
    },
  },
  {
    scenario: 'bad-canary',
    title:
      'the new version fails its checks (canary analysis, the preview Service, the health gate) and never keeps the traffic',
    check(r, strategy) {
      expectProductionUntouched(r, strategy);
      const step = strategyStep(r, strategy);
      if (strategy === 'rolling') {
        // A rolling deploy has no canary: the health gate right after it fails, and it is undone.
        expect(step.conclusion).toBe('success');
        const steps = jobOf(r, 'pipeline/production/deploy')!.steps;
        expect(steps.find((s) => s.id === 'gate')!.conclusion).toBe('failure');
        expect(steps.find((s) => s.id === 'rollback')!.outputs['rolled-back']).toBe('true');
        expect(livingMessage(r).header).toBe('↩️ shop rolled back in production');
      } else if (strategy === 'canary') {
        expect(step.conclusion).toBe('failure');
        expect(step.outputs.phase).toBe('aborted');
        expect(production(r).canary).toBe('present with 0 replicas');
        expect(livingMessage(r).header).toBe('↩️ shop rolled back in production');
      } else {
        expect(step.conclusion).toBe('failure');
        expect(step.outputs.switched).toBe('false');
        expect(livingMessage(r).header).toBe('❌ shop failed to deploy to production');
      }
      expect(jobDeployments(r).at(-1)).toEqual(['production', 'in_progress>failure']);
    },
  },
  {
    scenario: 'production-crashloop',
    title: 'a version that crash-loops in production only fails fast and leaves the previous release serving',
    check(r, strategy) {
      expectProductionUntouched(r, strategy);
      // Dev and staging run it (it crashes only on production's pods).
      expect(env(r, 'staging').image).toBe(r.images.main);
      const step = strategyStep(r, strategy);
      expect(step.conclusion).toBe('failure');
      expect(step.error).toMatch(/CrashLoopBackOff/);
      if (strategy === 'rolling') expect(step.outputs['rolled-back']).toBe('true');
      if (strategy === 'canary') expect(step.outputs.phase).toBe('aborted');
      if (strategy === 'blue-green') expect(step.outputs.switched).toBe('false');
      expect(livingMessage(r).header).toBe(
        strategy === 'blue-green'
          ? '❌ shop failed to deploy to production'
          : '↩️ shop rolled back in production',
      );
      expect(jobDeployments(r).at(-1)).toEqual(['production', 'in_progress>failure']);
    },
  },
  {
    scenario: 'rejected',
    title: 'a rejected production approval ends the living message as rejected, with production untouched',
    check(r, strategy) {
      expectProductionUntouched(r, strategy);
      // Staging ran the new migration; production's schema is the previous release's.
      expect(env(r, 'staging').migrations).toEqual(['1', '2', '3']);
      expect(production(r).migrations).toEqual(['1', '2']);
      expect(jobOf(r, 'pipeline/production/deploy')).toMatchObject({
        conclusion: 'failure',
        reason: 'the deployment to production was rejected',
      });
      expect(pipelineOutputs(r)).toMatchObject({ environment: 'staging', ended: 'rejected' });
      const living = livingMessage(r);
      expect(living.text).toContain('Production was not approved');
      expect(living.replies.filter((t) => t.includes('not approved'))).toHaveLength(1);
      // No deployment record for production in the rejected run: the job never started.
      const runs = r.deployments.filter(
        (d) => d.environment === 'production' && d.description.startsWith('job '),
      );
      expect(runs).toHaveLength(1);
      expect(readFileSync(r.reportPath, 'utf8')).toContain(`# Rehearsal: rejected (${strategy})`);
    },
  },
];

/** One strategy's rows of the matrix, as tests. */
export function describeMatrix(strategy: Strategy): void {
  describeWithPostgres(`the scenario matrix through the real workflows: ${strategy}`, () => {
    for (const row of MATRIX)
      test(
        `${row.scenario}: ${row.title}`,
        async () => {
          const r = await play(row.scenario, strategy);
          expectEnding(r, row.scenario, strategy);
          row.check(r, strategy);
        },
        SCENARIO_TIMEOUT,
      );
  });
}
