import { tmpdir } from 'node:os';
import { delimiter } from 'node:path';
import { expect, test } from '@jest/globals';
import { runBuiltAction } from '../../tooling/runners/action-runner.ts';
import { usePostgres } from '../../tooling/test-support/fixtures.ts';
import { migrationsDir } from '../migrate/helpers.ts';

/**
 * Through the built bundle and the runner contract: a step summary never passes GitHub's 1 MiB
 * per-step limit (over it GitHub drops the whole summary), and a failing migration names itself
 * in the `reason` output that Slack shows.
 */

const { suite, server } = usePostgres();

const step = (inputs: Record<string, string>) =>
  runBuiltAction('run-migrations', {
    inputs,
    env: {
      PATH: `${server.binaries.binDir}${delimiter}${process.env.PATH ?? ''}`,
      GITHUB_WORKSPACE: tmpdir(),
    },
  });

suite('run-migrations through the runner', () => {
  test('planning 30 large migrations writes a summary under 1 MiB, with a visible note that it was cut', async () => {
    const body = `${"INSERT INTO big (note) VALUES ('a long enough line of seed data to make the file large');\n".repeat(500)}`;
    const files: Record<string, string> = { '001_big.sql': '-- migrate:up\nCREATE TABLE big (note text);\n' };
    for (let i = 2; i <= 31; i++) files[`${String(i).padStart(3, '0')}_seed.sql`] = `-- migrate:up\n${body}`;
    const d = await migrationsDir(files);
    try {
      const url = await server.createDatabase('cap');
      const result = await step({ command: 'plan', dir: d.dir, 'database-url': url });
      expect(result.exitCode).toBe(0);
      const bytes = Buffer.byteLength(result.summary);
      expect(bytes).toBeLessThan(1024 * 1024);
      expect(bytes).toBeGreaterThan(100_000);
      expect(result.summary).toMatch(/cut|left out|not shown/i);
    } finally {
      await d.remove();
    }
  }, 180_000);

  test('a failing migration names the file, PostgreSQL message and SQLSTATE in the reason output', async () => {
    const d = await migrationsDir({
      '001_orders.sql': '-- migrate:up\nCREATE TABLE orders (id int);\n',
      '004_add_order_priority.sql':
        '-- migrate:up\nALTER TABLE orders ADD COLUMN priority integer NOT NULL DEFAULT 0;\nUPDATE orders SET priority = missing_column + 1;\n',
    });
    try {
      const url = await server.createDatabase('reason');
      const result = await step({ command: 'up', dir: d.dir, 'database-url': url });
      expect(result.exitCode).not.toBe(0);
      expect(result.outputs.reason).toBe(
        '004_add_order_priority.sql failed: column "missing_column" does not exist (SQLSTATE 42703)',
      );
      const ok = await step({ command: 'status', dir: d.dir, 'database-url': url });
      expect(ok.outputs.reason).toBe('');
    } finally {
      await d.remove();
    }
  }, 180_000);
});
