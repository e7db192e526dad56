import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { InputError } from '../../packages/core/index.ts';
import { type MigrationResult, MigrationRunError } from '../../packages/migrate/index.ts';
import {
  type PostgresServer,
  postgresAvailable,
  startPostgres,
} from '../../tooling/local-services/postgres.ts';
import { dataOf, history, migrate, migrationsDir, query, schemaOf, tableExists } from './helpers.ts';

const available = postgresAvailable();
const suite = available ? describe : describe.skip;
const fixtures = join(import.meta.dirname, 'fixtures');

let server: PostgresServer;
beforeAll(async () => {
  if (available) server = await startPostgres();
}, 120_000);
afterAll(async () => {
  await server?.stop();
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function failure(promise: Promise<MigrationResult>): Promise<MigrationRunError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MigrationRunError);
  return error as MigrationRunError;
}

/** A release that creates a type, a table, functions, a trigger, a schema, an extension and a sequence, then one that fails. */
const RELEASE = {
  '0005_3.0.0_tiers.up.sql': `
CREATE TYPE tier AS ENUM ('free', 'pro');
CREATE TABLE quota (project_id int PRIMARY KEY REFERENCES project (project_id), tier tier NOT NULL DEFAULT 'free');
CREATE SEQUENCE quota_events;
CREATE DOMAIN positive AS int CHECK (VALUE > 0);
CREATE FUNCTION quota_of(p int) RETURNS tier LANGUAGE sql STABLE AS $$ SELECT tier FROM quota WHERE project_id = p $$;
CREATE FUNCTION quota_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER quota_touch BEFORE UPDATE ON quota FOR EACH ROW EXECUTE FUNCTION quota_touch();
CREATE SCHEMA billing;
CREATE TABLE billing.invoice (id serial PRIMARY KEY, amount positive);
CREATE EXTENSION IF NOT EXISTS pgcrypto;
ALTER TABLE project ADD COLUMN quota_tier tier;
INSERT INTO quota VALUES (1, 'pro');
UPDATE project SET name = 'library-renamed';
DELETE FROM harbor_label;
`,
  '0005_3.0.0_tiers.down.sql': 'DROP TABLE quota;\n',
  '0006_3.0.1_broken.up.sql':
    'ALTER TABLE quota ADD COLUMN limit_bytes bigint NOT NULL DEFAULT nonexistent();\n',
};

