import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { needsNoTransaction, sectionNeedsChecks } from '../../packages/migrate/files.ts';
import { splitStatements, statementAtPosition } from '../../packages/migrate/index.ts';
import { hasStatement, isTransactionControl } from '../../packages/migrate/sql.ts';

describe('splitStatements', () => {
  test('semicolons in strings, identifiers, comments and dollar quotes do not split', () => {
    const sql = [
      "INSERT INTO t VALUES ('a;b', E'c\\';d', 'it''s;');",
      'SELECT 1 AS "x;y"; -- trailing; comment',
      '/* block; /* nested; */ still; */ SELECT 2;',
      'CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE plpgsql;',
      'DO $$ BEGIN PERFORM 1; END $$;',
      'CREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY a; NOTIFY b);',
      'SELECT $1::int',
    ].join('\n');
    expect(splitStatements(sql).map((s) => s.text)).toEqual([
      "INSERT INTO t VALUES ('a;b', E'c\\';d', 'it''s;')",
      'SELECT 1 AS "x;y"',
      'SELECT 2',
      'CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE plpgsql',
      'DO $$ BEGIN PERFORM 1; END $$',
      'CREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY a; NOTIFY b)',
      'SELECT $1::int',
    ]);
  });

  test('a BEGIN ATOMIC body is one statement, CASE ... END inside it included', () => {
    const sql =
      'CREATE FUNCTION g(a int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN a > 0 THEN 1 ELSE 0 END; SELECT 2; END;\nSELECT 3;';
    expect(splitStatements(sql).map((s) => s.text)).toEqual([
      'CREATE FUNCTION g(a int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN a > 0 THEN 1 ELSE 0 END; SELECT 2; END',
      'SELECT 3',
    ]);
  });

  test('reports the line each statement starts on and maps error positions to statements', () => {
    const sql = '\n-- comment\nCREATE TABLE a (id int);\n\nALTER TABLE a\n  ADD COLUMN b numerc;\n';
    const statements = splitStatements(sql);
    expect(statements.map((s) => s.line)).toEqual([3, 5]);
    const position = sql.indexOf('numerc') + 1;
    expect(statementAtPosition(sql, position)?.text).toBe('ALTER TABLE a\n  ADD COLUMN b numerc');
  });
});

describe('the loader skips splitting where it cannot matter', () => {
  // SQL-ish text from fragments that exercise comments, quotes, semicolons, keywords and blanks.
  const fragment = fc.constantFrom(
    ' ',
    '\n',
    '\t',
    '\u00a0',
    ';',
    '--',
    '-- note; begin\n',
    '/*',
    '*/',
    '/* a /* nested */ b */',
    "'",
    "'x;y'",
    '"',
    '$$',
    '$t$ BEGIN; $t$',
    '(',
    ')',
    'BEGIN',
    'begin',
    'COMMIT',
    'end',
    'START TRANSACTION',
    'prepare transaction',
    'rollback to s',
    'ABORT',
    'CREATE INDEX CONCURRENTLY i ON t (a)',
    'create unique index concurrently i on t(a)',
    'VACUUM',
    'CREATE DATABASE d',
    'drop tablespace x',
    'ALTER SYSTEM SET a = 1',
    'reindex database d',
    'SELECT 1',
    'CREATE TABLE t (id int)',
    'x',
    'é',
    'append',
    'started_at',
    'backend',
  );
  const sqlText = fc.array(fragment, { maxLength: 24 }).map((parts) => parts.join(''));

  test('hasStatement finds a statement exactly when splitStatements does', () => {
    fc.assert(
      fc.property(sqlText, (sql) => {
        expect(hasStatement(sql)).toBe(splitStatements(sql).length > 0);
      }),
      { numRuns: 3000 },
    );
  });

  test('a section the checks could refuse always needs them: no refusal is skipped', () => {
    fc.assert(
      fc.property(sqlText, (sql) => {
        const refusable = splitStatements(sql).some(
          (s) => isTransactionControl(s.text) || needsNoTransaction(s.text) !== undefined,
        );
        if (refusable) expect(sectionNeedsChecks(sql)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});
