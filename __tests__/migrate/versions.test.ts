import { rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, test } from '@jest/globals';
import { usePostgres } from '../../tooling/test-support/fixtures.ts';
import { migrate, migrationsDir } from './helpers.ts';

const { suite, server, cleanups } = usePostgres();

const file = (n: number) => ({
  [`${n}_t${n}.sql`]: `-- migrate:up\nCREATE TABLE t${n} (id int);\n-- migrate:down\nDROP TABLE t${n};\n`,
});

suite('current version and pending', () => {
  test('current-version is the history’s when the newest applied file was deleted', async () => {
    const url = await server.createDatabase('ver');
    const d = await migrationsDir({ ...file(1), ...file(2), ...file(3) });
    cleanups.push(d.remove);
    await migrate({ command: 'up', databaseUrl: url, dir: d.dir });
    await unlink(join(d.dir, '3_t3.sql'));
    const status = await migrate({
      command: 'status',
      databaseUrl: url,
      dir: d.dir,
      allowDrift: ['missing'],
    });
    expect(status.migrations.map((r) => [r.version, r.state])).toEqual([
      ['1', 'applied'],
      ['2', 'applied'],
      ['3', 'missing'],
    ]);
    expect(status.currentVersion).toBe('3');
  });

  test('after restore, files above the restored version are pending', async () => {
    const url = await server.createDatabase('ver');
    const database = new URL(url).pathname.slice(1);
    const d = await migrationsDir({ ...file(1) });
    cleanups.push(d.remove);
    await migrate({ command: 'up', databaseUrl: url, dir: d.dir });
    await d.write({ ...file(2), ...file(3) });
    const backup = join(d.dir, '..', `${database}.dump`);
    cleanups.push(() => rm(backup, { force: true }));
    await migrate({
      command: 'up',
      databaseUrl: url,
      dir: d.dir,
      backup: { path: backup },
      pgDumpPath: server.binaries.pgDump,
    });
    const restored = await migrate({
      command: 'restore',
      databaseUrl: url,
      dir: d.dir,
      restore: { path: backup, confirm: database },
      pgRestorePath: server.binaries.pgRestore,
      psqlPath: join(server.binaries.binDir, 'psql'),
    });
    expect(restored.currentVersion).toBe('1');
    expect(restored.pending).toEqual(['2', '3']);
    const status = await migrate({ command: 'status', databaseUrl: url, dir: d.dir });
    expect(status.pending).toEqual(['2', '3']);
  });
});
