import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { splitStatements } from '../../packages/migrate/index.ts';
import {
  type PostgresServer,
  postgresAvailable,
  startPostgres,
} from '../../tooling/local-services/postgres.ts';

const available = postgresAvailable();
const suite = available ? describe : describe.skip;

let server: PostgresServer;
let scratch: string;
let url: string;
beforeAll(async () => {
  if (!available) return;
  server = await startPostgres();
  url = await server.createDatabase('split');
  scratch = await mkdtemp(join(tmpdir(), 'split-psql-'));
}, 120_000);
afterAll(async () => {
  await server?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** The statements psql sends for `sql`, as its --log-file records them (one QUERY block each). */
async function psqlStatements(sql: string): Promise<string[]> {
  const log = join(scratch, `${Date.now()}-${Math.random()}.log`);
  execFileSync(
    join(server.binaries.binDir, 'psql'),
    ['--no-psqlrc', '--quiet', `--log-file=${log}`, '--output=/dev/null', `--dbname=${url}`, '--file=-'],
    // Errors do not matter here: psql sends (and logs) every statement, only the boundaries count.
    { input: sql, stdio: ['pipe', 'ignore', 'ignore'] },
  );
  const text = await readFile(log, 'utf8');
  return [...text.matchAll(/\*{9} QUERY \*{10}\n([\s\S]*?)\n\*{26}\n/g)].map((m) => m[1]!);
}

/** The same statement as psql logs it (leading comments, its semicolon) and as we keep it. */
function normalise(statement: string): string {
  let text = statement.replace(/--[^\n]*/g, ' ');
  // Innermost first: block comments nest in PostgreSQL.
  for (let before = ''; before !== text; ) {
    before = text;
    text = text.replace(/\/\*(?:(?!\/\*|\*\/)[\s\S])*\*\//g, ' ');
  }
  return text.replace(/;\s*$/, '').replace(/\s+/g, ' ').trim();
}

const TRICKY = `
CREATE TABLE schedule (id int, begin timestamptz, "end" timestamptz, note text DEFAULT E'a\\'b; c');
CREATE INDEX CONCURRENTLY schedule_begin ON schedule (begin);
CREATE INDEX CONCURRENTLY schedule_id_begin ON schedule (id, begin);
SELECT begin, "end" FROM schedule WHERE begin < now(); SELECT 1;
/* outer /* nested; */ still comment; */ SELECT 'x;y' AS "a;b";
CREATE FUNCTION f(begin int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN begin > 0 THEN 1 ELSE 0 END; SELECT 2; END;
CREATE OR REPLACE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO schedule (id) VALUES (1); END;
CREATE FUNCTION g() RETURNS int AS $tag$ BEGIN RETURN 1; END; $tag$ LANGUAGE plpgsql;
DO $$ BEGIN PERFORM 1; END $$;
CREATE RULE r AS ON INSERT TO schedule DO ALSO (NOTIFY a; NOTIFY b);
CREATE TRIGGER t BEFORE INSERT ON schedule FOR EACH ROW EXECUTE FUNCTION g();
BEGIN; SELECT 3; COMMIT;
SELECT 4 -- trailing; comment
;
`;

suite('statement boundaries match psql', () => {
  test('tricky SQL: dollar quotes, DO, BEGIN ATOMIC, a column named begin, E strings, nested comments, rules', async () => {
    const ours = splitStatements(TRICKY).map((s) => normalise(s.text));
    expect(ours).toEqual((await psqlStatements(TRICKY)).map(normalise));
    // The defect this guards: the two CONCURRENTLY lines after a column named begin stay apart.
    expect(ours.filter((s) => s.startsWith('CREATE INDEX CONCURRENTLY'))).toHaveLength(2);
  });

  test.each(['registry', 'catalog'])('every section of the %s fixture set', async (set) => {
    const dir = join(import.meta.dirname, 'fixtures', set);
    for (const file of (await readdir(dir)).sort()) {
      const sql = (await readFile(join(dir, file), 'utf8')).replace(/^-- migrate:.*$/gm, '');
      expect([file, splitStatements(sql).map((s) => normalise(s.text))]).toEqual([
        file,
        (await psqlStatements(sql)).map(normalise),
      ]);
    }
  });
});
