import { createHash } from 'node:crypto';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from '@jest/globals';
import { InputError } from '../../packages/core/index.ts';
import { checksumMatches } from '../../packages/migrate/files.ts';
import { checksumOf, loadChecks, loadMigrations, MigrationFileError } from '../../packages/migrate/index.ts';
import { migrationsDir } from './helpers.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});
async function load(files: Record<string, string>) {
  const d = await migrationsDir(files);
  cleanups.push(d.remove);
  return loadMigrations(d.dir);
}
async function loadError(files: Record<string, string>): Promise<MigrationFileError> {
  const error = await load(files).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MigrationFileError);
  return error as MigrationFileError;
}

describe('loadMigrations', () => {
  test('reads single files and up/down pairs, orders versions as numbers, ignores other files', async () => {
    const migrations = await load({
      '10_ten.sql': '-- migrate:up\nCREATE TABLE ten (id int);\n-- migrate:down\nDROP TABLE ten;\n',
      '9_nine.up.sql': 'CREATE TABLE nine (id int);',
      '9_nine.down.sql': 'DROP TABLE nine;',
      '20240101120000_stamp.sql': '-- migrate:up\nSELECT 1;',
      'README.md': '# notes',
      '.keep': '',
    });
    expect(migrations.map((m) => [m.id, m.name, m.file, m.downFile])).toEqual([
      ['9', 'nine', '9_nine.up.sql', '9_nine.down.sql'],
      ['10', 'ten', '10_ten.sql', undefined],
      ['20240101120000', 'stamp', '20240101120000_stamp.sql', undefined],
    ]);
    expect(migrations[1]!.down?.trim()).toBe('DROP TABLE ten;');
    expect(migrations[2]!.down).toBeUndefined();
    expect(migrations[0]!.checksum).toBe(checksumOf('CREATE TABLE nine (id int);'));
  });

  test('keeps the up section on the lines it has in the file, so error lines match the file', async () => {
    const [m] = await load({
      '1_a.sql': '-- header comment\n-- migrate:up\n\nSELECT 1;\n-- migrate:down\nSELECT 2;',
    });
    expect(m!.up.split('\n')[3]).toBe('SELECT 1;');
  });

  test('the checksum ignores line endings and surrounding blank lines but not SQL changes', async () => {
    expect(checksumOf('SELECT 1;\r\n')).toBe(checksumOf('\nSELECT 1;'));
    expect(checksumOf('SELECT 1;')).not.toBe(checksumOf('SELECT 2;'));
  });

  test('golang-migrate names hold anything after the version: dots, dashes, spaces', async () => {
    const migrations = await load({
      '0002_1.7.0_schema.up.sql': 'SELECT 1;',
      '0002_1.7.0_schema.down.sql': 'SELECT 2;',
      '3_v2.0 (hotfix).sql': '-- migrate:up\nSELECT 3;',
      '4_.up.sql': 'SELECT 4;',
    });
    expect(migrations.map((m) => [m.id, m.name, m.file, m.downFile])).toEqual([
      ['2', '1.7.0_schema', '0002_1.7.0_schema.up.sql', '0002_1.7.0_schema.down.sql'],
      ['3', 'v2.0 (hotfix)', '3_v2.0 (hotfix).sql', undefined],
      ['4', '', '4_.up.sql', undefined],
    ]);
    const error = await loadError({ '5-name.sql': '-- migrate:up\nSELECT 1;' });
    expect(error.message).toContain('is not named <version>_<name>.sql');
  });

  test("Flyway's V<version>__<description>.sql files are up-only migrations; versions clash across formats", async () => {
    const migrations = await load({
      'V1__create_users.sql': 'CREATE TABLE users (id int);',
      'V2__add_email.sql': '-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY i ON users (id);',
      'V10__seed.sql': 'INSERT INTO users VALUES (1);',
    });
    expect(migrations.map((m) => [m.id, m.name, m.file, m.down, m.upTransactional])).toEqual([
      ['1', 'create_users', 'V1__create_users.sql', undefined, true],
      ['2', 'add_email', 'V2__add_email.sql', undefined, false],
      ['10', 'seed', 'V10__seed.sql', undefined, true],
    ]);
    const clash = await loadError({ 'V3__a.sql': 'SELECT 1;', '3_b.up.sql': 'SELECT 2;' });
    expect(clash.message).toContain('has the same version as');
  });

  test('an empty or comment-only down section is kept as a no-op revert; a missing one is not', async () => {
    const migrations = await load({
      '1_a.sql': '-- migrate:up\nSELECT 1;\n-- migrate:down\n',
      '2_b.up.sql': 'SELECT 2;',
      '2_b.down.sql': '-- nothing to undo\n',
      '3_c.sql': '-- migrate:up\nSELECT 3;',
    });
    expect(migrations.map((m) => m.down?.trim())).toEqual(['', '-- nothing to undo', undefined]);
  });

  test.each([
    [
      'a golang-migrate file',
      '2_idx.up.sql',
      'CREATE TABLE t (a int);\nCREATE INDEX CONCURRENTLY i ON t (a);\n',
      'CREATE INDEX CONCURRENTLY on line 2',
      'a line "-- migrate:no-transaction" in 2_idx.up.sql',
    ],
    [
      'a dbmate file',
      '2_idx.sql',
      '-- migrate:up\nCREATE UNIQUE INDEX CONCURRENTLY i ON t (a);\n',
      'CREATE INDEX CONCURRENTLY on line 2',
      '"-- migrate:up transaction:false" as the section\'s marker',
    ],
    [
      'a down section',
      '2_idx.sql',
      '-- migrate:up\nSELECT 1;\n-- migrate:down\nDROP INDEX CONCURRENTLY i;\n',
      'DROP INDEX CONCURRENTLY on line 4',
      '"-- migrate:down transaction:false"',
    ],
    [
      'VACUUM',
      '2_v.sql',
      '-- migrate:up\n/* tidy */ VACUUM ANALYZE t;\n',
      'VACUUM on line 2',
      'transaction:false',
    ],
    [
      'ALTER SYSTEM',
      '2_s.up.sql',
      "ALTER SYSTEM SET work_mem = '64MB';",
      'ALTER SYSTEM on line 1',
      'no-transaction',
    ],
    [
      'CREATE DATABASE',
      '2_d.up.sql',
      'create database other;',
      'CREATE/DROP DATABASE on line 1',
      'no-transaction',
    ],
    [
      'REINDEX CONCURRENTLY',
      '2_r.up.sql',
      'REINDEX (VERBOSE) INDEX CONCURRENTLY i;',
      'REINDEX CONCURRENTLY on line 1',
      'no-transaction',
    ],
  ])(
    '%s that cannot run in a transaction fails when read, with the hint',
    async (_label, file, sql, what, hint) => {
      const error = await loadError({ '1_t.sql': '-- migrate:up\nCREATE TABLE t (a int);', [file]: sql });
      expect(error.file).toBe(file);
      expect(error.message).toContain(`runs ${what}, which PostgreSQL cannot run inside a transaction`);
      expect(error.message).toContain(hint);
    },
  );

  test('the same statements are fine where they are not: marked sections, strings, other statements', async () => {
    const migrations = await load({
      '1_idx.up.sql': '-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\nVACUUM t;',
      '2_text.sql':
        "-- migrate:up\nINSERT INTO notes VALUES ('CREATE INDEX CONCURRENTLY x');\nREFRESH MATERIALIZED VIEW CONCURRENTLY mv;\nCREATE INDEX j ON t (concurrently);",
    });
    expect(migrations).toHaveLength(2);
  });

  test('-- migrate:no-transaction marks sections; before any marker it marks both', async () => {
    const migrations = await load({
      '1_idx.sql':
        '-- migrate:up\n-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\n-- migrate:down\nDROP INDEX i;',
      '2_both.sql': '-- migrate:no-transaction\n-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 2;',
      '3_dbmate.sql': '-- migrate:up transaction:false\nSELECT 1;',
      '4_pair.up.sql': '-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY j ON t (b);',
    });
    expect(migrations.map((m) => [m.upTransactional, m.downTransactional])).toEqual([
      [false, true],
      [false, false],
      [false, true],
      [false, true],
    ]);
  });

  test.each([
    [
      { '1_a.sql': '-- migrate:up\nSELECT 1;', '001_b.sql': '-- migrate:up\nSELECT 2;' },
      '1_a.sql',
      /same version as "001_b.sql"/,
    ],
    [{ '2_a.sql': '-- migrate:up\nSELECT 1;', '2_a.up.sql': 'SELECT 1;' }, '2_a.up.sql', /same version/],
    [{ '3_a.sql': 'SELECT 1;' }, '3_a.sql', /no "-- migrate:up" section/],
    [{ '3_a.sql': '-- migrate:down\nSELECT 1;' }, '3_a.sql', /no "-- migrate:up" section/],
    [{ '5_a.down.sql': 'SELECT 1;' }, '5_a.down.sql', /no matching \.up\.sql/],
    [{ 'V1.1__init.sql': 'SELECT 1;' }, 'V1.1__init.sql', /is a Flyway migration this tool does not run/],
    [{ 'R__views.sql': 'SELECT 1;' }, 'R__views.sql', /is a Flyway migration this tool does not run/],
    [{ '6-init.sql': 'SELECT 1;' }, '6-init.sql', /is not named/],
    [{ '0_zero.sql': '-- migrate:up\nSELECT 1;' }, '0_zero.sql', /out of range/],
    [
      { '99999999999999999999_big.sql': '-- migrate:up\nSELECT 1;' },
      '99999999999999999999_big.sql',
      /out of range/,
    ],
    [{ '7_a.sql': 'SELECT 0;\n-- migrate:up\nSELECT 1;' }, '7_a.sql', /SQL before its "-- migrate:up"/],
    [
      { '8_a.sql': '-- migrate:up\nSELECT 1;\n-- migrate:up\nSELECT 2;' },
      '8_a.sql',
      /second "-- migrate:up" marker on line 3/,
    ],
    [{ '9_a.sql': '-- migrate:upp\nSELECT 1;' }, '9_a.sql', /unknown directive "-- migrate:upp" on line 1/],
    [
      { '10_a.sql': '-- migrate:up\nBEGIN;\nCREATE TABLE a ();\nCOMMIT;' },
      '10_a.sql',
      /controls transactions itself/,
    ],
  ])('%j fails naming %s', async (files, file, problem) => {
    const error = await loadError(files);
    expect(error.file).toBe(file);
    expect(error.input).toBe('dir');
    expect(error.message).toMatch(problem);
    expect(error.message).toContain(JSON.stringify(file));
  });

  test('BEGIN/COMMIT are fine in a no-transaction migration and inside function bodies', async () => {
    const migrations = await load({
      '1_a.sql': '-- migrate:up\n-- migrate:no-transaction\nBEGIN;\nSELECT 1;\nCOMMIT;',
      '2_b.sql':
        '-- migrate:up\nCREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;\n' +
        'CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;',
    });
    expect(migrations).toHaveLength(2);
  });

  test('a missing directory or a file in its place is an InputError naming the input', async () => {
    await expect(loadMigrations('/nonexistent/migrations')).rejects.toThrow(
      /Input 'dir' names "\/nonexistent\/migrations", which does not exist/,
    );
    const d = await migrationsDir({ 'x.sql': '' });
    cleanups.push(d.remove);
    await expect(loadMigrations(`${d.dir}/x.sql`)).rejects.toBeInstanceOf(InputError);
  });
});

