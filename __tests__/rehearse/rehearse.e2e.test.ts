import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { POSTGRES_INSTALL_HINT, postgresAvailable } from '../../tooling/local-services/postgres.ts';
import { CONFIG_CHANGE, endingOf, type RehearseResult, rehearse } from '../../tooling/rehearse/rehearse.ts';
import type { ScenarioName, Strategy } from '../../tooling/rehearse/scenarios.ts';

/**
 * The scenario matrix, each through the real workflows (examples/shop's caller → pipeline.yml →
 * deploy.yml → the built actions) into empty environments: the previous release is played
 * through the same workflows first, never written into the cluster or database behind them.
 */

const out = mkdtempSync(join(tmpdir(), 'rehearse-test-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

if (!postgresAvailable() && process.env.CI === 'true') throw new Error(POSTGRES_INSTALL_HINT);
const describeWithPostgres = postgresAvailable() ? describe : describe.skip;
if (!postgresAvailable()) console.warn(`skipping the rehearsal tests: ${POSTGRES_INSTALL_HINT}`);

const SCENARIO_TIMEOUT = 300_000;
const figures: string[] = [];
afterAll(() => {
  if (figures.length) console.log(`rehearsal time per scenario:\n${figures.join('\n')}`);
});

async function play(
  scenario: ScenarioName,
  strategy: Strategy,
  reject: string[] = [],
): Promise<RehearseResult & { approvals: string[] }> {
  const approvals: string[] = [];
  const r = await rehearse({
    scenario,
    strategy,
    timeScale: 120,
    reportPath: join(out, `${scenario}-${strategy}.md`),
    approve: async (env) => {
      approvals.push(env);
      return !reject.includes(env);
    },
  });
  figures.push(`  ${scenario} × ${strategy}: ${(r.durationMs / 1000).toFixed(1)} s`);
  return { ...r, approvals };
}

/** GitHub's deployment records of the jobs that named an environment: [environment, statuses]. */
const jobDeployments = (r: RehearseResult) =>
  r.deployments
    .filter((d) => d.description.startsWith('job '))
    .map((d) => [d.environment, d.statuses.map((s) => s.state).join('>')]);
const header = (m: { blocks: unknown[] }) => (m.blocks[0] as { text: { text: string } }).text.text;
const production = (r: RehearseResult) => r.state.find((s) => s.environment === 'production')!;
const lastRun = (r: RehearseResult) => r.runs.at(-1)!.run;
const jobOf = (r: RehearseResult, path: string) => lastRun(r).jobs.find((j) => j.path === path);
const pipelineOutputs = (r: RehearseResult) => jobOf(r, 'pipeline')!.outputs;

/** The living message of the last run: its final header, and its thread replies, which must never repeat. */
function livingMessage(r: RehearseResult) {
  const living = r.slack.filter((m) => !m.threadTs).at(-1)!;
  const replies = r.slack.filter((m) => m.threadTs === living.ts).map((m) => m.text);
  return { header: header(living), text: JSON.stringify(living.blocks), replies };
}

function expectNoDuplicateReplies(r: RehearseResult): void {
  for (const living of r.slack.filter((m) => !m.threadTs)) {
    const replies = r.slack.filter((m) => m.threadTs === living.ts).map((m) => m.text);
    expect(replies).toEqual([...new Set(replies)]);
  }
}

/** The first release (the previous one, played first) reached production with the strategy. */
function expectFirstRelease(r: RehearseResult, strategy: Strategy): void {
  const main = r.previous.at(-1)?.run ?? lastRun(r);
  expect(endingOf(main)).toBe('succeeded');
  const step = main.jobs
    .find((j) => j.path === 'pipeline/production/deploy')!
    .steps.find(
      (s) => s.id === { rolling: 'rolling', canary: 'canary', 'blue-green': 'bluegreen' }[strategy],
    )!;
  expect(step.conclusion).toBe('success');
  if (strategy !== 'rolling') expect(step.outputs['first-release']).toBe('true');
}

describeWithPostgres('pipeline rehearse: the scenario matrix through the real workflows', () => {
  describe.each(['rolling', 'canary', 'blue-green'] as const)('%s', (strategy) => {
    test(
      'first release into empty environments: the whole overlay reaches every environment',
      async () => {
        const r = await play('first-release', strategy);
        expect(r.mismatches).toEqual([]);
        expect(r.previous).toEqual([]);
        expectFirstRelease(r, strategy);
        const prod = production(r);
        expect(prod.deployment).toBe(strategy === 'blue-green' ? 'shop-blue' : 'shop');
        expect(prod.image).toBe(r.images.main);
        // The production overlay's replicas and settings, not the base's.
        expect(prod.replicas).toBe(10);
        expect(prod.config.LOG_LEVEL).toBe('warn');
        expect(prod.config.DATABASE_HOST).toBe('shop-production-db.internal.example.com');
        expect(r.approvals).toEqual(['production']);
        const outputs = pipelineOutputs(r);
        expect(outputs).toMatchObject({
          environment: 'production',
          image: r.images.main,
          ended: 'succeeded',
        });
        expect(outputs.revision).toBe(prod.revision);
        const living = livingMessage(r);
        expect(living.header).toBe('✅ shop deployed to production');
        expect(living.replies.some((t) => t.includes('waiting for approval'))).toBe(true);
        expectNoDuplicateReplies(r);
        // GitHub's records of the jobs that ran in an environment, and deploy-env's own.
        expect(jobDeployments(r)).toEqual([
          ['dev', 'in_progress>success'],
          ['staging', 'in_progress>success'],
          // pipeline.yml's read-only production plan job runs in an environment of its own.
          ['production-plan', 'in_progress>success'],
          ['production', 'in_progress>success'],
        ]);
        expect(
          r.deployments
            .filter((d) => (d.payload as { app?: string }).app === 'shop')
            .map((d) => [d.environment, d.statuses.map((s) => s.state).join('>')]),
        ).toEqual([
          ['dev', 'in_progress>success'],
          ['staging', 'in_progress>success'],
          // deploy-env records a rolling release; deploy.yml records a canary or blue-green one once final.
          ['production', strategy === 'rolling' ? 'in_progress>success' : 'success'],
        ]);
      },
      SCENARIO_TIMEOUT,
    );

    test(
      'an image change replaces the previous release, which was itself a first release',
      async () => {
        const r = await play('healthy', strategy);
        expect(r.mismatches).toEqual([]);
        expectFirstRelease(r, strategy);
        const prod = production(r);
        expect(prod.image).toBe(r.images.main);
        expect(prod.canary).toBe('none');
        expect(prod.deployment).toBe(strategy === 'blue-green' ? 'shop-green' : 'shop');
        // The new version runs the production overlay's template, not the previous one's with a new image.
        expect(prod.replicas).toBe(10);
        expect(prod.config.LOG_LEVEL).toBe('warn');
        expect(pipelineOutputs(r)).toMatchObject({ environment: 'production', image: r.images.main });
        expect(pipelineOutputs(r).revision).toBe(prod.revision);
        expect(livingMessage(r).header).toBe('✅ shop deployed to production');
        expectNoDuplicateReplies(r);
      },
      SCENARIO_TIMEOUT,
    );

    test(
      'a configuration-only change (same image) reaches production',
      async () => {
        const r = await play('config-change', strategy);
        expect(r.mismatches).toEqual([]);
        const prod = production(r);
        expect(prod.image).toBe(r.images.previous);
        expect(prod.config.LOG_LEVEL).toBe(CONFIG_CHANGE.LOG_LEVEL);
        expect(prod.replicas).toBe(CONFIG_CHANGE.replicas);
        expect(livingMessage(r).header).toBe('✅ shop deployed to production');
      },
      SCENARIO_TIMEOUT,
    );

    test(
      'a release that fails the production soak is rolled back to the previous one',
      async () => {
        const r = await play('failed-soak', strategy);
        expect(r.mismatches).toEqual([]);
        const prod = production(r);
        expect(prod.image).toBe(r.images.previous);
        expect(prod.config.LOG_LEVEL).toBe('warn');
        expect(prod.replicas).toBe(10);
        if (strategy === 'blue-green') expect(prod.deployment).toBe('shop-blue');
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
        expect(pipelineOutputs(r).revision).toBe(prod.revision);
        expect(livingMessage(r).header).toBe('↩️ shop rolled back in production');
        expect(jobDeployments(r).at(-1)).toEqual(['production', 'in_progress>failure']);
        expectNoDuplicateReplies(r);
      },
      SCENARIO_TIMEOUT,
    );
  });

  test.each(['canary', 'blue-green'] as const)(
    'bad-canary × %s: the new version fails its checks beside the stable one and never takes the traffic',
    async (strategy) => {
      const r = await play('bad-canary', strategy);
      expect(r.mismatches).toEqual([]);
      expect(production(r).image).toBe(r.images.previous);
      const step = jobOf(r, 'pipeline/production/deploy')!.steps.find(
        (s) => s.id === (strategy === 'canary' ? 'canary' : 'bluegreen'),
      )!;
      expect(step.conclusion).toBe('failure');
      if (strategy === 'canary') {
        expect(step.outputs.phase).toBe('aborted');
        expect(production(r).canary).toBe('present with 0 replicas');
        expect(livingMessage(r).header).toBe('↩️ shop rolled back in production');
      } else {
        expect(step.outputs.switched).toBe('false');
        expect(production(r).deployment).toBe('shop-blue');
        expect(livingMessage(r).header).toBe('❌ shop failed to deploy to production');
      }
      expectNoDuplicateReplies(r);
    },
    SCENARIO_TIMEOUT,
  );

  test(
    'superseded: a release approved after a newer merge went out changes nothing and says so',
    async () => {
      const r = await play('superseded', 'canary');
      expect(r.mismatches).toEqual([]);
      // The newer merge (built from another commit) runs in staging and production.
      expect(production(r).image).toBe(r.images.feature);
      const older = lastRun(r);
      const deploy = older.jobs.find((j) => j.path === 'pipeline/production/deploy')!;
      expect(deploy.steps.find((s) => s.id === 'newer')!.conclusion).toBe('failure');
      for (const id of ['migrate', 'canary', 'gate', 'rollback'])
        expect(deploy.steps.find((s) => s.id === id)!.conclusion).toBe('skipped');
      expect(older.jobs.find((j) => j.path === 'pipeline')!.outputs).toMatchObject({
        environment: 'production',
        ended: 'superseded',
      });
      // The older run's living message (the newer run posted its own after it).
      const olderMessage = r.slack.find(
        (m) => !m.threadTs && JSON.stringify(m.blocks).includes(r.images.main),
      )!;
      expect(JSON.stringify(olderMessage.blocks)).toContain('superseded');
      expectNoDuplicateReplies(r);
    },
    SCENARIO_TIMEOUT,
  );

  test(
    'crashloop: dev fails fast on CrashLoopBackOff, rolls back, and main is never released',
    async () => {
      const r = await play('crashloop', 'canary');
      expect(r.mismatches).toEqual([]);
      expect(r.runs).toHaveLength(1);
      const deployStep = jobOf(r, 'pipeline/dev/deploy')!.steps.find((s) => s.id === 'rolling')!;
      expect(deployStep.error).toMatch(/CrashLoopBackOff.*The previous version was rolled back\./);
      expect(deployStep.outputs['rolled-back']).toBe('true');
      expect(
        r.deployments
          .filter((d) => d.environment === 'dev')
          .at(-1)!
          .statuses.map((s) => s.state),
      ).toEqual(['in_progress', 'failure']);
      expect(livingMessage(r).header).toBe('↩️ shop rolled back in dev');
    },
    SCENARIO_TIMEOUT,
  );

  test(
    'failed-migration: the migration rolls back, the app is not deployed, the release stops in dev',
    async () => {
      const r = await play('failed-migration', 'canary');
      expect(r.mismatches).toEqual([]);
      const steps = jobOf(r, 'pipeline/dev/deploy')!.steps;
      expect(steps.find((s) => s.name === 'migrations up')!.error).toMatch(/004_add_order_priority\.sql/);
      expect(steps.find((s) => s.id === 'rolling')!.conclusion).toBe('skipped');
      expect(r.state.find((s) => s.environment === 'dev')!.image).toBe(r.images.previous);
      expect(livingMessage(r).header).toBe('❌ shop failed to deploy to dev');
    },
    SCENARIO_TIMEOUT,
  );

  test(
    "a mistyped strategy ('bluegreen') fails at once, naming the input and the accepted values, and nothing deploys",
    async () => {
      const r = await play('unknown-strategy', 'canary');
      expect(r.mismatches).toEqual([]);
      const plan = jobOf(r, 'pipeline/plan')!;
      expect(plan.conclusion).toBe('failure');
      expect(plan.steps[0]!.log).toContain(
        "::error title=invalid input::strategy is 'bluegreen'; accepted: rolling, canary or blue-green",
      );
      for (const env of r.state) expect(env.deployment).toBeUndefined();
      expect(r.deployments).toEqual([]);
      expect(livingMessage(r).header).toBe('❌ shop failed to deploy to dev');
      expect(livingMessage(r).text).toContain('inputs are invalid');
    },
    SCENARIO_TIMEOUT,
  );

  test(
    'a rejected production approval ends the living message as rejected, with production untouched',
    async () => {
      const r = await play('healthy', 'canary', ['production']);
      expect(jobOf(r, 'pipeline/production/deploy')).toMatchObject({
        conclusion: 'failure',
        reason: 'the deployment to production was rejected',
      });
      expect(production(r).image).toBe(r.images.previous);
      expect(pipelineOutputs(r)).toMatchObject({ environment: 'staging', ended: 'rejected' });
      const living = livingMessage(r);
      expect(living.text).toContain('Production was not approved');
      expect(living.replies.filter((t) => t.includes('not approved'))).toHaveLength(1);
      expectNoDuplicateReplies(r);
      const report = readFileSync(r.reportPath, 'utf8');
      expect(report).toContain('# Rehearsal: healthy (canary)');
    },
    SCENARIO_TIMEOUT,
  );
});
