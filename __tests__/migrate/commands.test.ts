import { expect, test } from '@jest/globals';
import { InputError, MemoryLogger } from '../../packages/core/index.ts';
import {
  DatabaseConnectionError,
  type MigrationResult,
  MigrationRunError,
  renderMigrationSummary,
} from '../../packages/migrate/index.ts';
import { usePostgres } from '../../tooling/test-support/fixtures.ts';
import { history, migrate, migrationsDir, query, tableExists } from './helpers.ts';

const { suite, server, cleanups } = usePostgres();

const BASE = {
  '1_users.sql':
    '-- migrate:up\nCREATE TABLE users (id int PRIMARY KEY, email text);\n-- migrate:down\nDROP TABLE users;\n',
  '2_orders.up.sql': 'CREATE TABLE orders (id int PRIMARY KEY, user_id int);\n',
  '2_orders.down.sql': 'DROP TABLE orders;\n',
  '3_seed.sql':
    "-- migrate:up\nINSERT INTO users VALUES (1, 'a@example.com');\n-- migrate:down\nDELETE FROM users WHERE id = 1;\n",
};

async function setup(files: Record<string, string> = BASE) {
  const url = await server.createDatabase('cmd');
  const d = await migrationsDir(files);
  cleanups.push(d.remove);
  return { url, ...d };
}

async function failure(promise: Promise<MigrationResult>): Promise<MigrationRunError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MigrationRunError);
  return error as MigrationRunError;
}

