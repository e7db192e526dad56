import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { type RehearseResult, rehearse } from '../../packages/rehearse/rehearse.ts';
import { POSTGRES_INSTALL_HINT, postgresAvailable } from '../../packages/testkit/postgres.ts';

const out = mkdtempSync(join(tmpdir(), 'rehearse-test-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

if (!postgresAvailable() && process.env.CI === 'true') throw new Error(POSTGRES_INSTALL_HINT);
const describeWithPostgres = postgresAvailable() ? describe : describe.skip;
if (!postgresAvailable()) console.warn(`skipping the rehearsal tests: ${POSTGRES_INSTALL_HINT}`);

const approvals: string[] = [];
function play(
  scenario: Parameters<typeof rehearse>[0]['scenario'],
  reject: string[] = [],
): Promise<RehearseResult> {
  return rehearse({
    scenario,
    timeScale: 120,
    reportPath: join(out, `${scenario}.md`),
    approve: async (env) => {
      approvals.push(env);
      return !reject.includes(env);
    },
  });
}

const jobsOf = (r: RehearseResult) =>
  Object.fromEntries(r.runs.flatMap((x) => x.run.jobs).map((j) => [j.path, j]));

describeWithPostgres('pipeline rehearse, every scenario end to end', () => {
  test('healthy: the release reaches production through dev, staging, the approval and the canary', async () => {
    approvals.length = 0;
    const r = await play('healthy');
    expect(r.mismatches).toEqual([]);
    expect(r.ok).toBe(true);
    const state = Object.fromEntries(r.state.map((s) => [s.environment, s]));
    expect(state.dev!.image).toBe(r.images.feature);
    expect(state.staging!.image).toBe(r.images.main);
    expect(state.production!.image).toBe(r.images.main);
    expect(state.production!.canary).toBe('none');
    for (const env of ['dev', 'staging', 'production'])
      expect(state[env]!.migrations).toEqual(['1', '2', '3']);
    expect(approvals).toEqual(['production']);
    const jobs = jobsOf(r);
    expect(jobs['pipeline/production/deploy']!.steps.find((s) => s.name === 'deploy (canary)')).toMatchObject(
      { conclusion: 'success' },
    );
    expect(jobs['pipeline/staging-tests']!.steps.map((s) => s.conclusion)).toEqual([
      'skipped',
      'success',
      'success',
      'success',
    ]);
    // GitHub deployments from the rolling deploys, each ending in success.
    expect(r.deployments.map((d) => [d.environment, d.statuses.map((s) => s.state).join('>')])).toEqual([
      ['dev', 'in_progress>success'],
      ['staging', 'in_progress>success'],
    ]);
    // One living Slack message per pipeline run, updated in place by every stage, with thread replies.
    const living = r.slack.filter((m) => !m.threadTs);
    const header = (blocks: unknown[]) => (blocks[0] as { text: { text: string } }).text.text;
    expect(living.map((m) => header(m.blocks))).toEqual([
      '✅ shop deployed to dev',
      '✅ shop deployed to production',
    ]);
    expect(living[1]!.edits.map((e) => header(e.blocks))).toEqual([
      '🚀 Deploying shop',
      '🚀 Deploying shop to staging',
      '✅ shop deployed to staging',
      '🚀 Deploying shop to production',
      '✅ shop deployed to production',
    ]);
    expect(r.slack.filter((m) => m.threadTs === living[1]!.ts)).toHaveLength(5);
    const report = readFileSync(r.reportPath, 'utf8');
    expect(report).toContain('# Rehearsal: healthy — ended as expected');
    expect(report).toContain('production["production<br/>canary, soak<br/>success"]:::success');
    expect(report).toContain('## Slack messages');
  });

  test('bad-canary: the canary aborts at 10% and production stays on the stable version', async () => {
    const r = await play('bad-canary');
    expect(r.mismatches).toEqual([]);
    const production = r.state.find((s) => s.environment === 'production')!;
    expect(production.image).toBe(r.images.previous);
    expect(production.canary).toBe('present with 0 replicas');
    const canaryStep = jobsOf(r)['pipeline/production/deploy']!.steps.find(
      (s) => s.name === 'deploy (canary)',
    )!;
    expect(canaryStep.conclusion).toBe('failure');
    expect(canaryStep.outputs.phase).toBe('aborted');
    const last = r.slack.filter((m) => !m.threadTs).at(-1)!;
    expect((last.blocks[0] as { text: { text: string } }).text.text).toBe('↩️ shop rolled back in production');
  });

  test('crashloop: dev fails fast on CrashLoopBackOff, rolls back, and main is never released', async () => {
    const r = await play('crashloop');
    expect(r.mismatches).toEqual([]);
    expect(r.runs).toHaveLength(1);
    const deployStep = jobsOf(r)['pipeline/dev/deploy']!.steps.find(
      (s) => s.name === 'deploy (rolling update)',
    )!;
    expect(deployStep.error).toMatch(/CrashLoopBackOff.*The previous version was rolled back\./);
    expect(deployStep.outputs['rolled-back']).toBe('true');
    expect(r.deployments[0]!.statuses.map((s) => s.state)).toEqual(['in_progress', 'failure']);
  });

  test('failed-migration: the migration rolls back, the app is not deployed, the release stops in dev', async () => {
    const r = await play('failed-migration');
    expect(r.mismatches).toEqual([]);
    const steps = jobsOf(r)['pipeline/dev/deploy']!.steps;
    expect(steps.find((s) => s.name === 'migrations up')!.error).toMatch(/004_add_order_priority\.sql/);
    expect(steps.find((s) => s.name === 'deploy (rolling update)')!.conclusion).toBe('skipped');
    expect(r.state.find((s) => s.environment === 'dev')!.image).toBe(r.images.previous);
  });

  test('a rejected production approval stops the release before production', async () => {
    const r = await play('healthy', ['production']);
    expect(r.ok).toBe(false);
    expect(jobsOf(r)['pipeline/production/deploy']).toMatchObject({
      conclusion: 'failure',
      reason: 'the deployment to production was rejected',
    });
    expect(r.state.find((s) => s.environment === 'production')!.image).toBe(r.images.previous);
  });
});
