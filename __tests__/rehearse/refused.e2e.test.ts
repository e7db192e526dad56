import { expect, test } from '@jest/globals';
import {
  describeWithPostgres,
  env,
  expectNoDuplicateReplies,
  jobOf,
  lastRun,
  livingMessage,
  type Played,
  play,
  production,
  SCENARIO_TIMEOUT,
} from '../support/rehearsal.ts';

/**
 * The rows of the scenario matrix that end before production, whatever the strategy: inputs the
 * first job refuses before any change, a migration or a crash loop that stops the release in dev,
 * and a release superseded while it waited for its approval.
 */

/** The statuses of dev's last GitHub deployment. */
const devDeployment = (r: Played) =>
  r.deployments
    .filter((d) => d.environment === 'dev')
    .at(-1)!
    .statuses.map((s) => s.state);

describeWithPostgres('releases that stop before production, through the real workflows', () => {
  test.each([
    [
      'unknown-strategy',
      "a mistyped strategy ('bluegreen')",
      "strategy is 'bluegreen'; accepted: rolling, canary or blue-green",
    ],
    [
      'tag-image',
      'a tag instead of a digest',
      "image is 'ghcr.io/acme/shop:latest', which has no digest; accepted: registry/name@sha256:<digest>",
    ],
  ] as const)(
    '%s: %s fails the first job at once, naming the input and the accepted form, and nothing deploys',
    async (scenario, _, error) => {
      const r = await play(scenario, 'canary');
      expect(r.mismatches).toEqual([]);
      // The feature run stopped at its first job, so main was never merged.
      expect(r.runs).toHaveLength(1);
      const plan = jobOf(r, 'pipeline/plan')!;
      expect(plan.conclusion).toBe('failure');
      expect(plan.steps[0]!.log).toContain(`::error title=invalid input::${error}`);
      for (const s of r.state)
        expect([s.environment, s.deployments, s.migrations]).toEqual([s.environment, [], []]);
      expect(r.deployments).toEqual([]);
      // Refused before any environment: the message names none.
      expect(livingMessage(r).header).toBe('❌ shop failed to deploy');
      expect(livingMessage(r).text).toContain('inputs are invalid');
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
      expect(env(r, 'dev').image).toBe(r.images.previous);
      // Its transaction rolled back: dev's schema is the previous release's (and the new 003's, applied before it).
      expect(env(r, 'dev').migrations).not.toContain('4');
      expect(livingMessage(r).header).toBe('❌ shop failed to deploy to dev');
      expect(devDeployment(r)).toEqual(['in_progress', 'failure']);
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
      expect(env(r, 'dev').image).toBe(r.images.previous);
      expect(devDeployment(r)).toEqual(['in_progress', 'failure']);
      expect(livingMessage(r).header).toBe('↩️ shop rolled back in dev');
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
      expect(production(r).migrations).toEqual(['1', '2', '3']);
      expectNoDuplicateReplies(r);
    },
    SCENARIO_TIMEOUT,
  );
});
