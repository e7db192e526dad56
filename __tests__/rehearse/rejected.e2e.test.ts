import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { POSTGRES_INSTALL_HINT, postgresAvailable } from '../../tooling/local-services/postgres.ts';
import { rehearse } from '../../tooling/rehearse/rehearse.ts';
import { REPO_ROOT } from '../../tooling/runners/action-runner.ts';

/**
 * Endings before production: a rejected approval closes the living message naming production, not
 * staging; failed staging tests never say staging failed to deploy.
 */

const out = mkdtempSync(join(tmpdir(), 'rejected-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

if (!postgresAvailable() && process.env.CI === 'true') throw new Error(POSTGRES_INSTALL_HINT);
const describeWithPostgres = postgresAvailable() ? describe : describe.skip;

describeWithPostgres('a rejected production approval', () => {
  test('ends as rejected, and Slack names production in the header', async () => {
    const r = await rehearse({
      scenario: 'first-release',
      strategy: 'rolling',
      timeScale: 200,
      reportPath: join(out, 'rejected.md'),
      approve: async (env) => env !== 'production',
    });
    const run = r.runs.at(-1)!.run;
    expect(run.jobs.find((j) => j.path === 'pipeline')!.outputs.ended).toBe('rejected');
    expect(r.state.find((s) => s.environment === 'production')!.image).toBeUndefined();
    expect(r.state.find((s) => s.environment === 'staging')!.image).toBe(r.images.main);
    const living = r.slack.filter((m) => !m.threadTs).at(-1)!;
    const header = (living.blocks[0] as { text: { text: string } }).text.text;
    expect(header).toBe('ℹ️ shop · production');
    expect(JSON.stringify(living.blocks)).toContain('Production was not approved');
  }, 300_000);

  test('failed staging tests end as tests-failed without saying staging failed to deploy', async () => {
    const example = join(out, 'tests-fail');
    cpSync(join(REPO_ROOT, 'examples', 'shop'), example, { recursive: true });
    const caller = join(example, '.github', 'workflows', 'release.yml');
    const text = readFileSync(caller, 'utf8');
    expect(text).toContain('integration-command: node tests/integration.mjs');
    writeFileSync(
      caller,
      text.replace('integration-command: node tests/integration.mjs', 'integration-command: exit 3'),
    );
    const r = await rehearse({
      scenario: 'first-release',
      strategy: 'rolling',
      timeScale: 200,
      reportPath: join(out, 'tests-fail.md'),
      example,
      approve: async () => true,
    });
    const run = r.runs.at(-1)!.run;
    expect(run.jobs.find((j) => j.path === 'pipeline')!.outputs.ended).toBe('tests-failed');
    expect(r.state.find((s) => s.environment === 'staging')!.image).toBe(r.images.main);
    expect(r.state.find((s) => s.environment === 'production')!.image).toBeUndefined();
    const living = r.slack.filter((m) => !m.threadTs).at(-1)!;
    expect((living.blocks[0] as { text: { text: string } }).text.text).toBe('ℹ️ shop · staging');
    const told = JSON.stringify(r.slack.filter((m) => m.ts === living.ts || m.threadTs === living.ts));
    expect(told).not.toContain('failed to deploy');
    expect(told).toContain('Staging deployed, but the staging tests failed');
  }, 300_000);
});
