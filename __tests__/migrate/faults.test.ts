import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from '@jest/globals';
import {
  APPLICATION_NAME,
  advisoryLockKey,
  historyTable,
  type MigrationResult,
  MigrationRunError,
  renderMigrationSummary,
} from '../../packages/migrate/index.ts';
import { usePostgres } from '../../tooling/test-support/fixtures.ts';
import { eventually, history, migrate, migrationsDir, query, tableExists, withClient } from './helpers.ts';

const { suite, server, cleanups } = usePostgres();

async function setup(files: Record<string, string>) {
  const url = await server.createDatabase('fault');
  const d = await migrationsDir(files);
  cleanups.push(d.remove);
  return { url, ...d, database: new URL(url).pathname.slice(1) };
}

async function failure(promise: Promise<MigrationResult>): Promise<MigrationRunError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MigrationRunError);
  return error as MigrationRunError;
}

/** The pid of a session of ours in `database` whose query matches, once it is running (or waiting). */
function sessionRunning(url: string, database: string, application: string, like: string) {
  return eventually(async () => {
    const rows = await query<{ pid: number }>(
      url,
      `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2 AND state = 'active' AND query LIKE $3`,
      [database, application, like],
    );
    return rows[0]?.pid;
  }, `a ${application} session running ${like}`);
}

const USERS =
  '-- migrate:up\nCREATE TABLE users (id int PRIMARY KEY, email text);\n-- migrate:down\nDROP TABLE users;\n';