suite('run-migrations commands against PostgreSQL', () => {
  test('status and plan report pending migrations and change nothing (no history table)', async () => {
    const { url, dir } = await setup();
    const status = await migrate({ command: 'status', databaseUrl: url, dir });
    expect(status.migrations.map((r) => [r.version, r.state])).toEqual([
      ['1', 'pending'],
      ['2', 'pending'],
      ['3', 'pending'],
    ]);
    expect(status.currentVersion).toBeUndefined();
    const plan = await migrate({ command: 'plan', databaseUrl: url, dir, target: '2' });
    expect(plan.pending).toEqual(['1', '2']);
    expect(plan.migrations.map((r) => r.state)).toEqual(['planned', 'planned', 'pending']);
    expect(plan.migrations[1]!.sql).toBe('CREATE TABLE orders (id int PRIMARY KEY, user_id int);');
    expect(renderMigrationSummary(plan)).toContain(
      '```sql\nCREATE TABLE orders (id int PRIMARY KEY, user_id int);\n```',
    );
    expect(await tableExists(url, 'public.schema_migrations')).toBe(false);
    expect(await tableExists(url, 'users')).toBe(false);
  });

  test('up applies everything in order and records version, name, checksum, applied_by; a re-run applies nothing', async () => {
    const { url, dir } = await setup();
    const result = await migrate({ command: 'up', databaseUrl: url, dir, appliedBy: 'octocat (run 42)' });
    expect(result.applied).toEqual(['1', '2', '3']);
    expect(result.currentVersion).toBe('3');
    expect(result.pending).toEqual([]);
    expect(result.migrations.every((r) => r.state === 'migrated' && r.durationMs !== undefined)).toBe(true);
    const rows = await history(url);
    expect(rows.map((r) => [r.version, r.name, r.success, r.applied_by])).toEqual([
      ['1', 'users', true, 'octocat (run 42)'],
      ['2', 'orders', true, 'octocat (run 42)'],
      ['3', 'seed', true, 'octocat (run 42)'],
    ]);
    expect(rows[0]!.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(await query(url, 'SELECT id FROM users')).toEqual([{ id: 1 }]);

    const again = await migrate({ command: 'up', databaseUrl: url, dir });
    expect(again.applied).toEqual([]);
    expect(again.migrations.map((r) => r.state)).toEqual(['applied', 'applied', 'applied']);
    expect((await history(url)).length).toBe(3);
  });

  test('an empty or comment-only up section is a no-op that is recorded, as dbmate and golang-migrate apply it', async () => {
    const logger = new MemoryLogger();
    const { url, dir } = await setup({
      '1_users.sql': BASE['1_users.sql'],
      '2_placeholder.sql': '-- migrate:up\n-- nothing yet\n-- migrate:down\n',
      '3_empty.up.sql': '',
      '3_empty.down.sql': '',
    });
    const up = await migrate({ command: 'up', databaseUrl: url, dir, logger });
    expect(up.applied).toEqual(['1', '2', '3']);
    expect(logger.records.filter((e) => e.level === 'warning').map((e) => e.message)).toEqual([
      '2_placeholder.sql has no statements in its up section: it is recorded as applied and runs nothing',
      '3_empty.up.sql has no statements in its up section: it is recorded as applied and runs nothing',
    ]);
    expect((await history(url)).map((h) => h.version)).toEqual(['1', '2', '3']);
    const down = await migrate({ command: 'down', databaseUrl: url, dir, target: '1' });
    expect(down.reverted).toEqual(['3', '2']);
    expect(await tableExists(url, 'users')).toBe(true);
  });

  test("a migration's SET does not reach the next: the same schema whether they run together, one by one, in a batch or outside a transaction", async () => {
    const files = {
      '1_schema.sql':
        "-- migrate:up\nCREATE SCHEMA app;\nSET search_path TO app, public;\nSET lock_timeout = '5s';\nCREATE TABLE a1 (i int);\n" +
        '-- migrate:down\nSET search_path TO app, public;\nDROP TABLE a1;\nDROP SCHEMA app;\n',
      '2_seen.sql':
        "-- migrate:up\nCREATE TABLE a2 AS SELECT current_setting('search_path') AS path, current_setting('lock_timeout') AS lt;\n" +
        '-- migrate:down\nDROP TABLE a2;\n',
      '3_nontx.sql':
        '-- migrate:up transaction:false\nSET search_path TO app;\nCREATE TABLE a3 (i int);\n-- migrate:down transaction:false\nDROP TABLE app.a3;\n',
      '4_after.sql': '-- migrate:up\nCREATE TABLE a4 (i int);\n-- migrate:down\nDROP TABLE a4;\n',
    };
    const where = async (url: string) =>
      query<{ s: string; t: string }>(
        url,
        "SELECT schemaname AS s, tablename AS t FROM pg_tables WHERE tablename ~ '^a[0-9]$' ORDER BY tablename",
      );
    const expected = [
      { s: 'app', t: 'a1' },
      { s: 'public', t: 'a2' },
      { s: 'app', t: 'a3' },
      { s: 'public', t: 'a4' },
    ];
    const together = await setup(files);
    await migrate({
      command: 'up',
      databaseUrl: together.url,
      dir: together.dir,
      statementTimeoutMs: 60_000,
    });
    expect(await where(together.url)).toEqual(expected);
    // The run's own settings come back too; the migration's lock_timeout does not.
    expect(await query(together.url, 'SELECT path, lt FROM a2')).toEqual([
      { path: '"$user", public', lt: '0' },
    ]);

    const oneByOne = await setup(files);
    for (const target of ['1', '2', '3', '4'])
      await migrate({ command: 'up', databaseUrl: oneByOne.url, dir: oneByOne.dir, target });
    expect(await where(oneByOne.url)).toEqual(expected);

    const batch = await setup({ '1_schema.sql': files['1_schema.sql'], '2_seen.sql': files['2_seen.sql'] });
    await migrate({ command: 'up', databaseUrl: batch.url, dir: batch.dir, batch: true });
    expect(await where(batch.url)).toEqual(expected.slice(0, 2));

    // And down: the first down's SET does not decide where the next one drops.
    await migrate({ command: 'down', databaseUrl: together.url, dir: together.dir, target: '0' });
    expect(await where(together.url)).toEqual([]);
  });

  test('a SET ROLE in one migration neither writes the history row nor owns what the next creates', async () => {
    const role = `owner_${process.pid}_${Date.now() % 100000}`;
    const { url, dir } = await setup({
      '1_as_owner.sql': `-- migrate:up\nSET ROLE ${role};\nCREATE TABLE r1 (i int);\n`,
      '2_after.sql': '-- migrate:up\nCREATE TABLE r2 (i int);\n',
      '3_nontx.sql': `-- migrate:up transaction:false\nSET ROLE ${role};\nCREATE TABLE r3 (i int);\n`,
      '4_after.sql': '-- migrate:up\nCREATE TABLE r4 (i int);\n',
    });
    // The role may create tables but not write the history: a history insert made as it fails.
    await query(url, `CREATE ROLE ${role} NOLOGIN; GRANT CREATE, USAGE ON SCHEMA public TO ${role}`);
    try {
      const up = await migrate({ command: 'up', databaseUrl: url, dir });
      expect(up.applied).toEqual(['1', '2', '3', '4']);
      expect(
        await query(
          url,
          "SELECT tablename, tableowner FROM pg_tables WHERE tablename ~ '^r[0-9]$' ORDER BY 1",
        ),
      ).toEqual([
        { tablename: 'r1', tableowner: role },
        { tablename: 'r2', tableowner: 'postgres' },
        { tablename: 'r3', tableowner: role },
        { tablename: 'r4', tableowner: 'postgres' },
      ]);
    } finally {
      await query(url, `DROP OWNED BY ${role}; DROP ROLE ${role}`);
    }
  });

  test('session objects do not outlive their migration: a temp table, a prepared statement, a held cursor', async () => {
    const { url, dir } = await setup({
      '1_items.sql': '-- migrate:up\nCREATE TABLE items (id int);\n',
      '2_scratch.sql':
        '-- migrate:up\nCREATE TEMP TABLE items AS SELECT * FROM public.items;\nPREPARE p AS SELECT 1;\n' +
        'DECLARE c CURSOR WITH HOLD FOR SELECT 1;\nLISTEN ch;\n',
      '3_price.sql':
        '-- migrate:up\nALTER TABLE items ADD COLUMN price numeric;\nCREATE INDEX items_price ON items (price);\n' +
        'PREPARE p AS SELECT 2;\nDECLARE c CURSOR WITH HOLD FOR SELECT 2;\n',
    });
    const up = await migrate({ command: 'up', databaseUrl: url, dir });
    expect(up.applied).toEqual(['1', '2', '3']);
    // The ALTER went to public.items, not to the temp table the migration before made.
    expect(
      await query(
        url,
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'items' ORDER BY 1",
      ),
    ).toEqual([{ column_name: 'id' }, { column_name: 'price' }]);
    expect(await tableExists(url, 'public.items_price')).toBe(true);
  });

  test('a no-transaction down that turns on default_transaction_read_only still removes its row', async () => {
    const { url, dir } = await setup({
      '1_t.sql':
        '-- migrate:up\nCREATE TABLE t (i int);\n-- migrate:down transaction:false\nDROP TABLE t;\nSET default_transaction_read_only = on;\n',
    });
    await migrate({ command: 'up', databaseUrl: url, dir });
    const down = await migrate({ command: 'down', databaseUrl: url, dir });
    expect(down.reverted).toEqual(['1']);
    expect(await history(url)).toEqual([]);
  });

  test("a migration that lets the run's lock go fails the run, saying another run could have worked alongside", async () => {
    const { url, dir } = await setup({
      '1_users.sql': BASE['1_users.sql'],
      '2_unlock.sql': '-- migrate:up transaction:false\nSELECT pg_advisory_unlock_all();\n',
    });
    const error = await failure(migrate({ command: 'up', databaseUrl: url, dir }));
    expect(error.reason).toBe('lock-lost');
    expect(error.message).toContain(
      "A migration of this run released the run's advisory lock for public.schema_migrations (pg_advisory_unlock_all() or DISCARD ALL in a migration)",
    );
    expect(error.message).toContain('The 2 migration(s) applied stay applied and recorded.');
  });

  test('up leaves alone a NOT VALID constraint another session adds meanwhile, and one a migration only rebuilds', async () => {
    const { url, dir, write } = await setup({
      '1_t.sql':
        '-- migrate:up\nCREATE TABLE t (x int);\nCREATE TABLE other_t (n int);\nINSERT INTO t VALUES (-1);\nINSERT INTO other_t VALUES (-1);\n',
    });
    await migrate({ command: 'up', databaseUrl: url, dir });
    await query(url, 'ALTER TABLE t ADD CONSTRAINT c_prev CHECK (x > 0) NOT VALID');
    await write({
      // A type change rebuilds c_prev (a new oid, a new catalog row) without adding it.
      '2_type.sql': '-- migrate:up\nALTER TABLE t ALTER COLUMN x TYPE bigint;\n',
      '3_slow.sql': '-- migrate:up\nSELECT pg_sleep(1.5);\n',
      '4_mine.sql': '-- migrate:up\nALTER TABLE t ADD CONSTRAINT c_mine CHECK (x < 100) NOT VALID;\n',
    });
    const running = migrate({ command: 'up', databaseUrl: url, dir });
    const database = new URL(url).pathname.slice(1);
    for (let i = 0; i < 200; i++) {
      const rows = await query(
        url,
        "SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND query LIKE '%pg_sleep(1.5)%' AND state = 'active' AND pid <> pg_backend_pid()",
        [database],
      );
      if (rows.length > 0) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    await query(url, 'ALTER TABLE other_t ADD CONSTRAINT c_theirs CHECK (n > 0) NOT VALID');
    const up = await running;
    expect(up.constraints).toEqual([{ schema: 'public', table: 't', constraint: 'c_mine', validated: true }]);
    expect(
      await query(
        url,
        "SELECT conname, convalidated FROM pg_constraint WHERE conname LIKE 'c\\_%' ORDER BY 1",
      ),
    ).toEqual([
      { conname: 'c_mine', convalidated: true },
      { conname: 'c_prev', convalidated: false },
      { conname: 'c_theirs', convalidated: false },
    ]);
  });

  test('up to a target stops there; down reverts one step, down to 0 reverts all, up again restores', async () => {
    const { url, dir } = await setup();
    expect((await migrate({ command: 'up', databaseUrl: url, dir, target: '2' })).applied).toEqual([
      '1',
      '2',
    ]);
    expect((await migrate({ command: 'up', databaseUrl: url, dir })).applied).toEqual(['3']);

    const one = await migrate({ command: 'down', databaseUrl: url, dir });
    expect(one.reverted).toEqual(['3']);
    expect(one.currentVersion).toBe('2');
    expect(await query(url, 'SELECT id FROM users')).toEqual([]);

    const all = await migrate({ command: 'down', databaseUrl: url, dir, target: '0' });
    expect(all.reverted).toEqual(['2', '1']);
    expect(all.currentVersion).toBeUndefined();
    expect(await tableExists(url, 'users')).toBe(false);
    expect(await history(url)).toEqual([]);

    const back = await migrate({ command: 'up', databaseUrl: url, dir });
    expect(back.applied).toEqual(['1', '2', '3']);
    expect(await query(url, 'SELECT id FROM users')).toEqual([{ id: 1 }]);
  });

  test("down to a target that is no file's version (a typo) is refused and reverts nothing; 0 still reverts all", async () => {
    const files = {
      '20240101000000_users.sql': BASE['1_users.sql'],
      '20240102000000_orders.sql':
        '-- migrate:up\nCREATE TABLE orders (id int);\n-- migrate:down\nDROP TABLE orders;\n',
      '20240103000000_seed.sql': BASE['3_seed.sql'],
    };
    const { url, dir } = await setup(files);
    await migrate({ command: 'up', databaseUrl: url, dir });
    const before = await history(url);
    // One digit short of 20240102000000: below every file, so it would have reverted all three.
    const refused = migrate({ command: 'down', databaseUrl: url, dir, target: '2024010200000' });
    await expect(refused).rejects.toThrow(InputError);
    await expect(refused).rejects.toThrow(
      "Input 'target' has 2024010200000, which is not the version of a migration file",
    );
    expect(await history(url)).toEqual(before);
    expect(await query(url, 'SELECT id FROM users')).toEqual([{ id: 1 }]);
    expect(await tableExists(url, 'orders')).toBe(true);
    const toFile = await migrate({ command: 'down', databaseUrl: url, dir, target: '20240102000000' });
    expect(toFile.reverted).toEqual(['20240103000000']);
    const all = await migrate({ command: 'down', databaseUrl: url, dir, target: '0' });
    expect(all.reverted).toEqual(['20240102000000', '20240101000000']);
    expect(await history(url)).toEqual([]);
  });

  test('down in batch: a failing down section leaves every migration applied', async () => {
    const { url, dir, write } = await setup();
    await migrate({ command: 'up', databaseUrl: url, dir });
    await write({ '2_orders.down.sql': 'DROP TABLE orders;\nDROP TABLE no_such_table;\n' });
    const error = await failure(
      migrate({ command: 'down', databaseUrl: url, dir, target: '0', batch: true }),
    );
    expect(error.message).toContain('2_orders.down.sql failed: table "no_such_table" does not exist');
    expect(error.message).toContain('Statement at line 2: DROP TABLE no_such_table');
    expect(error.result.reverted).toEqual([]);
    expect(await query(url, 'SELECT id FROM users')).toEqual([{ id: 1 }]);
    expect(await tableExists(url, 'orders')).toBe(true);
    expect((await history(url)).length).toBe(3);
  });

  test('down refuses a migration without a down section before reverting anything', async () => {
    const { url, dir } = await setup({ ...BASE, '4_nodown.sql': '-- migrate:up\nCREATE TABLE t4 ();' });
    await migrate({ command: 'up', databaseUrl: url, dir });
    const error = await failure(migrate({ command: 'down', databaseUrl: url, dir, steps: 2 }));
    expect(error.reason).toBe('not-reversible');
    expect(error.message).toContain(
      'Cannot revert 4_nodown.sql: it has no down section. Nothing was changed.',
    );
    expect((await history(url)).length).toBe(4);
  });

  test('a failing migration is rolled back whole; the error names file, statement, line, position and SQLSTATE', async () => {
    const { url, dir } = await setup({
      ...BASE,
      '4_broken.sql':
        '-- migrate:up\nCREATE TABLE half (id int);\n\nALTER TABLE half\n  ADD COLUMN total numerc;\n',
    });
    const error = await failure(migrate({ command: 'up', databaseUrl: url, dir }));
    expect(error.reason).toBe('migration-failed');
    expect(error.message).toContain('4_broken.sql failed: type "numerc" does not exist (SQLSTATE 42704)');
    expect(error.message).toContain('Statement at line 4: ALTER TABLE half\n  ADD COLUMN total numerc');
    expect(error.message).toMatch(/Position \d+ \(line 5, column 20\)/);
    expect(error.message).toContain('rolled back');
    expect(error.message).toContain('The 3 migration(s) before it in this run stay applied');
    expect(error.result.failure).toMatchObject({ file: '4_broken.sql', line: 5, code: '42704' });
    expect(error.result.applied).toEqual(['1', '2', '3']);
    expect(error.result.migrations.find((r) => r.version === '4')?.state).toBe('failed');
    expect(await tableExists(url, 'half')).toBe(false);
    expect((await history(url)).map((r) => r.version)).toEqual(['1', '2', '3']);
    const summary = renderMigrationSummary(error.result);
    expect(summary).toContain('#### Failure');
    expect(summary).toContain('The migration ran in a transaction and was rolled back');
    expect(summary).toContain('❌ failed');
  });

  test('batch: a failure in the middle rolls back the whole batch; database and history are unchanged', async () => {
    const { url, dir } = await setup({
      ...BASE,
      '2_orders.up.sql': 'CREATE TABLE orders (id int PRIMARY KEY);\nINSERT INTO orders VALUES (1), (1);\n',
    });
    const error = await failure(migrate({ command: 'up', databaseUrl: url, dir, batch: true }));
    expect(error.message).toContain(
      '2_orders.up.sql failed: duplicate key value violates unique constraint "orders_pkey"',
    );
    expect(error.message).toContain('none of its 3 migration(s) is applied');
    expect(error.result.migrations.map((r) => r.state)).toEqual(['rolled-back', 'failed', 'pending']);
    expect(error.result.applied).toEqual([]);
    expect(await tableExists(url, 'users')).toBe(false);
    expect(await tableExists(url, 'orders')).toBe(false);
    expect(await history(url)).toEqual([]);

    const fixed = await setup();
    const ok = await migrate({ command: 'up', databaseUrl: fixed.url, dir: fixed.dir, batch: true });
    expect(ok.applied).toEqual(['1', '2', '3']);
  });

  test('an edited applied file is drift: up and verify refuse and change nothing', async () => {
    const { url, dir, write } = await setup();
    await migrate({ command: 'up', databaseUrl: url, dir, target: '2' });
    await migrate({ command: 'up', databaseUrl: url, dir, target: '3' });
    await write({
      '1_users.sql': '-- migrate:up\nCREATE TABLE users (id bigint PRIMARY KEY, email text);\n',
    });
    const up = await failure(migrate({ command: 'up', databaseUrl: url, dir }));
    expect(up.reason).toBe('drift');
    expect(up.message).toContain('edited: 1_users.sql: the up section changed after it was applied');
    expect(up.message).toContain(
      'Nothing was changed. An edited file: restore it as it was applied, and put the change in a new migration instead; or, to fix a release that failed further on (applied here, not in production), revert it here with the file as it was (down), then edit it. Or allow this kind of drift with allow-drift: edited.',
    );
    const verify = await failure(migrate({ command: 'verify', databaseUrl: url, dir }));
    expect(verify.result.drift.map((d) => [d.kind, d.file])).toEqual([['edited', '1_users.sql']]);
    expect(renderMigrationSummary(verify.result)).toContain('#### Drift');
  });

  test('a pending file older than the latest applied one is out of order, a deleted applied one is missing', async () => {
    const { url, dir } = await setup({
      '1_users.sql': BASE['1_users.sql'],
      '3_seed.sql': BASE['3_seed.sql'],
    });
    await migrate({ command: 'up', databaseUrl: url, dir });
    const later = await migrationsDir({
      '1_users.sql': BASE['1_users.sql'],
      '2_orders.up.sql': BASE['2_orders.up.sql'],
    });
    cleanups.push(later.remove);
    const error = await failure(migrate({ command: 'verify', databaseUrl: url, dir: later.dir }));
    expect(error.result.drift.map((d) => [d.kind, d.version])).toEqual([
      ['out-of-order', '2'],
      ['missing', '3'],
    ]);
    const refused = await failure(migrate({ command: 'up', databaseUrl: url, dir: later.dir }));
    expect(refused.reason).toBe('drift');
    // One hint per kind found, and none for a kind that is not there.
    expect(refused.message).toContain('A file older than the latest applied one: give it a version above');
    expect(refused.message).toContain('A missing file: restore it');
    expect(refused.message).not.toContain('An edited file');
    expect(await tableExists(url, 'orders')).toBe(false);

    const logger = new MemoryLogger();
    const allowed = await migrate({
      command: 'up',
      databaseUrl: url,
      dir: later.dir,
      allowDrift: true,
      logger,
    });
    expect(allowed.applied).toEqual(['2']);
    expect(allowed.migrations.map((r) => [r.version, r.state])).toEqual([
      ['1', 'applied'],
      ['2', 'migrated'],
      ['3', 'missing'],
    ]);
    expect(logger.text()).toContain('warning: Drift allowed');
  });

  test('an error without a position is still placed: the statements that completed in the one message count', async () => {
    const { url, dir } = await setup({
      ...BASE,
      '4_dupe.sql':
        "-- migrate:up\nCREATE TABLE t4 (id int);\n\nINSERT INTO users VALUES (5, 'e@x');\nINSERT INTO users VALUES (1, 'dupe');\nCREATE TABLE t4b ();\n",
    });
    const error = await failure(migrate({ command: 'up', databaseUrl: url, dir }));
    expect(error.message).toContain(
      '4_dupe.sql failed: duplicate key value violates unique constraint "users_pkey" (SQLSTATE 23505)',
    );
    expect(error.message).toContain("Statement at line 5: INSERT INTO users VALUES (1, 'dupe')");
    expect(error.result.failure).toMatchObject({ line: 5, version: '4' });
    expect(await tableExists(url, 't4')).toBe(false);

    const { url: url5, dir: dir5 } = await setup({
      ...BASE,
      '5_deferred.sql':
        '-- migrate:up\nCREATE TABLE p5 (id int PRIMARY KEY);\nCREATE TABLE c5 (p int REFERENCES p5 DEFERRABLE INITIALLY DEFERRED);\nINSERT INTO c5 VALUES (9);\n',
    });
    const atCommit = await failure(migrate({ command: 'up', databaseUrl: url5, dir: dir5 }));
    expect(atCommit.message).toContain(
      '5_deferred.sql failed: insert or update on table "c5" violates foreign key constraint',
    );
    expect(atCommit.message).toContain(
      'Every statement of the section had run: the failure came while recording or committing it',
    );
    expect(await tableExists(url5, 'p5')).toBe(false);
    expect((await history(url5)).map((r) => r.version)).toEqual(['1', '2', '3']);
  });

  test('the safety lint refuses (error) before anything changes, reports (warn), and an acknowledged finding passes', async () => {
    const { url, dir, write } = await setup();
    await migrate({ command: 'up', databaseUrl: url, dir });
    await write({
      '4_index.sql':
        '-- migrate:up\nCREATE TABLE notes (id int);\nCREATE INDEX users_email ON users (email);\n',
    });
    const refused = await failure(migrate({ command: 'up', databaseUrl: url, dir, lint: 'error' }));
    expect(refused.reason).toBe('lint');
    expect(refused.message).toContain(
      '4_index.sql:3 create-index-blocking: CREATE INDEX without CONCURRENTLY',
    );
    expect(refused.message).toContain('Nothing was changed');
    expect(await tableExists(url, 'notes')).toBe(false);
    expect(refused.result.lint?.map((f) => [f.file, f.line, f.rule])).toEqual([
      ['4_index.sql', 3, 'create-index-blocking'],
    ]);

    // An allow line without a reason acknowledges nothing, and the run says so rather than ignoring it.
    await write({
      '4_index.sql':
        '-- migrate:up\n-- pipeline:allow create-index-blocking\nCREATE TABLE notes (id int);\nCREATE INDEX users_email ON users (email);\n',
    });
    const logger = new MemoryLogger();
    const unexplained = await failure(
      migrate({ command: 'up', databaseUrl: url, dir, lint: 'error', logger }),
    );
    expect(unexplained.reason).toBe('lint');
    expect(logger.records).toContainEqual({
      level: 'warning',
      message: expect.stringContaining(
        '4_index.sql:2: -- pipeline:allow allows create-index-blocking without a reason',
      ) as unknown as string,
    });
    await write({
      '4_index.sql':
        '-- migrate:up\nCREATE TABLE notes (id int);\nCREATE INDEX users_email ON users (email);\n',
    });

    const plan = await migrate({ command: 'plan', databaseUrl: url, dir });
    expect(renderMigrationSummary(plan)).toContain('#### Safety lint');
    expect(renderMigrationSummary(plan)).toContain('4\\_index\\.sql:3');

    await write({
      '4_index.sql':
        '-- migrate:up\n-- pipeline:allow create-index-blocking users holds 12 rows\nCREATE TABLE notes (id int);\nCREATE INDEX users_email ON users (email);\n',
    });
    const applied = await migrate({ command: 'up', databaseUrl: url, dir, lint: 'error' });
    expect(applied.applied).toEqual(['4']);
    expect(applied.lint).toEqual([
      expect.objectContaining({
        rule: 'create-index-blocking',
        acknowledged: true,
        reason: 'users holds 12 rows',
      }),
    ]);
  });

  test('allow-drift takes kinds: allowing an out-of-order hotfix does not also let an edited file through', async () => {
    const { url, dir, write } = await setup({
      '1_users.sql': BASE['1_users.sql'],
      '3_seed.sql': BASE['3_seed.sql'],
    });
    await migrate({ command: 'up', databaseUrl: url, dir });
    await write({ '2_orders.up.sql': BASE['2_orders.up.sql'] });
    const hotfix = await migrate({ command: 'up', databaseUrl: url, dir, allowDrift: ['out-of-order'] });
    expect(hotfix.applied).toEqual(['2']);

    await write({
      '4_late.up.sql': 'CREATE TABLE late ();\n',
      '1_users.sql': '-- migrate:up\nCREATE TABLE users (id bigint PRIMARY KEY, email text);\n',
    });
    const edited = await failure(
      migrate({ command: 'up', databaseUrl: url, dir, allowDrift: ['out-of-order'] }),
    );
    expect(edited.reason).toBe('drift');
    expect(edited.message).toContain('edited: 1_users.sql');
    expect(edited.message).toContain('allow this kind of drift with allow-drift: edited');
    expect(await tableExists(url, 'late')).toBe(false);

    const both = await migrate({
      command: 'up',
      databaseUrl: url,
      dir,
      allowDrift: ['out-of-order', 'edited'],
    });
    expect(both.applied).toEqual(['4']);
  });

  test('statements that cannot run in a transaction are found when the files are read, before anything applies', async () => {
    const { url, dir } = await setup({
      ...BASE,
      '4_idx.up.sql': 'CREATE INDEX CONCURRENTLY users_email ON users (email);\n',
    });
    const error = await migrate({ command: 'up', databaseUrl: url, dir }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toContain(
      'has a file "4_idx.up.sql" that runs CREATE INDEX CONCURRENTLY on line 1, which PostgreSQL cannot run inside a transaction',
    );
    expect(await tableExists(url, 'users')).toBe(false);
    expect(await tableExists(url, 'public.schema_migrations')).toBe(false);
  });

  test('after down, the reverted migrations are pending again; an empty down section reverts as a no-op', async () => {
    const { url, dir } = await setup({
      ...BASE,
      '4_note.sql':
        "-- migrate:up\nCOMMENT ON TABLE users IS 'people';\n-- migrate:down\n-- the comment may stay\n",
    });
    await migrate({ command: 'up', databaseUrl: url, dir });
    const down = await migrate({ command: 'down', databaseUrl: url, dir, steps: 2 });
    expect(down.reverted).toEqual(['4', '3']);
    expect(down.pending).toEqual(['3', '4']);
    expect(down.currentVersion).toBe('2');
    expect((await history(url)).map((r) => r.version)).toEqual(['1', '2']);
    expect(await query(url, `SELECT obj_description('users'::regclass) AS c`)).toEqual([{ c: 'people' }]);
  });

  test('CREATE INDEX CONCURRENTLY runs outside a transaction; a failed one blocks until the file is fixed', async () => {
    const { url, dir, write } = await setup({
      ...BASE,
      '4_dupes.sql': "-- migrate:up\nINSERT INTO users VALUES (2, 'a@example.com');\n",
      '5_index.sql':
        '-- migrate:up\n-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY users_id_email ON users (id, email);\n' +
        'CREATE UNIQUE INDEX CONCURRENTLY users_email ON users (email);\n-- migrate:down transaction:false\nDROP INDEX CONCURRENTLY IF EXISTS users_email;\n',
    });
    const error = await failure(migrate({ command: 'up', databaseUrl: url, dir }));
    expect(error.message).toContain('5_index.sql failed: could not create unique index "users_email"');
    expect(error.message).toContain('Statement at line 4: CREATE UNIQUE INDEX CONCURRENTLY users_email');
    expect(error.message).toContain('runs outside a transaction');
    expect(error.message).toContain('recorded as failed');
    // The first statement stays; the failed concurrent build leaves an INVALID index behind.
    const indexes = await query<{ name: string; valid: boolean }>(
      url,
      `SELECT c.relname AS name, i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE c.relname IN ('users_email', 'users_id_email') ORDER BY 1`,
    );
    expect(indexes).toEqual([
      { name: 'users_email', valid: false },
      { name: 'users_id_email', valid: true },
    ]);
    expect((await history(url)).at(-1)).toMatchObject({ version: '5', success: false });

    const blocked = await failure(migrate({ command: 'up', databaseUrl: url, dir }));
    expect(blocked.reason).toBe('blocked');
    expect(blocked.message).toContain('5_index.sql failed on');
    expect(blocked.message).toContain('fix the file so it can run again');

    await write({
      '5_index.sql':
        '-- migrate:up\n-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS users_id_email ON users (id, email);\n' +
        'DROP INDEX CONCURRENTLY IF EXISTS users_email;\nCREATE INDEX CONCURRENTLY users_email ON users (email);\n',
    });
    const fixed = await migrate({ command: 'up', databaseUrl: url, dir });
    expect(fixed.applied).toEqual(['5']);
    expect((await history(url)).at(-1)).toMatchObject({ version: '5', success: true });
    const valid = await query<{ valid: boolean }>(
      url,
      `SELECT i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'users_email'`,
    );
    expect(valid).toEqual([{ valid: true }]);
  });

  test('up validates the constraints its migrations add NOT VALID, and only those; verify runs the checks and lists NOT VALID constraints without validating', async () => {
    const { url, dir, write } = await setup({
      ...BASE,
      '4_fk.sql':
        '-- migrate:up\nALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;\n',
    });
    const checks = await migrationsDir({
      'orphan_orders.sql':
        'SELECT o.id FROM orders o LEFT JOIN users u ON u.id = o.user_id WHERE u.id IS NULL',
      'users_without_email.sql': 'SELECT id FROM users WHERE email IS NULL',
    });
    cleanups.push(checks.remove);
    const up = await migrate({ command: 'up', databaseUrl: url, dir, checksDir: checks.dir });
    expect(up.checks.map((c) => [c.name, c.passed])).toEqual([
      ['orphan_orders', true],
      ['users_without_email', true],
    ]);
    expect(up.constraints).toEqual([
      { schema: 'public', table: 'orders', constraint: 'orders_user_fk', validated: true },
    ]);

    await query(url, 'ALTER TABLE orders DROP CONSTRAINT orders_user_fk');
    await query(url, 'INSERT INTO orders VALUES (10, 99), (11, 98)');
    await query(
      url,
      'ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID',
    );
    await write({});
    const logger = new MemoryLogger();
    const error = await failure(
      migrate({ command: 'verify', databaseUrl: url, dir, checksDir: checks.dir, logger }),
    );
    expect(error.reason).toBe('checks-failed');
    const orphans = error.result.checks.find((c) => c.name === 'orphan_orders')!;
    expect(orphans).toMatchObject({ passed: false, rowCount: 2 });
    expect(orphans.sample).toEqual(['{"id":10}', '{"id":11}']);
    // verify changes nothing: the constraint is listed, not validated.
    expect(error.result.constraints).toEqual([]);
    expect(logger.text()).toContain(
      '1 constraint(s) are NOT VALID (verify validates none; up validates those its migrations add): orders_user_fk on public.orders',
    );
    expect(error.message).toContain('check orphan_orders: 2 row(s)');
    const summary = renderMigrationSummary(error.result);
    expect(summary).toContain('| orphan\\_orders | ❌ failed | 2 |');

    // Another service's NOT VALID constraint in the same database is not this run's to validate:
    // an up that adds its own validates only that, and a re-run touches none.
    await query(url, 'DELETE FROM orders WHERE id IN (10, 11)');
    await query(url, 'CREATE SCHEMA other; CREATE TABLE other.t (n int); INSERT INTO other.t VALUES (-1)');
    await query(url, 'ALTER TABLE other.t ADD CONSTRAINT n_positive CHECK (n > 0) NOT VALID');
    await write({
      '5_check.sql':
        '-- migrate:up\nALTER TABLE users ADD CONSTRAINT email_set CHECK (email IS NOT NULL) NOT VALID;\n',
    });
    const mine = await migrate({ command: 'up', databaseUrl: url, dir });
    expect(mine.constraints).toEqual([
      { schema: 'public', table: 'users', constraint: 'email_set', validated: true },
    ]);
    const rerun = await migrate({ command: 'up', databaseUrl: url, dir });
    expect(rerun.constraints).toEqual([]);
    expect(
      await query(
        url,
        "SELECT conname, convalidated FROM pg_constraint WHERE conname IN ('n_positive', 'orders_user_fk') ORDER BY 1",
      ),
    ).toEqual([
      { conname: 'n_positive', convalidated: false },
      { conname: 'orders_user_fk', convalidated: false },
    ]);
  });

  test('baseline marks migrations applied without running them; up then applies the rest', async () => {
    const { url, dir } = await setup({
      '1_legacy.sql': '-- migrate:up\nSELECT 1 / 0;\n',
      '2_legacy.sql': '-- migrate:up\nSELECT 1 / 0;\n',
      '3_new.sql': '-- migrate:up\nCREATE TABLE fresh ();\n',
    });
    const baseline = await migrate({
      command: 'baseline',
      databaseUrl: url,
      dir,
      target: '2',
      appliedBy: 'me',
    });
    expect(baseline.baselined).toEqual(['1', '2']);
    expect(baseline.currentVersion).toBe('2');
    expect((await history(url)).map((r) => r.applied_by)).toEqual([
      'me (baseline: marked applied without running)',
      'me (baseline: marked applied without running)',
    ]);
    expect((await migrate({ command: 'up', databaseUrl: url, dir })).applied).toEqual(['3']);
  });

  test('history table name and schema are configurable; an unrelated table of that name is refused', async () => {
    const { url, dir } = await setup();
    const result = await migrate({
      command: 'up',
      databaseUrl: url,
      dir,
      schema: 'ops',
      table: 'migrations',
    });
    expect(result.table).toBe('ops.migrations');
    expect((await history(url, 'ops.migrations')).length).toBe(3);
    await query(url, 'CREATE TABLE public.schema_migrations (version varchar PRIMARY KEY)');
    const error = await failure(migrate({ command: 'status', databaseUrl: url, dir }));
    expect(error.reason).toBe('incompatible-table');
    expect(error.message).toContain('is not a migration history of this tool');
  });

  test('moving from dbmate: its schema_migrations is refused with the way over, which then works', async () => {
    const { url, dir } = await setup();
    // What dbmate leaves after applying 1 and 2.
    await query(
      url,
      `CREATE TABLE users (id int PRIMARY KEY, email text); CREATE TABLE orders (id int PRIMARY KEY, user_id int);
       CREATE TABLE public.schema_migrations (version varchar(128) PRIMARY KEY);
       INSERT INTO public.schema_migrations VALUES ('1'), ('2');`,
    );
    const error = await failure(migrate({ command: 'up', databaseUrl: url, dir }));
    expect(error.reason).toBe('incompatible-table');
    expect(error.message).toContain(
      'dbmate and golang-migrate keep their history in a table of this name. To move over, leave it as it is, give this tool its own history table with the table input (for example table: pipeline_migrations), and run command: baseline with target set to the last version the old tool applied (dbmate: SELECT max(version) FROM public.schema_migrations;',
    );
    const [{ max }] = (await query<{ max: string }>(
      url,
      'SELECT max(version) AS max FROM public.schema_migrations',
    )) as [{ max: string }];
    const table = 'pipeline_migrations';
    const baseline = await migrate({ command: 'baseline', databaseUrl: url, dir, table, target: max });
    expect(baseline.baselined).toEqual(['1', '2']);
    const up = await migrate({ command: 'up', databaseUrl: url, dir, table });
    expect(up.applied).toEqual(['3']);
    expect(await query(url, 'SELECT id FROM users')).toEqual([{ id: 1 }]);
    expect(await query(url, 'SELECT version FROM public.schema_migrations ORDER BY 1')).toEqual([
      { version: '1' },
      { version: '2' },
    ]);
  });

  test('bad inputs and an unreachable database fail before anything runs, naming the input', async () => {
    const { url, dir } = await setup();
    const logger = new MemoryLogger();
    await expect(migrate({ command: 'up', databaseUrl: 'not a url', dir })).rejects.toThrow(
      /Input 'database-url' is not a URL/,
    );
    await expect(
      migrate({ command: 'up', databaseUrl: 'postgres://u:s3cret@127.0.0.1:1/db', dir, logger }),
    ).rejects.toThrow(DatabaseConnectionError);
    const refused = await migrate({
      command: 'up',
      databaseUrl: 'postgres://u:s3cret@127.0.0.1:1/db',
      dir,
    }).catch((e: Error) => e.message);
    expect(refused).toContain('Could not connect to PostgreSQL at u@127.0.0.1:1/db');
    expect(refused).toContain('Nothing was changed');
    expect(refused).not.toContain('s3cret');
    await expect(migrate({ command: 'up', databaseUrl: url, dir: `${dir}/nope` })).rejects.toThrow(
      /Input 'dir' names ".*nope", which does not exist/,
    );
    // A wrong path that exists: empty, or holding everything but migrations, is not "up to date".
    const notMigrations = await migrationsDir({ 'README.md': '# db\n', 'schema.txt': 'users' });
    cleanups.push(notMigrations.remove);
    for (const command of ['up', 'status', 'down', 'baseline'] as const) {
      const empty = migrate({ command, databaseUrl: url, dir: notMigrations.dir });
      await expect(empty).rejects.toThrow(InputError);
      await expect(empty).rejects.toThrow(
        `Input 'dir' names ${JSON.stringify(notMigrations.dir)} (${notMigrations.dir}), which holds no migration files`,
      );
    }
    await expect(migrate({ command: 'up', databaseUrl: url, dir, target: 'v3' })).rejects.toThrow(InputError);
    await expect(migrate({ command: 'up', databaseUrl: url, dir, target: '9' })).rejects.toThrow(
      /Input 'target' has 9, which is not the version of a migration file/,
    );
    await expect(migrate({ command: 'up', databaseUrl: url, dir, table: 'x; DROP' })).rejects.toThrow(
      /Input 'table'/,
    );
    expect(await tableExists(url, 'public.schema_migrations')).toBe(false);
  });
});
