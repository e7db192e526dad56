import { describe, expect, test } from '@jest/globals';
import { splitStatements, statementAtPosition } from '../../packages/migrate/index.ts';

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