suite('restore after a failed production release', () => {
  test('restore returns the schema and data exactly to the backup; the fixed release then applies', async () => {
    const d = await migrationsDir();
    cleanups.push(d.remove);
    await cp(join(fixtures, 'registry'), d.dir, { recursive: true });
    const url = await server.createDatabase('prod');
    const database = new URL(url).pathname.slice(1);
    await migrate({ command: 'up', databaseUrl: url, dir: d.dir });
    const schemaBefore = await schemaOf(server.binaries.pgDump, url);
    const dataBefore = await dataOf(url);
    expect(Object.keys(dataBefore)).toContain('audit.log');

    await d.write(RELEASE);
    const backup = join(d.dir, '..', `${database}.dump`);
    cleanups.push(() => import('node:fs/promises').then((fs) => fs.rm(backup, { force: true })));
    const failed = await failure(
      migrate({
        command: 'up',
        databaseUrl: url,
        dir: d.dir,
        backup: { path: backup },
        pgDumpPath: server.binaries.pgDump,
      }),
    );
    expect(failed.result.applied).toEqual(['5']);
    expect(failed.message).toContain('run this action with command: restore');
    expect(await tableExists(url, 'billing.invoice')).toBe(true);

    // The wrong confirmation, or none, changes nothing.
    for (const confirm of ['', 'production']) {
      const refused = await migrate({
        command: 'restore',
        databaseUrl: url,
        dir: d.dir,
        restore: { path: backup, confirm },
      }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(InputError);
      expect((refused as InputError).message).toContain(`Input 'confirm-restore'`);
      expect((refused as InputError).message).toContain(`"${database}", typed out`);
    }
    expect(await tableExists(url, 'billing.invoice')).toBe(true);

    const restored = await migrate({
      command: 'restore',
      databaseUrl: url,
      dir: d.dir,
      restore: { path: backup, confirm: database },
      pgRestorePath: server.binaries.pgRestore,
      psqlPath: join(server.binaries.binDir, 'psql'),
    });
    expect(restored.ok).toBe(true);
    expect(restored.restoredFrom).toBe(backup);
    expect(restored.currentVersion).toBe('4');

    // Everything the release created is gone, everything it changed is back.
    expect(await schemaOf(server.binaries.pgDump, url)).toBe(schemaBefore);
    expect(await dataOf(url)).toEqual(dataBefore);
    expect(await query(url, `SELECT 1 FROM pg_type WHERE typname IN ('tier', 'positive')`)).toEqual([]);
    expect(await query(url, `SELECT 1 FROM pg_extension WHERE extname = 'pgcrypto'`)).toEqual([]);
    expect((await history(url)).map((r) => r.version)).toEqual(['1', '2', '3', '4']);

    // The fixed release applies on the restored database: no "type tier already exists".
    await d.write({
      '0006_3.0.1_broken.up.sql': 'ALTER TABLE quota ADD COLUMN limit_bytes bigint NOT NULL DEFAULT 0;\n',
    });
    const fixed = await migrate({ command: 'up', databaseUrl: url, dir: d.dir });
    expect(fixed.applied).toEqual(['5', '6']);
  });

  test('a restore that fails part-way is rolled back whole', async () => {
    const d = await migrationsDir({
      '1_users.sql':
        '-- migrate:up\nCREATE TABLE users (id int PRIMARY KEY);\nINSERT INTO users VALUES (1);\n',
    });
    cleanups.push(d.remove);
    const url = await server.createDatabase('partial');
    const database = new URL(url).pathname.slice(1);
    const backup = join(d.dir, 'before.dump');
    await migrate({
      command: 'up',
      databaseUrl: url,
      dir: d.dir,
      backup: { path: backup },
      pgDumpPath: server.binaries.pgDump,
    });
    // A psql that stops after the reset ran: the transaction must not commit the emptied database.
    const brokenPsql = join(d.dir, 'psql');
    const { writeFile, chmod } = await import('node:fs/promises');
    await writeFile(
      brokenPsql,
      `#!/bin/sh\nhead -c 200 >/dev/null\nexec "${join(server.binaries.binDir, 'psql')}" "$@" --command='SELECT no_such_function()' </dev/null\n`,
    );
    await chmod(brokenPsql, 0o755);
    const error = await failure(
      migrate({
        command: 'restore',
        databaseUrl: url,
        dir: d.dir,
        restore: { path: backup, confirm: database },
        pgRestorePath: server.binaries.pgRestore,
        psqlPath: brokenPsql,
      }),
    );
    expect(error.reason).toBe('restore-failed');
    expect(error.message).toContain('failed and was rolled back');
    expect(error.message).toContain('no_such_function');
    expect(await query(url, 'SELECT id FROM users')).toEqual([{ id: 1 }]);
  });

  test('a backup path that does not exist fails naming the input, before connecting', async () => {
    const url = await server.createDatabase('missing');
    const error = await migrate({
      command: 'restore',
      databaseUrl: url,
      dir: '.',
      restore: { path: '/nonexistent/before.dump', confirm: new URL(url).pathname.slice(1) },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toContain(
      `Input 'backup-path' names "/nonexistent/before.dump", which does not exist`,
    );
  });

  test('verify-backup restores the backup into a scratch database, runs the checks there, compares the history and drops it', async () => {
    const d = await migrationsDir();
    cleanups.push(d.remove);
    await cp(join(fixtures, 'registry'), d.dir, { recursive: true });
    const checks = await migrationsDir({
      'labels_have_scope.sql': "SELECT id FROM harbor_label WHERE scope NOT IN ('g', 'p');",
    });
    cleanups.push(checks.remove);
    const url = await server.createDatabase('drill');
    const backup = join(checks.dir, 'nightly.dump');
    await migrate({ command: 'up', databaseUrl: url, dir: d.dir, target: '3' });
    await migrate({
      command: 'up',
      databaseUrl: url,
      dir: d.dir,
      backup: { path: backup },
      pgDumpPath: server.binaries.pgDump,
    });
    await d.write({ '0005_3.0.0_quota.up.sql': 'CREATE TABLE quota (id int);\n' });
    await migrate({ command: 'up', databaseUrl: url, dir: d.dir });
    const schemaBefore = await schemaOf(server.binaries.pgDump, url);
    const databases = () =>
      query<{ datname: string }>(url, `SELECT datname FROM pg_database WHERE datname LIKE '%verify%'`);

    const drill = await migrate({
      command: 'verify-backup',
      databaseUrl: url,
      dir: d.dir,
      checksDir: checks.dir,
      restore: { path: backup, confirm: '' },
      pgRestorePath: server.binaries.pgRestore,
    });
    expect(drill.ok).toBe(true);
    expect(drill.backupCheck).toMatchObject({
      file: backup,
      version: '3',
      liveVersion: '5',
      appliedSinceBackup: ['4', '5'],
      dropped: true,
    });
    expect(drill.backupCheck!.tables).toBe(6);
    expect(drill.checks.map((c) => [c.name, c.passed])).toEqual([['labels_have_scope', true]]);
    expect(drill.migrations.map((r) => [r.version, r.state])).toEqual([
      ['1', 'applied'],
      ['2', 'applied'],
      ['3', 'applied'],
      ['4', 'pending'],
      ['5', 'pending'],
    ]);
    // The outputs describe the live database, which the drill only read.
    expect(drill.currentVersion).toBe('5');
    expect(drill.pending).toEqual([]);
    expect(await databases()).toEqual([]);
    expect(await schemaOf(server.binaries.pgDump, url)).toBe(schemaBefore);

    // A check the backup's data fails: the drill fails, and the scratch copy is gone all the same.
    await checks.write({
      'no_release_labels.sql': "SELECT id FROM harbor_label WHERE name LIKE 'release%';",
    });
    const failed = await failure(
      migrate({
        command: 'verify-backup',
        databaseUrl: url,
        dir: d.dir,
        checksDir: checks.dir,
        restore: { path: backup, confirm: '' },
        pgRestorePath: server.binaries.pgRestore,
      }),
    );
    expect(failed.reason).toBe('checks-failed');
    expect(failed.message).toContain('Integrity checks failed on the backup restored into');
    expect(failed.message).toContain('check no_release_labels: 1 row(s)');
    expect(failed.result.backupCheck?.dropped).toBe(true);
    expect(await databases()).toEqual([]);
  });

  test('verify-backup of a file that is not an archive fails naming backup-path, before connecting', async () => {
    const d = await migrationsDir({ '1_t.sql': '-- migrate:up\nSELECT 1;\n', 'bad.dump': 'not a dump' });
    cleanups.push(d.remove);
    const error = await migrate({
      command: 'verify-backup',
      databaseUrl: 'postgres://nobody@127.0.0.1:1/none',
      dir: d.dir,
      restore: { path: join(d.dir, 'bad.dump'), confirm: '' },
      pgRestorePath: server.binaries.pgRestore,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toContain("Input 'backup-path' names");
    expect((error as Error).message).toContain('which pg_restore cannot read');
    expect((error as Error).message).not.toContain('pg_restore: pg_restore:');
  });

  test('a missing pg_restore is said to be missing, not blamed on backup-path', async () => {
    const d = await migrationsDir({ '1_t.sql': '-- migrate:up\nSELECT 1;\n', 'ok.dump': 'any' });
    cleanups.push(d.remove);
    const error = await migrate({
      command: 'restore',
      databaseUrl: 'postgres://nobody@127.0.0.1:1/none',
      dir: d.dir,
      restore: { path: join(d.dir, 'ok.dump'), confirm: 'none' },
      pgRestorePath: 'no-such-pg_restore',
    }).catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(InputError);
    expect((error as Error).message).toMatch(
      /^no-such-pg_restore was not found \(no no-such-pg_restore on PATH\): install the PostgreSQL client programs .*\. Nothing was changed\.$/,
    );
  });
});
