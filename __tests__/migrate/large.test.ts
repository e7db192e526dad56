import { expect, test } from '@jest/globals';
import { MigrationRunError, splitStatements } from '../../packages/migrate/index.ts';
import { usePostgres } from '../../tooling/test-support/fixtures.ts';
import { history, migrate, migrationsDir, query } from './helpers.ts';

const { suite, server, cleanups } = usePostgres();

const ROWS = 20_000;
const padding = 'x'.repeat(80);
const insert = (i: number) =>
  `INSERT INTO seed (id, note) VALUES (${i}, '${padding} row ${i}; not the end');\n`;

/** A 2 MB seed section: the reviewer's file that never finished splitting (line numbers were counted from the top per statement). */
function seed(broken?: number): string {
  const lines = ['CREATE TABLE seed (id int PRIMARY KEY, note text NOT NULL);\n'];
  for (let i = 1; i <= ROWS; i++) lines.push(i === broken ? 'INSRT INTO seed VALUES (0);\n' : insert(i));
  return lines.join('');
}

suite('migration files of many statements', () => {
  test('a 20,000-statement section splits with each statement on its own line', () => {
    const statements = splitStatements(seed());
    expect(statements).toHaveLength(ROWS + 1);
    expect(statements[ROWS]).toMatchObject({ line: ROWS + 1, text: insert(ROWS).trim().slice(0, -1) });
    expect(statements.every((s, k) => s.line === k + 1)).toBe(true);
  });

  test('a 20,000-statement seed file applies, and an error in its last lines names that line', async () => {
    const url = await server.createDatabase('large');
    const d = await migrationsDir({
      '1_seed.sql': `-- migrate:up\n${seed()}-- migrate:down\nDROP TABLE seed;\n`,
    });
    cleanups.push(d.remove);
    await migrate({ command: 'up', databaseUrl: url, dir: d.dir });
    expect(await query(url, 'SELECT count(*)::int AS n FROM seed')).toEqual([{ n: ROWS }]);

    // The section is sent whole; PostgreSQL's error position is located among its statements.
    const other = await server.createDatabase('large');
    await d.write({
      '1_seed.sql': `-- migrate:up\n${seed(ROWS - 1).replaceAll('seed', 'seed2')}-- migrate:down\nDROP TABLE seed2;\n`,
    });
    const error = await migrate({ command: 'up', databaseUrl: other, dir: d.dir }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MigrationRunError);
    // Line 1 of the file is the migrate:up marker, line 2 the CREATE TABLE, so row i is on line i + 2.
    expect((error as Error).message).toContain(`Statement at line ${ROWS + 1}: INSRT INTO seed2 VALUES (0)`);
    expect((error as Error).message).toContain(`(line ${ROWS + 1}, column 1)`);
    expect(await history(other)).toEqual([]);
  }, 120_000);
});
