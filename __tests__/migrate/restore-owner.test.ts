import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, test } from '@jest/globals';
import { usePostgres } from '../../tooling/test-support/fixtures.ts';
import { history, migrate, migrationsDir, query, tableExists } from './helpers.ts';

const { suite, server, cleanups } = usePostgres();

suite('restore by a database owner who is not a superuser', () => {
  test('a superuser-installed extension and another role’s schema stay; what the release made goes; verify-backup agrees', async () => {
    // The production shape: the app's role owns the database, a superuser (the DBA) installed pg_trgm.
    const superUrl = await server.createDatabase('owned');
    const database = new URL(superUrl).pathname.slice(1);
    const role = `owner_${database}`.slice(0, 63);
    await query(server.url, `CREATE ROLE "${role}" LOGIN CREATEDB`);
    await query(server.url, `ALTER DATABASE "${database}" OWNER TO "${role}"`);
    await query(superUrl, 'CREATE EXTENSION pg_trgm');
    const url = superUrl.replace('postgres://postgres@', `postgres://${role}@`);

    const d = await migrationsDir({
      '1_docs.sql':
        '-- migrate:up\nCREATE TABLE docs (id int PRIMARY KEY, body text);\nCREATE INDEX docs_body ON docs USING gin (body gin_trgm_ops);\n' +
        "INSERT INTO docs VALUES (1, 'hello');\n-- migrate:down\nDROP TABLE docs;\n",
    });
    cleanups.push(d.remove);
    await migrate({ command: 'up', databaseUrl: url, dir: d.dir });
    const backup = join(d.dir, '..', `${database}.dump`);
    cleanups.push(() => rm(backup, { force: true }));
    await d.write({ '2_more.sql': '-- migrate:up\nCREATE TABLE more (id int);\nCREATE SCHEMA extra;\n' });
    const backedUp = await migrate({
      command: 'up',
      databaseUrl: url,
      dir: d.dir,
      backup: { path: backup },
      pgDumpPath: server.binaries.pgDump,
    });
    // A schema the dump does not hold, owned by a role the owner may not drop for.
    await query(superUrl, 'CREATE SCHEMA dba; CREATE TABLE dba.notes (note text)');

    const tools = {
      pgRestorePath: server.binaries.pgRestore,
      psqlPath: join(server.binaries.binDir, 'psql'),
    };
    const drill = await migrate({
      command: 'verify-backup',
      databaseUrl: url,
      dir: d.dir,
      restore: { path: backup, confirm: '' },
      ...tools,
    });
    expect(drill.ok).toBe(true);
    expect(await tableExists(url, 'public.more')).toBe(true); // the drill changed nothing live

    const restored = await migrate({
      command: 'restore',
      databaseUrl: url,
      dir: d.dir,
      restore: { path: backup, confirm: database },
      ...tools,
    });
    expect(restored.ok).toBe(true);
    expect(restored.restoreCommand).toContain('--use-list=/dev/stdin');
    // The command printed after the backup is the one restore runs.
    expect(backedUp.restoreCommand).toBe(restored.restoreCommand);
    expect(
      await query(url, `SELECT extowner::regrole::text AS owner FROM pg_extension WHERE extname = 'pg_trgm'`),
    ).toEqual([{ owner: 'postgres' }]);
    expect(await tableExists(url, 'public.more')).toBe(false);
    expect(await tableExists(superUrl, 'dba.notes')).toBe(true);
    expect(await query(url, `SELECT 1 FROM pg_namespace WHERE nspname = 'extra'`)).toEqual([]);
    expect(await query(url, `SELECT id FROM docs WHERE body % 'hello'`)).toEqual([{ id: 1 }]);
    expect(await query(url, `SELECT indexdef FROM pg_indexes WHERE indexname = 'docs_body'`)).toHaveLength(1);
    expect((await history(url)).map((r) => r.version)).toEqual(['1']);
  }, 60_000);
});
