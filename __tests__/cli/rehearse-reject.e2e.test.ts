import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { runRehearseCommand } from '../../tooling/cli/rehearse.ts';
import { POSTGRES_INSTALL_HINT, postgresAvailable } from '../../tooling/local-services/postgres.ts';

const out = mkdtempSync(join(tmpdir(), 'rehearse-reject-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));
if (!postgresAvailable() && process.env.CI === 'true') throw new Error(POSTGRES_INSTALL_HINT);
const describeWithPostgres = postgresAvailable() ? describe : describe.skip;

describeWithPostgres('pipeline rehearse --reject production', () => {
  test('is an expected ending: exit 0, told as rejected as asked', async () => {
    let stdout = '';
    let stderr = '';
    const code = await runRehearseCommand(
      [
        '--scenario',
        'first-release',
        '--strategy',
        'rolling',
        '--reject',
        'production',
        '--time-scale',
        '200',
        '--report',
        join(out, 'report.md'),
      ],
      {
        stdout: (t) => {
          stdout += t;
        },
        stderr: (t) => {
          stderr += t;
        },
        env: {},
        cwd: out,
      },
    );
    expect(stderr).toBe('');
    expect(stdout).toContain(
      "✅ Scenario 'first-release' ended as rejected at the production approval, as asked (--reject production).",
    );
    expect(stdout).toMatch(/production\s+nothing/);
    expect(code).toBe(0);
  }, 300_000);
});
