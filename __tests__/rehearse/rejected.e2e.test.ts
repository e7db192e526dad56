import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { rehearse } from '../../packages/rehearse/rehearse.ts';
import { POSTGRES_INSTALL_HINT, postgresAvailable } from '../../packages/testkit/postgres.ts';

/** A production approval rejected: the living message closes naming production, not staging. */

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
});