suite('run-migrations under faults', () => {
  test('three concurrent runs: the advisory lock makes each migration apply exactly once', async () => {
    const files: Record<string, string> = {
      '1_log.sql':
        '-- migrate:up\nCREATE TABLE applied_log (version int);\nINSERT INTO applied_log VALUES (1);\n',
    };
    for (let v = 2; v <= 8; v++) {
      files[`${v}_step.sql`] =
        `-- migrate:up\nCREATE TABLE step_${v} ();\nINSERT INTO applied_log VALUES (${v});\nSELECT pg_sleep(0.05);\n`;
    }
    const { url, dir } = await setup(files);
    const results = await Promise.all([1, 2, 3].map(() => migrate({ command: 'up', databaseUrl: url, dir })));
    const applied = results.flatMap((r) => r.applied).sort((a, b) => Number(a) - Number(b));
    expect(applied).toEqual(['1', '2', '3', '4', '5', '6', '7', '8']);
    expect(results.every((r) => r.currentVersion === '8')).toBe(true);
    expect(await query(url, 'SELECT version FROM applied_log ORDER BY version')).toEqual(
      [1, 2, 3, 4, 5, 6, 7, 8].map((version) => ({ version })),
    );
    expect((await history(url)).length).toBe(8);
  });

  test('a run waits for the lock another run holds and fails after lock-timeout, naming the holder', async () => {
    const { url, dir, database } = await setup({ '1_users.sql': USERS });
    const key = advisoryLockKey(historyTable());
    await withClient(url, async (holder) => {
      await holder.query(`SET application_name = 'other-deploy'`);
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [key]);

      const timedOut = await failure(migrate({ command: 'up', databaseUrl: url, dir, lockTimeoutMs: 200 }));
      expect(timedOut.reason).toBe('lock-timeout');
      expect(timedOut.message).toMatch(
        /held the migration lock for public\.schema_migrations, held by "other-deploy" \(PostgreSQL backend \d+, user postgres/,
      );
      expect(timedOut.message).toContain('Nothing was changed');
      const noWait = await failure(migrate({ command: 'up', databaseUrl: url, dir, lockTimeoutMs: 0 }));
      expect(noWait.message).toContain('lock-timeout is 0, so not waiting');
      expect(await tableExists(url, 'public.schema_migrations')).toBe(false);

      // A run that may wait long enough proceeds as soon as the holder lets go.
      const waiting = migrate({ command: 'up', databaseUrl: url, dir, lockTimeoutMs: 60_000 });
      await sessionRunning(url, database, APPLICATION_NAME, '%pg_advisory_lock%');
      await holder.query('SELECT pg_advisory_unlock($1::bigint)', [key]);
      expect((await waiting).applied).toEqual(['1']);
    });
  });

  test('a cancel ends a wait for the lock at once, not at lock-timeout, and changes nothing', async () => {
    const { url, dir, database } = await setup({ '1_users.sql': USERS });
    const key = advisoryLockKey(historyTable());
    await withClient(url, async (holder) => {
      await holder.query(`SET application_name = 'other-deploy'`);
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [key]);
      const cancel = new AbortController();
      const waiting = failure(
        migrate({ command: 'up', databaseUrl: url, dir, lockTimeoutMs: 600_000, cancelled: cancel.signal }),
      );
      await sessionRunning(url, database, APPLICATION_NAME, '%pg_advisory_lock%');
      cancel.abort(new Error('The step was cancelled (SIGTERM)'));
      const error = await waiting;
      expect(error.reason).toBe('cancelled');
      expect(error.message).toMatch(
        /^The run was cancelled while waiting for the migration lock for public\.schema_migrations, held by "other-deploy" .*Nothing was changed\.$/,
      );
      expect(await tableExists(url, 'public.schema_migrations')).toBe(false);
      // The cancelled run's session is gone with its wait: only the holder is left.
      await eventually(async () => {
        const rows = await query(
          url,
          'SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE $2',
          [database, `${APPLICATION_NAME}%`],
        );
        return rows.length === 0 ? true : undefined;
      }, 'no pipeline-migrate session left');
    });
  }, 30_000);

  test('a cancel during the backup stops pg_dump and applies nothing', async () => {
    const { url, dir } = await setup({ '1_users.sql': USERS });
    const scripts = await migrationsDir();
    cleanups.push(scripts.remove);
    // A pg_dump that takes its time, as a large database's does.
    const slowDump = join(scripts.dir, 'slow-pg_dump');
    await writeFile(slowDump, '#!/bin/sh\nexec sleep 60\n', { mode: 0o755 });
    const cancel = new AbortController();
    setTimeout(() => cancel.abort(new Error('The step was cancelled (SIGTERM)')), 500);
    const error = await failure(
      migrate({
        command: 'up',
        databaseUrl: url,
        dir,
        backup: { path: join(scripts.dir, 'before.dump') },
        pgDumpPath: slowDump,
        cancelled: cancel.signal,
      }),
    );
    expect(error.reason).toBe('cancelled');
    expect(error.message).toContain('The run was cancelled during the backup (pg_dump was stopped;');
    expect(error.message).toContain('no migration was applied');
    expect(await tableExists(url, 'users')).toBe(false);
  }, 30_000);

  test('a lock timeout names the run that holds the lock and the statement it is running', async () => {
    const { url, dir, database } = await setup({
      '1_users.sql': USERS,
      '2_slow.sql': '-- migrate:up\nSELECT pg_sleep(62);\n',
    });
    const first = failure(
      migrate({ command: 'up', databaseUrl: url, dir, runLabel: 'acme/shop#4242.1 migrate' }),
    );
    const pid = await sessionRunning(
      url,
      database,
      'pipeline-migrate acme/shop#4242.1 migrate',
      '%pg_sleep(62)%',
    );
    const second = await failure(migrate({ command: 'up', databaseUrl: url, dir, lockTimeoutMs: 300 }));
    expect(second.reason).toBe('lock-timeout');
    expect(second.message).toContain(
      `held by run acme/shop#4242.1 migrate (PostgreSQL backend ${pid}, user postgres`,
    );
    expect(second.message).toMatch(/active: BEGIN;\s+SELECT pg_sleep\(62\)/);
    await query(url, 'SELECT pg_terminate_backend($1)', [pid]);
    expect((await first).reason).toBe('connection-lost');
    expect((await history(url)).map((r) => r.version)).toEqual(['1']);
  });

  test('lock_timeout: a migration waiting on a table another session locks fails and is rolled back', async () => {
    const { url, dir, write } = await setup({ '1_users.sql': USERS });
    await migrate({ command: 'up', databaseUrl: url, dir });
    await write({
      '2_alter.sql': '-- migrate:up\nCREATE TABLE side ();\nALTER TABLE users ADD COLUMN name text;\n',
    });
    await withClient(url, async (blocker) => {
      await blocker.query(`SET application_name = 'report-job'`);
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE users IN ACCESS SHARE MODE');
      const error = await failure(
        migrate({
          command: 'up',
          databaseUrl: url,
          dir,
          statementLockTimeoutMs: 1500,
          statementTimeoutMs: 60_000,
        }),
      );
      expect(error.message).toContain(
        '2_alter.sql failed: canceling statement due to lock timeout (SQLSTATE 55P03)',
      );
      expect(error.message).toContain('Statement at line 3: ALTER TABLE users ADD COLUMN name text');
      expect(error.message).toContain('longer than statement-lock-timeout (1.5s)');
      // Seen while the statement waited: who blocks it, and what that session last ran.
      expect(error.message).toMatch(
        /Blocked by "report-job" \(PostgreSQL backend \d+, user postgres.*idle in transaction: LOCK TABLE users IN ACCESS SHARE MODE\)/,
      );
      await blocker.query('ROLLBACK');
    });
    expect(await tableExists(url, 'side')).toBe(false);
    expect((await history(url)).map((r) => r.version)).toEqual(['1']);
  });

  test('statement_timeout: a statement running too long is cancelled and its migration rolled back', async () => {
    const { url, dir } = await setup({
      '1_users.sql': USERS,
      '2_slow.sql': '-- migrate:up\nCREATE TABLE slow ();\nSELECT pg_sleep(30);\n',
    });
    const error = await failure(migrate({ command: 'up', databaseUrl: url, dir, statementTimeoutMs: 300 }));
    expect(error.message).toContain(
      '2_slow.sql failed: canceling statement due to statement timeout (SQLSTATE 57014)',
    );
    expect(error.message).toContain('longer than statement-timeout (300ms)');
    expect(await tableExists(url, 'slow')).toBe(false);
    expect((await history(url)).map((r) => r.version)).toEqual(['1']);
  });

  test('a connection killed mid-migration leaves the database as before that migration, and says so', async () => {
    const { url, dir, database } = await setup({
      '1_users.sql': USERS,
      '2_long.sql':
        "-- migrate:up\nCREATE TABLE marker ();\nINSERT INTO users VALUES (7, 'x');\nSELECT pg_sleep(60);\n",
    });
    const running = failure(migrate({ command: 'up', databaseUrl: url, dir }));
    const pid = await sessionRunning(url, database, APPLICATION_NAME, '%pg_sleep(60)%');
    // One session does it all: the migration runs on the session that holds the advisory lock.
    expect(
      await query(
        url,
        // The watcher (asked who blocks a statement waiting over 2 s) only reads pg_stat_activity.
        `SELECT a.pid FROM pg_stat_activity a WHERE a.application_name LIKE 'pipeline-migrate%' AND a.application_name <> 'pipeline-migrate watcher' AND a.datname = $1`,
        [database],
      ),
    ).toEqual([{ pid }]);
    expect(await query(url, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted`)).toEqual([
      { pid },
    ]);
    await query(url, 'SELECT pg_terminate_backend($1)', [pid]);
    const error = await running;
    expect(error.reason).toBe('connection-lost');
    expect(error.message).toContain('The connection to PostgreSQL was lost while applying 2_long.sql');
    expect(error.message).toContain(
      'the database is as it was before 2_long.sql and the history does not list it',
    );
    expect(error.result.applied).toEqual(['1']);
    expect(await tableExists(url, 'marker')).toBe(false);
    expect(await query(url, 'SELECT * FROM users')).toEqual([]);
    expect((await history(url)).map((r) => r.version)).toEqual(['1']);
    // The lock ended with the session: the next run is not blocked.
    expect(
      await query(
        url,
        `SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'pipeline-migrate%' AND datname = $1`,
        [database],
      ),
    ).toEqual([]);
  });

  test('a killed non-transactional migration is recorded as failed (by a new session that retakes the lock) and blocks the next run', async () => {
    const { url, dir, database } = await setup({
      '1_users.sql': USERS,
      '2_nontx.sql':
        '-- migrate:up\n-- migrate:no-transaction\nCREATE TABLE part_one ();\nSELECT pg_sleep(61);\n',
    });
    const running = failure(migrate({ command: 'up', databaseUrl: url, dir }));
    const pid = await sessionRunning(url, database, APPLICATION_NAME, '%pg_sleep(61)%');
    await query(url, 'SELECT pg_terminate_backend($1)', [pid]);
    const error = await running;
    expect(error.reason).toBe('connection-lost');
    expect(error.message).toContain('The connection to PostgreSQL was lost while applying 2_nontx.sql');
    expect(error.message).toContain('Statement at line 4: SELECT pg_sleep(61)');
    expect(error.message).toContain('the statements before the failing one stay applied');
    expect(error.message).toContain('recorded as failed');
    expect(await tableExists(url, 'part_one')).toBe(true);
    expect((await history(url)).map((r) => [r.version, r.success])).toEqual([
      ['1', true],
      ['2', false],
    ]);
    const blocked = await failure(migrate({ command: 'up', databaseUrl: url, dir }));
    expect(blocked.reason).toBe('blocked');
    const status = await migrate({ command: 'status', databaseUrl: url, dir });
    expect(status.migrations.map((r) => r.state)).toEqual(['applied', 'failed']);
    expect(status.pending).toEqual(['2']);
  });

  test('backup before applying: the printed restore command, run in a shell, brings back the data as before the run', async () => {
    const { url, dir, write } = await setup({
      '1_users.sql': USERS,
      '2_seed.sql': "-- migrate:up\nINSERT INTO users VALUES (1, 'a@x'), (2, 'b@x'), (3, 'c''s@x');\n",
    });
    await migrate({ command: 'up', databaseUrl: url, dir });
    await write({
      '3_destroy.sql':
        '-- migrate:up\nDELETE FROM users WHERE id > 1;\nALTER TABLE users DROP COLUMN email;\n',
      '4_broken.sql': '-- migrate:up\nSELECT no_such_column FROM users;\n',
    });
    const backupDir = await migrationsDir();
    cleanups.push(backupDir.remove);
    const path = join(backupDir.dir, 'nested', 'before.dump');
    const error = await failure(
      migrate({
        command: 'up',
        databaseUrl: url,
        dir,
        backup: { path },
        pgDumpPath: server.binaries.pgDump,
      }),
    );
    expect(error.result.backupPath).toBe(path);
    expect(existsSync(path)).toBe(true);
    expect(error.result.applied).toEqual(['3']);
    const hint = error.result.restoreCommand!;
    const database = new URL(url).pathname.slice(1);
    expect(hint.startsWith(`pg_restore --file=- ${path} | psql --no-psqlrc`)).toBe(true);
    expect(hint).toContain(`--host=127.0.0.1 --port=${server.port} --username=postgres --dbname=${database}`);
    expect(error.message).toContain(`run this action with command: restore, or: ${hint}`);
    // The summary shows the long command once, in its own block.
    expect(renderMigrationSummary(error.result).split(hint)).toHaveLength(2);
    expect(await query(url, 'SELECT * FROM users')).toEqual([{ id: 1 }]);

    // The printed command, pasted into a shell, puts the data back and drops what came after.
    await promisify(execFile)('/bin/sh', ['-c', hint], {
      env: { ...process.env, PATH: `${server.binaries.binDir}:${process.env.PATH ?? ''}` },
    });
    expect(await query(url, 'SELECT id, email FROM users ORDER BY id')).toEqual([
      { id: 1, email: 'a@x' },
      { id: 2, email: 'b@x' },
      { id: 3, email: "c's@x" },
    ]);
    expect((await history(url)).map((r) => r.version)).toEqual(['1', '2']);
  });

  test('a failed backup stops the run before any migration is applied', async () => {
    const { url, dir } = await setup({ '1_users.sql': USERS });
    const error = await failure(
      migrate({
        command: 'up',
        databaseUrl: url,
        dir,
        backup: { path: '/tmp/x.dump' },
        pgDumpPath: '/nonexistent/pg_dump',
      }),
    );
    expect(error.reason).toBe('backup-failed');
    expect(error.message).toContain(
      'The backup before migrating failed, so no migration was applied: pg_dump was not found (no file /nonexistent/pg_dump): install the PostgreSQL client programs',
    );
    expect(await tableExists(url, 'users')).toBe(false);
    expect(await tableExists(url, 'public.schema_migrations')).toBe(false);
  });
});
