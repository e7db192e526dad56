import { expect, test } from '@jest/globals';
import { MemoryLogger } from '../../packages/core/index.ts';
import {
  APPLICATION_NAME,
  advisoryLockKey,
  historyTable,
  MigrationFileError,
  type MigrationResult,
} from '../../packages/migrate/index.ts';
import { usePostgres } from '../../tooling/test-support/fixtures.ts';
import { eventually, history, migrate, migrationsDir, query, tableExists, withClient } from './helpers.ts';

// The session opens (connect, settings, one try of the lock, the history) while the files are
// read; these tests hold that overlap to the order of the sequential run it replaced.

const { suite, server, cleanups } = usePostgres();

const USERS = '-- migrate:up\nCREATE TABLE users (id int PRIMARY KEY, email text);\n';
const BROKEN = 'CREATE TABLE orders (id int);\n'; // no -- migrate:up marker

async function setup(files: Record<string, string>) {
  const url = await server.createDatabase('opening');
  const d = await migrationsDir(files);
  cleanups.push(d.remove);
  return { url, database: new URL(url).pathname.slice(1), ...d };
}

async function rejection(promise: Promise<MigrationResult>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Error);
  return error as Error;
}

/** The sessions of runs still connected to `database`. */
async function runSessions(url: string, database: string): Promise<number> {
  const rows = await query<{ n: number }>(
    url,
    'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE $2',
    [database, `${APPLICATION_NAME}%`],
  );
  return rows[0]!.n;
}

suite('the session opens while the files are read', () => {
  test('a broken file is reported, not the unreachable database the session was opening meanwhile', async () => {
    const { dir } = await setup({ '1_users.sql': USERS, '2_orders.sql': BROKEN });
    const error = await rejection(
      migrate({ command: 'up', databaseUrl: 'postgres://u:s3cret@127.0.0.1:1/db', dir }),
    );
    expect(error).toBeInstanceOf(MigrationFileError);
    expect(error.message).toContain('has a file "2_orders.sql" that has no "-- migrate:up" section');
  });

  test('a broken file is reported at once while another run holds the lock, and the session is let go', async () => {
    const { url, dir, database } = await setup({ '1_users.sql': USERS, '2_orders.sql': BROKEN });
    const key = advisoryLockKey(historyTable());
    await withClient(url, async (holder) => {
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [key]);
      const logger = new MemoryLogger();
      // With a minute of lock-timeout, waiting for the lock first would outlast this test.
      const error = await rejection(
        migrate({ command: 'up', databaseUrl: url, dir, lockTimeoutMs: 60_000, logger }),
      );
      expect(error).toBeInstanceOf(MigrationFileError);
      expect(logger.records.map((r) => r.message).join('\n')).not.toContain('Waiting up to');
      await eventually(
        async () => ((await runSessions(url, database)) === 0 ? true : undefined),
        'the failed run to close its session',
      );
      await holder.query('SELECT pg_advisory_unlock($1::bigint)', [key]);
    });

    // Nobody holds the lock now: the failed run takes it while reading, and must give it back.
    const again = await rejection(migrate({ command: 'up', databaseUrl: url, dir }));
    expect(again).toBeInstanceOf(MigrationFileError);
    await eventually(
      async () => ((await runSessions(url, database)) === 0 ? true : undefined),
      'the failed run to close its session',
    );
    const [free] = await query<{ ok: boolean }>(url, 'SELECT pg_try_advisory_lock($1::bigint) AS ok', [key]);
    expect(free?.ok).toBe(true);
    expect(await tableExists(url, 'public.schema_migrations')).toBe(false);
  });

  test('a run that waited for the lock reads the history after it: what the other run applied is not applied twice', async () => {
    const files: Record<string, string> = {};
    for (let i = 1; i <= 120; i++)
      files[`${i}_t${i}.sql`] =
        `-- migrate:up\nCREATE TABLE t${i} (id int);${i === 1 ? '\nSELECT pg_sleep(0.5);' : ''}\n`;
    const { url, dir } = await setup(files);
    const [a, b] = await Promise.all([
      migrate({ command: 'up', databaseUrl: url, dir }),
      migrate({ command: 'up', databaseUrl: url, dir }),
    ]);
    const applied = [...a.applied, ...b.applied].sort((x, y) => Number(x) - Number(y));
    expect(applied).toEqual(Object.keys(files).map((f) => f.split('_')[0]));
    expect([a.applied.length, b.applied.length].sort()).toEqual([0, 120]);
    expect((await history(url)).length).toBe(120);
  });

  test('a transactional migration replacing a recorded failure overwrites its history row', async () => {
    const { url, dir, write } = await setup({
      '1_users.sql': USERS,
      '2_index.sql':
        '-- migrate:up\n-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY users_nick ON users (nick);\n',
    });
    const failed = await rejection(migrate({ command: 'up', databaseUrl: url, dir }));
    expect(failed.message).toContain('recorded as failed');
    expect((await history(url)).at(-1)).toMatchObject({ version: '2', success: false });

    // Rewritten to run in a transaction: its history insert goes in the same message as its
    // statements and must replace the failure, not collide with it.
    await write({
      '2_index.sql':
        '-- migrate:up\nALTER TABLE users ADD COLUMN nick text;\nCREATE INDEX users_nick ON users (nick);\n',
    });
    const fixed = await migrate({ command: 'up', databaseUrl: url, dir });
    expect(fixed.applied).toEqual(['2']);
    const rows = await history(url);
    expect(rows.map((r) => [r.version, r.success])).toEqual([
      ['1', true],
      ['2', true],
    ]);
    const [index] = await query<{ n: number }>(
      url,
      "SELECT count(*)::int AS n FROM pg_indexes WHERE indexname = 'users_nick'",
    );
    expect(index?.n).toBe(1);
  });
});