describe('acknowledgements are not edits', () => {
  test('a -- pipeline:allow line or comment anywhere in the up section leaves the checksum as it was', async () => {
    const plain = '-- migrate:up\nALTER TABLE t DROP COLUMN c;\nCREATE INDEX i ON t (a);\n';
    const [before] = await load({ '1_a.sql': plain });
    for (const acknowledged of [
      '-- migrate:up\n-- pipeline:allow drop-column nobody reads it since 2.3\nALTER TABLE t DROP COLUMN c;\nCREATE INDEX i ON t (a);\n',
      '-- migrate:up\nALTER TABLE t DROP COLUMN c; -- pipeline:allow drop-column unused\nCREATE INDEX i ON t (a);\n',
      '-- migrate:up\nALTER TABLE t DROP COLUMN c;\n  --pipeline:allow create-index-blocking small table\r\nCREATE INDEX i ON t (a);\n',
    ]) {
      const [after] = await load({ '1_a.sql': acknowledged });
      expect(after!.checksum).toBe(before!.checksum);
      // A row written before acknowledgements were left out still matches, by the old checksum.
      expect(after!.legacyChecksum).toBe(
        createHash('sha256').update(after!.up.replace(/\r\n?/g, '\n').trim()).digest('hex'),
      );
      expect(checksumMatches(after!, after!.legacyChecksum!)).toBe(true);
    }
    expect(before!.legacyChecksum).toBeUndefined();
    const [changed] = await load({ '1_a.sql': plain.replace('(a)', '(b)') });
    expect(checksumMatches(changed!, before!.checksum)).toBe(false);
  });
});

