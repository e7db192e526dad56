import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from '@jest/globals';
import { findLeaks, runBuiltAction, type StepResult } from '../../tooling/runners/action-runner.ts';
import { usePostgres } from '../../tooling/test-support/fixtures.ts';
import { history, migrationsDir, query, tableExists } from '../migrate/helpers.ts';

const { suite, server, cleanups } = usePostgres();

const FILES = {
  '1_users.sql':
    '-- migrate:up\nCREATE TABLE users (id int PRIMARY KEY, email text);\n-- migrate:down\nDROP TABLE users;\n',
  '2_orders.up.sql': 'CREATE TABLE orders (id int PRIMARY KEY, user_id int);\n',
  '2_orders.down.sql': 'DROP TABLE orders;\n',
  '3_seed.sql':
    "-- migrate:up\nINSERT INTO users VALUES (1, 'a@example.com');\n-- migrate:down\nDELETE FROM users WHERE id = 1;\n",
};

// Trust authentication ignores the password, so it can ride in every URL and be hunted for in
// everything the step leaves behind, as written (percent-encoded) and decoded.
const PASSWORD_ENCODED = 'Hunter2-s3cr3t%21pw';
const PASSWORD = 'Hunter2-s3cr3t!pw';

function withPassword(url: string): string {
  return url.replace('postgres@', `postgres:${PASSWORD_ENCODED}@`);
}

async function setup(files: Record<string, string> = FILES) {
  const url = await server.createDatabase('action');
  const d = await migrationsDir(files);
  cleanups.push(d.remove);
  return { url, secretUrl: withPassword(url), ...d };
}

async function migrateStep(inputs: Record<string, string>, env: Record<string, string> = {}) {
  const step = await runBuiltAction('run-migrations', {
    inputs,
    // pg_dump of the same major version as the test server; the migration dirs are temp dirs.
    env: {
      PATH: `${server.binaries.binDir}${delimiter}${process.env.PATH ?? ''}`,
      GITHUB_WORKSPACE: tmpdir(),
      ...env,
    },
  });
  for (const secret of [PASSWORD, PASSWORD_ENCODED])
    expect([secret, findLeaks(step, secret)]).toEqual([secret, []]);
  return step;
}

const errors = (step: StepResult) =>
  step.annotations.filter((a) => a.level === 'error').map((a) => a.message);

async function publicTables(url: string): Promise<string[]> {
  const rows = await query<{ tablename: string }>(
    url,
    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
  );
  return rows.map((r) => r.tablename);
}

