import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { runRehearseCommand } from '../../tooling/cli/rehearse.ts';
import { postgresAvailable } from '../../tooling/local-services/postgres.ts';
import { rehearse } from '../../tooling/rehearse/rehearse.ts';
import { parseWorkflowCommands } from '../../tooling/runners/action-runner.ts';

const out = mkdtempSync(join(tmpdir(), 'rehearse-verbose-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

(postgresAvailable() ? describe : describe.skip)('pipeline rehearse --verbose', () => {
  test('prints the steps’ output with their masks applied, never an ::add-mask:: value', async () => {
    // What the steps write, raw: the masks the CLI must hide (a token, the Slack token, ...).
    let raw = '';
    await rehearse({
      scenario: 'unknown-strategy',
      timeScale: 120,
      reportPath: join(out, 'raw.md'),
      approve: async () => true,
      onEvent: (e) => {
        if (e.type === 'output') raw += e.text;
      },
    });
    const masks = parseWorkflowCommands(raw).masks.filter((m) => m.length >= 6);
    expect(masks.length).toBeGreaterThan(0);

    let stdout = '';
    let stderr = '';
    const code = await runRehearseCommand(
      [
        '--scenario',
        'unknown-strategy',
        '--approve',
        '--verbose',
        '--time-scale',
        '120',
        '--report',
        join(out, 'r.md'),
      ],
      {
        stdout: (t) => {
          stdout += t;
        },
        stderr: (t) => {
          stderr += t;
        },
        env: process.env,
        cwd: out,
      },
    );
    expect([code, stderr]).toEqual([0, '']);
    expect(stdout.split('\n').filter((l) => l.startsWith('         ')).length).toBeGreaterThan(0);
    expect(stdout).not.toContain('::add-mask::');
    for (const mask of masks)
      expect([mask.slice(0, 4), stdout.includes(mask)]).toEqual([mask.slice(0, 4), false]);
  }, 300_000);
});
