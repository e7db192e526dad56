import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { loadMigrations } from '../../packages/migrate/index.ts';
import {
  type PostgresServer,
  postgresAvailable,
  startPostgres,
} from '../../tooling/local-services/postgres.ts';
import { history, migrate, query, schemaOf } from './helpers.ts';

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

/**
 * What the tools themselves do: golang-migrate sends each .up.sql as it is, dbmate each file's up
 * section; psql applying the same text in version order stands for them.
 */
async function applyWithPsql(url: string, dir: string, layout: 'golang-migrate' | 'dbmate') {
  const files = (await readdir(dir))
    .filter((f) => (layout === 'dbmate' ? f.endsWith('.sql') : f.endsWith('.up.sql')))
    .sort();
  for (const file of files) {
    let sql = await readFile(join(dir, file), 'utf8');
    if (layout === 'dbmate') sql = sql.split(/^-- migrate:down.*$/m)[0]!.replace(/^-- migrate:up.*$/m, '');
    // From standard input psql sends one statement at a time, as the tools do for CONCURRENTLY.
    execFileSync(
      join(server.binaries.binDir, 'psql'),
      ['--no-psqlrc', '--quiet', '--set=ON_ERROR_STOP=1', `--dbname=${url}`, '--file=-'],
      { input: sql, stdio: ['pipe', 'ignore', 'pipe'] },
    );
  }
}

suite('real-world migration sets', () => {
  test.each([
    [
      'golang-migrate set with dotted names, triggers, DO blocks and a no-op down',
      'registry',
      'golang-migrate',
    ],
    [
      'dbmate set with BEGIN ATOMIC, a column named begin, CONCURRENTLY, a rule and a no-op down',
      'catalog',
      'dbmate',
    ],
  ] as const)(
    '%s: up, down to 0 and up again give the schema the tool gives',
    async (_label, name, layout) => {
      const dir = join(fixtures, name);
      const files = await loadMigrations(dir);
      const expected = await server.createDatabase('tool');
      await applyWithPsql(expected, dir, layout);
      const toolSchema = await schemaOf(server.binaries.pgDump, expected);

      const url = await server.createDatabase('ours');
      const up = await migrate({ command: 'up', databaseUrl: url, dir });
      expect(up.applied).toEqual(files.map((m) => m.id));
      expect(await schemaOf(server.binaries.pgDump, url, { excludeHistory: true })).toBe(toolSchema);

      const down = await migrate({ command: 'down', databaseUrl: url, dir, target: '0' });
      expect(down.reverted).toEqual(files.map((m) => m.id).reverse());
      expect(down.pending).toEqual(files.map((m) => m.id));
      expect(await history(url)).toEqual([]);

      const again = await migrate({ command: 'up', databaseUrl: url, dir });
      expect(again.applied).toEqual(files.map((m) => m.id));
      expect(await schemaOf(server.binaries.pgDump, url, { excludeHistory: true })).toBe(toolSchema);
    },
  );

  test('the dotted golang-migrate names load with their versions and names', async () => {
    const files = await loadMigrations(join(fixtures, 'registry'));
    expect(files.map((m) => [m.id, m.name, m.file, m.downFile])).toEqual([
      ['1', 'initial_schema', '0001_initial_schema.up.sql', '0001_initial_schema.down.sql'],
      ['2', '1.7.0_schema', '0002_1.7.0_schema.up.sql', '0002_1.7.0_schema.down.sql'],
      ['3', '2.0.0_schema', '0003_2.0.0_schema.up.sql', '0003_2.0.0_schema.down.sql'],
      ['4', '2.1.0_seed', '0004_2.1.0_seed.up.sql', '0004_2.1.0_seed.down.sql'],
    ]);
  });

  test('the rule and the trigger of the dbmate set work once applied', async () => {
    const url = await server.createDatabase('rules');
    await migrate({ command: 'up', databaseUrl: url, dir: join(fixtures, 'catalog') });
    await query(
      url,
      `INSERT INTO bookings (account_id, begin, "end") VALUES (1, now(), now() + interval '1 hour')`,
    );
    expect(await query(url, 'SELECT action FROM booking_log ORDER BY action')).toEqual([
      { action: 'audit' },
      { action: 'insert' },
    ]);
    expect(await query(url, `SELECT tier::text FROM accounts`)).toEqual([{ tier: 'pro' }]);
  });
});