suite('run-migrations through the runner contract', () => {
  test('status and plan report what is pending, write the summary and create nothing', async () => {
    const { secretUrl, url, dir } = await setup();
    const status = await migrateStep({ command: 'status', 'database-url': secretUrl, dir });
    expect(errors(status)).toEqual([]);
    expect(status.exitCode).toBe(0);
    expect(status.outputs).toMatchObject({
      applied: '',
      reverted: '',
      pending: '1,2,3',
      'current-version': '',
      'backup-path': '',
    });
    expect(JSON.parse(status.outputs.result!)).toMatchObject({ command: 'status', ok: true });
    expect(status.summary).toContain('### Migrations: status succeeded');
    expect(status.summary).toContain('| 2 | orders | ⏳ pending |');
    expect(status.masks).toEqual(expect.arrayContaining([secretUrl, PASSWORD_ENCODED, PASSWORD]));

    const plan = await migrateStep({ command: 'plan', 'database-url': secretUrl, dir, target: '2' });
    expect(plan.exitCode).toBe(0);
    expect(plan.outputs.pending).toBe('1,2');
    expect(plan.summary).toContain('#### Plan');
    expect(plan.summary).toContain('CREATE TABLE orders (id int PRIMARY KEY, user_id int);');
    expect(plan.outputs.result).not.toContain('CREATE TABLE'); // the SQL stays in the summary
    expect(await tableExists(url, 'public.schema_migrations')).toBe(false);
    expect(await publicTables(url)).toEqual([]);
  });

  test('up applies to a target and records who ran it; down reverts by steps', async () => {
    const { secretUrl, url, dir } = await setup();
    const up = await migrateStep({
      command: 'up',
      'database-url': secretUrl,
      dir,
      target: '2',
      environment: 'staging',
    });
    expect(errors(up)).toEqual([]);
    expect(up.exitCode).toBe(0);
    expect(up.outputs).toMatchObject({
      applied: '1,2',
      pending: '3',
      'current-version': '2',
      'backup-path': '', // staging: no backup unless asked
    });
    expect(up.summary).toContain('### Migrations: up succeeded');
    expect(up.summary).toContain('Environment: **staging**');
    expect(up.summary).toContain('| 1 | users | 🆕 migrated |');
    expect((await history(url)).map((h) => [h.version, h.applied_by])).toEqual([
      ['1', 'octocat via https://github.com/acme/shop/actions/runs/4242'],
      ['2', 'octocat via https://github.com/acme/shop/actions/runs/4242'],
    ]);

    const down = await migrateStep({ command: 'down', 'database-url': secretUrl, dir, steps: '2' });
    expect(errors(down)).toEqual([]);
    expect(down.outputs).toMatchObject({ applied: '', reverted: '2,1', 'current-version': '' });
    expect(down.summary).toContain('↩️ reverted');
    expect(await publicTables(url)).toEqual(['schema_migrations']);
  });

  test('a cancelled job finishes the migration it is in, starts no other, and fails saying what was not applied', async () => {
    const { url, dir } = await setup({
      '1_slow.sql': '-- migrate:up\nCREATE TABLE slow (id int);\nSELECT pg_sleep(5);\n',
      '2_orders.sql': '-- migrate:up\nCREATE TABLE orders (id int);\n',
      '3_items.sql': '-- migrate:up\nCREATE TABLE items (id int);\n',
    });
    // SIGTERM while 1_slow.sql sleeps, as the runner sends on cancel (its SIGKILL comes later).
    const step = await runBuiltAction('run-migrations', {
      inputs: { command: 'up', 'database-url': url, dir },
      env: { GITHUB_WORKSPACE: tmpdir() },
      cancelAfterMs: 2500,
    });
    expect(step.exitCode).toBe(1);
    expect(errors(step)).toEqual([
      expect.stringContaining(
        'The run was cancelled after 1 of 3 migration(s); 2_orders.sql, 3_items.sql not applied. The 1 applied before the cancel stay applied and recorded in public.schema_migrations',
      ),
    ]);
    expect(step.outputs).toMatchObject({ applied: '1', pending: '2,3', 'current-version': '1' });
    expect(step.outputs.reason).toContain('cancelled after 1 of 3');
    expect(JSON.parse(step.outputs.result!)).toMatchObject({ ok: false });
    expect(step.summary).toContain('### Migrations: up failed');
    expect(step.summary).toContain('The run was cancelled after 1 of 3 migration\\(s\\); 2\\_orders');
    expect((await history(url)).map((h) => [h.version, h.success])).toEqual([['1', true]]);
    expect(await publicTables(url)).toEqual(['schema_migrations', 'slow']);

    // Consistent and unlocked: the next run applies the rest.
    const again = await migrateStep({ command: 'up', 'database-url': url, dir });
    expect(errors(again)).toEqual([]);
    expect(again.outputs).toMatchObject({ applied: '2,3', pending: '' });
  }, 60_000);

  test('a run killed inside a no-transaction migration leaves it failed in the history, naming that run; baseline and down resolve it', async () => {
    const { url, dir } = await setup({
      '1_users.sql': FILES['1_users.sql'],
      '2_half.sql':
        '-- migrate:up\n-- migrate:no-transaction\nCREATE TABLE half (id int);\nSELECT pg_sleep(4);\nCREATE INDEX CONCURRENTLY half_id ON half (id);\n' +
        '-- migrate:down\nDROP TABLE half;\n',
    });
    // SIGKILL (kill -9) while 2_half.sql sleeps: no handler runs, nothing is recorded on the way out.
    const killed = await runBuiltAction('run-migrations', {
      inputs: { command: 'up', 'database-url': url, dir },
      env: { GITHUB_WORKSPACE: tmpdir() },
      timeoutMs: 2500,
    });
    expect(killed.exitCode).not.toBe(0);
    expect(await tableExists(url, 'half')).toBe(true);
    const rows = await query<{ version: string; success: boolean; error: string | null }>(
      url,
      'SELECT version::text, success, error FROM public.schema_migrations ORDER BY version',
    );
    expect(rows.map((r) => [r.version, r.success])).toEqual([
      ['1', true],
      ['2', false],
    ]);
    expect(rows[1]!.error).toMatch(
      /^started by .*4242.* at \d{4}-\d\d-\d\dT.* and did not finish: it ran outside a transaction, so part of it may be applied$/,
    );

    // The next run is blocked by that marker and blames the killed run, not itself.
    const blocked = await migrateStep({ command: 'up', 'database-url': url, dir });
    expect(blocked.exitCode).toBe(1);
    expect(errors(blocked)).toEqual([
      expect.stringContaining('Migrations are blocked by a non-transactional migration that failed part-way'),
    ]);
    expect(errors(blocked)[0]).toContain('2_half.sql failed on');
    expect(errors(blocked)[0]).toContain('and did not finish: it ran outside a transaction');
    expect(errors(blocked)[0]).not.toContain('already exists');
    expect(await tableExists(url, 'half_id')).toBe(false);

    // Someone finished it by hand and marks it applied; then it reverts like any other.
    await query(url, 'CREATE INDEX half_id ON half (id)');
    const baseline = await migrateStep({ command: 'baseline', 'database-url': url, dir, target: '2' });
    expect(errors(baseline)).toEqual([]);
    expect((await history(url)).map((h) => [h.version, h.success])).toEqual([
      ['1', true],
      ['2', true],
    ]);
    const down = await migrateStep({ command: 'down', 'database-url': url, dir });
    expect(errors(down)).toEqual([]);
    expect(down.outputs).toMatchObject({ reverted: '2', 'current-version': '1' });
    expect(await tableExists(url, 'half')).toBe(false);
  }, 90_000);

  test('a run killed inside a no-transaction down leaves the migration failed in the history; up is blocked, down finishes it', async () => {
    const { url, dir } = await setup({
      '1_users.sql': FILES['1_users.sql'],
      '2_index.sql':
        '-- migrate:up\nCREATE TABLE half (id int);\nCREATE INDEX half_id ON half (id);\n' +
        '-- migrate:down transaction:false\nDROP INDEX CONCURRENTLY IF EXISTS half_id;\nSELECT pg_sleep(4);\nDROP TABLE IF EXISTS half;\n',
    });
    expect(errors(await migrateStep({ command: 'up', 'database-url': url, dir }))).toEqual([]);
    // SIGKILL while the down section sleeps, after its first statement.
    const killed = await runBuiltAction('run-migrations', {
      inputs: { command: 'down', 'database-url': url, dir },
      env: { GITHUB_WORKSPACE: tmpdir() },
      timeoutMs: 2500,
    });
    expect(killed.exitCode).not.toBe(0);
    expect(await tableExists(url, 'half_id')).toBe(false);
    expect(await tableExists(url, 'half')).toBe(true);
    const rows = await query<{ version: string; success: boolean; error: string | null }>(
      url,
      'SELECT version::text, success, error FROM public.schema_migrations ORDER BY version',
    );
    expect(rows.map((r) => [r.version, r.success])).toEqual([
      ['1', true],
      ['2', false],
    ]);
    expect(rows[1]!.error).toMatch(
      /^down started by .*4242.* at \d{4}-\d\d-\d\dT.* and did not finish: it ran outside a transaction, so part of it may be reverted$/,
    );

    // up would run 2_index.sql again on a half-reverted schema: it is blocked, naming the killed run.
    const blocked = await migrateStep({ command: 'up', 'database-url': url, dir });
    expect(blocked.exitCode).toBe(1);
    expect(errors(blocked)[0]).toContain(
      'Migrations are blocked by a non-transactional migration that failed part-way',
    );
    expect(errors(blocked)[0]).toContain('down started by');

    // down runs the (idempotent) section again and removes the row.
    const down = await migrateStep({ command: 'down', 'database-url': url, dir });
    expect(errors(down)).toEqual([]);
    expect(down.outputs).toMatchObject({ reverted: '2', 'current-version': '1' });
    expect(await tableExists(url, 'half')).toBe(false);
    expect((await history(url)).map((h) => [h.version, h.success])).toEqual([['1', true]]);
  }, 90_000);

  test('the last log line of a long run counts the versions; status says a part-way failure blocks up; steps beyond the applied and an empty checks-dir are said', async () => {
    const files: Record<string, string> = {};
    for (let v = 1; v <= 30; v++)
      files[`${v}_t${v}.sql`] = `-- migrate:up\nCREATE TABLE t${v} ();\n-- migrate:down\nDROP TABLE t${v};\n`;
    const { url, dir } = await setup(files);
    const empty = await migrationsDir();
    cleanups.push(empty.remove);
    const up = await migrateStep({ command: 'up', 'database-url': url, dir, 'checks-dir': empty.dir });
    expect(errors(up)).toEqual([]);
    expect(up.stdout).toContain(
      'up: applied 30 migrations (1, 2, 3, 4, 5, …, 26, 27, 28, 29, 30); current version 30, 0 pending',
    );
    expect(up.annotations.filter((a) => a.level === 'warning').map((a) => a.message)).toEqual([
      `checks-dir ${JSON.stringify(empty.dir)} holds no .sql files: no integrity checks run`,
    ]);
    expect(up.outputs.applied).toBe(Array.from({ length: 30 }, (_, i) => i + 1).join(','));

    const down = await migrateStep({ command: 'down', 'database-url': url, dir, target: '28' });
    expect(down.stdout).toContain('down: reverted 30, 29; current version 28');
    // As a no-transaction migration that failed part-way leaves it.
    await query(
      url,
      "UPDATE public.schema_migrations SET success = false, error = 'boom' WHERE version = 28",
    );
    const status = await migrateStep({ command: 'status', 'database-url': url, dir });
    expect(status.stdout).toContain(
      'status: nothing changed; current version 27, 3 pending; 1 failed part-way outside a transaction, which blocks up until resolved (see the summary)',
    );

    const many = await migrateStep({ command: 'down', 'database-url': url, dir: dir, steps: '100' });
    expect(many.stdout).toContain('steps is 100, but only 28 migration(s) are applied: reverting all 28');
    expect(many.outputs.reverted!.split(',')).toHaveLength(28);
  }, 60_000);

  test('a migration file symlinked outside the workspace is refused before it is read; a RAISE over two lines keeps its SQLSTATE in reason', async () => {
    const workspace = await mkdtemp(join(tmpdir(), 'ws-'));
    const outside = await mkdtemp(join(tmpdir(), 'outside-'));
    cleanups.push(() => rm(workspace, { recursive: true, force: true }));
    cleanups.push(() => rm(outside, { recursive: true, force: true }));
    const url = await server.createDatabase('action');
    await mkdir(join(workspace, 'db'));
    await writeFile(join(outside, 'secret.sql'), '-- migrate:up\nSELECT 1; -- the runner file\n');
    await symlink(join(outside, 'secret.sql'), join(workspace, 'db', '1_linked.sql'));
    const step = await migrateStep(
      { command: 'plan', 'database-url': url, dir: join(workspace, 'db') },
      { GITHUB_WORKSPACE: workspace },
    );
    expect(step.exitCode).toBe(1);
    expect(errors(step)).toEqual([
      expect.stringContaining(
        `Input 'dir' has a file "1_linked.sql" that is a symlink resolving outside the workspace (${workspace})`,
      ),
    ]);
    expect(step.summary).not.toContain('the runner file');

    await rm(join(workspace, 'db', '1_linked.sql'));
    await writeFile(
      join(workspace, 'db', '1_raise.sql'),
      "-- migrate:up\nDO $$ BEGIN RAISE EXCEPTION E'first line\\nsecond line'; END $$;\n",
    );
    const raised = await migrateStep(
      { command: 'up', 'database-url': url, dir: join(workspace, 'db') },
      { GITHUB_WORKSPACE: workspace },
    );
    expect(raised.outputs.reason).toBe('1_raise.sql failed: first line second line (SQLSTATE P0001)');
  });

  test('a dir with no migration files fails with one error naming it, and creates nothing', async () => {
    const { url, dir } = await setup({ 'README.md': 'Migrations live in db/migrations.\n' });
    const step = await migrateStep({ command: 'up', 'database-url': url, dir, environment: 'production' });
    expect(step.exitCode).toBe(1);
    expect(errors(step)).toEqual([
      expect.stringContaining(
        `Input 'dir' names ${JSON.stringify(dir)} (${dir}), which holds no migration files. Accepted: a directory of migration files: <version>_<name>.sql`,
      ),
    ]);
    expect(await tableExists(url, 'public.schema_migrations')).toBe(false);
  });

  test('baseline marks an existing schema applied; verify runs the checks and passes', async () => {
    const { secretUrl, url, dir } = await setup();
    await query(
      url,
      'CREATE TABLE users (id int PRIMARY KEY, email text); CREATE TABLE orders (id int, user_id int)',
    );
    const baseline = await migrateStep({ command: 'baseline', 'database-url': secretUrl, dir, target: '2' });
    expect(errors(baseline)).toEqual([]);
    expect(baseline.outputs).toMatchObject({ applied: '1,2', pending: '3', 'current-version': '2' });
    expect(baseline.summary).toContain('📌 baselined');
    expect((await history(url)).map((h) => h.applied_by)).toEqual([
      'octocat via https://github.com/acme/shop/actions/runs/4242 (baseline: marked applied without running)',
      'octocat via https://github.com/acme/shop/actions/runs/4242 (baseline: marked applied without running)',
    ]);

    const checks = await migrationsDir({
      'orphan_orders.sql':
        'SELECT o.id FROM orders o LEFT JOIN users u ON u.id = o.user_id WHERE u.id IS NULL',
    });
    cleanups.push(checks.remove);
    const verify = await migrateStep({
      command: 'verify',
      'database-url': secretUrl,
      dir,
      'checks-dir': checks.dir,
    });
    expect(errors(verify)).toEqual([]);
    expect(verify.exitCode).toBe(0);
    expect(verify.summary).toContain('### Migrations: verify succeeded');
    expect(verify.summary).toContain('| orphan\\_orders | ✅ passed | 0 |');

    // A failing check is one ::error:: (listing it), not one per check plus the step's.
    await query(url, 'INSERT INTO orders VALUES (7, 99)');
    const failed = await migrateStep({
      command: 'verify',
      'database-url': secretUrl,
      dir,
      'checks-dir': checks.dir,
    });
    expect(failed.exitCode).toBe(1);
    expect(errors(failed)).toEqual([
      expect.stringMatching(/^Integrity checks failed on verify:\n {2}check orphan_orders: 1 row\(s\)/),
    ]);
  });

  test('a failing migration fails the step naming file and statement, and still writes summary and outputs', async () => {
    const { secretUrl, url, dir } = await setup({
      '1_users.sql': FILES['1_users.sql'],
      '2_broken.sql': '-- migrate:up\nCREATE TABLE audit (id int);\nINSERT INTO no_such_table VALUES (1);\n',
    });
    const backupDir = await mkdtemp(join(tmpdir(), 'migrate-backup-'));
    cleanups.push(() => rm(backupDir, { recursive: true, force: true }));
    const step = await migrateStep({
      command: 'up',
      'database-url': secretUrl,
      dir,
      backup: 'true',
      'backup-path': join(backupDir, 'before.dump'),
    });
    expect(step.exitCode).toBe(1);
    expect(errors(step)).toHaveLength(1);
    const [error] = errors(step);
    expect(error).toContain('2_broken.sql failed: relation "no_such_table" does not exist');
    expect(error).toContain('Statement at line 3: INSERT INTO no_such_table VALUES (1)');
    expect(error).toContain('was rolled back');
    expect(error).toContain('pg_restore --file=- ');
    expect(step.summary).toContain('### Migrations: up failed');
    expect(step.summary).toContain('| 2 | broken | ❌ failed |');
    expect(step.outputs).toMatchObject({
      applied: '1',
      pending: '2',
      'current-version': '1',
      'backup-path': join(backupDir, 'before.dump'),
    });
    expect(JSON.parse(step.outputs.result!)).toMatchObject({
      ok: false,
      failure: { file: '2_broken.sql', line: 3, code: '42P01' },
    });
    expect(existsSync(join(backupDir, 'before.dump'))).toBe(true);
    expect(await publicTables(url)).toEqual(['schema_migrations', 'users']); // audit rolled back
    expect((await history(url)).map((h) => h.version)).toEqual(['1']);
  });

  test('drift fails up before changing anything, listing the edited file in the summary', async () => {
    const { secretUrl, url, dir, write } = await setup({ '1_users.sql': FILES['1_users.sql'] });
    expect((await migrateStep({ command: 'up', 'database-url': secretUrl, dir })).exitCode).toBe(0);
    await write({
      '1_users.sql': FILES['1_users.sql'].replace('email text', 'email text NOT NULL'),
      '2_orders.up.sql': FILES['2_orders.up.sql'],
    });
    const step = await migrateStep({ command: 'up', 'database-url': secretUrl, dir });
    expect(step.exitCode).toBe(1);
    expect(errors(step)).toHaveLength(1);
    expect(errors(step)[0]).toContain('edited: 1_users.sql: the up section changed after it was applied');
    expect(step.summary).toContain('#### Drift');
    // The one-line reason (for Slack) says what drifted, not only that something did.
    expect(step.outputs.reason).toMatch(
      /^The migrations on disk do not match the history in public\.schema_migrations: edited: 1_users\.sql: the up section changed after it was applied/,
    );
    expect(step.outputs.pending).toBe('2');
    expect(await publicTables(url)).toEqual(['schema_migrations', 'users']);
  });

  test('a re-run of 120 files applies nothing, and still refuses an edited, a missing or an out-of-order file', async () => {
    // More files than one slice of the reading (50), so the history read ahead meets a whole set.
    const files: Record<string, string> = {};
    for (let i = 1; i <= 120; i++)
      if (i !== 60) files[`${i}_t${i}.sql`] = `-- migrate:up\nCREATE TABLE t${i} (id int);\n`;
    const { secretUrl, url, dir, write } = await setup(files);
    const first = await migrateStep({ command: 'up', 'database-url': secretUrl, dir });
    expect(first.exitCode).toBe(0);
    expect(first.outputs.applied!.split(',')).toHaveLength(119);

    const again = await migrateStep({ command: 'up', 'database-url': secretUrl, dir });
    expect(again.exitCode).toBe(0);
    expect(again.log).toContain('Nothing to apply: public.schema_migrations is up to date');
    expect(again.outputs).toMatchObject({ applied: '', pending: '', 'current-version': '120' });

    const refusedFor = async (kind: string) => {
      const step = await migrateStep({ command: 'up', 'database-url': secretUrl, dir });
      expect([kind, step.exitCode]).toEqual([kind, 1]);
      expect(errors(step)).toHaveLength(1);
      return errors(step)[0]!;
    };
    await write({ '7_t7.sql': '-- migrate:up\nCREATE TABLE t7 (id bigint);\n' });
    expect(await refusedFor('edited')).toContain(
      'edited: 7_t7.sql: the up section changed after it was applied',
    );
    await write({ '7_t7.sql': files['7_t7.sql']! });

    await rm(join(dir, '8_t8.sql'));
    expect(await refusedFor('missing')).toContain('missing: version 8 (t8): applied on');
    await write({ '8_t8.sql': files['8_t8.sql']! });

    await write({ '60_t60.sql': '-- migrate:up\nCREATE TABLE t60 (id int);\n' });
    expect(await refusedFor('out-of-order')).toContain(
      'out-of-order: 60_t60.sql: pending, but version 120 is already applied',
    );
    expect(await tableExists(url, 'public.t60')).toBe(false);
    expect((await history(url)).length).toBe(119);
  });

  test('in production a backup is taken by default; its path is the output and pg_restore brings it back', async () => {
    const { secretUrl, url, dir } = await setup();
    await query(url, 'CREATE TABLE legacy (id int); INSERT INTO legacy VALUES (42)');
    const runnerTemp = await mkdtemp(join(tmpdir(), 'migrate-runner-temp-'));
    cleanups.push(() => rm(runnerTemp, { recursive: true, force: true }));
    const step = await migrateStep(
      { command: 'up', 'database-url': secretUrl, dir, environment: 'production' },
      { RUNNER_TEMP: runnerTemp },
    );
    expect(errors(step)).toEqual([]);
    expect(step.outputs.applied).toBe('1,2,3');
    const database = new URL(url).pathname.slice(1);
    const path = step.outputs['backup-path']!;
    expect(path.startsWith(`${runnerTemp}/${database}-`)).toBe(true);
    expect(path).toMatch(/-\d{8}T\d{6}Z\.dump$/);
    // Every row of the database: readable by the runner's user only.
    expect(((await stat(path)).mode & 0o777).toString(8)).toBe('600');
    expect(step.summary).toContain('Environment: **production**');
    expect(step.summary).toContain('Backup: ');

    const restored = await server.createDatabase('restored');
    const restoredDb = new URL(restored).pathname.slice(1);
    await promisify(execFile)(server.binaries.pgRestore, [
      '--no-owner',
      `--host=${server.host}`,
      `--port=${server.port}`,
      `--username=${server.user}`,
      `--dbname=${restoredDb}`,
      path,
    ]);
    // The database as it was before the run: legacy data, none of the migrations.
    expect(await publicTables(restored)).toEqual(['legacy']);
    expect(await query(restored, 'SELECT id FROM legacy')).toEqual([{ id: 42 }]);
  });

  test('after a failed production release the summary prints the restore, and command: restore brings the database back', async () => {
    const { secretUrl, url, dir, write } = await setup();
    const first = await migrateStep({ command: 'up', 'database-url': secretUrl, dir, target: '2' });
    expect(errors(first)).toEqual([]);
    await write({
      '3_seed.sql': "-- migrate:up\nCREATE TYPE tier AS ENUM ('free');\nCREATE TABLE plans (t tier);\n",
      '4_broken.sql': '-- migrate:up\nSELECT no_such_column FROM plans;\n',
    });
    const runnerTemp = await mkdtemp(join(tmpdir(), 'migrate-runner-temp-'));
    cleanups.push(() => rm(runnerTemp, { recursive: true, force: true }));
    const failed = await migrateStep(
      { command: 'up', 'database-url': secretUrl, dir, environment: 'production' },
      { RUNNER_TEMP: runnerTemp, GITHUB_REPOSITORY: 'acme/shop', GITHUB_RUN_ID: '77', GITHUB_JOB: 'migrate' },
    );
    expect(failed.exitCode).toBe(1);
    expect(failed.outputs.applied).toBe('3');
    const backup = failed.outputs['backup-path']!;
    expect(failed.summary).toContain('run run-migrations with `command: restore`');
    expect(failed.summary).toContain(`pg_restore --file=- ${backup} | psql`);
    expect(await tableExists(url, 'plans')).toBe(true);

    const database = new URL(url).pathname.slice(1);
    const refused = await migrateStep({
      command: 'restore',
      dir,
      'database-url': secretUrl,
      'backup-path': backup,
      'confirm-restore': 'yes',
    });
    expect(refused.exitCode).toBe(1);
    expect(errors(refused)).toHaveLength(1);
    expect(errors(refused)[0]).toContain(
      `Input 'confirm-restore' has "yes", which is not the name of the database to restore`,
    );
    expect(await tableExists(url, 'plans')).toBe(true);

    const restored = await migrateStep({
      command: 'restore',
      dir,
      'database-url': secretUrl,
      'backup-path': backup,
      'confirm-restore': database,
    });
    expect(errors(restored)).toEqual([]);
    expect(restored.outputs['current-version']).toBe('2');
    expect(restored.summary).toContain('Restored from: ');
    expect(await tableExists(url, 'plans')).toBe(false);
    expect(await query(url, `SELECT 1 FROM pg_type WHERE typname = 'tier'`)).toEqual([]);
    expect((await history(url)).map((r) => r.version)).toEqual(['1', '2']);

    await write({ '4_broken.sql': '-- migrate:up\nSELECT t FROM plans;\n' });
    const again = await migrateStep({ command: 'up', 'database-url': secretUrl, dir });
    expect(errors(again)).toEqual([]);
    expect(again.outputs.applied).toBe('3,4');
  });

  test('verify-backup drills the backup on a scratch copy and reports it; the live database is untouched', async () => {
    const { secretUrl, url, dir } = await setup();
    const runnerTemp = await mkdtemp(join(tmpdir(), 'migrate-runner-temp-'));
    cleanups.push(() => rm(runnerTemp, { recursive: true, force: true }));
    const first = await migrateStep({ command: 'up', 'database-url': secretUrl, dir, target: '2' });
    expect(errors(first)).toEqual([]);
    const up = await migrateStep(
      { command: 'up', 'database-url': secretUrl, dir, backup: 'true' },
      { RUNNER_TEMP: runnerTemp },
    );
    const drill = await migrateStep({
      command: 'verify-backup',
      'database-url': secretUrl,
      dir,
      'backup-path': up.outputs['backup-path']!,
    });
    expect(errors(drill)).toEqual([]);
    expect(drill.summary).toContain('Backup drill: ');
    expect(drill.summary).toContain('dropped afterwards');
    expect(JSON.parse(drill.outputs.result!).backupCheck).toMatchObject({
      version: '2',
      liveVersion: '3',
      appliedSinceBackup: ['3'],
      dropped: true,
    });
    expect((await history(url)).map((r) => r.version)).toEqual(['1', '2', '3']);
    expect(await query(url, `SELECT datname FROM pg_database WHERE datname LIKE '%verify%'`)).toEqual([]);
  });

  test('in production the safety lint refuses an unsafe migration by default and says why; elsewhere it warns', async () => {
    const { secretUrl, url, dir, write } = await setup();
    expect(errors(await migrateStep({ command: 'up', 'database-url': secretUrl, dir }))).toEqual([]);
    await write({ '4_drop.sql': '-- migrate:up\nALTER TABLE users DROP COLUMN email;\n' });
    const prod = await migrateStep({
      command: 'up',
      'database-url': secretUrl,
      dir,
      environment: 'production',
      backup: 'false',
    });
    expect(prod.exitCode).toBe(1);
    expect(errors(prod)).toEqual([
      expect.stringContaining(
        '4_drop.sql:2 drop-column: dropping a column breaks the application version still running',
      ),
    ]);
    expect(errors(prod)[0]).toContain('4_drop.sql:2 missing-lock-timeout');
    expect(JSON.parse(prod.outputs.lint!).map((f: { rule: string }) => f.rule)).toEqual([
      'missing-lock-timeout',
      'drop-column',
    ]);
    expect(prod.summary).toContain('#### Safety lint');
    expect(
      await query(
        url,
        `SELECT column_name FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'email'`,
      ),
    ).toHaveLength(1);

    const bad = await migrateStep({ command: 'up', 'database-url': secretUrl, dir, lint: 'strict' });
    expect(errors(bad)).toEqual([
      expect.stringContaining(`Input 'lint' has "strict". Accepted: one of error, warn, off.`),
    ]);

    const staging = await migrateStep({
      command: 'up',
      'database-url': secretUrl,
      dir,
      environment: 'staging',
    });
    expect(errors(staging)).toEqual([]);
    expect(staging.annotations.some((a) => a.level === 'warning' && a.message.includes('drop-column'))).toBe(
      true,
    );
    expect(staging.outputs.applied).toBe('4');
  });

  test('allow-drift names kinds; true still works with a deprecation warning; an unknown kind is an input error', async () => {
    const { secretUrl, url, dir, write } = await setup({
      '1_users.sql': FILES['1_users.sql'],
      '3_seed.sql': FILES['3_seed.sql'],
    });
    expect(errors(await migrateStep({ command: 'up', 'database-url': secretUrl, dir }))).toEqual([]);
    await write({ '2_orders.up.sql': FILES['2_orders.up.sql'] });
    const bad = await migrateStep({ command: 'up', 'database-url': secretUrl, dir, 'allow-drift': 'late' });
    expect(errors(bad)).toEqual([
      expect.stringContaining(`Input 'allow-drift' has "late", which is not a kind of drift`),
    ]);
    expect(await tableExists(url, 'orders')).toBe(false);
    const old = await migrateStep({ command: 'up', 'database-url': secretUrl, dir, 'allow-drift': 'true' });
    expect(errors(old)).toEqual([]);
    expect(
      old.annotations
        .filter((a) => a.level === 'warning')
        .map((a) => a.message)
        .join('\n'),
    ).toContain('allow-drift: true allows every kind of drift; name the kinds instead');
    expect(old.outputs.applied).toBe('2');
  });

  test.each([
    [
      'an unknown command',
      { command: 'migrate' },
      'Input \'command\' has "migrate", which is not a known value. Accepted: one of status, plan, up, down, verify, baseline, restore, verify-backup.',
    ],
    [
      'steps with up',
      { command: 'up', steps: '2' },
      "Input 'steps' is set for up. Accepted: steps only with the down command.",
    ],
    [
      'a missing dir',
      { command: 'up', dir: join(tmpdir(), 'nonexistent-migrations') },
      `Input 'dir' names "${join(tmpdir(), 'nonexistent-migrations')}", which does not exist.`,
    ],
    [
      'a database-url that is not PostgreSQL',
      { command: 'up', 'database-url': `mysql://root:${PASSWORD_ENCODED}@db/shop` },
      "Input 'database-url' has the scheme mysql.",
    ],
    [
      'a malformed lock-timeout',
      { command: 'up', 'lock-timeout': 'soon' },
      'Input \'lock-timeout\' has "soon", which is not a duration.',
    ],
  ])('%s fails with one error naming the input, and changes nothing', async (_label, bad, message) => {
    const { secretUrl, url, dir } = await setup();
    const step = await migrateStep({ 'database-url': secretUrl, dir, environment: 'production', ...bad });
    expect(step.exitCode).toBe(1);
    expect(errors(step)).toHaveLength(1);
    expect(errors(step)[0]).toContain(message);
    // At most the one-line reason for Slack; no result of a run that never started.
    expect(Object.keys(step.outputs).filter((k) => k !== 'reason')).toEqual([]);
    expect(step.summary).toBe('');
    expect(await publicTables(url)).toEqual([]);
  });
});