describe('awkward files', () => {
  test('a byte-order mark is not SQL: dropped, checksum as without it', async () => {
    const [withBom] = await load({
      '1_a.up.sql': '\ufeffCREATE TABLE a (id int);\n',
      'V2__b.sql': '\ufeffSELECT 1;\n',
    });
    const [plain] = await load({ '1_a.up.sql': 'CREATE TABLE a (id int);\n' });
    expect(withBom!.up).toBe('CREATE TABLE a (id int);\n');
    expect(withBom!.checksum).toBe(plain!.checksum);
  });

  test('a broken symlink is named, not a stack trace', async () => {
    const d = await migrationsDir({ '1_a.sql': '-- migrate:up\nSELECT 1;\n' });
    cleanups.push(d.remove);
    await symlink('/nonexistent/file.sql', join(d.dir, '2_gone.sql'));
    const error = await loadMigrations(d.dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationFileError);
    expect((error as Error).message).toBe(
      `Input 'dir' has a file "2_gone.sql" that is a symlink to a file that does not exist. Accepted: ${(error as MigrationFileError).message.split('Accepted: ')[1]}`,
    );
  });

  test('.sql files in a subdirectory are said not to be read', async () => {
    const d = await migrationsDir({ '1_a.sql': '-- migrate:up\nSELECT 1;\n' });
    cleanups.push(d.remove);
    await mkdir(join(d.dir, 'sub'));
    await writeFile(join(d.dir, 'sub', '5_sub.sql'), '-- migrate:up\nSELECT 5;\n');
    const warnings: string[] = [];
    const migrations = await loadMigrations(d.dir, { warn: (m) => warnings.push(m) });
    expect(migrations.map((m) => m.id)).toEqual(['1']);
    expect(warnings).toEqual([
      `${d.dir} has .sql files in subdirectories (sub/5_sub.sql), which are not read: only the directory's own files are migration .sql files`,
    ]);
  });
});

describe('loadChecks', () => {
  test('reads .sql files by name and rejects empty ones', async () => {
    const d = await migrationsDir({
      'b_orphans.sql': 'SELECT 1 WHERE false',
      'a_dupes.sql': 'SELECT 2 WHERE false',
    });
    cleanups.push(d.remove);
    expect((await loadChecks(d.dir)).map((c) => c.name)).toEqual(['a_dupes', 'b_orphans']);
    await d.write({ 'c_empty.sql': '-- nothing' });
    await expect(loadChecks(d.dir)).rejects.toThrow(
      /Input 'checks-dir' has a file "c_empty.sql" without a query/,
    );
  });
});
