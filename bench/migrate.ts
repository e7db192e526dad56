// run-migrations engine against a throwaway PostgreSQL: apply N generated migrations to a fresh
// database (one transaction each, then as one batch), re-run with nothing pending, status, verify,
// down all. Prints timings. Run: `node bench/migrate.ts [count]` (default 500).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Logger, silentLogger } from '../packages/core/index.ts';
import { type RunMigrationsOptions, runMigrations } from '../packages/migrate/index.ts';
import { startPostgres } from '../packages/testkit/postgres.ts';

const count = Number(process.argv[2] ?? 500);
const logger: Logger = silentLogger;

async function generate(dir: string): Promise<void> {
  const width = String(count).length;
  for (let i = 1; i <= count; i++) {
    const v = String(i).padStart(width, '0');
    const sql =
      `-- migrate:up\nCREATE TABLE t_${i} (id bigint PRIMARY KEY, name text NOT NULL, created_at timestamptz DEFAULT now());\n` +
      `CREATE INDEX t_${i}_name ON t_${i} (name);\n` +
      `INSERT INTO t_${i} (id, name) SELECT g, 'row ' || g FROM generate_series(1, 10) g;\n` +
      `-- migrate:down\nDROP TABLE t_${i};\n`;
    await writeFile(join(dir, `${v}_table_${i}.sql`), sql);
  }
}

async function time<T>(label: string, body: () => Promise<T>, per?: number): Promise<T> {
  const start = performance.now();
  const value = await body();
  const ms = performance.now() - start;
  const each = per ? `  (${(ms / per).toFixed(2)} ms per migration)` : '';
  console.log(`${label.padEnd(56)} ${ms.toFixed(0).padStart(7)} ms${each}`);
  return value;
}

const server = await startPostgres();
const dir = await mkdtemp(join(tmpdir(), 'bench-migrate-'));
try {
  await generate(dir);
  console.log(`PostgreSQL ${server.url}, ${count} migrations (3 statements each)\n`);
  const base = (databaseUrl: string): Omit<RunMigrationsOptions, 'command'> => ({
    databaseUrl,
    dir,
    lockTimeoutMs: 10_000,
    logger,
  });

  const fresh = await server.createDatabase('bench');
  const up = await time(
    `up: ${count} pending, one transaction each`,
    () => runMigrations({ ...base(fresh), command: 'up' }),
    count,
  );
  if (up.applied.length !== count) throw new Error(`applied ${up.applied.length}, expected ${count}`);
  const again = await time('up again: nothing pending', () =>
    runMigrations({ ...base(fresh), command: 'up' }),
  );
  if (again.applied.length !== 0) throw new Error('re-run applied something');
  await time('status', () => runMigrations({ ...base(fresh), command: 'status' }));
  await time('verify (drift + NOT VALID constraints)', () =>
    runMigrations({ ...base(fresh), command: 'verify' }),
  );
  await time(
    `down to 0: revert ${count}`,
    () => runMigrations({ ...base(fresh), command: 'down', target: '0' }),
    count,
  );

  const batchDb = await server.createDatabase('bench_batch');
  await time(
    `up --batch: ${count} in one transaction`,
    () => runMigrations({ ...base(batchDb), command: 'up', batch: true }),
    count,
  );

  const backupDb = await server.createDatabase('bench_backup');
  await runMigrations({ ...base(backupDb), command: 'up', target: String(count - 1) });
  await time(`up with pg_dump -Fc backup (${count - 1} tables, 1 pending)`, () =>
    runMigrations({
      ...base(backupDb),
      command: 'up',
      backup: { path: join(dir, 'backup', 'before.dump') },
      pgDumpPath: server.binaries.pgDump,
    }),
  );
} finally {
  await rm(dir, { recursive: true, force: true });
  await server.stop();
}
